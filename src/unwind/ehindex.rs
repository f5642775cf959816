//! `.eh_frame_hdr`'s search table used straight from the file: a binary search over its entries
//! with small reads, then only the one FDE (and its CIE) read. A library's CFI costs a few
//! kilobytes per function in the report, whatever the size of its `.eh_frame`.
//!
//! Only the table layout every linker writes is handled (`eh_frame_ptr` pcrel|sdata4,
//! `fde_count` udata4, entries datarel|sdata4); anything else is left to the caller's
//! whole-section path.

use crate::modules::ElfInfo;

const HDR_VERSION: u8 = 1;
const PCREL_SDATA4: u8 = 0x1b;
const UDATA4: u8 = 0x03;
const DATAREL_SDATA4: u8 = 0x3b;
/// An FDE or CIE larger than this is taken for damage.
const MAX_ENTRY: u64 = 1 << 20;
/// A CIE this close before its FDE is read along with it in one window; a farther one is read
/// apart and the two spliced.
const NEAR_CIE: u64 = 64 << 10;
/// Entries read per step of the binary search once the range is this small.
const BLOCK_ENTRIES: u64 = 512;

/// Where the search table and `.eh_frame` are, in the file and in memory (SVMAs).
pub(crate) struct HdrIndex {
    /// File offset of the first table entry.
    table_off: u64,
    count: u64,
    hdr_addr: u64,
    eh_addr: u64,
    eh_off: u64,
    eh_size: u64,
}

/// The bytes gimli needs for one FDE: its CIE and the FDE, and where they sit.
pub(crate) struct FdeWindow<'m> {
    /// CIE then FDE (adjacent in the file, or spliced).
    pub bytes: &'m [u8],
    /// The SVMA `.eh_frame` would have for `bytes` to be at their place (pc-relative pointers
    /// in the FDE come out right).
    pub base: u64,
    /// Offset of the FDE in `bytes`.
    pub fde: usize,
}

pub(crate) enum FdeLookup<'m> {
    Found(FdeWindow<'m>),
    /// The table says no FDE covers the address.
    Missing,
    /// The table or the FDE could not be read as expected: use the whole section.
    Damaged,
}

fn i32_at(b: &[u8], o: usize) -> Option<i64> {
    Some(i64::from(i32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?)))
}

fn u32_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?)))
}

impl HdrIndex {
    pub fn read(elf: &ElfInfo) -> Option<HdrIndex> {
        let hdr = elf.section(".eh_frame_hdr")?;
        let eh = elf.section(".eh_frame")?;
        if hdr.compressed || eh.compressed || hdr.file_size < 12 || eh.file_size == 0 {
            return None;
        }
        let head = elf.read_at(hdr.file_offset, 12)?;
        if head[0] != HDR_VERSION || head[1] != PCREL_SDATA4 || head[2] != UDATA4 || head[3] != DATAREL_SDATA4 {
            return None;
        }
        let eh_frame_ptr = (hdr.addr.wrapping_add(4) as i64).wrapping_add(i32_at(&head, 4)?) as u64;
        // The table is only usable when its idea of where .eh_frame is matches ours.
        if eh_frame_ptr != eh.addr {
            return None;
        }
        let count = u32_at(&head, 8)?;
        if count.checked_mul(8)?.checked_add(12)? > hdr.file_size {
            return None;
        }
        Some(HdrIndex {
            table_off: hdr.file_offset + 12,
            count,
            hdr_addr: hdr.addr,
            eh_addr: eh.addr,
            eh_off: eh.file_offset,
            eh_size: eh.file_size,
        })
    }

    /// Entries `[from, from + n)` as (initial location, FDE address).
    fn entries(&self, elf: &ElfInfo, from: u64, n: u64) -> Option<Vec<(u64, u64)>> {
        let b = elf.read_at(self.table_off + from * 8, n * 8)?;
        let rel = |v: i64| (self.hdr_addr as i64).wrapping_add(v) as u64;
        b.chunks_exact(8).map(|e| Some((rel(i32_at(e, 0)?), rel(i32_at(e, 4)?)))).collect()
    }

