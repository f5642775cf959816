//! A core file as a stopped process: `crashcatch core FILE` reads it through the same
//! [`Snapshot`] the supervisor fills for a live process, so every stage after it runs unchanged.
//!
//! What comes from where: threads and registers from NT_PRSTATUS, the signal from NT_SIGINFO,
//! the command from NT_PRPSINFO (and the initial stack), memory from the PT_LOAD segments
//! (falling back to the mapped files for what the core left out, and adding as mappings the
//! ranges NT_FILE names that gcore wrote no segment for), the maps from the PT_LOAD
//! segments named by NT_FILE, files under `--sysroot`, the starting environment from the
//! initial stack. `write` does the reverse: a core of a stopped process, from any snapshot.

mod error;
mod file;
mod gaps;
mod layout;
mod memory;
pub(crate) mod notes;
mod stack;
pub(crate) mod write;

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

pub(crate) use error::CoreError;
pub(crate) use file::Compression;
pub(crate) use memory::CoreMemory;

use self::layout::{ProgramHeader, PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE};
use self::notes::{Notes, MAX_NOTE_BYTES};
use self::stack::StartStrings;
use super::view::{under_root, ProcessView};
use super::{Mapping, Memory, SignalInfo, Snapshot, ThreadInfo};

/// auxv types used here.
const AT_PHDR: u64 = 3;
const AT_ENTRY: u64 = 9;
const AT_SYSINFO_EHDR: u64 = 33;
const AT_EXECFN: u64 = 31;

/// Where the core's files are found here.
#[derive(Debug, Clone, Default)]
pub struct CoreOptions {
    /// The program, when it is not at the path the core names (under the sysroot).
    pub exe: Option<PathBuf>,
    /// The root the process's paths are looked up under (the machine or container it ran in).
    pub sysroot: Option<PathBuf>,
}

/// A core file, read: the [`ProcessView`] of the process it recorded.
pub(crate) struct CoreView {
    memory: CoreMemory,
    /// The process's files, opened as it would have (see [`super::TargetFiles::for_core`]).
    files: super::TargetFiles,
    notes: Notes,
    maps: Vec<Mapping>,
    exe: Option<String>,
    options: CoreOptions,
    start: OnceCell<Option<StartStrings>>,
    /// What the report should say about the core itself (truncated, files that differ, ...).
    remarks: Vec<String>,
    compression: Compression,
}

impl CoreView {
    /// Opens and reads `path` (plain, gzip or zstd). Fails only when nothing can be read;
    /// anything less becomes a remark.
    pub fn open(path: &Path, options: CoreOptions) -> Result<CoreView, CoreError> {
        let file = file::open(path)?;
        let segments = layout::segments(&file, path)?;
        let mut remarks = Vec::new();
        let note_bytes = read_notes(&file, &segments, &mut remarks);
        let notes = notes::parse(&note_bytes);
        if notes.threads.is_empty() {
            return Err(CoreError::Corrupt {
                path: path.into(),
                why: "it holds no thread (no readable NT_PRSTATUS note)".into(),
            });
        }
        remarks.extend(notes.warnings.iter().map(|w| format!("core: {w}")));
        let loads: Vec<ProgramHeader> = segments.iter().filter(|s| s.kind == PT_LOAD).copied().collect();
        if let Some(w) = truncation(&loads, file.len) {
            remarks.push(w);
        }
        let compression = file.compression;
        let maps = mappings(&loads, &notes);
        let files = super::TargetFiles::for_core(
            options.sysroot.as_deref().unwrap_or(Path::new("/")),
            None,
            notes.process.as_ref().map(|p| (p.uid, p.gid)),
        );
        let mut view = CoreView {
            files,
            memory: CoreMemory::new(file, loads.clone(), notes.files.clone()),
            exe: None,
            notes,
            maps,
            options,
            start: OnceCell::new(),
            remarks,
            compression,
        };
        view.exe = view.find_exe();
        view.link_files();
        // Only now can the files be read for what the core left out entirely (gcore).
        let extra = gaps::file_only_mappings(&loads, &view.notes.files, &view.memory);
        if !extra.is_empty() {
            view.maps.extend(extra);
            view.maps.sort_by_key(|m| m.start);
        }
        Ok(view)
    }

