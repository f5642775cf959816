//! The `python` field: the Python line that called into the crash (the user's own, then the
//! innermost one when it differs); for a hang, where the main thread and the GIL holder are
//! waiting; for a crash in a thread with no Python frames, where the others were.

use std::fmt::Write;

use super::super::escape::terminal::{line_start, text as esc};
use super::fields::field;
use crate::report::model::{Crash, CrashKind, PythonFrame};

/// `:12`, or nothing when the line is unknown.
fn colon_line(p: &PythonFrame) -> String {
    p.line.map(|l| format!(":{l}")).unwrap_or_default()
}

/// `  key          file:line in function(arguments)`, then its source line and the caret
/// under the running expression.
fn py_line(out: &mut String, key: &str, p: &PythonFrame) {
    let args = super::variables::arguments(p);
    let _ = writeln!(out, "  {key:<12} {}{} in {}{}", esc(&p.file), colon_line(p), esc(&p.function), esc(&args));
    if let Some(src) = &p.source {
        let _ = writeln!(out, "  {:<12}     {}", "", line_start(src.trim()));
        if let Some(c) = super::variables::caret(p) {
            let _ = writeln!(out, "  {:<12}     {c}", "");
        }
    }
}

pub(super) fn write(out: &mut String, crash: &Crash) {
    match (&crash.python_user_frame, &crash.python_call_site) {
        (Some(user), Some(inner)) => {
            py_line(out, "python", user);
            let (file, func) = (esc(&inner.file), esc(&inner.function));
            let _ = writeln!(out, "  {:<12} via {file}{} in {func}", "", colon_line(inner));
        }
        (None, Some(inner)) => py_line(out, "python", inner),
        _ if crash.kind == CrashKind::Hang => hang(out, crash),
        _ if crash.python.is_some() && crash.kind == CrashKind::Crash => no_python_frames(out, crash),
        _ => {}
    }
}

/// No thread crashed: where the main thread (which runs the test) is, and the GIL holder.
fn hang(out: &mut String, crash: &Crash) {
    for t in crash.threads.iter().filter(|t| t.main || t.holds_gil) {
        if let Some(n) = t.native_frames().next() {
            let who = if t.main { "main thread".to_string() } else { format!("GIL holder {}", t.tid) };
            field(out, "waiting", &format!("{who} in {}", n.describe()));
        }
        if let Some(f) = t.user_frame().or_else(|| t.python_frames().next()) {
            let who = if t.main { "main thread at" } else { "GIL holder at" };
            let (file, func) = (esc(&f.file), esc(&f.function));
            let _ = writeln!(out, "  {:<12} {who} {file}{} in {func}", "python", colon_line(f));
            if let Some(src) = &f.source {
                let _ = writeln!(out, "  {:<12}     {}", "", line_start(src.trim()));
            }
        }
    }
}

/// The crashed thread has no Python frames: say so, and where the GIL holder and the main
/// thread were.
fn no_python_frames(out: &mut String, crash: &Crash) {
    let Some(t) = crash.threads.iter().find(|t| t.crashed) else { return };
    let others: Vec<String> = crash
        .threads
        .iter()
        .filter(|o| !o.crashed && (o.main || o.holds_gil))
        .filter_map(|o| {
            let p = o.user_frame().or_else(|| o.python_frames().next())?;
            let who = if o.holds_gil { "the GIL holder" } else { "the main thread" };
            Some(format!("{who} ({}) was at {}:{} in {}", o.tid, p.file, p.line.unwrap_or(0), p.function))
        })
        .collect();
    let mut s = format!("none: thread {} has no Python frames", t.tid);
    if !others.is_empty() {
        let _ = write!(s, "; {}", others.join("; "));
    }
    field(out, "python", &s);
}
