//! The ELF structure of a core: header, program headers (PT_LOAD, PT_NOTE), checked against
//! the file's length and capped in count, as untrusted input.

use super::error::CoreError;
use super::file::CoreFile;

pub(crate) const PT_LOAD: u32 = 1;
pub(crate) const PT_NOTE: u32 = 4;
pub(crate) const ET_CORE: u16 = 4;
pub(crate) const EM_X86_64: u16 = 62;
pub(crate) const PF_X: u32 = 1;
pub(crate) const PF_W: u32 = 2;
pub(crate) const PF_R: u32 = 4;
/// e_phnum's escape: the real count is in section header 0's sh_info.
const PN_XNUM: u16 = 0xffff;
/// At most this many program headers (a process has at most vm.max_map_count mappings, 65530
/// by default; a million is far beyond any real core).
pub(crate) const MAX_SEGMENTS: u64 = 1 << 20;

/// One program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProgramHeader {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

impl ProgramHeader {
    pub fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }
}

/// Reads and checks the header and every program header.
pub(crate) fn segments(core: &CoreFile, path: &std::path::Path) -> Result<Vec<ProgramHeader>, CoreError> {
    let corrupt = |why: String| CoreError::Corrupt { path: path.into(), why };
    let mut eh = [0u8; 64];
    if core.read_at(0, &mut eh) < 64 {
        return Err(corrupt(format!("it is {} bytes long, shorter than an ELF header", core.len)));
    }
    if &eh[..4] != b"\x7fELF" {
        return Err(CoreError::NotElf { path: path.into(), magic: "no ELF magic after decompression".into() });
    }
    if eh[4] != 2 || eh[5] != 1 {
        let what = format!("class {}, data encoding {}", eh[4], eh[5]);
        return Err(CoreError::Unsupported { path: path.into(), what });
    }
    let u16_at = |o: usize| u16::from_le_bytes([eh[o], eh[o + 1]]);
    let u64_at = |o: usize| u64::from_le_bytes(eh[o..o + 8].try_into().unwrap_or([0; 8]));
    let e_type = u16_at(16);
    if e_type != ET_CORE {
        return Err(CoreError::NotCore { path: path.into(), e_type });
    }
    if u16_at(18) != EM_X86_64 {
        return Err(CoreError::Unsupported { path: path.into(), what: format!("e_machine {}", u16_at(18)) });
    }
    let phoff = u64_at(32);
    let phentsize = u16_at(54) as u64;
    let mut phnum = u16_at(56) as u64;
    if phentsize < 56 {
        return Err(corrupt(format!("program header size {phentsize} is too small")));
    }
    if phnum == PN_XNUM as u64 {
        // The real count is section header 0's sh_info (at +44 in a 64-byte section header).
        let shoff = u64_at(40);
        let mut info = [0u8; 4];
        if core.read_at(shoff.saturating_add(44), &mut info) < 4 {
            return Err(corrupt("e_phnum is PN_XNUM but section header 0 is missing".into()));
        }
        phnum = u32::from_le_bytes(info) as u64;
    }
    if phnum == 0 {
        return Err(corrupt("it has no program headers".into()));
    }
    if phnum > MAX_SEGMENTS {
        return Err(corrupt(format!("{phnum} program headers (at most {MAX_SEGMENTS} are read)")));
    }
    let table = phnum * phentsize;
    if phoff.checked_add(table).map_or(true, |end| end > core.len) {
        return Err(corrupt(format!(
            "its {phnum} program headers at offset {phoff:#x} run past its end ({} bytes): truncated?",
            core.len
        )));
    }
    let mut raw = vec![0u8; table as usize];
    if core.read_at(phoff, &mut raw) < raw.len() {
        return Err(corrupt("its program headers could not be read".into()));
    }
    let segs = raw
        .chunks_exact(phentsize as usize)
        .map(|p| {
            let w32 = |o: usize| u32::from_le_bytes(p[o..o + 4].try_into().unwrap_or([0; 4]));
            let w64 = |o: usize| u64::from_le_bytes(p[o..o + 8].try_into().unwrap_or([0; 8]));
            ProgramHeader {
                kind: w32(0),
                flags: w32(4),
                offset: w64(8),
                vaddr: w64(16),
                filesz: w64(32),
                memsz: w64(40),
            }
        })
        .collect();
    Ok(segs)
}
