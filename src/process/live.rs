//! A live, stopped process: its memory through `process_vm_readv` (with /proc/PID/mem as the
//! fallback for pages that call refuses), its maps, threads and files through /proc.

use std::fs::File;
use std::io::IoSliceMut;
use std::os::unix::fs::FileExt;

use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::unistd::Pid;

use super::blocking;
use super::memory::Memory;
use super::{Mapping, SignalInfo, Snapshot, ThreadInfo};

pub struct LiveMemory {
    pid: i32,
    /// Opened only when process_vm_readv refuses a page (it usually never does).
    mem_file: std::cell::OnceCell<Option<File>>,
}

impl LiveMemory {
    pub fn new(pid: i32) -> Self {
        LiveMemory { pid, mem_file: std::cell::OnceCell::new() }
    }
}

impl Memory for LiveMemory {
    fn read_partial(&self, addr: u64, buf: &mut [u8]) -> usize {
        if buf.is_empty() {
            return 0;
        }
        // Inside a watched scope: never past a fenced range, and the watchdog sees a read
        // that does not return (see blocking.rs).
        blocking::memory(self.pid, addr, buf.len(), |allowed| self.read_unwatched(addr, &mut buf[..allowed]))
    }
}

impl LiveMemory {
    fn read_unwatched(&self, addr: u64, buf: &mut [u8]) -> usize {
        if buf.is_empty() {
            return 0;
        }
        let mut done = 0usize;
        // process_vm_readv may stop early at a page it cannot read: count what came back
        // and retry the remainder until it reads nothing more.
        while done < buf.len() {
            let remote = [RemoteIoVec { base: (addr as usize).wrapping_add(done), len: buf.len() - done }];
            let mut local = [IoSliceMut::new(&mut buf[done..])];
            match process_vm_readv(Pid::from_raw(self.pid), &mut local, &remote) {
                Ok(0) | Err(_) => break,
                Ok(n) => done += n,
            }
        }
        if done < buf.len() {
            let mem = || super::files::open_proc(std::path::Path::new(&format!("/proc/{}/mem", self.pid))).ok();
            if let Some(f) = self.mem_file.get_or_init(mem) {
                while done < buf.len() {
                    match f.read_at(&mut buf[done..], addr.wrapping_add(done as u64)) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => done += n,
                    }
                }
            }
        }
        done
    }
}

/// Reads /proc/PID/<name> as text, None on error.
pub fn proc_text(pid: i32, name: &str) -> Option<String> {
    proc_bytes(pid, name).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Most bytes read of one /proc file (a command line or environment can be as large as the
/// process made its stack).
const MAX_PROC_FILE: u64 = 16 << 20;

/// Reads /proc/PID/<name>, at most [`MAX_PROC_FILE`] bytes, as a watched read: `cmdline`,
/// `environ` and `auxv` are read from the process's own memory, which it can make never answer.
fn proc_bytes(pid: i32, name: &str) -> Option<Vec<u8>> {
    super::files::read_proc(std::path::Path::new(&format!("/proc/{pid}/{name}")), MAX_PROC_FILE)
}

/// NUL-separated strings, empty ones left out.
fn nul_separated(b: &[u8]) -> Vec<String> {
    b.split(|&c| c == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
}

/// The NUL-separated command line of a process.
pub fn cmdline(pid: i32) -> Vec<String> {
    proc_bytes(pid, "cmdline").map(|b| nul_separated(&b)).unwrap_or_default()
}

/// The tids of a process's threads, sorted.
pub fn thread_ids(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// A thread's name from /proc/PID/task/TID/comm.
pub fn thread_name(pid: i32, tid: i32) -> Option<String> {
    proc_text(pid, &format!("task/{tid}/comm")).map(|s| s.trim_end_matches('\n').to_string())
}

/// The process (thread-group id) a thread belongs to, from /proc/TID/status.
pub fn tgid_of(tid: i32) -> Option<i32> {
    status_field(tid, "Tgid")?.parse().ok()
}

/// A field of /proc/PID/status such as `Tgid` or `PPid`.
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    status_value(&proc_text(pid, "status")?, field).map(str::to_string)
}

/// A field's value in the text of a status file.
fn status_value<'a>(text: &'a str, field: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == field).then(|| v.trim())
    })
}

/// A thread's signal masks (bit `n-1` for signal `n`), from /proc/PID/task/TID/status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignalMasks {
    pub caught: u64,
    pub blocked: u64,
    pub ignored: u64,
}

