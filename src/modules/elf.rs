//! One ELF file, mapped and indexed: segments, sections, symbols, build-id, debug link, and the
//! separate debug file that goes with it.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use object::elf::SHF_COMPRESSED;
use object::CompressionFormat;

use super::inflate::Inflater;
use object::{Object, ObjectKind, ObjectSection, ObjectSegment, ObjectSymbol, SectionFlags, SymbolKind};

/// The bytes of an ELF file: mapped from disk, or owned (the vDSO, tests).
pub enum ElfBytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for ElfBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ElfBytes::Mapped(m) => m,
            ElfBytes::Owned(v) => v,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    pub addr: u64,
    /// File range of the (possibly compressed) bytes.
    pub file_offset: u64,
    pub file_size: u64,
    pub size: u64,
    pub compressed: bool,
}

#[derive(Debug, Clone)]
struct Sym {
    addr: u64,
    size: u64,
    name: Box<str>,
}

/// A symbol that covers an address.
#[derive(Debug, Clone)]
pub struct SymbolHit<'a> {
    pub name: &'a str,
    pub addr: u64,
    pub size: u64,
}

#[derive(Default)]
struct Symbols {
    sorted: Vec<Sym>,
    by_name: HashMap<Box<str>, u64>,
}

pub struct ElfInfo {
    pub path: Option<PathBuf>,
    bytes: ElfBytes,
    fixed: bool,
    segments: Vec<Segment>,
    sections: Vec<Section>,
    build_id: Option<Vec<u8>>,
    debuglink: Option<String>,
    has_symtab: bool,
    has_dwarf: bool,
    symbols: OnceCell<Symbols>,
    debug_file: OnceCell<Option<Box<ElfInfo>>>,
    /// A debug file found elsewhere (a debuginfod server, see [`super::debuginfod`]), used when
    /// the local search found none.
    fetched_debug_file: OnceCell<Box<ElfInfo>>,
    /// Decompressed bytes of compressed sections, parallel to `sections`, set up on first use.
    uncompressed: Vec<OnceCell<Option<Uncompressed>>>,
}

/// A compressed section's bytes: zlib ones inflated on demand (as far as asked), others (zstd,
/// `.zdebug`) whole.
enum Uncompressed {
    Lazy(Inflater),
    Whole(Vec<u8>),
}

impl ElfInfo {
    pub fn open(path: &Path) -> Result<ElfInfo, String> {
        let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Self::open_file(&file, path)
    }

    /// An ELF file already opened (by a caller that checked what it opened); `path` names it.
    pub fn open_file(file: &std::fs::File, path: &Path) -> Result<ElfInfo, String> {
        // SAFETY: the file is mapped read-only; a library being rewritten under a running process
        // is already undefined for that process, and we only read it.
        let map = unsafe { memmap2::Mmap::map(file) }.map_err(|e| format!("cannot map {}: {e}", path.display()))?;
        Self::parse(ElfBytes::Mapped(map), Some(path.to_path_buf()))
    }

    pub fn from_bytes(bytes: Vec<u8>, path: Option<PathBuf>) -> Result<ElfInfo, String> {
        Self::parse(ElfBytes::Owned(bytes), path)
    }

