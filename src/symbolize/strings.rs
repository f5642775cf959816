//! DWARF strings read by offset: `.debug_str` and `.debug_line_str` a 4 KB block at a time
//! (kept for the report), and `.debug_str_offsets` entries one by one, never a whole section.
//! A library's string section grows with its size (12 MB for a million functions) while a
//! report needs a few dozen names and paths.

use gimli::{AttributeValue, EndianSlice, RunTimeEndian};

use crate::modules::ElfInfo;

pub(crate) type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

/// Bytes read around a string's offset first; most strings end inside it.
const BLOCK: usize = 4096;
/// Longest string read (C++ names run to kilobytes, not megabytes).
const MAX_STRING: usize = 1 << 20;

/// The string sections of one file.
pub(crate) struct Strings<'a> {
    elf: &'a ElfInfo,
}

impl<'a> Strings<'a> {
    pub fn new(elf: &'a ElfInfo) -> Self {
        Strings { elf }
    }

    /// What gimli's `Dwarf::attr_string` returns for this attribute value of `unit`.
    pub fn attr(&self, unit: &gimli::Unit<Reader<'a>>, value: AttributeValue<Reader<'a>>) -> gimli::Result<Reader<'a>> {
        let endian = RunTimeEndian::Little;
        let bytes = match value {
            AttributeValue::String(s) => return Ok(s),
            AttributeValue::DebugStrRef(o) => self.cstr(".debug_str", o.0),
            AttributeValue::DebugLineStrRef(o) => self.cstr(".debug_line_str", o.0),
            AttributeValue::DebugStrOffsetsIndex(i) => {
                let size = unit.header.format().word_size() as usize;
                let at = i.0.checked_mul(size).and_then(|o| o.checked_add(unit.str_offsets_base.0));
                let offset = at.and_then(|at| self.elf.section_peek(".debug_str_offsets", at, size)).map(|b| {
                    let mut v = [0u8; 8];
                    v[..size].copy_from_slice(&b[..size]);
                    u64::from_le_bytes(v)
                });
                offset.and_then(|o| usize::try_from(o).ok()).and_then(|o| self.cstr(".debug_str", o))
            }
            _ => return Err(gimli::Error::ExpectedStringAttributeValue),
        };
        bytes.map(|b| EndianSlice::new(b, endian)).ok_or(gimli::Error::UnexpectedEof(gimli::ReaderOffsetId(0)))
    }

    /// The NUL-terminated string at `offset` of section `name`, without its NUL.
    fn cstr(&self, name: &str, offset: usize) -> Option<&'a [u8]> {
        let size = self.elf.section_size(name)?;
        if offset >= size {
            return None;
        }
        // The aligned block holding the offset: neighbouring strings share it.
        let start = offset & !(BLOCK - 1);
        let block = self.elf.section_slice(name, start, BLOCK.min(size - start))?;
        let rest = &block[offset - start..];
        if let Some(n) = memchr::memchr(0, rest) {
            return Some(&rest[..n]);
        }
        // A string crossing the block's end: a window from its start, doubled until it ends.
        let mut want = 2 * BLOCK;
        loop {
            let len = want.min(size - offset);
            let w = self.elf.section_slice(name, offset, len)?;
            if let Some(n) = memchr::memchr(0, w) {
                return Some(&w[..n]);
            }
            if len == size - offset || want >= MAX_STRING {
                return None;
            }
            want *= 2;
        }
    }
}
