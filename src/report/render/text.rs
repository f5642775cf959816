//! The text renderer, for people: what died and how, where it faulted, from which Python line,
//! then the crashed thread's stack, then the other threads.

use std::fmt::Write;

use super::asyncio_tree;
use super::escape::terminal::{line_start, text as esc};
use super::Render;
use crate::report::model::*;

/// Colour only on a terminal (and never with NO_COLOR set).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn plain() -> Self {
        Style { color: false }
    }
    pub fn detect_stderr() -> Self {
        // SAFETY: isatty on a file descriptor number.
        let tty = unsafe { libc::isatty(2) } == 1;
        Style {
            color: tty && std::env::var_os("NO_COLOR").is_none() && std::env::var("TERM").map_or(true, |t| t != "dumb"),
        }
    }
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// Frames shown for a thread that did not crash.
const OTHER_THREAD_FRAMES: usize = 24;

fn short(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The Python thread state of kernel thread `tid`, if any.
fn python_thread(crash: &Crash, tid: i32) -> Option<&PythonThread> {
    crash.python.as_ref()?.interpreters.iter().flat_map(|i| i.threads.iter()).find(|p| p.tid == Some(tid))
}

fn thread_title(t: &Thread, crash: &Crash) -> String {
    let mut tags = Vec::new();
    let py = python_thread(crash, t.tid);
    if t.crashed {
        tags.push("crashed".to_string());
    } else if py.and_then(|p| p.idle) == Some(true) {
        tags.push("waiting".to_string());
    }
    if t.main {
        tags.push("main".to_string());
    }
    if t.holds_gil {
        tags.push("holds the GIL".to_string());
    }
    if let Some(p) = &crash.python {
        if p.finalizing_tid == Some(t.tid) {
            tags.push(
                if p.state == Some(InterpreterState::Finalized) {
                    "finalized the interpreter"
                } else {
                    "finalizing the interpreter"
                }
                .to_string(),
            );
        }
    }
    if let Some(task) = asyncio_tree::running_task(crash, t.tid) {
        tags.push(format!("running asyncio task '{}'", esc(&task.name)));
    }
    let mut name = t.name.as_deref().map(|n| format!(" \"{}\"", esc(n))).unwrap_or_default();
    if let Some(pn) = py.and_then(|p| p.python_name.as_deref()) {
        name.push_str(&format!(" [{}]", esc(pn)));
    }
    if tags.is_empty() {
        format!("Thread {}{}", t.tid, name)
    } else {
        format!("Thread {}{} ({})", t.tid, name, tags.join(", "))
    }
}

fn frame_key(f: &Frame) -> String {
    match f {
        // Unknown functions are told apart by their address in the module.
        Frame::Native(n) if n.function.is_none() => format!("n{:?}{:?}", n.module, n.module_offset),
        Frame::Native(n) => format!("n{:?}{:?}{:?}{:?}", n.module, n.function, n.file, n.line),
        Frame::Python(p) => format!("p{}{}{:?}", p.file, p.function, p.line),
    }
}

/// `#7  `, `#12 `, `#40273 `: at least four columns, always a space after.
fn frame_index(n: usize) -> String {
    let s = format!("#{n}");
    if s.len() < 4 {
        format!("{s:<4}")
    } else {
        format!("{s} ")
    }
}

fn render_frame(out: &mut String, f: &Frame, native_index: &mut usize, width_fn: usize, width_mod: usize, st: &Style) {
    match f {
        Frame::Native(n) => {
            // Inlined calls first, numbered like frames (as gdb does).
            for inl in &n.inlined {
                let loc = location(inl.file.as_deref(), inl.line).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {}{:<width_fn$} {:<width_mod$} {}",
                    frame_index(*native_index),
                    esc(&inl.function),
                    esc(n.module_name().unwrap_or("")),
                    format!("{} {}", esc(&loc), st.dim("(inlined)")).trim_start()
                );
                *native_index += 1;
            }
            let func = match &n.function {
                Some(f) => f.clone(),
                None => match (n.module_name(), n.module_offset) {
                    (Some(_), Some(off)) => format!("?? +{off}"),
                    _ => format!("?? {}", n.address),
                },
            };
            let loc = location(n.file.as_deref(), n.line).unwrap_or_default();
            let trust = match n.trust {
                Trust::Scan => " [scanned]",
                Trust::FramePointer => " [fp]",
                _ => "",
            };
            let _ = writeln!(
                out,
                "  {}{:<width_fn$} {:<width_mod$} {}{}",
                frame_index(*native_index),
                esc(&func),
                esc(n.module_name().unwrap_or("??")),
                esc(&loc),
                st.dim(trust)
            );
            *native_index += 1;
        }
        Frame::Python(p) => {
            let line = p.line.map(|l| format!(":{l}")).unwrap_or_default();
            let stale = if p.stale { " (may be stale)" } else { "" };
            let _ = writeln!(out, "      py  {}{} in {}{}", esc(&p.file), line, esc(&p.function), stale);
            if let Some(src) = &p.source {
                let _ = writeln!(out, "              {}", line_start(src.trim()));
                if let Some(c) = caret(p) {
                    let _ = writeln!(out, "              {}", st.dim(&c));
                }
            }
            render_locals(out, p, st);
        }
    }
}