    fn parse(bytes: ElfBytes, path: Option<PathBuf>) -> Result<ElfInfo, String> {
        let what = path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "in-memory image".into());
        let file = object::File::parse(&*bytes).map_err(|e| format!("{what} is not a readable ELF file: {e}"))?;
        if file.format() != object::BinaryFormat::Elf {
            return Err(format!("{what} is not an ELF file"));
        }
        let fixed = file.kind() == ObjectKind::Executable;
        // For ELF, `segments()` yields the PT_LOAD program headers.
        let segments = file
            .segments()
            .map(|s| {
                let (o, l) = s.file_range();
                Segment { offset: o, vaddr: s.address(), filesz: l, memsz: s.size() }
            })
            .collect();
        let sections: Vec<Section> = file
            .sections()
            .filter_map(|s| {
                let name = s.name().ok()?.to_string();
                let (file_offset, file_size) = s.file_range().unwrap_or((0, 0));
                let compressed = matches!(s.flags(), SectionFlags::Elf { sh_flags, .. } if sh_flags.contains(SHF_COMPRESSED))
                    || name.starts_with(".zdebug");
                Some(Section { name, addr: s.address(), file_offset, file_size, size: s.size(), compressed })
            })
            .collect();
        let build_id = file.build_id().ok().flatten().map(|b| b.to_vec());
        let debuglink = file.gnu_debuglink().ok().flatten().map(|(n, _)| String::from_utf8_lossy(n).into_owned());
        let has_symtab = sections.iter().any(|s| s.name == ".symtab");
        let has_dwarf = sections.iter().any(|s| s.name == ".debug_info" || s.name == ".zdebug_info");
        drop(file);
        let section_count = sections.len();
        Ok(ElfInfo {
            path,
            bytes,
            fixed,
            segments,
            sections,
            build_id,
            debuglink,
            has_symtab,
            has_dwarf,
            symbols: OnceCell::new(),
            debug_file: OnceCell::new(),
            fetched_debug_file: OnceCell::new(),
            uncompressed: (0..section_count).map(|_| OnceCell::new()).collect(),
        })
    }

    /// ET_EXEC: loaded at its link address, bias 0.
    pub fn is_fixed_address(&self) -> bool {
        self.fixed
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
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

    /// At least the first `len` bytes of a section (all of it when shorter), decompressing a
    /// zlib-compressed one only that far: a reader that needs one unit near the start of a large
    /// `.debug_info` does not pay for inflating the rest. Later calls extend the same buffer.
    pub fn section_prefix(&self, name: &str, len: usize) -> Option<&[u8]> {
        let idx = self.sections.iter().position(|x| x.name == name)?;
        let s = &self.sections[idx];
        if s.file_size == 0 {
            return None;
        }
        if !s.compressed {
            let start = s.file_offset as usize;
            let end = start.checked_add(s.file_size as usize)?;
            return self.bytes.get(start..end);
        }
        let data = self.uncompressed[idx].get_or_init(|| {
            let f = object::File::parse(&*self.bytes).ok()?;
            let sec = f.section_by_name(name)?;
            let range = sec.compressed_file_range().ok()?;
            if range.format == CompressionFormat::Zlib && !name.starts_with(".zdebug") {
                let input = (usize::try_from(range.offset).ok()?, usize::try_from(range.compressed_size).ok()?);
                // The stream must lie inside the file: its size bounds the buffer reserved.
                self.bytes.get(input.0..input.0.checked_add(input.1)?)?;
                return Inflater::new(input, range.uncompressed_size).map(Uncompressed::Lazy);
            }
            sec.uncompressed_data().ok().map(|d| Uncompressed::Whole(d.into_owned()))
        });
        match data.as_ref()? {
            Uncompressed::Lazy(inf) => inf.prefix(&self.bytes, len),
            Uncompressed::Whole(v) => Some(v),
        }
    }

    /// How many bytes of each compressed section were decompressed so far (for tests and
    /// measurements): (name, decompressed, size).
    pub fn decompressed_sections(&self) -> Vec<(String, usize, usize)> {
        self.sections
            .iter()
            .zip(&self.uncompressed)
            .filter_map(|(s, u)| match u.get()?.as_ref()? {
                Uncompressed::Lazy(inf) => Some((s.name.clone(), inf.inflated(), inf.size())),
                Uncompressed::Whole(v) => Some((s.name.clone(), v.len(), v.len())),
            })
            .collect()
    }

    fn symbols(&self) -> &Symbols {
        self.symbols.get_or_init(|| {
            let mut syms: Vec<Sym> = Vec::new();
            collect_symbols(&self.bytes, &mut syms);
            if !self.has_symtab {
                if let Some(d) = self.debug_file() {
                    collect_symbols(&d.bytes, &mut syms);
                }
            }
            syms.sort_by(|a, b| a.addr.cmp(&b.addr).then(b.size.cmp(&a.size)));
            syms.dedup_by(|a, b| a.addr == b.addr && a.name == b.name);
            let mut by_name = HashMap::with_capacity(syms.len());
            for s in &syms {
                by_name.entry(s.name.clone()).or_insert(s.addr);
            }
            Symbols { sorted: syms, by_name }
        })
    }

    /// The address (SVMA) of a named symbol.
    pub fn symbol_address(&self, name: &str) -> Option<u64> {
        self.symbols().by_name.get(name).copied()
    }

    /// The symbol covering `svma`. A symbol with a size covers only its size; a sizeless symbol
    /// covers up to the next symbol. Nothing is guessed past a sized symbol's end.
    pub fn symbol_for(&self, svma: u64) -> Option<SymbolHit<'_>> {
        let syms = &self.symbols().sorted;
        let i = syms.partition_point(|s| s.addr <= svma);
        // Look back over aliases and nested symbols at lower addresses.
        for s in syms[..i].iter().rev().take(16) {
            // `svma - s.addr`: s.addr <= svma here, and addr + size can overflow in a corrupt file.
            if s.size > 0 && svma - s.addr < s.size {
                return Some(SymbolHit { name: &s.name, addr: s.addr, size: s.size });
            }
        }
        let last = syms[..i].last()?;
        if last.size == 0 {
            let next = syms.get(i).map(|s| s.addr).unwrap_or(u64::MAX);
            if svma < next {
                return Some(SymbolHit { name: &last.name, addr: last.addr, size: 0 });
            }
        }
        None
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
                self.debug_file_candidates()
                    .into_iter()
                    .filter(|p| p.is_file())
                    .find_map(|p| ElfInfo::open(&p).ok().filter(|d| d.has_dwarf || d.has_symtab))
                    .map(Box::new)
            })
            .as_deref()
    }

    /// The separate debug file, only if something already loaded it (reports list it without
    /// paying for opening the debug files of modules no frame touched).
    pub fn loaded_debug_file(&self) -> Option<&ElfInfo> {
        self.debug_file.get().and_then(|d| d.as_deref()).or_else(|| self.fetched_debug_file.get().map(|d| &**d))
    }

    /// Gives this file a debug file found elsewhere (its build-id already checked by the
    /// caller). Only the first one is kept; false when one was already set.
    pub fn set_fetched_debug_file(&self, debug: ElfInfo) -> bool {
        self.fetched_debug_file.set(Box::new(debug)).is_ok()
    }

    pub fn debug_file_candidates(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        let roots = super::debug_dirs();
        if let Some(id) = &self.build_id {
            if id.len() > 1 {
                let h = super::hex(id);
                for r in &roots {
                    v.push(r.join(".build-id").join(&h[..2]).join(format!("{}.debug", &h[2..])));
                }
            }
        }
        if let (Some(link), Some(path)) = (&self.debuglink, &self.path) {
            if let Some(dir) = path.parent() {
                v.push(dir.join(link));
                v.push(dir.join(".debug").join(link));
                if let Ok(canon) = dir.canonicalize() {
                    let rel = canon.strip_prefix("/").unwrap_or(&canon).to_path_buf();
                    for r in &roots {
                        v.push(r.join(&rel).join(link));
                    }
                }
            }
        }
        v
    }
}

fn collect_symbols(bytes: &[u8], out: &mut Vec<Sym>) {
    let Ok(file) = object::File::parse(bytes) else { return };
    let mut add = |s: object::Symbol<'_, '_>| {
        if s.is_undefined() || s.address() == 0 {
            return;
        }
        if !matches!(s.kind(), SymbolKind::Text | SymbolKind::Data | SymbolKind::Unknown) {
            return;
        }
        if let Ok(name) = s.name() {
            if name.is_empty() {
                return;
            }
            // `memcpy@@GLIBC_2.14` → `memcpy`: the version is not part of the function's name.
            let name = name.split_once('@').map_or(name, |(n, _)| n);
            out.push(Sym { addr: s.address(), size: s.size(), name: name.into() });
        }
    };
    file.symbols().for_each(&mut add);
    file.dynamic_symbols().for_each(&mut add);
}