    /// The stopped process, as every stage reads it.
    pub fn snapshot(&self) -> Snapshot<'_> {
        let crashed = self.crashed_thread();
        let pid = self.notes.process.as_ref().map(|p| p.pid).filter(|&p| p > 0).unwrap_or(crashed.tid);
        let fname = self.notes.process.as_ref().map(|p| p.fname.clone()).filter(|f| !f.is_empty());
        let threads = self
            .notes
            .threads
            .iter()
            .map(|t| ThreadInfo {
                tid: t.tid,
                name: if t.tid == pid { fname.clone() } else { None },
                regs: Some(t.regs),
                note: None,
            })
            .collect();
        Snapshot {
            pid,
            crashed_tid: crashed.tid,
            signal: self.signal(),
            exe: self.exe.clone(),
            cmdline: self.cmdline(),
            maps: self.maps.clone(),
            threads,
            memory: &self.memory,
            view: self,
            // The process is gone: its files are read under the sysroot (or this machine's
            // root) with its own rights (see TargetFiles::for_core).
            files: self.files.clone(),
        }
    }

    /// Whether the core was written at a fatal signal (a kernel core) rather than of a process
    /// that was merely stopped (gdb's `gcore`).
    pub(crate) fn is_crash(&self) -> bool {
        let s = self.signal().signo;
        s != 0 && s != libc::SIGSTOP && s != libc::SIGTSTP && s != libc::SIGTTIN && s != libc::SIGTTOU
    }

    /// What the report should say about the core and the files read for it.
    pub(crate) fn remarks(&self) -> Vec<String> {
        let mut r = vec![format!(
            "post-mortem: read from a core file{}; {} threads, {} mappings",
            match self.compression {
                Compression::None => String::new(),
                c => format!(" ({}-compressed)", c.name()),
            },
            self.notes.threads.len(),
            self.maps.len()
        )];
        r.extend(self.remarks.iter().cloned());
        r
    }

    /// The thread the signal was delivered to: the first with a signal (the kernel and gdb
    /// write it first), else the first.
    fn crashed_thread(&self) -> &notes::ThreadNote {
        let t = &self.notes.threads;
        t.iter().find(|t| t.siginfo.is_some_and(|s| s.signo != 0) || t.cursig != 0).unwrap_or(&t[0])
    }

    fn signal(&self) -> SignalInfo {
        let t = self.crashed_thread();
        t.siginfo.filter(|s| s.signo != 0).unwrap_or(SignalInfo { signo: t.cursig, ..Default::default() })
    }

    fn auxv_value(&self, key: u64) -> Option<u64> {
        self.notes.auxv.iter().find(|&&(k, _)| k == key).map(|&(_, v)| v)
    }

    /// The executable: the file mapped at the program's entry point (or program headers).
    fn find_exe(&self) -> Option<String> {
        let at = self.auxv_value(AT_ENTRY).or_else(|| self.auxv_value(AT_PHDR))?;
        self.notes.files.iter().find(|f| f.start <= at && at < f.end).map(|f| f.path.clone())
    }

    /// The starting argv and environment, read once from the initial stack.
    fn start_strings(&self) -> Option<&StartStrings> {
        self.start
            .get_or_init(|| {
                let anchor = self.auxv_value(AT_EXECFN)?;
                let m = self.maps.iter().find(|m| m.contains(anchor))?;
                stack::start_strings(&self.memory, m.start, m.end, &self.notes.auxv)
            })
            .as_ref()
    }

    /// The full command line from the stack, else NT_PRPSINFO's first 80 bytes.
    fn cmdline(&self) -> Vec<String> {
        if let Some(s) = self.start_strings().filter(|s| !s.args.is_empty()) {
            return s.args.clone();
        }
        let ps = self.notes.process.as_ref().map(|p| p.psargs.as_str()).unwrap_or("");
        ps.split_whitespace().map(str::to_string).collect()
    }

    /// Tells the memory where each mapped file is read here, refusing files whose build-id
    /// differs from the one in the core (and saying so).
    fn link_files(&mut self) {
        let mut seen = std::collections::HashSet::new();
        for f in self.notes.files.clone() {
            if !seen.insert(f.path.clone()) {
                continue;
            }
            let clean = f.path.strip_suffix(" (deleted)").unwrap_or(&f.path);
            let host = self.host_path(clean);
            let file = match self.open_file(clean) {
                Ok(file) => file,
                Err(e) => {
                    self.remarks.push(format!("core: {} cannot be read here{} ({e})", f.path, self.under_sysroot()));
                    self.memory.set_host_file(&f.path, None);
                    continue;
                }
            };
            match self.differs(&f, &host, &file) {
                Some(why) => {
                    self.remarks.push(why);
                    self.memory.set_host_file(&f.path, None);
                }
                None => self.memory.set_host_file(&f.path, Some(file)),
            }
        }
    }

    fn under_sysroot(&self) -> String {
        self.options.sysroot.as_ref().map(|r| format!(" (under {})", r.display())).unwrap_or_default()
    }

    /// The file the process named `path`, through the door: under the sysroot, with the
    /// process's rights, a regular file only, never blocking; `--exe` is the user's own file.
    fn open_file(&self, path: &str) -> Result<std::fs::File, super::files::OpenError> {
        if let (Some(exe), Some(core_exe)) = (&self.options.exe, &self.exe) {
            if path == core_exe.strip_suffix(" (deleted)").unwrap_or(core_exe) {
                return super::files::open_regular(exe);
            }
        }
        self.files.open(path)
    }

    /// A note when `file` (shown as `host`) is not the one the process mapped at `f` (by
    /// build-id).
    fn differs(&self, f: &notes::FileNote, host: &Path, file: &std::fs::File) -> Option<String> {
        let first = self.notes.files.iter().find(|g| g.path == f.path && g.offset == 0)?;
        let len = first.end.saturating_sub(first.start);
        let mem = |off: u64, buf: &mut [u8]| {
            if off >= len {
                return 0;
            }
            let n = (buf.len() as u64).min(len - off) as usize;
            self.memory.read_partial(first.start + off, &mut buf[..n])
        };
        let in_core = super::elfid::build_id(&mem)?;
        let disk = |off: u64, buf: &mut [u8]| std::os::unix::fs::FileExt::read_at(file, buf, off).unwrap_or(0);
        let on_disk = super::elfid::build_id(&disk);
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        match on_disk {
            Some(d) if d == in_core => None,
            Some(d) => Some(format!(
                "core: {} no longer matches the core (build-id {} on disk, {} in the core): its code is not read from it",
                host.display(),
                hex(&d),
                hex(&in_core)
            )),
            None => Some(format!(
                "core: {} has no build-id, the core's has {}: its code is not read from it",
                host.display(),
                hex(&in_core)
            )),
        }
    }
}

