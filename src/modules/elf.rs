//! One ELF file, read on demand with bounded reads and indexed: segments, sections, symbols,
//! build-id, debug link, and the separate debug file that goes with it.
//!
//! Opening reads the headers only. A section's bytes are read when first asked for and kept;
//! symbols are looked up in the raw tables (see `symbols.rs`); CFI windows are read per
//! function (see `unwind/cfi.rs`). Nothing is mapped, so a file that shrinks while it is read
//! gives short reads, not a SIGBUS.

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::arena::Arena;
use super::error::ElfError;
use super::headers::{Headers, ET_EXEC, SHT_DYNSYM, SHT_SYMTAB};
pub use super::headers::{Section, Segment};
use super::inflate::Inflater;
use super::readahead;
use super::source::{Source, MAX_READ};
pub use super::symbols::SymbolHit;
use super::symbols::{self, Table};
use crate::process::TargetFiles;

/// A window of a plain section larger than this is served from the whole section, read once:
/// otherwise many large windows of one section (a hostile file whose units, line programs or
/// abbreviation tables each claim most of it) would each be a copy of it.
const WHOLE_SECTION_AFTER: usize = 1 << 20;

/// Size of the compressed-section header (Elf64_Chdr).
const CHDR_SIZE: u64 = 24;
const ELFCOMPRESS_ZLIB: u32 = 1;
const ELFCOMPRESS_ZSTD: u32 = 2;

pub struct ElfInfo {
    pub path: Option<PathBuf>,
    /// Shared with the read-ahead thread (readahead.rs).
    src: Arc<Source>,
    fixed: bool,
    segments: Vec<Segment>,
    sections: Vec<Section>,
    build_id: Option<Vec<u8>>,
    debuglink: Option<String>,
    has_symtab: bool,
    has_dwarf: bool,
    debug_file: OnceCell<Option<Box<ElfInfo>>>,
    /// Bytes of each section read so far, parallel to `sections`.
    data: Vec<OnceCell<Option<SectionBytes>>>,
    /// Symbols found per address, and addresses per name.
    by_addr: RefCell<HashMap<u64, Option<SymbolHit>>>,
    by_name: RefCell<HashMap<String, Option<u64>>>,
    /// Windows of the file read for callers (CFI), kept for the life of this file, by key.
    windows: Arena,
    window_index: RefCell<HashMap<WindowKey, Option<usize>>>,
    /// A debug file found elsewhere (a debuginfod server, see [`super::debuginfod`]), used when
    /// the local search found none.
    fetched_debug_file: OnceCell<Box<ElfInfo>>,
    /// The process this file was opened for, and its path as the process sees it: a debug file
    /// it names (`.gnu_debuglink`) next to itself is opened as that process would.
    origin: Option<(TargetFiles, String)>,
    /// Extra folders searched for the debug file, before /usr/lib/debug.
    debug_dirs: std::rc::Rc<[PathBuf]>,
}

/// What a kept window is: (section index or `u32::MAX` for callers' own, offset, length).
pub type WindowKey = (u32, u64, u64);

/// A section's bytes: read whole, or (zlib) inflated on demand as far as asked.
enum SectionBytes {
    Whole(Box<[u8]>),
    Lazy(Inflater),
}

impl ElfInfo {
    pub fn open(path: &Path) -> Result<ElfInfo, ElfError> {
        Self::parse(Source::open(path)?, Some(path.to_path_buf()))
    }

    /// An ELF file already opened (by a caller that checked what it opened); `path` names it.
    pub fn open_file(file: &std::fs::File, path: &Path) -> Result<ElfInfo, ElfError> {
        let file = file.try_clone().map_err(|source| ElfError::Open { path: path.to_path_buf(), source })?;
        Self::parse(Source::from_file(file, path)?, Some(path.to_path_buf()))
    }

    pub fn from_bytes(bytes: Vec<u8>, path: Option<PathBuf>) -> Result<ElfInfo, ElfError> {
        Self::parse(Source::Owned(bytes), path)
    }

