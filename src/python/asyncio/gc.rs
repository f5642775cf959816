//! Finding the C Task objects of 3.11–3.13: every object the cyclic collector tracks is on one
//! of its generation lists (`interp->gc.generations[i]`, `permanent_generation`), a circular
//! doubly linked list of `PyGC_Head`s in front of the objects; a Task is one whose type is
//! `_asyncio.Task` or a subclass of it.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::layout::AsyncioLayout;
use super::objects::{Kind, Types};
use crate::process::Memory;

/// Most objects looked at over all lists, and most tasks kept.
pub(crate) const MAX_OBJECTS: usize = 2_000_000;
pub(crate) const MAX_TASKS: usize = 4096;
/// The time the search may take.
pub(crate) const BUDGET: Duration = Duration::from_millis(1500);

/// The tasks found, and why the search stopped early if it did.
#[derive(Debug, Default)]
pub(crate) struct GcTasks {
    pub tasks: Vec<u64>,
    pub notes: Vec<String>,
}

/// Pieces of the process (64 KB each) kept while walking (4 MB): objects on a list sit mostly near each
/// other, so a small cache saves most reads without holding a large heap in crashcatch.
const CACHE_PAGES: usize = 64;
const PAGE: u64 = 64 * 1024;

/// A page cache that forgets everything when full (the walk rarely comes back).
struct Window<'a> {
    inner: &'a dyn Memory,
    pages: RefCell<HashMap<u64, Option<Box<[u8]>>>>,
}

impl Memory for Window<'_> {
    fn read_partial(&self, addr: u64, buf: &mut [u8]) -> usize {
        let page = addr & !(PAGE - 1);
        let off = (addr - page) as usize;
        if off + buf.len() > PAGE as usize {
            return self.inner.read_partial(addr, buf);
        }
        let mut pages = self.pages.borrow_mut();
        if pages.len() >= CACHE_PAGES && !pages.contains_key(&page) {
            pages.clear();
        }
        let p = pages.entry(page).or_insert_with(|| {
            let mut b = vec![0u8; PAGE as usize].into_boxed_slice();
            (self.inner.read_partial(page, &mut b) == PAGE as usize).then_some(b)
        });
        match p {
            Some(p) => {
                buf.copy_from_slice(&p[off..off + buf.len()]);
                buf.len()
            }
            None => self.inner.read_partial(addr, buf),
        }
    }
}

/// Walks every generation list of the interpreter at `interp`. `raw` is the process's memory
/// without a cache (the walk keeps its own, bounded one).
pub(crate) fn find_tasks(raw: &dyn Memory, l: &AsyncioLayout, types: &Types<'_>, interp: u64) -> GcTasks {
    let window = Window { inner: raw, pages: RefCell::new(HashMap::new()) };
    let mem: &dyn Memory = &window;
    let mut out = GcTasks::default();
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
            if word(0) == g {
                out.notes.push(format!("the collector's list loops at {g:#x}"));
                break;
            }
            g = word(0);
        }
    }
    out
}

fn read_next(mem: &dyn Memory, head: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    (mem.read_partial(head, &mut b) == 8).then(|| u64::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ImageMemory;

    /// An interpreter whose generation 0 holds a Task, an int and a subclass of Task, the other
    /// lists empty; then the same with generation 0's last link looping back on itself.
    fn image(looping: bool) -> (ImageMemory, AsyncioLayout, u64) {
        let l = AsyncioLayout::for_version(12).unwrap();
        let mut m = ImageMemory::new();
        let interp = 0x10000u64;
        let gc = interp + l.interp_gc;
        m.add(interp, vec![0; 0x1000]);
        m.add(0x20000, vec![0; 0x1000]); // objects
        m.add(0x30000, vec![0; 0x1000]); // types and names
        let gen0 = gc + 24;
        m.write_u64(gc + l.gc_generation0, gen0);
        // Empty lists point at themselves.
        for h in [gen0 + 24, gen0 + 48, gc + l.gc_permanent] {
            m.write_u64(h, h);
            m.write_u64(h + 8, h);
        }
        let (task_ty, int_ty, sub_ty) = (0x30000u64, 0x30400u64, 0x30800u64);
        for (ty, name, base) in [(task_ty, "_asyncio.Task", 0), (int_ty, "int", 0), (sub_ty, "MyTask", task_ty)] {
            m.write_u64(ty + l.tp_name, ty + 0x200);
            m.write(ty + 0x200, format!("{name}\0").as_bytes());
            m.write_u64(ty + l.tp_base, base);
        }
        let objs = [(0x20000u64, task_ty), (0x20100, int_ty), (0x20200, sub_ty)];
        let mut prev = gen0;
        for &(g, ty) in &objs {
            m.write_u64(prev, g);
            m.write_u64(g + 8, prev);
            m.write_u64(g + 24, ty);
            prev = g;
        }
        m.write_u64(prev, if looping { prev } else { gen0 });
        m.write_u64(gen0 + 8, prev);
        (m, l, interp)
    }

    #[test]
    fn finds_tasks_and_subclasses_on_the_lists() {
        let (m, l, interp) = image(false);
        let types = Types::new(&m, &l, 8);
        let found = find_tasks(&m, &l, &types, interp);
        assert_eq!(found.tasks, vec![0x20010, 0x20210]);
        assert!(found.notes.is_empty(), "{:?}", found.notes);
    }

    #[test]
    fn a_looping_list_ends_with_a_note() {
        let (m, l, interp) = image(true);
        let types = Types::new(&m, &l, 8);
        let found = find_tasks(&m, &l, &types, interp);
        assert_eq!(found.tasks, vec![0x20010, 0x20210]);
        assert!(found.notes.iter().any(|n| n.contains("loops")), "{:?}", found.notes);
    }
}
