//! Python strings and bytes objects in another process.

use super::error::StringError;
use super::layout::StringLayout;
use crate::process::{Memory, MemoryExt, ReadError};

/// Longest string or line table this reader copies; longer objects are truncated (strings) or
/// refused (line tables).
pub(crate) const MAX_STR_CHARS: usize = 4096;
pub(crate) const MAX_BYTES: usize = 1 << 20;

/// Decodes a `str` (3.x `PyUnicodeObject`, 2.7 `PyStringObject`) at `addr`, keeping at most
/// `max_chars` characters.
pub(crate) fn read_str(
    mem: &dyn Memory,
    layout: &StringLayout,
    addr: u64,
    max_chars: usize,
) -> Result<String, StringError> {
    if addr == 0 {
        return Err(StringError::NullString);
    }
    match *layout {
        StringLayout::Bytes { size, data } => {
            let len = mem.read_i64(addr.wrapping_add(size)).map_err(read("string"))?;
            if !(0..=(1 << 30)).contains(&len) {
                return Err(StringError::StringSize { addr, len });
            }
            let n = (len as usize).min(max_chars);
            readable_end(mem, addr.wrapping_add(data), n)?;
            let b = mem.read_bytes(addr.wrapping_add(data), n).map_err(read("string"))?;
            Ok(String::from_utf8_lossy(&b).into_owned())
        }
        StringLayout::Unicode { length, state, ascii_data, compact_data, kind_bit } => {
            let len = mem.read_i64(addr.wrapping_add(length)).map_err(read("string"))?;
            if !(0..=(1 << 30)).contains(&len) {
                return Err(StringError::StringLength { addr, len });
            }
            let st = mem.read_u32(addr.wrapping_add(state)).map_err(read("string"))?;
            let kind = ((st >> kind_bit) & 7) as usize;
            let compact = st & (1 << (kind_bit + 3)) != 0;
            let ascii = st & (1 << (kind_bit + 4)) != 0;
            if !matches!(kind, 1 | 2 | 4) {
                return Err(StringError::UnknownKind { addr, kind, state: st });
            }
            if ascii && kind != 1 {
                return Err(StringError::AsciiWide { addr, kind });
            }
            let data = if compact {
                addr.wrapping_add(if ascii { ascii_data } else { compact_data })
            } else {
                let p = mem.read_u64(addr.wrapping_add(compact_data)).map_err(read("string data pointer"))?;
                if p == 0 {
                    return Err(StringError::NoData { addr });
                }
                p
            };
            let n = (len as usize).min(max_chars);
            readable_end(mem, data, n * kind)?;
            let raw = mem.read_bytes(data, n * kind).map_err(read("string data"))?;
            Ok(decode(&raw, kind))
        }
    }
}

/// PEP 393 data of `kind` bytes per character: Latin-1, UCS-2 or UCS-4, little-endian.
/// Lone surrogates and out-of-range values become U+FFFD.
pub(crate) fn decode(raw: &[u8], kind: usize) -> String {
    match kind {
        1 => raw.iter().map(|&b| char::from(b)).collect(),
        2 => raw
            .chunks_exact(2)
            .map(|c| char::from_u32(u32::from(u16::from_le_bytes([c[0], c[1]]))).unwrap_or('\u{fffd}'))
            .collect(),
        _ => raw
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])).unwrap_or('\u{fffd}'))
            .collect(),
    }
}

/// The contents of a bytes object (3.x `PyBytesObject`, 2.7 `PyStringObject`); `layout` is
/// (`ob_size` offset, data offset). Objects longer than `max` are refused.
pub(crate) fn read_bytes_object(
    mem: &dyn Memory,
    layout: (u64, u64),
    addr: u64,
    max: usize,
) -> Result<Vec<u8>, StringError> {
    if addr == 0 {
        return Err(StringError::NullBytes);
    }
    let len = mem.read_i64(addr.wrapping_add(layout.0)).map_err(read("bytes"))?;
    if len < 0 || len as u64 > max as u64 {
        return Err(StringError::BytesSize { addr, len });
    }
    readable_end(mem, addr.wrapping_add(layout.1), len as usize)?;
    mem.read_bytes(addr.wrapping_add(layout.1), len as usize).map_err(read("bytes"))
}

/// A read of `what` that failed, with where and how much was readable.
fn read(what: &'static str) -> impl FnOnce(ReadError) -> StringError {
    move |source| StringError::Read { what, source }
}

/// Fails fast, before allocating, when the last byte of a claimed range cannot be read.
fn readable_end(mem: &dyn Memory, addr: u64, len: usize) -> Result<(), StringError> {
    if len == 0 {
        return Ok(());
    }
    let last = addr.checked_add(len as u64 - 1).ok_or(StringError::PastAddressSpace { addr })?;
    mem.read_u8(last).map(|_| ()).map_err(read("object data"))
}

/// Builders for string objects in synthetic images (tests and fuzzing).
#[cfg(any(test, feature = "synthetic"))]
pub mod build {
    use super::super::layout::StringLayout;

