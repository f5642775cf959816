//! CPython in a stopped process: find the interpreter, its version, every thread state and its
//! frames, the GIL holder and the finalization state.
//!
//! - `discover` finds the module that holds the interpreter (libpython, or the executable for
//!   static builds) and the addresses the walk starts from;
//! - `version` reads the version from the process (`_Py_DebugOffsets`, `Py_Version`, the
//!   `Py_GetVersion()` text in memory; the file name only as a last resort);
//! - [`layout`] holds one small offset table per minor version, [`debug_offsets`] reads 3.13+'s own;
//! - [`walk`] follows interpreters → thread states → frames over any [`crate::process::Memory`];
//! - `linetable` and `strings` decode line tables and `str` objects;
//! - `tids` maps thread states to kernel tids, `source_lines` reads source lines;
//! - [`objects`] reads ordinary objects (bounded), for `locals` (a frame's arguments and
//!   variables), `thread_names` (`threading.Thread.name`) and `gc_state`; `idle` tells a
//!   waiting thread from a running one;
//! - `synth` builds synthetic images for the tests and the fuzzers (not part of a report).
//!
//! Use from capture: `let py = python::read(&snap, &modules, deadline);` once per report in the read
//! phase (it wraps `snap.memory` in a page cache itself), then `python::add_source_lines` in the
//! analysis; capture then hands each thread's `PythonThread` (found
//! by tid; a thread inside subinterpreters has one in each, stacked by
//! `merge::python_thread_for`) to `merge::merge_thread` with its native frames.
//! `PythonState::errors` holds what could not be read (and the note when the version is only a
//! file-name guess); a thread's own walk problem is in `PythonThread::error`.

pub mod asyncio;
pub mod debug_offsets;
pub(crate) mod discover;
pub mod error;
pub(crate) mod gc_state;
pub(crate) mod idle;
pub mod layout;
pub(crate) mod linetable;
pub(crate) mod locals;
#[allow(missing_docs)] // Issue 25's object reader: documented by its author (issue 27).
pub mod objects;
pub(crate) mod source_lines;
pub(crate) mod strings;
/// Test scaffolding: only in the crate's own tests and with the `synthetic` feature (the
/// integration tests and fuzzers turn it on through the dev-dependency on this crate).
#[cfg(any(test, feature = "synthetic"))]
pub mod synth;
pub(crate) mod thread_names;
pub(crate) mod tids;
pub(crate) mod version;
pub mod walk;

use crate::modules::ModuleSet;
use crate::process::{CachedMemory, Memory, MemoryExt, Snapshot};
use crate::report::model::{Hex, InterpreterState, PythonFrame, PythonInterpreter, PythonState, PythonThread};

/// Source lines are read for this many innermost frames of each thread.
pub(crate) const SOURCE_FRAMES: usize = 5;

/// What to read beyond the stacks.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Every frame's arguments and locals, with short strings and the first items of
    /// containers (`--locals`). Without it only the arguments of the crashed thread's innermost
    /// frames are read, and shown safely (numbers, None and bools by value; the type and length
    /// of everything else).
    pub locals: bool,
}

/// Objects visited for locals over one report (each costs a few small reads).
const LOCALS_VISITS: usize = 50_000;
/// Frames of the crashed thread whose arguments are read by default: up to the user's own
/// frame, at most this many.
const DEFAULT_ARGUMENT_FRAMES: usize = 8;

/// Reads the Python state of the process, or None when no CPython is loaded in it: [`read`],
/// then the source lines of the innermost frames (`add_source_lines`).
pub fn inspect(snap: &Snapshot<'_>, modules: &ModuleSet, deadline: Option<std::time::Instant>) -> Option<PythonState> {
    inspect_with(snap, modules, deadline, ReadOptions::default())
}

/// [`inspect`] with [`ReadOptions`].
pub(crate) fn inspect_with(
    snap: &Snapshot<'_>,
    modules: &ModuleSet,
    deadline: Option<std::time::Instant>,
    opts: ReadOptions,
) -> Option<PythonState> {
    let mut state = read_with(snap, modules, deadline, opts)?;
    add_source_lines(&mut state, snap);
    Some(state)
}

/// The part of [`inspect`] that reads the process's memory (the read phase: interpreters,
/// threads, frames, locals, thread names, asyncio tasks); no source file is opened.
pub fn read(snap: &Snapshot<'_>, modules: &ModuleSet, deadline: Option<std::time::Instant>) -> Option<PythonState> {
    read_with(snap, modules, deadline, ReadOptions::default())
}

