//! The headers of a 64-bit little-endian ELF file (x86_64, the only target), read from a
//! `ElfBytes` with bounded reads: file header, PT_LOAD segments, section headers and names,
//! build-id note. Every count and size is capped and checked against the file's length.

use super::bytes::ElfBytes;
use super::error::{ElfError, HeaderProblem};

const EHDR_SIZE: u64 = 64;
const PHDR_SIZE: u64 = 56;
const SHDR_SIZE: u64 = 64;
const MAX_PHDRS: u64 = 4096;
const MAX_SHDRS: u64 = 65536;
const MAX_SHSTRTAB: u64 = 16 << 20;
const MAX_NOTES: u64 = 1 << 16;

pub(crate) const ET_EXEC: u16 = 2;
pub(crate) const SHT_SYMTAB: u32 = 2;
pub(crate) const SHT_NOTE: u32 = 7;
pub(crate) const SHT_NOBITS: u32 = 8;
pub(crate) const SHT_DYNSYM: u32 = 11;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const SHF_COMPRESSED: u64 = 0x800;
const NT_GNU_BUILD_ID: u32 = 3;

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
    pub kind: u32,
    pub addr: u64,
    /// File range of the (possibly compressed) bytes; 0, 0 for NOBITS.
    pub file_offset: u64,
    pub file_size: u64,
    pub size: u64,
    pub link: u32,
    pub entsize: u64,
    pub align: u64,
    pub compressed: bool,
}

pub(crate) struct Headers {
    pub e_type: u16,
    pub segments: Vec<Segment>,
    notes: Vec<(u64, u64, u64)>,
    pub sections: Vec<Section>,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    b.get(o..o + 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4).map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4])))
}
pub(crate) fn u64_at(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 8).map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
}

impl Headers {
    pub fn read(src: &ElfBytes, what: &str) -> Result<Headers, ElfError> {
        let bad = |problem| ElfError::Headers { what: what.to_string(), problem };
        let eh = src.read(0, EHDR_SIZE).ok_or_else(|| bad(HeaderProblem::TooShort))?;
        if eh[..4] != *b"\x7fELF" {
            return Err(ElfError::NotElf { what: what.to_string() });
        }
        if eh[4] != 2 || eh[5] != 1 {
            return Err(bad(HeaderProblem::Not64BitLittleEndian));
        }
        let e_type = u16_at(&eh, 16);
        let (phoff, shoff) = (u64_at(&eh, 32), u64_at(&eh, 40));
        let (phentsize, phnum) = (u64::from(u16_at(&eh, 54)), u64::from(u16_at(&eh, 56)));
        let (shentsize, mut shnum) = (u64::from(u16_at(&eh, 58)), u64::from(u16_at(&eh, 60)));
        let mut shstrndx = u64::from(u16_at(&eh, 62));

        let mut segments = Vec::new();
        let mut notes = Vec::new();
        if phnum > 0 && phentsize >= PHDR_SIZE && phnum <= MAX_PHDRS {
            if let Some(ph) = src.read(phoff, phnum * phentsize) {
                for i in 0..phnum as usize {
                    let p = &ph[i * phentsize as usize..];
                    let (off, filesz) = (u64_at(p, 8), u64_at(p, 32));
                    match u32_at(p, 0) {
                        PT_LOAD => {
                            segments.push(Segment { offset: off, vaddr: u64_at(p, 16), filesz, memsz: u64_at(p, 40) })
                        }
                        PT_NOTE => notes.push((off, filesz, u64_at(p, 48))),
                        _ => {}
                    }
                }
            }
        }

        let mut sections = Vec::new();
        if shoff != 0 && shentsize >= SHDR_SIZE {
            let first = src.read(shoff, SHDR_SIZE);
            if let Some(first) = &first {
                // More than 0xff00 sections: the count and the name section's index are in the
                // first section header.
                if shnum == 0 {
                    shnum = u64_at(first, 32);
                }
                if shstrndx == 0xffff {
                    shstrndx = u64::from(u32_at(first, 40));
                }
            }
            if shnum > MAX_SHDRS {
                return Err(bad(HeaderProblem::TooManySections));
            }
            if shnum > 0 {
                let sh = src.read(shoff, shnum * shentsize).ok_or_else(|| bad(HeaderProblem::SectionsOutOfFile))?;
                let hdr = |i: u64| &sh[(i * shentsize) as usize..];
                let names = (shstrndx < shnum)
                    .then(|| {
                        let h = hdr(shstrndx);
                        let size = u64_at(h, 32);
                        (size <= MAX_SHSTRTAB).then(|| src.read(u64_at(h, 24), size)).flatten()
                    })
                    .flatten()
                    .unwrap_or_default();
                for i in 0..shnum {
                    let h = hdr(i);
                    let name = cstr(&names, u32_at(h, 0) as usize);
                    let kind = u32_at(h, 4);
                    let flags = u64_at(h, 8);
                    let size = u64_at(h, 32);
                    let (mut file_offset, mut file_size) =
                        if kind == SHT_NOBITS { (0, 0) } else { (u64_at(h, 24), size) };
                    // Bytes that are not in the file cannot be read: such a section has none
                    // (and no reader adds to an offset past the file's end).
                    if file_offset.checked_add(file_size).map_or(true, |end| end > src.len()) {
                        (file_offset, file_size) = (0, 0);
                    }
                    let compressed = flags & SHF_COMPRESSED != 0 || name.starts_with(".zdebug");
                    sections.push(Section {
                        name,
                        kind,
                        addr: u64_at(h, 16),
                        file_offset,
                        file_size,
                        size,
                        link: u32_at(h, 40),
                        entsize: u64_at(h, 56),
                        align: u64_at(h, 48),
                        compressed,
                    });
                }
            }
        }
        Ok(Headers { e_type, segments, notes, sections })
    }

