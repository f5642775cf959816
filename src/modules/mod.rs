//! The loaded ELF modules of a stopped process: which file each address belongs to, its load
//! bias, its sections (for CFI), its symbols (both ways: address → name, name → address) and its
//! separate debug file. Files are opened lazily and cached per module, so a report only pays for
//! the modules its frames touch; they are read with bounded reads (bytes.rs), never mapped.

mod arena;
pub(crate) mod bytes;
pub mod debuginfod;
pub(crate) mod elf;
mod error;
mod headers;
mod inflate;
pub(crate) mod readahead;
mod symbols;

use std::cell::OnceCell;
use std::path::PathBuf;
use std::rc::Rc;

pub use elf::ElfInfo;
pub use error::{ElfError, HeaderProblem};
pub use symbols::SymbolHit;

use crate::process::{Mapping, Memory, MemoryExt, Snapshot, TargetFiles};

/// One ELF file mapped into the process (or the vDSO).
pub struct Module {
    /// The path as the process sees it (from /proc/PID/maps), or `[vdso]`.
    pub path: String,
    /// Where this host can open the file.
    pub host_path: Option<PathBuf>,
    /// Lowest and highest address of all its mappings.
    pub start: u64,
    /// The end of its highest mapping.
    pub end: u64,
    mappings: Vec<Mapping>,
    /// The vDSO's bytes, read from memory (it has no file).
    in_memory: Option<Vec<u8>>,
    /// The same file as the process mapped it (/proc/PID/map_files), for when the file at
    /// `host_path` is no longer the one mapped (replaced on disk). None when the view has none.
    mapped_file: Option<PathBuf>,
    /// Extra folders searched for its separate debug file (`--debug-dir`), before /usr/lib/debug.
    debug_dirs: Rc<[PathBuf]>,
    /// The build-id in the ELF headers the process had mapped (read from memory), for views
    /// that know no inode to compare the file on disk with (a core).
    mapped_build_id: Option<Vec<u8>>,
    elf: OnceCell<Result<Rc<ElfInfo>, ElfError>>,
    /// The process's files as it sees them (a live snapshot): the module is opened as the
    /// process would, by `path`, rather than as crashcatch through `host_path`.
    files: Option<TargetFiles>,
}

impl Module {
    /// The file name, for people: `libc.so.6`.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// Whether `addr` is in one of its mappings.
    pub fn contains(&self, addr: u64) -> bool {
        self.mappings.iter().any(|m| m.contains(addr))
    }

    pub(crate) fn is_executable_at(&self, addr: u64) -> bool {
        self.mappings.iter().any(|m| m.contains(addr) && m.exec)
    }

    /// Its mappings.
    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    /// The parsed ELF file, loaded on first use. The error says why it could not be read.
    pub fn elf(&self) -> Result<&ElfInfo, &ElfError> {
        self.elf
            .get_or_init(|| {
                let info = match (&self.in_memory, &self.host_path) {
                    (Some(bytes), _) => ElfInfo::from_bytes(bytes.clone(), None),
                    (None, Some(p)) => self.open_mapped(p),
                    (None, None) => Err(ElfError::Unreachable { module: self.path.clone() }),
                };
                info.map(|mut e| {
                    e.set_debug_dirs(self.debug_dirs.clone());
                    Rc::new(e)
                })
            })
            .as_ref()
            .map(|r| &**r)
    }

    /// Opens the file at `path` if it is still the one mapped (same inode as in
    /// /proc/PID/maps), else the mapped one through /proc/PID/map_files; a file replaced on
    /// disk is never read as if it were the mapped one.
    fn open_mapped(&self, path: &std::path::Path) -> Result<ElfInfo, ElfError> {
        let inode = self.mappings.first().map_or(0, |m| m.inode);
        let clean = self.path.strip_suffix(" (deleted)").unwrap_or(&self.path);
        let opened = match &self.files {
            Some(files) => ElfInfo::open_as(files, clean, path),
            None => ElfInfo::open(path),
        };
        // Without a live process (tests, offline) there is nothing to compare with.
        let same = |e: &ElfInfo| {
            inode == 0 || self.mapped_file.is_none() || e.identity().map_or(true, |(_, ino)| ino == inode)
        };
        match (opened, &self.mapped_file) {
            (Ok(e), _) if same(&e) => self.check_build_id(e),
            (_, Some(mf)) => ElfInfo::open(mf)
                .map_err(|e| ElfError::ReplacedAndUnreadable { module: self.path.clone(), source: Box::new(e) }),
            (Ok(_), None) => Err(ElfError::Replaced { module: self.path.clone() }),
            (Err(e), None) => Err(e),
        }
    }

