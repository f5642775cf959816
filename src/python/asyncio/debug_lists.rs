//! Finding the tasks of 3.14+: `_asyncio` publishes where they are (`_Py_AsyncioDebug`, in the
//! module's `.AsyncioDebug` section): each thread state heads a circular list of its tasks
//! (`asyncio_tasks_head`, linked through each task's `task_node`), the interpreter one of the
//! tasks whose thread is gone, and each thread state points at its running task.

use std::collections::HashSet;

use super::gc::MAX_TASKS;
use crate::modules::ModuleSet;
use crate::process::{Memory, MemoryExt, ReadError};

/// `Py_AsyncioModuleDebugOffsets` (3.14, 3.15): 13 u64 in three groups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AsyncioDebug {
    pub task_size: u64,
    pub task_name: u64,
    pub task_awaited_by: u64,
    pub task_is_task: u64,
    pub task_awaited_by_is_set: u64,
    pub task_coro: u64,
    pub task_node: u64,
    pub interp_size: u64,
    pub interp_tasks_head: u64,
    pub thread_size: u64,
    pub thread_running_loop: u64,
    pub thread_running_task: u64,
    pub thread_tasks_head: u64,
}

const WORDS: usize = 13;

/// Why the published table cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AsyncioDebugError {
    #[error(".AsyncioDebug is {size} bytes, fewer than the {} of the known table", 8 * WORDS)]
    Short { size: u64 },
    #[error("_Py_AsyncioDebug: {0}")]
    Read(#[source] ReadError),
    #[error("_Py_AsyncioDebug holds offsets outside their structs: {0:?}")]
    Implausible(AsyncioDebug),
}

/// Reads the table from the process's copy of the `.AsyncioDebug` section of the `_asyncio`
/// module or (where `_asyncio` is built in, as in Debian's 3.15) of the interpreter's module.
pub(crate) fn find(
    mem: &dyn Memory,
    modules: &ModuleSet,
    interpreter: &str,
) -> Option<Result<AsyncioDebug, AsyncioDebugError>> {
    let (addr, size) = modules
        .iter()
        .filter(|m| m.name().starts_with("_asyncio.") || m.path == interpreter)
        .find_map(|m| m.section_address(".AsyncioDebug"))?;
    if size < 8 * WORDS as u64 {
        return Some(Err(AsyncioDebugError::Short { size }));
    }
    let mut w = [0u64; WORDS];
    for (i, slot) in w.iter_mut().enumerate() {
        match mem.read_u64(addr + 8 * i as u64) {
            Ok(v) => *slot = v,
            Err(e) => return Some(Err(AsyncioDebugError::Read(e))),
        }
    }
    let d = AsyncioDebug {
        task_size: w[0],
        task_name: w[1],
        task_awaited_by: w[2],
        task_is_task: w[3],
        task_awaited_by_is_set: w[4],
        task_coro: w[5],
        task_node: w[6],
        interp_size: w[7],
        interp_tasks_head: w[8],
        thread_size: w[9],
        thread_running_loop: w[10],
        thread_running_task: w[11],
        thread_tasks_head: w[12],
    };
    Some(d.check().map(|()| d))
}

impl AsyncioDebug {
    /// Every offset inside its struct, the structs of believable sizes.
    pub fn check(&self) -> Result<(), AsyncioDebugError> {
        let task =
            [self.task_name, self.task_awaited_by, self.task_is_task, self.task_awaited_by_is_set, self.task_coro];
        let sane = (32..4096).contains(&self.task_size)
            && task.iter().all(|&o| o >= 16 && o < self.task_size)
            && self.task_node + 16 <= self.task_size
            && (64..1 << 20).contains(&self.interp_size)
            && self.interp_tasks_head + 16 <= self.interp_size
            && (64..1 << 16).contains(&self.thread_size)
            && [self.thread_running_loop, self.thread_running_task].iter().all(|&o| o + 8 <= self.thread_size)
            && self.thread_tasks_head + 16 <= self.thread_size;
        if sane {
            Ok(())
        } else {
            Err(AsyncioDebugError::Implausible(*self))
        }
    }
}

/// The tasks on the circular list headed at `head` (a `struct llist_node`), at most
/// [`MAX_TASKS`] over all lists (`seen` counts them).
pub(crate) fn tasks_on(
    mem: &dyn Memory,
    d: &AsyncioDebug,
    head: u64,
    seen: &mut HashSet<u64>,
    out: &mut Vec<u64>,
) -> Option<String> {
    let mut node = match mem.read_u64(head) {
        Ok(n) => n,
        Err(e) => return Some(format!("task list at {head:#x}: {e}")),
    };
    // An empty (or never initialised) list: its head points at itself, or is zero.
    let mut steps = 0usize;
    while node != head && node != 0 {
        steps += 1;
        if steps > MAX_TASKS || out.len() >= MAX_TASKS {
            return Some(format!("more than {MAX_TASKS} tasks: the rest are left out"));
        }
        let task = node.wrapping_sub(d.task_node);
        if !seen.insert(task) {
            return Some(format!("the task list at {head:#x} loops"));
        }
        out.push(task);
        node = match mem.read_u64(node) {
            Ok(n) => n,
            Err(e) => return Some(format!("task list at {head:#x}: {e}")),
        };
    }
    None
}