    /// The GNU build-id: from the SHT_NOTE sections when there are section headers, otherwise
    /// from the PT_NOTE segments (as `object` does).
    pub fn build_id(&self, src: &ElfBytes) -> Option<Vec<u8>> {
        let notes: Vec<(u64, u64, u64)> = if self.sections.is_empty() {
            self.notes.clone()
        } else {
            self.sections.iter().filter(|s| s.kind == SHT_NOTE).map(|s| (s.file_offset, s.file_size, s.align)).collect()
        };
        notes.into_iter().filter(|n| n.1 <= MAX_NOTES).find_map(|(off, size, align)| {
            let bytes = src.read(off, size)?;
            find_build_id(&bytes, if align == 8 { 8 } else { 4 })
        })
    }
}

/// The NUL-terminated string at `at` (empty when out of range or unterminated).
fn cstr(b: &[u8], at: usize) -> String {
    let Some(rest) = b.get(at..) else { return String::new() };
    match rest.iter().position(|&c| c == 0) {
        Some(n) => String::from_utf8_lossy(&rest[..n]).into_owned(),
        None => String::new(),
    }
}

/// NT_GNU_BUILD_ID's descriptor in a run of notes.
fn find_build_id(mut b: &[u8], align: usize) -> Option<Vec<u8>> {
    let up = |n: usize| n.checked_add(align - 1).map(|n| n & !(align - 1));
    while b.len() >= 12 {
        let (namesz, descsz, kind) = (u32_at(b, 0) as usize, u32_at(b, 4) as usize, u32_at(b, 8));
        let name_end = 12usize.checked_add(namesz)?;
        let desc_start = up(name_end)?;
        let desc_end = desc_start.checked_add(descsz)?;
        let name = b.get(12..name_end)?;
        let desc = b.get(desc_start..desc_end)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" {
            return Some(desc.to_vec());
        }
        b = b.get(up(desc_end)?..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary's own ELF file, with the file offset of its section `name` set to `off`.
    fn with_section_offset(name: &str, off: u64) -> Vec<u8> {
        let mut bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let intact = Headers::read(&ElfBytes::Owned(bytes.clone()), "self").unwrap();
        let i = intact.sections.iter().position(|s| s.name == name).unwrap() as u64;
        let shoff = u64_at(&bytes, 40);
        let shentsize = u64::from(u16_at(&bytes, 58));
        let at = (shoff + i * shentsize + 24) as usize;
        bytes[at..at + 8].copy_from_slice(&off.to_le_bytes());
        bytes
    }

    #[test]
    fn a_section_outside_the_file_has_no_bytes() {
        for off in [u64::MAX - 3, u64::MAX / 2, 1 << 40] {
            let bytes = with_section_offset(".text", off);
            let h = Headers::read(&ElfBytes::Owned(bytes), "self").unwrap();
            let text = h.sections.iter().find(|s| s.name == ".text").unwrap();
            assert_eq!((text.file_offset, text.file_size), (0, 0), "offset {off:#x}");
            // The other sections are untouched.
            assert!(h.sections.iter().any(|s| s.name == ".rodata" && s.file_size > 0));
        }
    }
}