    /// A file whose build-id differs from the one the process had mapped is not that file.
    fn check_build_id(&self, e: ElfInfo) -> Result<ElfInfo, ElfError> {
        match (&self.mapped_build_id, e.build_id()) {
            (Some(want), Some(got)) if want.as_slice() != got => {
                Err(ElfError::OtherBuildId { module: self.path.clone(), on_disk: hex(got), mapped: hex(want) })
            }
            _ => Ok(e),
        }
    }

    /// Load bias: runtime address = file virtual address (SVMA) + bias.
    pub(crate) fn bias(&self) -> Option<u64> {
        let elf = self.elf().ok()?;
        if elf.is_fixed_address() {
            return Some(0);
        }
        if self.in_memory.is_some() {
            return Some(self.start.wrapping_sub(elf.min_load_vaddr() & !0xfff));
        }
        // The mapping of file offset 0 holds the first PT_LOAD.
        if let Some(m) = self.mappings.iter().find(|m| m.offset == 0) {
            return Some(m.start.wrapping_sub(elf.min_load_vaddr() & !0xfff));
        }
        // Otherwise match any mapping to the segment that covers its file offset.
        for m in &self.mappings {
            if let Some(seg) = elf.segment_for_offset(m.offset) {
                let vaddr_page = (seg.vaddr + (m.offset - seg.offset)) & !0xfff;
                return Some(m.start.wrapping_sub(vaddr_page));
            }
        }
        None
    }

    /// The file's own address (SVMA) for a runtime address.
    pub(crate) fn to_svma(&self, addr: u64) -> Option<u64> {
        Some(addr.wrapping_sub(self.bias()?))
    }

    /// The runtime address of a file address.
    pub(crate) fn to_avma(&self, svma: u64) -> Option<u64> {
        Some(svma.wrapping_add(self.bias()?))
    }

    /// Runtime address of a symbol defined in this module (.symtab, .dynsym, debug file).
    pub fn symbol_address(&self, name: &str) -> Option<u64> {
        let svma = self.elf().ok()?.symbol_address(name)?;
        self.to_avma(svma)
    }

    /// Runtime address and size of a section (e.g. `.PyRuntime`).
    pub(crate) fn section_address(&self, name: &str) -> Option<(u64, u64)> {
        let s = self.elf().ok()?.section(name)?;
        Some((self.to_avma(s.addr)?, s.size))
    }

    pub(crate) fn build_id_hex(&self) -> Option<String> {
        self.elf().ok()?.build_id().map(hex)
    }
}

/// The build-id of the ELF headers mapped at `m`, read from memory, only for a mapping of a
/// file's start with no inode to identify it by (a core's NT_FILE): a live process's files are
/// identified by inode and never pay for this read.
fn mapped_build_id(memory: &dyn Memory, m: &Mapping) -> Option<Vec<u8>> {
    if m.inode != 0 || m.offset != 0 {
        return None;
    }
    let len = m.end - m.start;
    let read = |off: u64, buf: &mut [u8]| {
        if off >= len {
            return 0;
        }
        let n = (buf.len() as u64).min(len - off) as usize;
        memory.read_partial(m.start + off, &mut buf[..n])
    };
    crate::process::elfid::build_id(&read)
}

/// `bytes` in lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every ELF module of a process, sorted by address.
pub struct ModuleSet {
    modules: Vec<Module>,
}

impl ModuleSet {
    /// The modules of a stopped process, each to be opened as the process sees it.
    pub fn from_snapshot(snap: &Snapshot<'_>) -> Self {
        let mut set = Self::build(&snap.maps, |p| Some(snap.host_path(p)), snap.memory, |m| snap.view.mapped_file(m));
        for m in set.modules.iter_mut().filter(|m| m.in_memory.is_none()) {
            m.files = Some(snap.files.clone());
        }
        set
    }