impl ProcessView for CoreView {
    fn host_path(&self, path: &str) -> PathBuf {
        if let (Some(exe), Some(core_exe)) = (&self.options.exe, &self.exe) {
            if path == core_exe.strip_suffix(" (deleted)").unwrap_or(core_exe) {
                return exe.clone();
            }
        }
        under_root(self.options.sysroot.as_deref(), path)
    }
    fn mapped_file(&self, _mapping: &Mapping) -> Option<PathBuf> {
        None
    }
    /// [`Self::working_dir`], under the sysroot.
    fn cwd(&self) -> Option<PathBuf> {
        Some(self.host_path(&self.working_dir()?))
    }
    /// A kernel's core does not record it: crashcatch's `--core` does (NT_CRASHCATCH_CWD);
    /// else `PWD` from the starting environment (right unless the process changed folder).
    fn working_dir(&self) -> Option<String> {
        if let Some(w) = &self.notes.working_dir {
            return Some(w.clone());
        }
        let env = &self.start_strings()?.env;
        env.iter().find_map(|kv| kv.strip_prefix("PWD=")).filter(|p| p.starts_with('/')).map(str::to_string)
    }
    fn initial_environment(&self) -> Vec<String> {
        self.start_strings().map(|s| s.env.clone()).unwrap_or_default()
    }
    fn auxv(&self) -> Vec<(u64, u64)> {
        self.notes.auxv.clone()
    }
}