/// [`read`] with [`ReadOptions`].
pub(crate) fn read_with(
    snap: &Snapshot<'_>,
    modules: &ModuleSet,
    deadline: Option<std::time::Instant>,
    opts: ReadOptions,
) -> Option<PythonState> {
    let mem = CachedMemory::new(snap.memory);
    let found = discover::find(snap, modules, &mem)?;
    let mut state = PythonState {
        version: found.version.map(|v| v.to_string()),
        module: Some(found.module_path.clone()),
        errors: found.notes.clone(),
        ..Default::default()
    };
    let arch = snap.threads.iter().find_map(|t| t.regs.map(|r| r.arch())).unwrap_or(crate::arch::Arch::HOST);
    let layout = match found.layout {
        Ok(ref l) => l.clone().for_arch(arch),
        Err(ref e) => {
            state.errors.push(e.to_string());
            return Some(state);
        }
    };
    let mut w = walk::walk_until(&mem, &layout, &found.anchors, deadline);
    state.errors.extend(w.errors.iter().map(ToString::to_string));
    py2_finalizing(&mem, &found.known, &mut w);
    fill_state(&mut state, snap, &mem, &layout, &w);
    if let Some(ol) = &found.objects {
        let o = objects::Objects::new(&mem, ol, &layout.string, layout.bytes, &found.known, LOCALS_VISITS, deadline);
        objects_state(&mut state, snap, &o, &found, &w, opts);
    }
    if walk::past(deadline) {
        state.errors.push("asyncio tasks: left out, the report's time budget was spent".into());
    } else {
        state.asyncio = asyncio::read(&mem, snap.memory, &layout, &found.anchors, &w, modules, &state);
    }
    Some(state)
}

/// The source line of the [`SOURCE_FRAMES`] innermost frames of each thread, read from the
/// files the process names, as the process would (the analysis phase: files only).
pub(crate) fn add_source_lines(state: &mut PythonState, snap: &Snapshot<'_>) {
    fn frames(s: &mut PythonState) -> impl Iterator<Item = &mut PythonFrame> {
        s.interpreters
            .iter_mut()
            .flat_map(|i| i.threads.iter_mut())
            .flat_map(|t| t.frames.iter_mut().take(SOURCE_FRAMES))
    }
    let mut wanted = source_lines::SourceRequests::default();
    for f in frames(state) {
        if let Some(line) = f.line {
            wanted.want(&f.file, line);
        }
    }
    let mut notes = Vec::new();
    let lines = wanted.read(snap, &mut notes);
    for f in frames(state) {
        let found = f.line.and_then(|l| lines.line_and_indent(&f.file, l));
        f.source_offset = found.as_ref().map(|(_, indent)| *indent).filter(|&i| i > 0);
        f.source = found.map(|(text, _)| text);
    }
    state.errors.extend(notes);
}

/// 2.7 keeps no finalizing thread state: `Py_Finalize` clears the static `initialized` first
/// (and `Py_Initialize` sets it first), so an interpreter that exists while it is 0 is being
/// finalized, by the thread holding the GIL or else the main thread (the oldest thread state,
/// last in the list).
fn py2_finalizing(mem: &dyn Memory, known: &objects::Known, w: &mut walk::Walk) {
    let Some(flag) = known.py2_initialized else { return };
    if w.finalizing.is_some() || mem.read_i32(flag).ok() != Some(0) {
        return;
    }
    let main = w.interpreters.first().and_then(|i| i.threads.last()).map(|t| t.addr);
    w.finalizing = w.gil_holders.first().copied().or(main);
}

