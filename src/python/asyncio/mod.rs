//! asyncio in a stopped process: every pending task of its event loops, the coroutine chain each
//! one is suspended in, what it awaits (a Future, another task) and which tasks await it, and
//! which task is running on which thread.
//!
//! - [`layout`]: per-version offsets (3.11–3.13), checked against DWARF;
//! - `gc`: finding the C Task objects on the collector's lists (3.11–3.13);
//! - `objects`: what an object is, from its type's name; small ints, tuples, lists;
//! - `chain`: a task's await chain through coroutines, generators and futures.
//!
//! Read only when the `_asyncio` extension is loaded, so programs without asyncio pay nothing.
//! Everything read is capped (tasks, objects looked at, chain depth, names) and bounded in time.

pub(crate) mod chain;
pub(crate) mod debug_lists;
pub(crate) mod gc;
pub mod layout;
pub(crate) mod objects;

use std::collections::{HashMap, HashSet};

use chain::{End, TaskReader};
use layout::AsyncioLayout;
use objects::{Kind, Types};

use super::layout::{Layout, TopFrame};
use super::strings::read_str;
use super::walk::{Anchors, Walk};
use crate::modules::ModuleSet;
use crate::process::{Memory, MemoryExt};
use crate::report::model::{AsyncioState, AsyncioTask, Awaited, AwaitedKind, Hex, PythonState, TaskState};

/// Longest task name kept.
pub(crate) const MAX_NAME: usize = 256;
/// Most callbacks of one task looked into for who awaits it.
const MAX_CALLBACKS: usize = 64;

/// A task as read, with what the edges need.
struct Read {
    task: AsyncioTask,
    /// The future its chain ends in.
    future: Option<u64>,
    /// The embedded frame of its coroutine (a running task's is on a thread's frame chain).
    first_frame: Option<u64>,
    callbacks: Vec<u64>,
    /// 3.14+: the futures and tasks in `task_awaited_by`.
    awaited_by: Vec<u64>,
}

/// The asyncio section, or None when the process does not run asyncio. `mem` is the report's
/// cached view of the process, `raw` the uncached one (for the walk over the whole heap).
pub fn read(
    mem: &dyn Memory,
    raw: &dyn Memory,
    py: &Layout,
    anchors: &Anchors,
    w: &Walk,
    modules: &ModuleSet,
    state: &PythonState,
) -> Option<AsyncioState> {
    let loaded = modules.by_name(|n| n.starts_with("_asyncio.")).next().is_some();
    let interpreter = state.module.as_deref().unwrap_or("");
    let published = if py.minor >= 14 { debug_lists::find(mem, modules, interpreter) } else { None };
    if !loaded && published.is_none() {
        return None;
    }
    let mut out = AsyncioState::default();
    let l = match AsyncioLayout::for_version(py.minor).filter(|_| py.major == 3 && py.ob_type == 8) {
        Some(l) => l,
        None => {
            out.notes.push(format!(
                "asyncio tasks are read for CPython 3.11 to 3.15 (GIL builds); not for this {}",
                py.label
            ));
            return Some(out);
        }
    };
    let mut tasks = Vec::new();
    let mut running: HashMap<u64, u64> = HashMap::new();
    let mut l = l;
    match published {
        None => {
            out.source = "gc".into();
            let types = Types::new(mem, &l, py.ob_type);
            for i in &w.interpreters {
                let found = gc::find_tasks(raw, &l, &types, i.addr);
                out.notes.extend(found.notes);
                tasks.extend(found.tasks);
            }
        }
        Some(Err(e)) => {
            out.notes.push(e.to_string());
            return Some(out);
        }
        Some(Ok(d)) => {
            out.source = "asyncio_debug".into();
            // What the module publishes wins over the table.
            l.task_name = d.task_name;
            l.task_coro = d.task_coro;
            if let Some(t) = &mut l.v314 {
                t.awaited_by = d.task_awaited_by;
                t.awaited_by_is_set = d.task_awaited_by_is_set;
                t.node = d.task_node;
            }
            let mut seen = HashSet::new();
            for i in &w.interpreters {
                for t in &i.threads {
                    let head = t.addr.wrapping_add(d.thread_tasks_head);
                    out.notes.extend(debug_lists::tasks_on(mem, &d, head, &mut seen, &mut tasks));
                    if let Ok(r) = mem.read_u64(t.addr.wrapping_add(d.thread_running_task)) {
                        if r != 0 {
                            running.insert(r, t.thread_id);
                        }
                    }
                }
                let head = i.addr.wrapping_add(d.interp_tasks_head);
                out.notes.extend(debug_lists::tasks_on(mem, &d, head, &mut seen, &mut tasks));
            }
        }
    }
    let types = Types::new(mem, &l, py.ob_type);
    let reader = TaskReader { mem, py, anchors, layout: &l, types: &types };
    let mut read: Vec<Read> = tasks.iter().filter_map(|&t| read_task(&reader, t, &mut out.notes)).collect();
    if read.is_empty() && out.notes.is_empty() {
        return None;
    }
    let names: HashMap<u64, String> = read.iter().map(|r| (r.task.id.0, r.task.name.clone())).collect();
    for r in &mut read {
        if let Some(a) = &mut r.task.awaits {
            if let Some(t) = a.task {
                a.description = format!("task '{}'", names.get(&t.0).map_or("?", |s| s.as_str()));
            }
        }
    }
    link(&reader, &mut read);
    place_running(mem, py, w, state, &mut read);
    // 3.14+: each thread state names its running task.
    for r in &mut read {
        if let Some(thread_id) = running.get(&r.task.id.0) {
            r.task.running = true;
            r.task.awaits = None;
            r.task.thread = tid_of(state, *thread_id);
        }
    }
    out.tasks = read.into_iter().map(|r| r.task).collect();
    Some(out)
}