    /// Groups the file-backed mappings by file; `open` says where each path can be read here,
    /// `mapped_file` where the very file mapped can be read (see [`crate::process::ProcessView`]).
    pub fn build(
        maps: &[Mapping],
        open: impl Fn(&str) -> Option<PathBuf>,
        memory: &dyn Memory,
        mapped_file: impl Fn(&Mapping) -> Option<PathBuf>,
    ) -> Self {
        let mut modules: Vec<Module> = Vec::new();
        for m in maps {
            let Some(path) = &m.path else { continue };
            if path == "[vdso]" {
                let len = (m.end - m.start).min(1 << 20) as usize;
                let bytes = memory.read_bytes(m.start, len).ok();
                modules.push(Module {
                    path: path.clone(),
                    host_path: None,
                    start: m.start,
                    end: m.end,
                    mappings: vec![m.clone()],
                    in_memory: bytes,
                    mapped_file: None,
                    debug_dirs: Rc::from(Vec::new()),
                    mapped_build_id: None,
                    elf: OnceCell::new(),
                    files: None,
                });
                continue;
            }
            // Only what the loader mapped: a file mapped shared (a program reading a library as
            // data, or any file) is not a module and must not be merged with one.
            if !m.is_file() || m.shared {
                continue;
            }
            // Consecutive mappings of the same file (same inode and path) form one module; a
            // mapping of the file's start begins another (the loader maps offset 0 once: a second
            // one is the program, or a backtrace library, reading the file, and taking it for the
            // module's first segment would give the whole module a wrong bias).
            if let Some(last) = modules.last_mut() {
                let same_file = last.path == *path && last.mappings.last().map(|l| l.inode) == Some(m.inode);
                if same_file && m.offset != 0 {
                    last.end = last.end.max(m.end);
                    last.mappings.push(m.clone());
                    continue;
                }
            }
            let clean = path.strip_suffix(" (deleted)").unwrap_or(path);
            let mapped_file = mapped_file(m);
            let mut host = open(clean).filter(|p| crate::process::blocking::exists(p));
            if host.is_none() {
                host = mapped_file.clone().filter(|mf| crate::process::blocking::exists(mf));
            }
            modules.push(Module {
                path: path.clone(),
                host_path: host,
                start: m.start,
                end: m.end,
                mappings: vec![m.clone()],
                in_memory: None,
                mapped_file,
                debug_dirs: Rc::from(Vec::new()),
                mapped_build_id: mapped_build_id(memory, m),
                elf: OnceCell::new(),
                files: None,
            });
        }
        // Anonymous .bss mappings that directly follow a module belong to it for address lookup
        // (3.6's `interp_head` lives there), but they carry no file: leave them out of `mappings`.
        modules.retain(|m| m.mappings.iter().any(|mm| mm.offset == 0 || mm.exec) || m.in_memory.is_some());
        modules.sort_by_key(|m| m.start);
        ModuleSet { modules }
    }

    /// Searches `dirs` (laid out like /usr/lib/debug: `.build-id/xx/rest.debug`, or the file's own
    /// folder for `.gnu_debuglink`) for separate debug files, before /usr/lib/debug.
    pub(crate) fn with_debug_dirs(mut self, dirs: &[PathBuf]) -> Self {
        let dirs: Rc<[PathBuf]> = Rc::from(dirs.to_vec());
        for m in &mut self.modules {
            m.debug_dirs = dirs.clone();
        }
        self
    }

    /// Every module, by address.
    pub fn iter(&self) -> impl Iterator<Item = &Module> {
        self.modules.iter()
    }

    /// The module one of whose mappings holds `addr`.
    pub fn find(&self, addr: u64) -> Option<&Module> {
        let i = self.modules.partition_point(|m| m.start <= addr);
        self.modules[..i].iter().rev().take(4).find(|m| m.contains(addr))
    }

    /// Modules whose file name satisfies `pred`.
    pub fn by_name<'a>(&'a self, pred: impl Fn(&str) -> bool + 'a) -> impl Iterator<Item = &'a Module> + 'a {
        self.modules.iter().filter(move |m| pred(m.name()))
    }

    /// The main executable (the first file-backed module mapped at offset 0 whose path matches
    /// `exe`, or the first module when `exe` is unknown).
    pub fn executable(&self, exe: Option<&str>) -> Option<&Module> {
        match exe {
            Some(e) => self.modules.iter().find(|m| m.path == e),
            None => self.modules.first(),
        }
    }
}