/// The `^^^^` under the running expression (3.11+ columns), as tracebacks print it: from
/// `column` to `end_column` when the expression ends on its line (else to the end of it), left
/// out when it covers the whole line or the columns do not fit the line read.
fn caret(p: &PythonFrame) -> Option<String> {
    let src = p.source.as_deref()?;
    let offset = p.source_offset.unwrap_or(0) as usize;
    let start = (p.column? as usize).checked_sub(offset)?;
    let end = match (p.end_line, p.end_column) {
        (Some(e), Some(c)) if Some(e) == p.line => (c as usize).checked_sub(offset)?,
        _ => src.len(),
    }
    .min(src.len());
    if start >= end || !src.is_char_boundary(start) || !src.is_char_boundary(end) {
        return None;
    }
    if start == 0 && end == src.len() {
        return None;
    }
    let pad = esc(&src[..start]).chars().count();
    let width = esc(&src[start..end]).chars().count().max(1);
    Some(format!("{}{}", " ".repeat(pad), "^".repeat(width)))
}

/// A frame's arguments and locals, one a line.
fn render_locals(out: &mut String, p: &PythonFrame, st: &Style) {
    for l in &p.locals {
        let kind = match l.kind {
            LocalKind::Argument => "arg",
            LocalKind::Local => "local",
            LocalKind::Cell => "cell",
        };
        let _ = writeln!(out, "              {} {} = {}", st.dim(&format!("{kind:<5}")), esc(&l.name), esc(&l.repr));
    }
    if let Some(n) = &p.locals_note {
        let _ = writeln!(out, "              {}", st.dim(&format!("(locals: {})", esc(n))));
    }
}

/// `(raw=None, limit=16)`: a frame's arguments as read, for the header; empty when none were.
fn arguments(p: &PythonFrame) -> String {
    let args: Vec<String> =
        p.locals.iter().filter(|l| l.kind == LocalKind::Argument).map(|l| format!("{}={}", l.name, l.repr)).collect();
    if args.is_empty() {
        return String::new();
    }
    let all = args.join(", ");
    let cut = match all.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &all[..i]),
        None => all,
    };
    format!("({cut})")
}

