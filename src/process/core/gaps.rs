//! File-backed mappings a core left out entirely. The kernel writes a PT_LOAD segment for every
//! mapping (with no bytes for the file-backed ones coredump_filter excludes), but gdb's `gcore`
//! writes none at all for the mappings it does not dump: a library's code is then only named
//! by NT_FILE. Those ranges become mappings here, with the permissions the file's own program
//! headers give that part of it (read through the core's memory, which falls back to the file),
//! so that modules, unwinding and symbols see the code as in a live process.

use super::layout::{Segment, PF_R, PF_W, PF_X};
use super::notes::FileNote;
use crate::process::{Mapping, Memory};

/// Program headers are looked for only in the first bytes of a file.
const MAX_HEADER_BYTES: u64 = 64 * 1024;
/// At most this many program headers per file.
const MAX_PHDRS: u64 = 256;
/// At most this many mappings added (NT_FILE itself is capped when parsed).
const MAX_GAPS: usize = 1 << 16;
const PT_LOAD: u32 = 1;

/// One loadable segment of a mapped ELF file: file offsets and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileSegment {
    offset: u64,
    filesz: u64,
    flags: u32,
}

/// The ranges of NT_FILE entries no PT_LOAD segment covers, as mappings.
pub fn file_only_mappings(loads: &[Segment], files: &[FileNote], memory: &dyn Memory) -> Vec<Mapping> {
    let mut covered: Vec<(u64, u64)> = loads.iter().filter(|s| s.memsz > 0).map(|s| (s.vaddr, s.end())).collect();
    covered.sort_unstable();
    let mut out = Vec::new();
    let mut headers: std::collections::HashMap<&str, Vec<FileSegment>> = std::collections::HashMap::new();
    for f in files {
        for (start, end) in uncovered(&covered, f.start, f.end) {
            if out.len() >= MAX_GAPS {
                return out;
            }
            let segs = headers.entry(f.path.as_str()).or_insert_with(|| file_segments(files, &f.path, memory));
            let offset = f.offset.saturating_add(start - f.start);
            let flags = segs.iter().find(|s| s.offset <= offset && offset < s.offset.saturating_add(s.filesz));
            let flags = flags.map_or(PF_R, |s| s.flags);
            out.push(Mapping {
                start,
                end,
                read: flags & PF_R != 0,
                write: flags & PF_W != 0,
                exec: flags & PF_X != 0,
                shared: false,
                offset,
                inode: 0,
                path: Some(f.path.clone()),
            });
        }
    }
    out
}

/// The parts of `[start, end)` outside every range of `covered` (sorted by start).
fn uncovered(covered: &[(u64, u64)], start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = start;
    let first = covered.partition_point(|&(_, e)| e <= start);
    for &(s, e) in &covered[first..] {
        if s >= end || at >= end {
            break;
        }
        if s > at {
            out.push((at, s));
        }
        at = at.max(e);
    }
    if at < end {
        out.push((at, end));
    }
    out
}

/// The PT_LOAD segments of the file mapped as `path`, read from the mapping of its start.
fn file_segments(files: &[FileNote], path: &str, memory: &dyn Memory) -> Vec<FileSegment> {
    let Some(first) = files.iter().find(|f| f.path == path && f.offset == 0) else { return Vec::new() };
    let len = first.end.saturating_sub(first.start).min(MAX_HEADER_BYTES);
    let read = |off: u64, buf: &mut [u8]| -> usize {
        if off >= len {
            return 0;
        }
        let n = (buf.len() as u64).min(len - off) as usize;
        memory.read_partial(first.start + off, &mut buf[..n])
    };
    load_segments(&read)
}

