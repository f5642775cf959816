//! CPython in a stopped process: find the interpreter, its version, every thread state and its
//! frames, the GIL holder and the finalization state.
//!
//! - [`discover`] finds the module that holds the interpreter (libpython, or the executable for
//!   static builds) and the addresses the walk starts from;
//! - [`version`] reads the version from the process (`_Py_DebugOffsets`, `Py_Version`, the
//!   `Py_GetVersion()` text in memory; the file name only as a last resort);
//! - [`layout`] holds one small offset table per minor version, [`debug_offsets`] reads 3.13+'s own;
//! - [`walk`] follows interpreters → thread states → frames over any [`crate::process::Memory`];
//! - [`linetable`] and [`strings`] decode line tables and `str` objects;
//! - [`tids`] maps thread states to kernel tids, [`source_lines`] reads source lines;
//! - [`synth`] builds synthetic images for the tests and the fuzzers (not part of a report).
//!
//! Use from capture: `let py = python::read(&snap, &modules, deadline);` once per report in the read
//! phase (it wraps `snap.memory` in a page cache itself), then `python::add_source_lines` in the
//! analysis; capture then hands each thread's `PythonThread` (found
//! by tid) to `merge::merge_thread` with its native frames.
//! `PythonState::errors` holds what could not be read (and the note when the version is only a
//! file-name guess); a thread's own walk problem is in `PythonThread::error`.

pub mod asyncio;
pub mod debug_offsets;
pub mod discover;
pub mod error;
pub mod layout;
pub mod linetable;
pub mod source_lines;
pub mod strings;
/// Test scaffolding: only in the crate's own tests and with the `synthetic` feature (the
/// integration tests and fuzzers turn it on through the dev-dependency on this crate).
#[cfg(any(test, feature = "synthetic"))]
pub mod synth;
pub mod tids;
pub mod version;
pub mod walk;

use crate::modules::ModuleSet;
use crate::process::{CachedMemory, Memory, MemoryExt, Snapshot};
use crate::report::model::{Hex, InterpreterState, PythonFrame, PythonInterpreter, PythonState, PythonThread};

/// Source lines are read for this many innermost frames of each thread.
pub const SOURCE_FRAMES: usize = 5;

/// Reads the Python state of the process, or None when no CPython is loaded in it: [`read`],
/// then the source lines of the innermost frames ([`add_source_lines`]).
pub fn inspect(snap: &Snapshot<'_>, modules: &ModuleSet, deadline: Option<std::time::Instant>) -> Option<PythonState> {
    let mut state = read(snap, modules, deadline)?;
    add_source_lines(&mut state, snap);
    Some(state)
}

/// The part of [`inspect`] that reads the process's memory (the read phase: interpreters,
/// threads, frames, asyncio tasks); no source file is opened.
pub fn read(snap: &Snapshot<'_>, modules: &ModuleSet, deadline: Option<std::time::Instant>) -> Option<PythonState> {
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
        Ok(l) => l.for_arch(arch),
        Err(e) => {
            state.errors.push(e.to_string());
            return Some(state);
        }
    };
    let w = walk::walk_until(&mem, &layout, &found.anchors, deadline);
    state.errors.extend(w.errors.iter().map(ToString::to_string));
    fill_state(&mut state, snap, &mem, &layout, &w);
    if walk::past(deadline) {
        state.errors.push("asyncio tasks: left out, the report's time budget was spent".into());
    } else {
        state.asyncio = asyncio::read(&mem, snap.memory, &layout, &found.anchors, &w, modules, &state);
    }
    Some(state)
}

/// The source line of the [`SOURCE_FRAMES`] innermost frames of each thread, read from the
/// files the process names, as the process would (the analysis phase: files only).
pub fn add_source_lines(state: &mut PythonState, snap: &Snapshot<'_>) {
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
        f.source = f.line.and_then(|l| lines.line(&f.file, l));
    }
    state.errors.extend(notes);
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
        let mut pi = PythonInterpreter { id: ri.id, threads: Vec::new() };
        for t in &ri.threads {
            let tid = mapped[k];
            k += 1;
            let stale = finalizing && Some(t.addr) != w.finalizing;
            if t.holds_gil && state.gil_holder_tid.is_none() {
                state.gil_holder_tid = tid;
            }
            pi.threads.push(PythonThread {
                tid,
                thread_id: Hex(t.thread_id),
                holds_gil: t.holds_gil,
                frames: t
                    .frames
                    .iter()
                    .map(|f| PythonFrame {
                        file: f.file.clone(),
                        function: f.function.clone(),
                        line: f.line,
                        source: None,
                        stale,
                    })
                    .collect(),
                entry: t.frames.iter().map(|f| f.entry).collect(),
                error: t.error.as_ref().map(ToString::to_string),
            });
        }
        state.interpreters.push(pi);
    }
}
