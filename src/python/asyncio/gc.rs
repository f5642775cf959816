//! Finding the C Task objects of 3.11–3.13: every object the cyclic collector tracks is on one
//! of its generation lists (`interp->gc.generations[i]`, `permanent_generation`), a circular
//! doubly linked list of `PyGC_Head`s in front of the objects; a Task is one whose type is
//! `_asyncio.Task` or a subclass of it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::layout::AsyncioLayout;
use super::objects::{Kind, Types};
use crate::process::Memory;

/// Most objects looked at over all lists, and most tasks kept.
pub const MAX_OBJECTS: usize = 2_000_000;
pub const MAX_TASKS: usize = 4096;
/// The time the search may take.
pub const BUDGET: Duration = Duration::from_millis(1500);

/// The tasks found, and why the search stopped early if it did.
#[derive(Debug, Default)]
pub struct Found {
    pub tasks: Vec<u64>,
    pub notes: Vec<String>,
}

/// Walks every generation list of the interpreter at `interp`.
pub fn find_tasks(mem: &dyn Memory, l: &AsyncioLayout, types: &Types<'_>, interp: u64) -> Found {
    let mut out = Found::default();
    let gc = interp.wrapping_add(l.interp_gc);
    let mut heads: Vec<u64> = match read_next(mem, gc.wrapping_add(l.gc_generation0)).filter(|&g| g != 0) {
        Some(gen0) => (0..l.gc_generation_count).map(|i| gen0.wrapping_add(i * l.gc_generation_size)).collect(),
        None => {
            out.notes.push("the collector's generation0 pointer is not readable".into());
            Vec::new()
        }
    };
    heads.push(gc.wrapping_add(l.gc_permanent));
    heads.retain(|&h| {
        // A list head's successor points back at it (an empty list's head at itself).
        let ok = read_next(mem, h).and_then(|n| read_next(mem, n.wrapping_add(8))).is_some_and(|prev| prev & !3 == h);
        if !ok {
            out.notes.push(format!("no collector list at {h:#x} (its links do not point back)"));
        }
        ok
    });
    let start = Instant::now();
    let mut looked = 0usize;
    let mut seen_tasks = HashSet::new();
    'lists: for head in heads {
        let mut g = match read_next(mem, head) {
            Some(n) => n,
            None => {
                out.notes.push(format!("the collector's list at {head:#x} is not readable"));
                continue;
            }
        };
        while g != head && g != 0 {
            looked += 1;
            if looked > MAX_OBJECTS {
                out.notes.push(format!("stopped looking for tasks after {MAX_OBJECTS} objects"));
                break 'lists;
            }
            if looked % 4096 == 0 && start.elapsed() > BUDGET {
                out.notes.push(format!("stopped looking for tasks after {} ms ({looked} objects)", BUDGET.as_millis()));
                break 'lists;
            }
            let mut buf = [0u8; 32];
            if mem.read_partial(g, &mut buf) < buf.len() {
                out.notes.push(format!("the collector's list breaks at {g:#x}"));
                break;
            }
            let word = |i: usize| u64::from_le_bytes(buf[8 * i..8 * i + 8].try_into().unwrap_or([0; 8]));
            let obj = g.wrapping_add(l.gc_head);
            // ob_type is the second word of the object (GIL builds).
            let ty = word(3);
            if ty != 0 && types.kind_of_type(ty).0 == Kind::Task && seen_tasks.insert(obj) {
                if out.tasks.len() >= MAX_TASKS {
                    out.notes.push(format!("more than {MAX_TASKS} tasks: the rest are left out"));
                    break 'lists;
                }
                out.tasks.push(obj);
            }
            // _gc_next holds the next head's address (no flag bits in the tracked lists).
            g = word(0);
        }
    }
    out
}

fn read_next(mem: &dyn Memory, head: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    (mem.read_partial(head, &mut b) == 8).then(|| u64::from_le_bytes(b))
}