/// Reads a thread's signal masks; None if its status cannot be read.
pub fn signal_masks(pid: i32, tid: i32) -> Option<SignalMasks> {
    let text = proc_text(pid, &format!("task/{tid}/status"))?;
    let mask = |field: &str| status_value(&text, field).and_then(|v| u64::from_str_radix(v, 16).ok()).unwrap_or(0);
    Some(SignalMasks { caught: mask("SigCgt"), blocked: mask("SigBlk"), ignored: mask("SigIgn") })
}

/// The parent's pid.
pub fn parent(pid: i32) -> Option<i32> {
    status_field(pid, "PPid")?.parse().ok()
}

/// The pid of the process tracing `pid`, if any.
pub fn tracer(pid: i32) -> Option<i32> {
    status_field(pid, "TracerPid")?.parse().ok().filter(|&t| t != 0)
}

/// A process's name (/proc/PID/comm).
pub fn comm(pid: i32) -> Option<String> {
    proc_text(pid, "comm").map(|s| s.trim().to_string())
}

/// The uid that owns a process, or None when it does not exist.
pub fn owner(pid: i32) -> Option<u32> {
    std::fs::metadata(format!("/proc/{pid}")).ok().map(|m| std::os::unix::fs::MetadataExt::uid(&m))
}

/// Whether a process exists (its /proc folder does).
pub fn exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The executable's path (/proc/PID/exe).
pub fn exe(pid: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok().map(|p| p.display().to_string())
}

/// The memory map (/proc/PID/maps), parsed; empty when it cannot be read.
pub fn maps(pid: i32) -> Vec<super::Mapping> {
    super::maps::parse_maps(&proc_text(pid, "maps").unwrap_or_default())
}

/// The environment the process started with (/proc/PID/environ), `NAME=value` each.
pub fn environ(pid: i32) -> Vec<String> {
    proc_bytes(pid, "environ").map(|b| nul_separated(&b)).unwrap_or_default()
}

/// The process's root folder as seen from here (a container's, through /proc).
pub fn root(pid: i32) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/proc/{pid}/root"))
}

/// The process's working folder as seen from here.
pub fn cwd(pid: i32) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/proc/{pid}/cwd"))
}

/// The process's working folder as the process names it: the target of /proc/PID/cwd, made
/// relative to its root (/proc/PID/root) when that is not ours (a chroot). /proc/PID/cwd
/// itself is only a way in from here, and names nothing the process would print.
pub fn working_dir(pid: i32) -> Option<String> {
    let link = |name: &str| std::fs::read_link(format!("/proc/{pid}/{name}")).ok();
    let cwd = link("cwd")?;
    let root = link("root");
    inside_root(cwd.to_str()?, root.as_deref().and_then(|r| r.to_str()))
}

/// `cwd` (a link's target read here) as seen inside `root`: `/srv/jail/app` in `/srv/jail` is
/// `/app`. A folder removed since (` (deleted)`) keeps its name. None when it is not a path
/// at all (a cwd outside our view reads as a relative name).
fn inside_root(cwd: &str, root: Option<&str>) -> Option<String> {
    let cwd = cwd.strip_suffix(" (deleted)").unwrap_or(cwd);
    if !cwd.starts_with('/') {
        return None;
    }
    let Some(root) = root.map(|r| r.trim_end_matches('/')).filter(|r| !r.is_empty()) else {
        return Some(cwd.to_string());
    };
    match cwd.strip_prefix(root) {
        Some("") => Some("/".into()),
        Some(rest) if rest.starts_with('/') => Some(rest.to_string()),
        _ => Some(cwd.to_string()),
    }
}

/// `kernel.yama.ptrace_scope`, when Yama is on.
pub fn ptrace_scope() -> Option<u32> {
    let bytes = super::files::read_proc(std::path::Path::new("/proc/sys/kernel/yama/ptrace_scope"), 64)?;
    String::from_utf8_lossy(&bytes).trim().parse().ok()
}

/// What a snapshot of a live process borrows: its memory and its view of files. The one place
/// a live [`Snapshot`] is made (reports, `--core`).
pub struct LiveProcess {
    pub pid: i32,
    pub memory: LiveMemory,
    pub view: LiveView,
}

impl LiveProcess {
    pub fn new(pid: i32) -> Self {
        LiveProcess { pid, memory: LiveMemory::new(pid), view: LiveView { pid } }
    }