    fn parse(src: Source, path: Option<PathBuf>) -> Result<ElfInfo, ElfError> {
        let what = path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "in-memory image".into());
        let headers = Headers::read(&src, &what)?;
        let build_id = headers.build_id(&src);
        let sections = headers.sections;
        let debuglink = sections
            .iter()
            .find(|s| s.name == ".gnu_debuglink" && s.file_size <= 4096)
            .and_then(|s| src.read(s.file_offset, s.file_size))
            .and_then(|b| {
                let n = b.iter().position(|&c| c == 0)?;
                (n > 0).then(|| String::from_utf8_lossy(&b[..n]).into_owned())
            });
        let has_symtab = sections.iter().any(|s| s.name == ".symtab");
        let has_dwarf = sections.iter().any(|s| s.name == ".debug_info" || s.name == ".zdebug_info");
        let section_count = sections.len();
        Ok(ElfInfo {
            path,
            src: Arc::new(src),
            fixed: headers.e_type == ET_EXEC,
            segments: headers.segments,
            sections,
            build_id,
            debuglink,
            has_symtab,
            has_dwarf,
            debug_file: OnceCell::new(),
            data: (0..section_count).map(|_| OnceCell::new()).collect(),
            by_addr: RefCell::new(HashMap::new()),
            by_name: RefCell::new(HashMap::new()),
            windows: Arena::default(),
            window_index: RefCell::new(HashMap::new()),
            fetched_debug_file: OnceCell::new(),
            origin: None,
            debug_dirs: std::rc::Rc::from(Vec::new()),
        })
    }

    /// The file `path` of a process, opened as that process would (inside its root, with its
    /// rights, a regular file only); `host` names it in errors and reports.
    pub fn open_as(files: &TargetFiles, path: &str, host: &Path) -> Result<ElfInfo, ElfError> {
        let file = files.open(path).map_err(|source| ElfError::OpenAsTarget { path: path.to_string(), source })?;
        let mut elf = Self::parse(Source::from_file(file, host)?, Some(host.to_path_buf()))?;
        elf.origin = Some((files.clone(), path.to_string()));
        Ok(elf)
    }

    /// (device, inode) of the file as opened; None for in-memory images.
    pub fn identity(&self) -> Option<(u64, u64)> {
        self.src.identity()
    }

    /// `len` bytes at file offset `offset`, or None when they are not all in the file.
    pub fn read_at(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        self.src.read(offset, len)
    }

    /// The bytes `make` reads, kept under `key` for the life of this file (read once).
    pub fn window(&self, key: WindowKey, make: impl FnOnce(&Self) -> Option<Vec<u8>>) -> Option<&[u8]> {
        if let Some(i) = self.window_index.borrow().get(&key) {
            return i.and_then(|i| self.windows.get(i));
        }
        let i = make(self).map(|b| self.windows.keep_indexed(b));
        self.window_index.borrow_mut().insert(key, i);
        i.and_then(|i| self.windows.get(i))
    }

    /// Bytes read from the file and kept so far: sections and windows (tests, measurements).
    pub fn bytes_held(&self) -> usize {
        let sections: usize = self
            .data
            .iter()
            .filter_map(|d| match d.get()?.as_ref()? {
                SectionBytes::Whole(b) => Some(b.len()),
                SectionBytes::Lazy(inf) => Some(inf.inflated()),
            })
            .sum();
        sections + self.windows.held()
    }

    /// ET_EXEC: loaded at its link address, bias 0.
    pub fn is_fixed_address(&self) -> bool {
        self.fixed
    }

    pub fn min_load_vaddr(&self) -> u64 {
        self.segments.iter().map(|s| s.vaddr).min().unwrap_or(0)
    }

    pub fn segment_for_offset(&self, off: u64) -> Option<Segment> {
        self.segments
            .iter()
            .copied()
            .find(|s| (s.offset & !0xfff) <= off && off < s.offset.saturating_add(s.filesz.max(1)))
    }

    pub fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }

    pub fn has_dwarf(&self) -> bool {
        self.has_dwarf
    }

    pub fn has_symtab(&self) -> bool {
        self.has_symtab
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// A section's bytes, decompressed if needed. None for absent or NOBITS sections.
    pub fn section_data(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        self.section_prefix(name, usize::MAX).map(Cow::Borrowed)
    }

    /// At least the first `len` bytes of a section (all of it when shorter). A plain section is
    /// read whole on first use; a zlib-compressed one is inflated only that far: a reader that
    /// needs one unit near the start of a large `.debug_info` does not pay for inflating the
    /// rest. Later calls extend the same buffer.
    pub fn section_prefix(&self, name: &str, len: usize) -> Option<&[u8]> {
        match self.loaded(name)? {
            SectionBytes::Whole(b) => Some(b),
            SectionBytes::Lazy(inf) => inf.prefix(&*self.src, len),
        }
    }

    /// A section's bytes as loaded (read whole, or ready to inflate), loaded on first use. None
    /// for an absent, empty or NOBITS section, or one that cannot be read.
    fn loaded(&self, name: &str) -> Option<&SectionBytes> {
        let idx = self.sections.iter().position(|x| x.name == name)?;
        let s = &self.sections[idx];
        if s.file_size == 0 {
            return None;
        }
        self.data[idx].get_or_init(|| self.load_section(s)).as_ref()
    }

    fn load_section(&self, s: &Section) -> Option<SectionBytes> {
        if !s.compressed {
            return self.src.read(s.file_offset, s.file_size).map(|b| SectionBytes::Whole(b.into_boxed_slice()));
        }
        if s.name.starts_with(".zdebug") {
            // "ZLIB", 8-byte big-endian size, then the zlib stream.
            let head = self.src.read(s.file_offset, 12)?;
            if &head[..4] != b"ZLIB" {
                return None;
            }
            let size = u64::from_be_bytes(head[4..12].try_into().ok()?);
            let input = (s.file_offset.checked_add(12)?, s.file_size.checked_sub(12)?);
            return whole(&self.src, object::CompressionFormat::Zlib, input, size);
        }
        let chdr = self.src.read(s.file_offset, CHDR_SIZE)?;
        let kind = u32::from_le_bytes(chdr[..4].try_into().ok()?);
        let size = super::headers::u64_at(&chdr, 8);
        let input = (s.file_offset.checked_add(CHDR_SIZE)?, s.file_size.checked_sub(CHDR_SIZE)?);
        match kind {
            ELFCOMPRESS_ZLIB => {
                let input = (usize::try_from(input.0).ok()?, usize::try_from(input.1).ok()?);
                Inflater::new(input, size).map(SectionBytes::Lazy)
            }
            ELFCOMPRESS_ZSTD => whole(&self.src, object::CompressionFormat::Zstandard, input, size),
            _ => None,
        }
    }

    /// Whether any DWARF section is compressed (SHF_COMPRESSED): what read-ahead is for.
    pub fn has_compressed_dwarf(&self) -> bool {
        self.sections.iter().any(|s| s.compressed && s.name.starts_with(".debug_"))
    }

    /// The compressed DWARF sections a line look-up reads, as read-ahead jobs, the one read last
    /// (`.debug_info`, unit by unit) first: see readahead.rs. Empty when none is compressed.
    /// `info_end`, when known, is how much of `.debug_info` the report's addresses need: that
    /// section is read ahead only so far, and `.debug_line` and `.debug_abbrev` (whose units
    /// come in the same order) to the same fraction of theirs, with a margin.
    pub fn read_ahead_jobs(&self, info_end: Option<usize>) -> Vec<readahead::Job> {
        const ORDER: [&str; 10] = [
            ".debug_info",
            ".debug_rnglists",
            ".debug_ranges",
            ".debug_line",
            ".debug_abbrev",
            ".debug_aranges",
            ".debug_addr",
            ".debug_str_offsets",
            ".debug_str",
            ".debug_line_str",
        ];
        let info_size = self.section_size(".debug_info");
        let mut jobs = Vec::new();
        // Only compressed sections: loading a plain one would read it whole.
        for name in ORDER.into_iter().filter(|n| self.section(n).is_some_and(|s| s.compressed)) {
            if let Some(SectionBytes::Lazy(inf)) = self.loaded(name) {
                let limit = readahead::limit(name, inf.size(), info_end, info_size);
                jobs.push(readahead::Job { inflater: inf.clone(), file: self.src.clone(), limit });
            }
        }
        jobs
    }

    /// The (uncompressed) size of a section's contents; None when absent or NOBITS.
    pub fn section_size(&self, name: &str) -> Option<usize> {
        let s = self.section(name)?;
        if s.file_size == 0 {
            return None;
        }
        if !s.compressed {
            return usize::try_from(s.file_size).ok();
        }
        match self.loaded(name)? {
            SectionBytes::Whole(b) => Some(b.len()),
            SectionBytes::Lazy(inf) => Some(inf.size()),
        }
    }

    /// `len` bytes at `offset` in a section's (uncompressed) contents, kept for the life of this
    /// file: a window read from the file for a plain section not read whole, a part of the
    /// inflated prefix for a compressed one.
    pub fn section_slice(&self, name: &str, offset: usize, len: usize) -> Option<&[u8]> {
        let idx = self.sections.iter().position(|x| x.name == name)?;
        let s = &self.sections[idx];
        let end = offset.checked_add(len)?;
        if s.compressed {
            return self.section_prefix(name, end)?.get(offset..end);
        }
        if let Some(Some(SectionBytes::Whole(b))) = self.data[idx].get() {
            return b.get(offset..end);
        }
        if end as u64 > s.file_size {
            return None;
        }
        if len > WHOLE_SECTION_AFTER {
            return self.section_prefix(name, end)?.get(offset..end);
        }
        self.window((idx as u32, offset as u64, len as u64), |e| e.read_at(s.file_offset + offset as u64, len as u64))
    }

    /// Like `section_slice`, but not kept: a peek at a few bytes (a header).
    pub fn section_peek(&self, name: &str, offset: usize, len: usize) -> Option<Cow<'_, [u8]>> {
        let idx = self.sections.iter().position(|x| x.name == name)?;
        let s = &self.sections[idx];
        let end = offset.checked_add(len)?;
        if s.compressed {
            return self.section_prefix(name, end)?.get(offset..end).map(Cow::Borrowed);
        }
        if let Some(Some(SectionBytes::Whole(b))) = self.data[idx].get() {
            return b.get(offset..end).map(Cow::Borrowed);
        }
        if end as u64 > s.file_size {
            return None;
        }
        if len > WHOLE_SECTION_AFTER {
            return self.section_prefix(name, end)?.get(offset..end).map(Cow::Borrowed);
        }
        self.read_at(s.file_offset + offset as u64, len as u64).map(Cow::Owned)
    }

    /// The symbol tables searched: this file's `.symtab` and `.dynsym`, and its debug file's
    /// when it has no `.symtab` of its own. A `.symtab` is read first and the rest only for
    /// addresses it leaves without a covering symbol (see [`symbols::Tables`]).
    fn symbol_tables(&self) -> symbols::Tables<'_> {
        let mut all = self.own_tables();
        let mut primary: Vec<usize> = all.iter().position(|(kind, _)| *kind == SHT_SYMTAB).into_iter().collect();
        if !self.has_symtab {
            if let Some(d) = self.debug_file() {
                let first = all.len();
                let theirs = d.own_tables();
                primary.extend(theirs.iter().position(|(kind, _)| *kind == SHT_SYMTAB).map(|i| first + i));
                all.extend(theirs);
            }
        }
        let all: Vec<Table<'_>> = all.into_iter().map(|(_, t)| t).collect();
        if primary.is_empty() {
            return symbols::Tables::flat(all);
        }
        symbols::Tables { all, primary }
    }

    fn own_tables(&self) -> Vec<(u32, Table<'_>)> {
        let mut tables = Vec::new();
        for kind in [SHT_SYMTAB, SHT_DYNSYM] {
            let Some(s) = self.sections.iter().find(|s| s.kind == kind) else { continue };
            let Some(strtab) = self.sections.get(s.link as usize) else { continue };
            tables.push((
                kind,
                Table {
                    src: &self.src,
                    offset: s.file_offset,
                    count: s.file_size / 24,
                    strtab: (strtab.file_offset, strtab.file_size),
                },
            ));
        }
        tables
    }

    /// Looks up the symbols of all `svmas` at once (one pass over the tables), for `symbol_for`.
    pub fn prefetch_symbols(&self, svmas: &[u64]) {
        let missing: Vec<u64> = {
            let cache = self.by_addr.borrow();
            svmas.iter().copied().filter(|a| !cache.contains_key(a)).collect()
        };
        if missing.is_empty() {
            return;
        }
        let hits = symbols::lookup(&self.symbol_tables(), &missing);
        let mut cache = self.by_addr.borrow_mut();
        for (a, h) in missing.into_iter().zip(hits) {
            cache.insert(a, h);
        }
    }

    /// The address (SVMA) of a named symbol.
    pub fn symbol_address(&self, name: &str) -> Option<u64> {
        if let Some(a) = self.by_name.borrow().get(name) {
            return *a;
        }
        // The same file in an earlier report of this run (or a warm-up before the process was
        // stopped: capture/warm.rs) already looked the name up.
        let key = self.src.identity().map(|(dev, ino)| (dev, ino, self.src.len(), name.to_string()));
        let a = match key.as_ref().and_then(symbols::remembered) {
            Some(a) => a,
            None => {
                let a = symbols::address_of(&self.symbol_tables().all, name);
                if let Some(k) = key {
                    symbols::remember(k, a);
                }
                a
            }
        };
        self.by_name.borrow_mut().insert(name.to_string(), a);
        a
    }

    /// The symbol covering `svma`. A symbol with a size covers only its size; a sizeless symbol
    /// covers up to the next symbol. Nothing is guessed past a sized symbol's end.
    pub fn symbol_for(&self, svma: u64) -> Option<SymbolHit> {
        self.prefetch_symbols(&[svma]);
        self.by_addr.borrow().get(&svma).cloned().flatten()
    }

    /// The separate debug file: by build-id under /usr/lib/debug/.build-id, then by
    /// .gnu_debuglink next to the file, in its .debug/ folder, and under /usr/lib/debug.
    /// A debug file fetched from elsewhere is used when none was found here.
    pub fn debug_file(&self) -> Option<&ElfInfo> {
        self.local_debug_file().or_else(|| self.fetched_debug_file.get().map(|d| &**d))
    }

    /// The separate debug file found on this machine (build-id, `.gnu_debuglink`, debug dirs).
    pub fn local_debug_file(&self) -> Option<&ElfInfo> {
        self.debug_file
            .get_or_init(|| {
                if self.has_dwarf {
                    return None;
                }
                let usable = |d: ElfInfo| (d.has_dwarf || d.has_symtab).then_some(d);
                let host = self.debug_file_candidates().into_iter().filter(|p| p.is_file());
                let from_host = host.filter_map(|p| ElfInfo::open(&p).ok().and_then(usable));
                let from_target = self
                    .target_debug_candidates()
                    .into_iter()
                    .filter_map(|(files, p)| ElfInfo::open_as(&files, &p, Path::new(&p)).ok().and_then(usable));
                from_host.chain(from_target).next().map(Box::new)
            })
            .as_deref()
    }

    /// The separate debug file, only if something already loaded it (reports list it without
    /// paying for opening the debug files of modules no frame touched).
    pub fn loaded_debug_file(&self) -> Option<&ElfInfo> {
        self.debug_file.get().and_then(|d| d.as_deref()).or_else(|| self.fetched_debug_file.get().map(|d| &**d))
    }

    /// Extra folders to search for the debug file (`--debug-dir`), before /usr/lib/debug.
    pub fn set_debug_dirs(&mut self, dirs: std::rc::Rc<[PathBuf]>) {
        self.debug_dirs = dirs;
    }

    /// Gives this file a debug file found elsewhere (its build-id already checked by the
    /// caller). Only the first one is kept; false when one was already set.
    pub fn set_fetched_debug_file(&self, debug: ElfInfo) -> bool {
        self.fetched_debug_file.set(Box::new(debug)).is_ok()
    }

    pub fn debug_file_candidates(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        let roots: Vec<PathBuf> =
            self.debug_dirs.iter().cloned().chain(std::iter::once(PathBuf::from("/usr/lib/debug"))).collect();
        if let Some(id) = &self.build_id {
            if id.len() > 1 {
                let h = super::hex(id);
                for r in &roots {
                    v.push(r.join(".build-id").join(&h[..2]).join(format!("{}.debug", &h[2..])));
                }
            }
        }
        let Some(link) = self.safe_debuglink() else { return v };
        if let Some((_, path)) = &self.origin {
            // The file's folder as its process names it: the debug dirs are this machine's.
            if let Some(dir) = Path::new(path).parent() {
                let rel = dir.strip_prefix("/").unwrap_or(dir);
                v.extend(roots.iter().map(|r| r.join(rel).join(link)));
            }
        } else if let Some(dir) = self.path.as_deref().and_then(Path::parent) {
            v.push(dir.join(link));
            v.push(dir.join(".debug").join(link));
            if let Ok(canon) = dir.canonicalize() {
                let rel = canon.strip_prefix("/").unwrap_or(&canon).to_path_buf();
                for r in &roots {
                    v.push(r.join(&rel).join(link));
                }
            }
        }
        v
    }

    /// The debug files next to a process's file (its folder and its `.debug/`), to be opened as
    /// that process would: the file names them, so they are the process's to read, not ours.
    pub fn target_debug_candidates(&self) -> Vec<(TargetFiles, String)> {
        let (Some(link), Some((files, path))) = (self.safe_debuglink(), &self.origin) else { return Vec::new() };
        let Some(dir) = path.rsplit_once('/').map(|(d, _)| d) else { return Vec::new() };
        [format!("{dir}/{link}"), format!("{dir}/.debug/{link}")].into_iter().map(|p| (files.clone(), p)).collect()
    }

    /// The `.gnu_debuglink` name if it is a plain file name: one naming a path (`../../x`,
    /// `/etc/x`) is the file's author reaching elsewhere, and is ignored.
    fn safe_debuglink(&self) -> Option<&str> {
        let link = self.debuglink.as_deref()?;
        (!link.contains('/') && link != "." && link != "..").then_some(link)
    }
}