    /// The FDE the table gives for `svma` (the last entry starting at or below it).
    pub fn lookup<'m>(&self, elf: &'m ElfInfo, svma: u64) -> FdeLookup<'m> {
        // Binary search with single-entry reads until the range fits one block read.
        let (mut lo, mut hi) = (0u64, self.count);
        while hi - lo > BLOCK_ENTRIES {
            let mid = lo + (hi - lo) / 2;
            let Some(e) = self.entries(elf, mid, 1) else { return FdeLookup::Damaged };
            if e[0].0 <= svma {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let Some(block) = self.entries(elf, lo, hi - lo) else { return FdeLookup::Damaged };
        let i = block.partition_point(|e| e.0 <= svma);
        let Some(&(_, fde_addr)) = i.checked_sub(1).and_then(|i| block.get(i)) else { return FdeLookup::Missing };
        let Some(fde_off) = fde_addr.checked_sub(self.eh_addr).filter(|&o| o < self.eh_size) else {
            return FdeLookup::Damaged;
        };
        match elf.window((u32::MAX, fde_off, 0), |e| self.read_window(e, fde_off)) {
            Some(w) if w.len() > 8 => {
                let fde = u64::from_le_bytes(w[..8].try_into().unwrap_or([0; 8])) as usize;
                let bytes = &w[8..];
                FdeLookup::Found(FdeWindow {
                    bytes,
                    base: self.eh_addr.wrapping_add(fde_off).wrapping_sub(fde as u64),
                    fde,
                })
            }
            _ => FdeLookup::Damaged,
        }
    }

    /// The length of the entry (CIE or FDE) at `off` in `.eh_frame`, header included.
    fn entry_len(&self, elf: &ElfInfo, off: u64) -> Option<u64> {
        let len = u32_at(&elf.read_at(self.eh_off.checked_add(off)?, 4)?, 0)?;
        // 0xffffffff (64-bit DWARF) is not used in .eh_frame on x86_64; 0 is a terminator.
        if len == 0 || len == 0xffff_ffff || len > MAX_ENTRY {
            return None;
        }
        let total = len + 4;
        (off.checked_add(total)? <= self.eh_size).then_some(total)
    }

    /// An 8-byte little-endian offset of the FDE in what follows, then the CIE and the FDE.
    fn read_window(&self, elf: &ElfInfo, fde_off: u64) -> Option<Vec<u8>> {
        let fde_len = self.entry_len(elf, fde_off)?;
        let fde = elf.read_at(self.eh_off.checked_add(fde_off)?, fde_len)?;
        let cie_ptr = u32_at(&fde, 4)?;
        if cie_ptr == 0 {
            return None; // a CIE, not an FDE
        }
        let cie_off = fde_off.checked_add(4)?.checked_sub(cie_ptr)?;
        let cie_len = self.entry_len(elf, cie_off)?;
        let mut out = Vec::new();
        // A pointer of under 4 puts the "CIE" after the FDE's own start: not near, not valid.
        let near = fde_off.checked_sub(cie_off).filter(|&d| d <= NEAR_CIE && cie_off + cie_len <= fde_off);
        if let Some(at) = near {
            out.extend_from_slice(&at.to_le_bytes());
            out.extend_from_slice(&elf.read_at(self.eh_off.checked_add(cie_off)?, at)?);
            out.extend_from_slice(&fde);
        } else {
            // CIE, then the FDE with its CIE pointer made to point back to it.
            out.extend_from_slice(&cie_len.to_le_bytes());
            out.extend_from_slice(&elf.read_at(self.eh_off.checked_add(cie_off)?, cie_len)?);
            let mut fde = fde;
            fde[4..8].copy_from_slice(&u32::try_from(cie_len + 4).ok()?.to_le_bytes());
            out.extend_from_slice(&fde);
        }
        Some(out)
    }
}