    /// The bytes of a compact string object as CPython lays it out (header with refcount 1,
    /// `ob_type` = `ty`), choosing the narrowest kind like `PyUnicode_New` does.
    pub fn unicode(layout: &StringLayout, ty: u64, s: &str) -> Vec<u8> {
        let StringLayout::Unicode { length, state, ascii_data, compact_data, kind_bit } = *layout else {
            return py2_str(layout, ty, s);
        };
        let chars: Vec<u32> = s.chars().map(u32::from).collect();
        let max = chars.iter().copied().max().unwrap_or(0);
        let (kind, ascii) = match max {
            0..=0x7f => (1usize, true),
            0x80..=0xff => (1, false),
            0x100..=0xffff => (2, false),
            _ => (4, false),
        };
        let start = if ascii { ascii_data } else { compact_data } as usize;
        let mut out = vec![0u8; start + (chars.len() + 1) * kind];
        out[0..8].copy_from_slice(&1u64.to_le_bytes());
        out[8..16].copy_from_slice(&ty.to_le_bytes());
        let l = length as usize;
        out[l..l + 8].copy_from_slice(&(chars.len() as u64).to_le_bytes());
        let st: u32 = ((kind as u32) << kind_bit)
            | (1 << (kind_bit + 3))
            | (u32::from(ascii) << (kind_bit + 4))
            | (1 << (kind_bit + 5));
        let so = state as usize;
        out[so..so + 4].copy_from_slice(&st.to_le_bytes());
        for (i, c) in chars.iter().enumerate() {
            let at = start + i * kind;
            out[at..at + kind].copy_from_slice(&c.to_le_bytes()[..kind]);
        }
        out
    }

    /// A 2.7 `PyStringObject` (or, with a 3.x layout, nothing useful: use `unicode`).
    pub(crate) fn py2_str(layout: &StringLayout, ty: u64, s: &str) -> Vec<u8> {
        let StringLayout::Bytes { size, data } = *layout else { return unicode(layout, ty, s) };
        bytes_object((size, data), ty, s.as_bytes())
    }

    /// A bytes object with `ob_size` and data at `layout`.
    pub(crate) fn bytes_object(layout: (u64, u64), ty: u64, b: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; layout.1 as usize + b.len() + 1];
        out[0..8].copy_from_slice(&1u64.to_le_bytes());
        out[8..16].copy_from_slice(&ty.to_le_bytes());
        let s = layout.0 as usize;
        out[s..s + 8].copy_from_slice(&(b.len() as u64).to_le_bytes());
        out[layout.1 as usize..layout.1 as usize + b.len()].copy_from_slice(b);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ImageMemory;
    use crate::python::layout::Layout;

    fn roundtrip(layout: &StringLayout, s: &str) -> String {
        let mut m = ImageMemory::new();
        m.add(0x5000, build::unicode(layout, 0x77, s));
        read_str(&m, layout, 0x5000, MAX_STR_CHARS).unwrap()
    }

    #[test]
    fn every_kind_and_header_size() {
        for v in [(3, 6), (3, 11), (3, 12), (3, 13)] {
            let l = Layout::for_version(v.0, v.1, 0).unwrap().string;
            for s in ["main", "", "fünf", "日本語", "emoji 🐍 here", "ÿ"] {
                assert_eq!(roundtrip(&l, s), s, "{v:?}");
            }
        }
        let l27 = Layout::for_version(2, 7, 18).unwrap().string;
        assert_eq!(roundtrip(&l27, "module.py"), "module.py");
    }

    #[test]
    fn header_sizes_really_differ() {
        // A 3.11 object read with the 3.12 layout must not decode to the same text.
        let l11 = Layout::for_version(3, 11, 0).unwrap().string;
        let l12 = Layout::for_version(3, 12, 0).unwrap().string;
        let mut m = ImageMemory::new();
        m.add(0x5000, build::unicode(&l11, 0x77, "fünf"));
        assert_ne!(read_str(&m, &l12, 0x5000, 100).unwrap(), "fünf");
    }

    #[test]
    fn non_compact_strings_follow_the_data_pointer() {
        let l = Layout::for_version(3, 10, 0).unwrap().string;
        let StringLayout::Unicode { length, state, compact_data, .. } = l else { unreachable!() };
        let mut obj = vec![0u8; 80];
        obj[length as usize..length as usize + 8].copy_from_slice(&3u64.to_le_bytes());
        let st: u32 = (2 << 2) | (1 << 7); // kind 2, not compact, ready
        obj[state as usize..state as usize + 4].copy_from_slice(&st.to_le_bytes());
        obj[compact_data as usize..compact_data as usize + 8].copy_from_slice(&0x9000u64.to_le_bytes());
        let mut m = ImageMemory::new();
        m.add(0x5000, obj);
        m.add(0x9000, vec![0xe5, 0x65, 0x2c, 0x67, 0x9e, 0x8a]); // 日本語 in UTF-16LE
        assert_eq!(read_str(&m, &l, 0x5000, 100).unwrap(), "日本語");
    }

    #[test]
    fn bad_strings_are_errors() {
        let l = Layout::for_version(3, 12, 0).unwrap().string;
        let mut m = ImageMemory::new();
        let mut obj = build::unicode(&l, 1, "abc");
        obj[32] = 0; // kind 0
        m.add(0x5000, obj);
        assert!(read_str(&m, &l, 0x5000, 10).is_err());
        let mut obj = build::unicode(&l, 1, "abc");
        obj[16..24].copy_from_slice(&(-1i64).to_le_bytes());
        m.add(0x5000, obj);
        assert!(read_str(&m, &l, 0x5000, 10).is_err());
        assert!(read_str(&m, &l, 0, 10).is_err());
        assert!(read_str(&m, &l, 0x7000, 10).is_err());
        // Truncation to max_chars.
        m.add(0x5000, build::unicode(&l, 1, "abcdef"));
        assert_eq!(read_str(&m, &l, 0x5000, 2).unwrap(), "ab");
        assert_eq!(decode(&[0x00, 0xd8], 2), "\u{fffd}");
    }
}