/// The PT_LOAD program headers of a 64-bit little-endian ELF image read through `read`.
fn load_segments(read: &dyn Fn(u64, &mut [u8]) -> usize) -> Vec<FileSegment> {
    let mut eh = [0u8; 64];
    if read(0, &mut eh) < 64 || &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return Vec::new();
    }
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([eh[o], eh[o + 1]]));
    let phoff = u64::from_le_bytes(eh[32..40].try_into().unwrap_or([0; 8]));
    let (phentsize, phnum) = (u16_at(54), u16_at(56).min(MAX_PHDRS));
    if phentsize < 56 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for i in 0..phnum {
        let Some(at) = phoff.checked_add(i * phentsize).filter(|&a| a < MAX_HEADER_BYTES) else { break };
        let mut ph = [0u8; 56];
        if read(at, &mut ph) < 56 {
            break;
        }
        let w32 = |o: usize| u32::from_le_bytes(ph[o..o + 4].try_into().unwrap_or([0; 4]));
        let w64 = |o: usize| u64::from_le_bytes(ph[o..o + 8].try_into().unwrap_or([0; 8]));
        if w32(0) == PT_LOAD {
            // Mappings start on page boundaries: the segment's first page is its too.
            let offset = w64(8) & !0xfff;
            out.push(FileSegment { offset, filesz: w64(32) + (w64(8) - offset), flags: w32(4) });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ImageMemory;

    fn seg(vaddr: u64, memsz: u64) -> Segment {
        Segment { kind: 1, flags: PF_R, offset: 0, vaddr, filesz: 0, memsz }
    }

    #[test]
    fn gaps_between_segments() {
        let covered = [(0x1000, 0x2000), (0x3000, 0x4000)];
        assert_eq!(uncovered(&covered, 0x1000, 0x4000), vec![(0x2000, 0x3000)]);
        assert_eq!(uncovered(&covered, 0x0, 0x5000), vec![(0x0, 0x1000), (0x2000, 0x3000), (0x4000, 0x5000)]);
        assert_eq!(uncovered(&covered, 0x1800, 0x1900), vec![]);
        assert_eq!(uncovered(&[], 0x10, 0x20), vec![(0x10, 0x20)]);
    }

    /// An ELF header page in the core, the code range named only by NT_FILE: the code becomes
    /// an executable mapping at the right file offset.
    #[test]
    fn code_left_out_by_gcore_becomes_an_executable_mapping() {
        let mut elf = vec![0u8; 0x1000];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[32..40].copy_from_slice(&64u64.to_le_bytes());
        elf[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf[56..58].copy_from_slice(&2u16.to_le_bytes());
        let ph = |p: &mut [u8], off: u64, size: u64, flags: u32| {
            p[0..4].copy_from_slice(&1u32.to_le_bytes());
            p[4..8].copy_from_slice(&flags.to_le_bytes());
            p[8..16].copy_from_slice(&off.to_le_bytes());
            p[32..40].copy_from_slice(&size.to_le_bytes());
        };
        ph(&mut elf[64..120], 0, 0x1000, PF_R);
        ph(&mut elf[120..176], 0x1000, 0x2345, PF_R | PF_X);
        let mut m = ImageMemory::new();
        m.add(0x40_0000, elf);
        let files = vec![
            FileNote { start: 0x40_0000, end: 0x40_1000, offset: 0, path: "/lib/x.so".into() },
            FileNote { start: 0x40_1000, end: 0x40_4000, offset: 0x1000, path: "/lib/x.so".into() },
        ];
        let got = file_only_mappings(&[seg(0x40_0000, 0x1000)], &files, &m);
        assert_eq!(got.len(), 1);
        let g = &got[0];
        assert_eq!((g.start, g.end, g.offset), (0x40_1000, 0x40_4000, 0x1000));
        assert!(g.read && g.exec && !g.write);
        assert_eq!(g.path.as_deref(), Some("/lib/x.so"));
        // Without readable headers, a left-out range is read-only.
        let got = file_only_mappings(&[], &files[1..], &ImageMemory::new());
        assert!(got[0].read && !got[0].exec);
    }
}