fn read_task(r: &TaskReader<'_>, task: u64, notes: &mut Vec<String>) -> Option<Read> {
    let (mem, l) = (r.mem, r.layout);
    let state = match mem.read_i32(task.wrapping_add(l.task_state)) {
        Ok(0) => TaskState::Pending,
        Ok(1) => TaskState::Cancelled,
        Ok(2) => TaskState::Finished,
        Ok(_) => TaskState::Unknown,
        Err(_) => return None,
    };
    if state != TaskState::Pending {
        return None;
    }
    let name_obj = mem.read_u64(task.wrapping_add(l.task_name)).unwrap_or(0);
    let name = match r.types.kind(name_obj) {
        Kind::Str => read_str(mem, &r.py.string, name_obj, MAX_NAME).unwrap_or_else(|e| format!("<{e}>")),
        Kind::Int => objects::small_int(mem, l, name_obj).map_or("Task-?".into(), |n| format!("Task-{n}")),
        _ => "<unnamed>".into(),
    };
    let coro = mem.read_u64(task.wrapping_add(l.task_coro)).unwrap_or(0);
    let chain = r.chain(coro);
    if let Some(e) = &chain.error {
        notes.push(format!("task '{name}': {e}"));
    }
    let mut end = chain.end;
    if end == End::Nothing {
        // Not inside an await the stack shows: what the task itself waits for.
        let waiter = mem.read_u64(task.wrapping_add(l.task_fut_waiter)).unwrap_or(0);
        end = match r.types.kind(waiter) {
            Kind::Task => End::Task(waiter),
            Kind::Future => End::Future(waiter),
            _ => End::Nothing,
        };
    }
    let innermost = chain.frames.last().map(|f| f.function.clone());
    let (awaits, future) = match end {
        End::Task(t) => {
            (Some(Awaited { kind: AwaitedKind::Task, description: String::new(), task: Some(Hex(t)) }), None)
        }
        End::Future(f) => {
            let ty = r.types.name(f);
            let description = match (ty.as_str(), innermost) {
                ("_GatheringFuture", _) => "gather()'s _GatheringFuture".to_string(),
                (ty, Some(func)) => format!("a {} in {func}", ty.trim_start_matches("_asyncio.")),
                (ty, None) => format!("a {}", ty.trim_start_matches("_asyncio.")),
            };
            (Some(Awaited { kind: AwaitedKind::Future, description, task: None }), Some(f))
        }
        End::Other(o) => {
            let description = format!("a {} object", r.types.name(o));
            (Some(Awaited { kind: AwaitedKind::Other, description, task: None }), None)
        }
        End::Running | End::Nothing => (None, None),
    };
    let awaited_by = match l.v314 {
        Some(v) => awaiters(r, v, task),
        None => Vec::new(),
    };
    let mut callbacks = Vec::new();
    let cb0 = mem.read_u64(task.wrapping_add(l.task_callback0)).unwrap_or(0);
    if cb0 != 0 {
        callbacks.push(cb0);
    }
    let list = mem.read_u64(task.wrapping_add(l.task_callbacks)).unwrap_or(0);
    if r.types.kind(list) == Kind::List {
        for item in objects::items(mem, l, Kind::List, list).into_iter().take(MAX_CALLBACKS) {
            // (callback, context) pairs.
            if let Some(&cb) = objects::items(mem, l, Kind::Tuple, item).first() {
                callbacks.push(cb);
            }
        }
    }
    Some(Read {
        task: AsyncioTask {
            id: Hex(task),
            name,
            state,
            running: chain.end == End::Running,
            thread: None,
            coroutines: chain.frames,
            awaits,
            awaited_by: Vec::new(),
        },
        future,
        first_frame: chain.first_frame,
        callbacks,
        awaited_by,
    })
}

