//! The threads: the crashed one in full, then the asyncio tasks, then the others (the GIL
//! holder and the main thread first, each cut to [`OTHER_THREAD_FRAMES`]); in a process with
//! many threads, those with no Python frames are only named.

use std::fmt::Write;

use super::super::escape::terminal::text as esc;
use super::{asyncio, frames, Style};
use crate::report::model::{Crash, InterpreterState, PythonThread, Thread};

/// Frames shown for a thread that did not crash.
const OTHER_THREAD_FRAMES: usize = 24;
/// Native threads with no Python frames named in the closing line; more are counted.
const QUIET_NAMED: usize = 6;

/// The Python thread states of kernel thread `tid` with their interpreter's id: one, or one in
/// each interpreter a thread that entered subinterpreters is inside.
fn python_threads(crash: &Crash, tid: i32) -> Vec<(i64, &PythonThread)> {
    let interpreters = crash.python.iter().flat_map(|p| p.interpreters.iter());
    interpreters.flat_map(|i| i.threads.iter().filter(move |p| p.tid == Some(tid)).map(move |p| (i.id, p))).collect()
}

/// `interpreter 2` or `interpreters 0, 1, 3`, when the process has more than one (pystack's
/// "In interpreter N").
fn interpreters_tag(crash: &Crash, py: &[(i64, &PythonThread)]) -> Option<String> {
    if crash.python.as_ref().map_or(true, |p| p.interpreters.len() < 2) || py.is_empty() {
        return None;
    }
    let mut ids: Vec<i64> = py.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let list = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    Some(if ids.len() == 1 { format!("interpreter {list}") } else { format!("interpreters {list}") })
}

/// The thread's `threading` name, from the oldest interpreter that names it: a subinterpreter
/// that imports `threading` calls the thread it runs on its own `MainThread`, the main
/// interpreter knows it as the thread it started.
fn python_name<'a>(py: &[(i64, &'a PythonThread)]) -> Option<&'a str> {
    let named = py.iter().filter_map(|(id, p)| p.python_name.as_deref().map(|n| (*id, n)));
    named.min_by_key(|(id, _)| *id).map(|(_, n)| n)
}

/// The `threading` name of kernel thread `tid`, if Python gave it one.
pub(super) fn python_name_of(crash: &Crash, tid: i32) -> Option<&str> {
    python_name(&python_threads(crash, tid))
}

/// `Thread 12 "name" [MainThread] (crashed, main, holds the GIL, ..., interpreter 2)`.
fn title(t: &Thread, crash: &Crash) -> String {
    let mut tags = Vec::new();
    let py = python_threads(crash, t.tid);
    if t.crashed {
        tags.push("crashed".to_string());
    } else if py.iter().find_map(|(_, p)| p.idle) == Some(true) {
        tags.push("waiting".to_string());
    }
    if t.main {
        tags.push("main".to_string());
    }
    if t.holds_gil {
        tags.push("holds the GIL".to_string());
    }
    if let Some(p) = crash.python.as_ref().filter(|p| p.finalizing_tid == Some(t.tid)) {
        let finalized = p.state == Some(InterpreterState::Finalized);
        tags.push(if finalized { "finalized the interpreter" } else { "finalizing the interpreter" }.to_string());
    }
    if let Some(task) = asyncio::running_task(crash, t.tid) {
        tags.push(format!("running asyncio task '{}'", esc(&task.name)));
    }
    tags.extend(interpreters_tag(crash, &py));
    let mut name = t.name.as_deref().map(|n| format!(" \"{}\"", esc(n))).unwrap_or_default();
    if let Some(pn) = python_name(&py) {
        name.push_str(&format!(" [{}]", esc(pn)));
    }
    if tags.is_empty() {
        format!("Thread {}{}", t.tid, name)
    } else {
        format!("Thread {}{} ({})", t.tid, name, tags.join(", "))
    }
}

fn thread(out: &mut String, t: &Thread, crash: &Crash, limit: Option<usize>, st: &Style) {
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", st.bold(&title(t, crash)));
    frames::write(out, t, limit, st);
}

/// The crashed thread in full, the asyncio tasks, then the others.
pub(super) fn write(out: &mut String, crash: &Crash, st: &Style) {
    for t in crash.threads.iter().filter(|t| t.crashed) {
        thread(out, t, crash, None, st);
    }
    if let Some(tree) = crash.python.as_ref().and_then(|p| p.asyncio.as_ref()).map(asyncio::render) {
        if !tree.is_empty() {
            let _ = writeln!(out);
            out.push_str(&tree);
        }
    }
    // When the crashed thread has no Python frames, the GIL holder's and the main thread's
    // stacks answer "what was Python doing": show them next, then the rest.
    let mut others: Vec<&Thread> = crash.threads.iter().filter(|t| !t.crashed).collect();
    others.sort_by_key(|t| (!(t.holds_gil || t.main), t.tid));
    let mut quiet_native = Vec::new();
    for t in others {
        let boring = !t.has_python() && !t.main && !t.holds_gil && crash.threads.len() > 8;
        if boring {
            quiet_native.push(t);
        } else {
            thread(out, t, crash, Some(OTHER_THREAD_FRAMES), st);
        }
    }
    quiet(out, &quiet_native);
}

/// `Threads 3, 4 "io": native, no Python frames (stacks in the JSON report)`.
fn quiet(out: &mut String, threads: &[&Thread]) {
    if threads.is_empty() {
        return;
    }
    let _ = writeln!(out);
    let names: Vec<String> = threads
        .iter()
        .take(QUIET_NAMED)
        .map(|t| format!("{}{}", t.tid, t.name.as_deref().map(|n| format!(" \"{}\"", esc(n))).unwrap_or_default()))
        .collect();
    let more = if threads.len() > QUIET_NAMED {
        format!(", ... ({} more)", threads.len() - QUIET_NAMED)
    } else {
        String::new()
    };
    let _ = writeln!(out, "Threads {}{}: native, no Python frames (stacks in the JSON report)", names.join(", "), more);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{CrashKind, ProcessInfo, PythonInterpreter, PythonState, SignalReport};

    fn crash(interpreters: Vec<PythonInterpreter>) -> Crash {
        let process = ProcessInfo { pid: 7, ..Default::default() };
        let mut c = Crash::minimal(CrashKind::Dump, "t".into(), process, SignalReport::default(), 7, String::new());
        c.python = Some(PythonState { interpreters, ..Default::default() });
        c
    }

    fn on(tid: i32, name: Option<&str>) -> PythonThread {
        PythonThread { tid: Some(tid), python_name: name.map(Into::into), ..Default::default() }
    }

    #[test]
    fn names_the_interpreters_a_thread_is_in_when_there_are_several() {
        let t = |tid| Thread { tid, ..Default::default() };
        let c = crash(vec![
            PythonInterpreter { id: 3, threads: vec![on(9, Some("MainThread"))], ..Default::default() },
            PythonInterpreter {
                id: 0,
                threads: vec![on(9, Some("Thread-1")), on(7, Some("MainThread"))],
                ..Default::default()
            },
        ]);
        assert_eq!(title(&t(9), &c), "Thread 9 [Thread-1] (interpreters 0, 3)");
        assert_eq!(title(&t(7), &c), "Thread 7 [MainThread] (interpreter 0)");
        // One interpreter: nothing to tell apart.
        let c =
            crash(vec![PythonInterpreter { id: 0, threads: vec![on(7, Some("MainThread"))], ..Default::default() }]);
        assert_eq!(title(&t(7), &c), "Thread 7 [MainThread]");
    }
}