/// What the object reader adds: thread names, the collector's state, and arguments and locals.
fn objects_state(
    state: &mut PythonState,
    snap: &Snapshot<'_>,
    o: &objects::Objects<'_>,
    found: &discover::Discovered,
    w: &walk::Walk,
    opts: ReadOptions,
) {
    for (pi, ri) in state.interpreters.iter_mut().zip(&w.interpreters) {
        pi.gc_collecting = gc_state::collecting(o.mem, o.l, o.known, found.anchors.runtime, ri.addr);
        match thread_names::read(o, ri.addr) {
            Ok(names) => {
                for (pt, rt) in pi.threads.iter_mut().zip(&ri.threads) {
                    pt.python_name = names.get(&rt.thread_id).cloned();
                }
            }
            Err(e) => state.errors.push(format!("thread names of interpreter {}: {e}", pi.id)),
        }
    }
    let want = |arguments_only, mode| locals::Want { arguments_only, mode };
    for (pi, ri) in state.interpreters.iter_mut().zip(&w.interpreters) {
        for (pt, rt) in pi.threads.iter_mut().zip(&ri.threads) {
            let crashed = pt.tid == Some(snap.crashed_tid);
            let (count, w) = if opts.locals {
                (pt.frames.len(), want(false, objects::repr::Mode::Full))
            } else if crashed {
                let user = pt.frames.iter().position(|f| f.is_user_code()).map_or(0, |i| i + 1);
                (user.clamp(1, DEFAULT_ARGUMENT_FRAMES), want(true, objects::repr::Mode::Safe))
            } else {
                continue;
            };
            for (pf, rf) in pt.frames.iter_mut().zip(&rt.frames).take(count) {
                let (vars, note) = locals::read(o, rf.addr, rf.code, w);
                pf.locals = vars;
                pf.locals_note = note;
            }
        }
    }
}

/// Turns a raw walk into the report's model: tids, GIL holder, finalization state, stale marks.
pub fn fill_state(
    state: &mut PythonState,
    snap: &Snapshot<'_>,
    mem: &dyn Memory,
    layout: &layout::Layout,
    w: &walk::Walk,
) {
    let all: Vec<&walk::RawThread> = w.interpreters.iter().flat_map(|i| i.threads.iter()).collect();
    let mut ids: Vec<tids::Ids> =
        all.iter().map(|t| tids::Ids { thread_id: t.thread_id, native_thread_id: t.native_thread_id }).collect();
    // The finalizing thread state may no longer be in any list: map it too.
    let fin_index = w.finalizing.map(|f| match all.iter().position(|t| t.addr == f) {
        Some(i) => i,
        None => {
            let thread_id = mem.read_u64(f.wrapping_add(layout.tstate.thread_id)).unwrap_or(0);
            let native_thread_id = layout.tstate.native_thread_id.and_then(|o| mem.read_u64(f.wrapping_add(o)).ok());
            ids.push(tids::Ids { thread_id, native_thread_id });
            ids.len() - 1
        }
    });
    let mapped = tids::map_tids(mem, &snap.threads, &ids);

    let no_interpreters = w.interpreters.is_empty();
    state.state = Some(match (w.finalizing, w.initialized) {
        (Some(_), _) if no_interpreters => InterpreterState::Finalized,
        (Some(_), _) => InterpreterState::Finalizing,
        (None, Some(false)) => InterpreterState::NotInitialized,
        (None, _) if no_interpreters && w.errors.is_empty() => InterpreterState::NotInitialized,
        (None, _) => InterpreterState::Running,
    });
    state.finalizing_tid = fin_index.and_then(|i| mapped[i]);
    let finalizing = w.finalizing.is_some();

    let mut k = 0;
    for ri in &w.interpreters {
        let mut pi = PythonInterpreter { id: ri.id, threads: Vec::new(), gc_collecting: None };
        for t in &ri.threads {
            let tid = mapped[k];
            k += 1;
            let stale = finalizing && Some(t.addr) != w.finalizing;
            if t.holds_gil && state.gil_holder_tid.is_none() {
                state.gil_holder_tid = tid;
            }
            let regs = tid.and_then(|tid| snap.thread(tid)).and_then(|t| t.regs.as_ref());
            pi.threads.push(PythonThread {
                tid,
                thread_id: Hex(t.thread_id),
                python_name: None,
                idle: idle::idle(regs, mem),
                holds_gil: t.holds_gil,
                frames: t
                    .frames
                    .iter()
                    .map(|f| PythonFrame {
                        file: f.file.clone(),
                        function: f.function.clone(),
                        line: f.line,
                        end_line: f.end_line,
                        column: f.column,
                        end_column: f.end_column,
                        stale,
                        ..Default::default()
                    })
                    .collect(),
                entry: t.frames.iter().map(|f| f.entry).collect(),
                error: t.error.as_ref().map(ToString::to_string),
                c_stack: t.c_stack,
                shims: t.shims.clone(),
            });
        }
        state.interpreters.push(pi);
    }
}