fn render_frames(out: &mut String, t: &Thread, limit: Option<usize>, st: &Style) {
    let frames = &t.frames;
    let shown = limit.map_or(frames.len(), |l| l.min(frames.len()));
    let mut i = 0;
    let mut native_index = 0usize;
    let width_fn = frames[..shown]
        .iter()
        .filter_map(|f| match f {
            Frame::Native(n) => Some(
                n.function
                    .as_deref()
                    .map_or(12, str::len)
                    .max(n.inlined.iter().map(|i| i.function.len() + 10).max().unwrap_or(0)),
            ),
            _ => None,
        })
        .max()
        .unwrap_or(20)
        .clamp(20, 48);
    let width_mod = frames[..shown]
        .iter()
        .filter_map(|f| match f {
            Frame::Native(n) => n.module_name().map(str::len),
            _ => None,
        })
        .max()
        .unwrap_or(10)
        .clamp(10, 44);
    let gap = t.elided.as_ref().map(|e| e.at);
    let keys: Vec<String> = frames[..shown].iter().map(frame_key).collect();
    // How many times the block frames[i..i+p] repeats back to back from i (not across the gap).
    let repeats = |i: usize, p: usize| -> usize {
        let mut reps = 1;
        while i + (reps + 1) * p <= shown
            && (0..p).all(|k| keys[i + reps * p + k] == keys[i + k])
            && gap.map_or(true, |g| !(i < g && g < i + (reps + 1) * p))
        {
            reps += 1;
        }
        reps
    };
    let native_count = |f: &Frame| match f {
        Frame::Native(n) => 1 + n.inlined.len(),
        Frame::Python(_) => 0,
    };
    while i < shown {
        if let Some(e) = &t.elided {
            if i == e.at && e.count > 0 {
                let py =
                    if e.python_count > 0 { format!(" (and {} Python frames)", e.python_count) } else { String::new() };
                let _ = writeln!(out, "  {}", st.dim(&format!("... {} frames not shown{py} ...", e.count)));
                native_index += e.count as usize;
            }
        }
        // Fold deep recursion: the same frame, or the same short cycle of frames (a Python
        // function and the interpreter's frames that call it), repeated back to back.
        let (mut period, mut reps) = (1, repeats(i, 1));
        for p in 2..=6 {
            let r = repeats(i, p);
            if r >= 3 && r * p > reps * period {
                (period, reps) = (p, r);
            }
        }
        for f in &frames[i..i + period] {
            render_frame(out, f, &mut native_index, width_fn, width_mod, st);
        }
        if reps > 1 {
            let more = reps - 1;
            let msg = if period == 1 {
                format!("(the same frame {more} more times)")
            } else {
                format!("(the {period} frames above repeat {more} more times)")
            };
            let _ = writeln!(out, "      {}", st.dim(&msg));
            native_index += more * frames[i..i + period].iter().map(native_count).sum::<usize>();
        }
        i += period * reps;
    }
    if shown < frames.len() {
        let _ = writeln!(out, "  {}", st.dim(&format!("... {} more frames", frames.len() - shown)));
    }
    if let Some(m) = &t.merge {
        if m.kind == MergeKind::SideBySide && !m.python_frames.is_empty() {
            let why = m.reason.as_deref().unwrap_or("the native and Python stacks did not line up");
            let _ = writeln!(out, "  Python stack (not merged: {}):", esc(why));
            for p in &m.python_frames {
                let line = p.line.map(|l| format!(":{l}")).unwrap_or_default();
                let _ = writeln!(out, "      py  {}{} in {}", esc(&p.file), line, esc(&p.function));
            }
        }
    }
    if let Some(e) = &t.unwind_error {
        let _ = writeln!(out, "  {}", st.dim(&format!("(stack ends: {})", esc(e))));
    }
}

/// The text report, for people.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    pub style: Style,
}

impl Render for Text {
    fn render(&self, crash: &Crash) -> String {
        render(crash, self.style)
    }
}