/// The bytes of every PT_NOTE segment, within [`MAX_NOTE_BYTES`] in all.
fn read_notes(file: &file::CoreFile, segments: &[ProgramHeader], remarks: &mut Vec<String>) -> Vec<Vec<u8>> {
    let mut budget = MAX_NOTE_BYTES;
    let mut out = Vec::new();
    for s in segments.iter().filter(|s| s.kind == PT_NOTE) {
        let want = s.filesz.min(budget);
        if want < s.filesz {
            remarks.push(format!("core: notes beyond {} MB were not read", MAX_NOTE_BYTES >> 20));
        }
        let mut buf = vec![0u8; want as usize];
        let got = file.read_at(s.offset, &mut buf);
        if got < buf.len() {
            remarks.push(format!("core: its notes are cut short ({got} of {want} bytes): the file is truncated"));
        }
        buf.truncate(got);
        budget -= got as u64;
        out.push(buf);
    }
    out
}

/// A remark when segments' contents run past the end of the file.
fn truncation(loads: &[ProgramHeader], len: u64) -> Option<String> {
    let want = loads.iter().filter(|s| s.filesz > 0).map(|s| s.offset.saturating_add(s.filesz)).max()?;
    let missing = loads.iter().filter(|s| s.filesz > 0 && s.offset.saturating_add(s.filesz) > len).count();
    (want > len).then(|| {
        format!(
            "core: the file is truncated ({len} of {want} bytes): {missing} memory segments are missing or cut short \
             (what they held is unreadable, but for code and data read from the mapped files)"
        )
    })
}

/// The process's memory map, from the PT_LOAD segments (addresses, permissions) named by
/// NT_FILE (paths, offsets); the vDSO and the stack named from the auxiliary vector.
fn mappings(loads: &[ProgramHeader], notes: &Notes) -> Vec<Mapping> {
    let aux = |k: u64| notes.auxv.iter().find(|&&(t, _)| t == k).map(|&(_, v)| v);
    let vdso = aux(AT_SYSINFO_EHDR);
    let stack = aux(AT_EXECFN);
    let mut maps: Vec<Mapping> = loads
        .iter()
        .filter(|s| s.memsz > 0)
        .map(|s| {
            let file = notes.files.iter().find(|f| f.start <= s.vaddr && s.vaddr < f.end);
            let path = match file {
                Some(f) => Some(f.path.clone()),
                None if vdso == Some(s.vaddr) => Some("[vdso]".to_string()),
                None if stack.is_some_and(|a| s.vaddr <= a && a < s.end()) => Some("[stack]".to_string()),
                None => None,
            };
            Mapping {
                start: s.vaddr,
                end: s.end(),
                read: s.flags & PF_R != 0,
                write: s.flags & PF_W != 0,
                exec: s.flags & PF_X != 0,
                shared: false,
                offset: file.map_or(0, |f| f.offset.saturating_add(s.vaddr - f.start)),
                inode: 0,
                path,
            }
        })
        .collect();
    maps.sort_by_key(|m| m.start);
    maps
}