    /// The process with `threads` stopped (`crashed_tid` at `signal`; 0 for a snapshot with no
    /// signal), read through `memory`: the live memory, or a copy taken over it.
    pub fn snapshot<'m>(
        &'m self,
        memory: &'m dyn Memory,
        crashed_tid: i32,
        signal: SignalInfo,
        threads: Vec<ThreadInfo>,
    ) -> Snapshot<'m> {
        let pid = self.pid;
        Snapshot {
            pid,
            crashed_tid,
            signal,
            exe: exe(pid),
            cmdline: cmdline(pid),
            maps: maps(pid),
            threads,
            memory,
            view: &self.view,
            files: super::TargetFiles::live(pid),
        }
    }
}

/// A live process stopped under ptrace, seen through /proc: its files under /proc/PID/root
/// (a container's own), the very files it mapped through /proc/PID/map_files.
#[derive(Debug, Clone, Copy)]
pub struct LiveView {
    pub pid: i32,
}

impl super::ProcessView for LiveView {
    fn host_path(&self, path: &str) -> std::path::PathBuf {
        super::view::under_root(Some(&root(self.pid)), path)
    }
    fn mapped_file(&self, m: &Mapping) -> Option<std::path::PathBuf> {
        Some(map_file(self.pid, m))
    }
    fn cwd(&self) -> Option<std::path::PathBuf> {
        Some(cwd(self.pid))
    }
    fn working_dir(&self) -> Option<String> {
        working_dir(self.pid)
    }
    fn initial_environment(&self) -> Vec<String> {
        environ(self.pid)
    }
    fn auxv(&self) -> Vec<(u64, u64)> {
        auxv(self.pid)
    }
}

/// The mapped file of one mapping, through /proc/PID/map_files.
pub fn map_file(pid: i32, m: &super::Mapping) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end))
}

/// The auxiliary vector (/proc/PID/auxv), at most 64 pairs, up to AT_NULL.
pub fn auxv(pid: i32) -> Vec<(u64, u64)> {
    let bytes = proc_bytes(pid, "auxv").unwrap_or_default();
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
    bytes.chunks_exact(16).take(64).map(|c| (word(&c[..8]), word(&c[8..]))).take_while(|&(t, _)| t != 0).collect()
}

/// Start addresses of the file mappings the process has written to (copy-on-write pages:
/// `Anonymous:` above 0 kB in /proc/PID/smaps), such as relocated RELRO pages.
pub fn dirty_file_mappings(pid: i32) -> std::collections::HashSet<u64> {
    let mut out = std::collections::HashSet::new();
    let text = proc_text(pid, "smaps").unwrap_or_default();
    let mut current: Option<(u64, bool)> = None;
    for line in text.lines() {
        if let Some(kb) = line.strip_prefix("Anonymous:") {
            let kb: u64 = kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            if let Some((start, true)) = current {
                if kb > 0 {
                    out.insert(start);
                }
            }
        } else if let Some(m) = super::maps::parse_maps(line).first() {
            current = Some((m.start, m.is_file()));
        }
    }
    out
}

/// The address ranges the process registered with userfaultfd (`um`, `uw` or `ui` among the
/// VmFlags of /proc/PID/smaps): a read there waits for the process to serve the fault.
pub fn userfaultfd_areas(pid: i32) -> Vec<(u64, u64)> {
    let text = proc_text(pid, "smaps").unwrap_or_default();
    let mut out = Vec::new();
    let mut current: Option<(u64, u64)> = None;
    for line in text.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if flags.split_whitespace().any(|f| matches!(f, "um" | "uw" | "ui")) {
                out.extend(current);
            }
        } else if let Some(m) = super::maps::parse_maps(line).first() {
            current = Some((m.start, m.end));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::inside_root;

    #[test]
    fn working_dir_is_named_inside_the_process_root() {
        assert_eq!(inside_root("/ws/proj", Some("/")).as_deref(), Some("/ws/proj"));
        assert_eq!(inside_root("/ws/proj", None).as_deref(), Some("/ws/proj"));
        assert_eq!(inside_root("/srv/jail/app", Some("/srv/jail")).as_deref(), Some("/app"));
        assert_eq!(inside_root("/srv/jail", Some("/srv/jail/")).as_deref(), Some("/"));
        // Not under it (another namespace's view): as read.
        assert_eq!(inside_root("/srv/jailbreak/x", Some("/srv/jail")).as_deref(), Some("/srv/jailbreak/x"));
        assert_eq!(inside_root("/ws/gone (deleted)", Some("/")).as_deref(), Some("/ws/gone"));
        assert_eq!(inside_root("net:[4026531993]", Some("/")), None);
    }

    #[test]
    fn working_dir_of_a_live_process_is_its_folder() {
        let here = std::env::current_dir().unwrap();
        let me = std::process::id() as i32;
        assert_eq!(super::working_dir(me).as_deref(), here.to_str());
    }
}