fn render(crash: &Crash, st: Style) -> String {
    let mut out = String::new();
    let p = &crash.process;
    let prog = p.exe.as_deref().map(short).or_else(|| p.cmdline.first().map(|s| short(s))).unwrap_or("process");
    let sig = &crash.signal;
    let code = match &sig.code_name {
        Some(n) => format!(" ({}: {})", n, sig.description),
        None => String::new(),
    };
    let at = sig.fault_address.map(|a| format!(" at {a}")).unwrap_or_default();
    let verb = match &sig.terminated_by {
        Some(t) => format!("crashed with {}{}{} and was killed by {}", sig.name, code, at, t),
        None => format!("was killed by {}{}{}", sig.name, code, at),
    };
    let headline = match crash.kind {
        CrashKind::Dump => format!("crashcatch: {prog} (pid {}), every thread's stack at {}", p.pid, crash.time),
        CrashKind::Hang if crash.test_timeout.is_some() => {
            let t = crash.test_timeout.as_ref().map(|t| (t.elapsed_s, t.action.words())).unwrap_or_default();
            format!("crashcatch: {prog} (pid {}) ran one test for {:.0} s, past --test-timeout; {}", p.pid, t.0, t.1)
        }
        CrashKind::Hang => {
            format!("crashcatch: {prog} (pid {}) is still running at the hang timeout; its stacks:", p.pid)
        }
        CrashKind::Crash => format!("crashcatch: {prog} (pid {}) {verb}", p.pid),
    };
    // Every part of it may come from the target (the program's name) or its siginfo.
    let _ = writeln!(out, "{}", st.bold(&esc(&headline)));
    // Values are escaped here (a continuation line, key "", starts with its value).
    let field = |out: &mut String, k: &str, v: &str| {
        let _ = writeln!(out, "  {k:<12} {}", line_start(v));
    };
    if !p.cmdline.is_empty() {
        field(&mut out, "command", &p.cmdline.join(" "));
    }
    if !p.ancestry.is_empty() {
        let chain: Vec<String> = p.ancestry.iter().map(|a| format!("{} ({})", a.pid, a.cmdline.join(" "))).collect();
        field(&mut out, "parents", &chain.join(" <- "));
    }
    if let Some(t) = &p.test {
        field(&mut out, "test", t);
    }
    if let Some(task) = crash.threads.iter().find(|t| t.crashed).and_then(|t| asyncio_tree::running_task(crash, t.tid))
    {
        field(&mut out, "task", &format!("asyncio task '{}' was running on this thread", task.name));
    }
    if let Some(t) = crash.threads.iter().find(|t| t.crashed) {
        if !t.main {
            let name = t.name.as_deref().map(|n| format!(" \"{n}\"")).unwrap_or_default();
            let kind =
                if crash.python.is_some() && !t.has_python() { ", a native thread with no Python frames" } else { "" };
            field(&mut out, "thread", &format!("{}{}{}", t.tid, name, kind));
        }
    }
    if let Some(c) = &crash.classification {
        field(&mut out, "reason", &c.summary);
        if let Some(m) = &c.message {
            if !c.summary.contains(m.trim_end()) {
                field(&mut out, "message", m.trim_end());
            }
        }
    }
    for f in &crash.also_faulting {
        field(
            &mut out,
            "also",
            &format!(
                "thread {} got {} at the same time{}",
                f.tid,
                f.signal,
                f.fault_address.map(|a| format!(" (at {a})")).unwrap_or_default()
            ),
        );
    }
    if let Some(c) = &crash.culprit {
        // Escaped before it is painted: the colour codes are ours.
        let _ = writeln!(out, "  {:<12} {}", "faulted", st.red(&esc(&c.frame.describe())));
        if let Some(o) = &c.first_outside_system {
            field(&mut out, "called from", &o.describe());
        }
        // Named once: when the suspect is the caller just named, the line would repeat it.
        let named = c.first_outside_system.as_ref().map(|f| f.address);
        if let Some(s) = c.suspect.as_ref().filter(|s| Some(s.frame.address) != named) {
            field(&mut out, "suspect", &format!("{}'s code: {}", s.owner, s.frame.describe()));
        }
    }
    let crashed_thread = crash.threads.iter().find(|t| t.crashed);
    let py_line = |out: &mut String, key: &str, p: &PythonFrame| {
        let line = p.line.map(|l| format!(":{l}")).unwrap_or_default();
        let _ = writeln!(out, "  {key:<12} {}{} in {}{}", esc(&p.file), line, esc(&p.function), esc(&arguments(p)));
        if let Some(src) = &p.source {
            let _ = writeln!(out, "  {:<12}     {}", "", line_start(src.trim()));
            if let Some(c) = caret(p) {
                let _ = writeln!(out, "  {:<12}     {}", "", st.dim(&c));
            }
        }
    };
    match (&crash.python_user_frame, &crash.python_call_site) {
        (Some(user), Some(inner)) => {
            py_line(&mut out, "python", user);
            let line = inner.line.map(|l| format!(":{l}")).unwrap_or_default();
            let _ = writeln!(out, "  {:<12} via {}{} in {}", "", esc(&inner.file), line, esc(&inner.function));
        }
        (None, Some(inner)) => py_line(&mut out, "python", inner),
        _ if crash.kind == CrashKind::Hang => {
            // No thread crashed: where the main thread (which runs the test) is, and the GIL holder.
            for t in crash.threads.iter().filter(|t| t.main || t.holds_gil) {
                if let Some(n) = t.native_frames().next() {
                    let who = if t.main { "main thread".to_string() } else { format!("GIL holder {}", t.tid) };
                    field(&mut out, "waiting", &format!("{who} in {}", n.describe()));
                }
                if let Some(f) = t.user_frame().or_else(|| t.python_frames().next()) {
                    let who = if t.main { "main thread at" } else { "GIL holder at" };
                    let line = f.line.map(|l| format!(":{l}")).unwrap_or_default();
                    let (file, func) = (esc(&f.file), esc(&f.function));
                    let _ = writeln!(out, "  {:<12} {who} {file}{line} in {func}", "python");
                    if let Some(src) = &f.source {
                        let _ = writeln!(out, "  {:<12}     {}", "", line_start(src.trim()));
                    }
                }
            }
        }
        _ => {
            if crash.python.is_some() && crash.kind == CrashKind::Crash {
                if let Some(t) = crashed_thread {
                    let others: Vec<String> = crash
                        .threads
                        .iter()
                        .filter(|o| !o.crashed && (o.main || o.holds_gil))
                        .filter_map(|o| {
                            let p = o.user_frame().or_else(|| o.python_frames().next())?;
                            let who = if o.holds_gil { "the GIL holder" } else { "the main thread" };
                            Some(format!(
                                "{who} ({}) was at {}:{} in {}",
                                o.tid,
                                p.file,
                                p.line.unwrap_or(0),
                                p.function
                            ))
                        })
                        .collect();
                    let mut s = format!("none: thread {} has no Python frames", t.tid);
                    if !others.is_empty() {
                        let _ = write!(s, "; {}", others.join("; "));
                    }
                    field(&mut out, "python", &s);
                }
            }
        }
    }
    if let Some(py) = &crash.python {
        let mut s = format!("CPython {}", py.version.as_deref().unwrap_or("(version unknown)"));
        match py.state {
            Some(InterpreterState::Finalizing) => {
                let _ = write!(s, ", finalizing");
                if let Some(t) = py.finalizing_tid {
                    let _ = write!(s, " (thread {t} runs Py_FinalizeEx)");
                }
            }
            Some(other) => {
                let _ = write!(s, ", {}", other.words());
            }
            None => {}
        }
        match py.gil_holder_tid {
            Some(t) => {
                let _ = write!(s, "; thread {t} holds the GIL");
            }
            None => {
                let _ = write!(s, "; no thread holds the GIL");
            }
        }
        if py.interpreters.iter().any(|i| i.gc_collecting == Some(true)) {
            let _ = write!(s, "; the garbage collector is running");
        }
        field(&mut out, "interpreter", &s);
    }
    if let Some(d) = &crash.diagnosis {
        let mut first = true;
        for l in wrap(d, 88) {
            field(&mut out, if first { "diagnosis" } else { "" }, &l);
            first = false;
        }
    }
    if let Some(f) = &crash.fingerprint {
        field(&mut out, "fingerprint", f);
    }
    if let Some(f) = crash.files.first() {
        field(&mut out, "report", f);
    }
    for n in &crash.notes {
        field(&mut out, "note", n);
    }

    // The crashed thread in full, then the others.
    for t in crash.threads.iter().filter(|t| t.crashed) {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", st.bold(&thread_title(t, crash)));
        render_frames(&mut out, t, None, &st);
    }
    if let Some(tree) = crash.python.as_ref().and_then(|p| p.asyncio.as_ref()).map(asyncio_tree::render) {
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
            continue;
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", st.bold(&thread_title(t, crash)));
        render_frames(&mut out, t, Some(OTHER_THREAD_FRAMES), &st);
    }
    if !quiet_native.is_empty() {
        let _ = writeln!(out);
        let names: Vec<String> = quiet_native
            .iter()
            .take(6)
            .map(|t| format!("{}{}", t.tid, t.name.as_deref().map(|n| format!(" \"{}\"", esc(n))).unwrap_or_default()))
            .collect();
        let more =
            if quiet_native.len() > 6 { format!(", ... ({} more)", quiet_native.len() - 6) } else { String::new() };
        let _ =
            writeln!(out, "Threads {}{}: native, no Python frames (stacks in the JSON report)", names.join(", "), more);
    }
    out
}

fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for w in s.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + w.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}