/// A whole compressed stream decompressed (zstd sections, and `.zdebug` ones of old
/// toolchains): both sizes capped.
fn whole(src: &Source, format: object::CompressionFormat, input: (u64, u64), size: u64) -> Option<SectionBytes> {
    if size > MAX_READ {
        return None;
    }
    let data = src.read(input.0, input.1)?;
    let c = object::read::CompressedData { format, data: &data, uncompressed_size: size };
    let out = c.decompress().ok()?;
    (out.len() as u64 == size).then(|| SectionBytes::Whole(out.into_owned().into_boxed_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_windows_of_one_section_share_one_copy_of_it() {
        // This test binary's own .debug_info (tens of MB, not compressed).
        let elf = ElfInfo::open(&std::env::current_exe().unwrap()).unwrap();
        let Some(size) = elf.section_size(".debug_info").filter(|&s| s > 4 << 20) else { return };
        let file_offset = elf.section(".debug_info").unwrap().file_offset;
        let before = elf.bytes_held();
        for off in 0..8 {
            // The bytes of the file at that place, whichever way they are served.
            let want = elf.read_at(file_offset + off as u64, 64).unwrap();
            let w = elf.section_slice(".debug_info", off, size - off).unwrap();
            assert_eq!((w.len(), &w[..64]), (size - off, &want[..]));
            let p = elf.section_peek(".debug_info", off, size - off).unwrap();
            assert_eq!((p.len(), &p[..64]), (size - off, &want[..]));
        }
        // One copy of the section, not eight.
        assert!(elf.bytes_held() - before < 2 * size, "{} bytes held for a {size}-byte section", elf.bytes_held());
        // Small windows still read only what they ask for.
        let line = elf.section_size(".debug_line").unwrap();
        let before = elf.bytes_held();
        assert_eq!(elf.section_slice(".debug_line", line / 2, 4096).unwrap().len(), 4096);
        assert!(elf.bytes_held() - before <= 4096);
    }
}