/// 3.14+: the objects in `task_awaited_by` (one, or a set's keys; at most [`MAX_CALLBACKS`]).
fn awaiters(r: &TaskReader<'_>, v: layout::Tasks314, task: u64) -> Vec<u64> {
    let obj = r.mem.read_u64(task.wrapping_add(v.awaited_by)).unwrap_or(0);
    if obj == 0 {
        return Vec::new();
    }
    if r.mem.read_u8(task.wrapping_add(v.awaited_by_is_set)).unwrap_or(0) == 0 {
        return vec![obj];
    }
    let mask = r.mem.read_u64(obj.wrapping_add(v.set_mask)).unwrap_or(0);
    let table = r.mem.read_u64(obj.wrapping_add(v.set_table)).unwrap_or(0);
    if table == 0 || mask >= 1 << 16 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for i in 0..=mask {
        let key = r.mem.read_u64(table.wrapping_add(i * v.set_entry)).unwrap_or(0);
        // Empty slots hold NULL; deleted ones the `dummy` key, which is no future or task.
        if key != 0 && matches!(r.types.kind(key), Kind::Task | Kind::Future) {
            out.push(key);
            if out.len() >= MAX_CALLBACKS {
                break;
            }
        }
    }
    out
}

/// Who awaits each task: a task whose chain ends in it, or (through its done-callbacks) a task
/// waiting on a future the callback completes, as `gather` and `await task` arrange: a function
/// whose closure holds that future, or a bound C method (`task_wakeup`) of the waiting task.
fn link(r: &TaskReader<'_>, read: &mut [Read]) {
    let mut by_future: HashMap<u64, Vec<Hex>> = HashMap::new();
    let mut by_task: HashMap<u64, Vec<Hex>> = HashMap::new();
    let ids: HashSet<u64> = read.iter().map(|t| t.task.id.0).collect();
    for t in read.iter() {
        if let Some(f) = t.future {
            by_future.entry(f).or_default().push(t.task.id);
        }
        if let Some(b) = t.task.awaits.as_ref().and_then(|a| a.task) {
            by_task.entry(b.0).or_default().push(t.task.id);
        }
    }
    for t in read.iter_mut() {
        let me = t.task.id;
        let mut by: Vec<Hex> = by_task.get(&me.0).cloned().unwrap_or_default();
        for &o in &t.awaited_by {
            if ids.contains(&o) {
                by.push(Hex(o));
            } else if let Some(waiting) = by_future.get(&o) {
                by.extend(waiting.iter().copied());
            }
        }
        for &cb in &t.callbacks {
            match r.types.kind(cb) {
                Kind::Function => {
                    let closure = r.mem.read_u64(cb.wrapping_add(r.layout.func_closure)).unwrap_or(0);
                    if r.types.kind(closure) != Kind::Tuple {
                        continue;
                    }
                    for cell in objects::items(r.mem, r.layout, Kind::Tuple, closure) {
                        let held = r.mem.read_u64(cell.wrapping_add(r.layout.cell_ref)).unwrap_or(0);
                        if let Some(waiting) = by_future.get(&held) {
                            by.extend(waiting.iter().copied());
                        }
                    }
                }
                Kind::BuiltinMethod => {
                    let owner = r.mem.read_u64(cb.wrapping_add(r.layout.cfunction_self)).unwrap_or(0);
                    if owner != me.0 && ids.contains(&owner) {
                        by.push(Hex(owner));
                    }
                }
                _ => {}
            }
        }
        by.retain(|b| *b != me);
        by.sort_unstable();
        by.dedup();
        t.task.awaited_by = by;
    }
}

/// Marks the thread each running task runs on: the thread whose frame chain holds the
/// coroutine's embedded frame.
fn place_running(mem: &dyn Memory, py: &Layout, w: &Walk, state: &PythonState, read: &mut [Read]) {
    let wanted: HashSet<u64> = read.iter().filter(|r| r.task.running).filter_map(|r| r.first_frame).collect();
    if wanted.is_empty() {
        return;
    }
    let mut on: HashMap<u64, i32> = HashMap::new();
    for t in w.interpreters.iter().flat_map(|i| i.threads.iter()) {
        let Some(tid) = tid_of(state, t.thread_id) else { continue };
        let mut f = top_frame(mem, py, t.addr);
        for _ in 0..super::walk::MAX_FRAMES {
            if f == 0 {
                break;
            }
            if wanted.contains(&f) {
                on.insert(f, tid);
            }
            f = mem.read_u64(f.wrapping_add(py.frame.back)).unwrap_or(0);
        }
    }
    for r in read.iter_mut() {
        if let Some(tid) = r.first_frame.and_then(|f| on.get(&f)) {
            r.task.thread = Some(*tid);
        }
    }
}

/// The kernel tid of the thread state whose pthread id is `thread_id`.
fn tid_of(state: &PythonState, thread_id: u64) -> Option<i32> {
    state.interpreters.iter().flat_map(|i| i.threads.iter()).find(|p| p.thread_id.0 == thread_id).and_then(|p| p.tid)
}

fn top_frame(mem: &dyn Memory, py: &Layout, tstate: u64) -> u64 {
    match py.tstate.top_frame {
        TopFrame::Direct(o) => mem.read_u64(tstate.wrapping_add(o)).unwrap_or(0),
        TopFrame::ViaCFrame { cframe, current_frame } => match mem.read_u64(tstate.wrapping_add(cframe)) {
            Ok(cf) if cf != 0 => mem.read_u64(cf.wrapping_add(current_frame)).unwrap_or(0),
            _ => 0,
        },
    }
}
