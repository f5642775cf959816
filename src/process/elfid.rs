//! The GNU build-id of an ELF image, read through its first bytes only (header, program
//! headers, PT_NOTE): the same on a file on disk and in a process's memory, where the loader
//! mapped the file's first page (and a core keeps that page). Used to tell whether a file on
//! disk is the one a process had mapped.

/// Reads bytes at a file offset of the image; returns how many it could.
pub(crate) type ReadFn<'a> = &'a dyn Fn(u64, &mut [u8]) -> usize;

/// Program headers and notes are looked at only this far into the image.
const MAX_HEADER_BYTES: u64 = 64 * 1024;
/// At most this many program headers.
const MAX_PHDRS: u64 = 256;
const PT_NOTE: u32 = 4;
const NT_GNU_BUILD_ID: u32 = 3;

/// The build-id bytes, when the image is a 64-bit little-endian ELF with a GNU build-id note
/// in its first [`MAX_HEADER_BYTES`].
pub(crate) fn build_id(read: ReadFn<'_>) -> Option<Vec<u8>> {
    let mut eh = [0u8; 64];
    if read(0, &mut eh) < 64 || &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let phoff = u64::from_le_bytes(eh[32..40].try_into().ok()?);
    let phentsize = u16_at(&eh, 54);
    let phnum = u16_at(&eh, 56).min(MAX_PHDRS);
    if phentsize < 56 {
        return None;
    }
    for i in 0..phnum {
        let at = phoff.checked_add(i * phentsize)?;
        if at > MAX_HEADER_BYTES {
            break;
        }
        let mut ph = [0u8; 56];
        if read(at, &mut ph) < 56 {
            break;
        }
        if u32::from_le_bytes(ph[0..4].try_into().ok()?) != PT_NOTE {
            continue;
        }
        let off = u64::from_le_bytes(ph[8..16].try_into().ok()?);
        let size = u64::from_le_bytes(ph[32..40].try_into().ok()?).min(4096);
        if off > MAX_HEADER_BYTES {
            continue;
        }
        let mut notes = vec![0u8; size as usize];
        let got = read(off, &mut notes);
        notes.truncate(got);
        if let Some(id) = find_build_id(&notes) {
            return Some(id);
        }
    }
    None
}

/// The NT_GNU_BUILD_ID note's descriptor among 4-aligned ELF notes.
fn find_build_id(mut notes: &[u8]) -> Option<Vec<u8>> {
    let align4 = |n: usize| n.checked_add(3).map(|v| v & !3);
    while notes.len() >= 12 {
        let word = |o: usize| u32::from_le_bytes([notes[o], notes[o + 1], notes[o + 2], notes[o + 3]]) as usize;
        let (namesz, descsz, kind) = (word(0), word(4), word(8) as u32);
        let name_end = 12usize.checked_add(align4(namesz)?)?;
        let desc_end = name_end.checked_add(align4(descsz)?)?;
        if desc_end > notes.len() {
            return None;
        }
        if kind == NT_GNU_BUILD_ID && notes.get(12..12 + namesz) == Some(b"GNU\0".as_slice()) {
            return Some(notes[name_end..name_end + descsz].to_vec());
        }
        notes = &notes[desc_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_test_binary_and_rejects_garbage() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let read = |off: u64, buf: &mut [u8]| {
            let off = (off as usize).min(exe.len());
            let n = buf.len().min(exe.len() - off);
            buf[..n].copy_from_slice(&exe[off..off + n]);
            n
        };
        let id = build_id(&read);
        assert!(id.as_ref().is_some_and(|i| !i.is_empty()), "cargo links with a build-id");
        let junk = |_: u64, buf: &mut [u8]| {
            buf.fill(0xff);
            buf.len()
        };
        assert_eq!(build_id(&junk), None);
    }
}
