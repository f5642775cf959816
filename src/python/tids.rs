//! Thread state → kernel thread id.
//!
//! In order: `native_thread_id` (3.11+) when it names a thread of the process; the thread
//! pointer (`fs_base`, which on x86_64 glibc is the thread's `pthread_t`, the value CPython keeps
//! as `thread_id`; aarch64's `tpidr_el0` is just past it); and, when registers are missing, the
//! `tid` member of glibc's `struct pthread`, whose offset is found by trying it against every
//! thread state and the process's task list.

use std::collections::HashSet;

use crate::arch::{Arch, ArchSpec};
use crate::process::{Memory, MemoryExt, ThreadInfo};
/// How far into `struct pthread` the scan looks.
const SCAN_LIMIT: u64 = 0x1000;

/// One thread state's identifiers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ids {
    pub thread_id: u64,
    pub native_thread_id: Option<u64>,
}

/// The tid of each thread state in `ids` (parallel), or None when it could not be told.
pub(crate) fn map_tids(mem: &dyn Memory, threads: &[ThreadInfo], ids: &[Ids]) -> Vec<Option<i32>> {
    let tids: HashSet<i32> = threads.iter().map(|t| t.tid).collect();
    let spec = threads.iter().find_map(|t| t.regs.map(|r| r.spec())).unwrap_or_else(|| Arch::HOST.spec());
    let below = spec.pthread_below_thread_pointer();
    let mut out: Vec<Option<i32>> = ids
        .iter()
        .map(|id| {
            if let Some(n) = id.native_thread_id {
                if let Ok(n) = i32::try_from(n) {
                    if tids.contains(&n) {
                        return Some(n);
                    }
                }
            }
            if id.thread_id != 0 {
                let owns = |tp: u64| tp >= id.thread_id && below.contains(&(tp - id.thread_id));
                if let Some(t) = threads.iter().find(|t| t.regs.is_some_and(|r| owns(r.thread_pointer()))) {
                    return Some(t.tid);
                }
            }
            None
        })
        .collect();
    let missing: Vec<usize> = (0..ids.len()).filter(|&i| out[i].is_none() && ids[i].thread_id != 0).collect();
    if missing.is_empty() {
        return out;
    }
    if let Some(off) = find_tid_offset(mem, spec, &tids, ids, &out) {
        for i in missing {
            if let Ok(t) = mem.read_i32(ids[i].thread_id.wrapping_add(off)) {
                if tids.contains(&t) {
                    out[i] = Some(t);
                }
            }
        }
    }
    out
}

/// The offset in `struct pthread` at which every thread state's `thread_id` points at a tid of
/// this process (distinct ones), agreeing with the tids already known. Tries glibc's usual offset
/// first, then scans.
fn find_tid_offset(
    mem: &dyn Memory,
    spec: &dyn ArchSpec,
    tids: &HashSet<i32>,
    ids: &[Ids],
    known: &[Option<i32>],
) -> Option<u64> {
    let cands: Vec<usize> = (0..ids.len()).filter(|&i| ids[i].thread_id != 0).collect();
    // Read each pthread once; an unreadable one leaves the offset scan to the others.
    let blocks: Vec<(usize, Vec<u8>)> = cands
        .iter()
        .filter_map(|&i| {
            let mut b = vec![0u8; SCAN_LIMIT as usize];
            let got = mem.read_partial(ids[i].thread_id, &mut b);
            b.truncate(got);
            (got >= 8).then_some((i, b))
        })
        .collect();
    if blocks.is_empty() {
        return None;
    }
    let fits = |off: u64| -> bool {
        let mut seen = HashSet::new();
        for (i, b) in &blocks {
            let o = off as usize;
            let Some(v) = b.get(o..o + 4) else { return false };
            let v = i32::from_le_bytes(v.try_into().unwrap());
            if !tids.contains(&v) || !seen.insert(v) {
                return false;
            }
            if known[*i].is_some_and(|k| k != v) {
                return false;
            }
        }
        true
    };
    if fits(spec.glibc_tid_offset()) {
        return Some(spec.glibc_tid_offset());
    }
    (0..SCAN_LIMIT - 4).step_by(4).find(|&o| fits(o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{ImageMemory, Registers};

    fn th(tid: i32, fs: Option<u64>) -> ThreadInfo {
        let regs = fs.map(|f| Registers::X86_64(crate::arch::x86_64::Regs { fs_base: f, ..Default::default() }));
        ThreadInfo { tid, regs, ..Default::default() }
    }

    #[test]
    fn native_id_then_fs_base_then_pthread() {
        let mut m = ImageMemory::new();
        for (p, tid) in [(0x10000u64, 101i32), (0x20000, 102), (0x30000, 103)] {
            let mut b = vec![0u8; 0x1000];
            b[0x2d0..0x2d4].copy_from_slice(&tid.to_le_bytes());
            m.add(p, b);
        }
        let threads = vec![th(100, None), th(101, None), th(102, Some(0x20000)), th(103, None)];
        let ids = [
            Ids { thread_id: 0x10000, native_thread_id: None },
            Ids { thread_id: 0x20000, native_thread_id: None },
            Ids { thread_id: 0x30000, native_thread_id: None },
            Ids { thread_id: 0x99999, native_thread_id: Some(100) },
            Ids { thread_id: 0, native_thread_id: Some(555) },
        ];
        assert_eq!(map_tids(&m, &threads, &ids), vec![Some(101), Some(102), Some(103), Some(100), None]);
    }

    #[test]
    fn scans_for_another_offset() {
        let mut m = ImageMemory::new();
        for (p, tid) in [(0x10000u64, 7i32), (0x20000, 8)] {
            let mut b = vec![0u8; 0x1000];
            b[0x2d0..0x2d4].copy_from_slice(&7i32.to_le_bytes()); // same value twice: rejected
            b[0x2e8..0x2ec].copy_from_slice(&tid.to_le_bytes());
            m.add(p, b);
        }
        let threads = vec![th(7, None), th(8, None)];
        let ids =
            [Ids { thread_id: 0x10000, native_thread_id: None }, Ids { thread_id: 0x20000, native_thread_id: None }];
        assert_eq!(map_tids(&m, &threads, &ids), vec![Some(7), Some(8)]);
        // Unreadable pthreads: nothing guessed.
        let ids = [Ids { thread_id: 0x50000, native_thread_id: None }];
        assert_eq!(map_tids(&m, &threads, &ids), vec![None]);
    }
}
