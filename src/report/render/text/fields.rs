//! The report's fields: `  key          value` lines under the headline, about the process (its
//! command, parents, test, task, thread), the fault (reason, message, the faulting frame) and
//! the report itself (diagnosis, fingerprint, file, notes).

use std::fmt::Write;

use super::super::escape::terminal::{line_start, text as esc};
use super::{asyncio, threads, Style};
use crate::report::model::Crash;

/// One field. The value is escaped here (a continuation line, key "", starts with its value).
pub(super) fn field(out: &mut String, k: &str, v: &str) {
    let _ = writeln!(out, "  {k:<12} {}", line_start(v));
}

/// What ran: the command, its parents, the test, the running task, the thread that crashed.
pub(super) fn process(out: &mut String, crash: &Crash) {
    let p = &crash.process;
    if !p.cmdline.is_empty() {
        field(out, "command", &p.cmdline.join(" "));
    }
    if !p.ancestry.is_empty() {
        let chain: Vec<String> = p.ancestry.iter().map(|a| format!("{} ({})", a.pid, a.cmdline.join(" "))).collect();
        field(out, "parents", &chain.join(" <- "));
    }
    if let Some(t) = &p.test {
        field(out, "test", t);
    }
    let crashed = crash.threads.iter().find(|t| t.crashed);
    if let Some(task) = crashed.and_then(|t| asyncio::running_task(crash, t.tid)) {
        field(out, "task", &format!("asyncio task '{}' was running on this thread", task.name));
    }
    if let Some(t) = crashed.filter(|t| !t.main) {
        let mut name = t.name.as_deref().map(|n| format!(" \"{n}\"")).unwrap_or_default();
        if let Some(pn) = threads::python_name_of(crash, t.tid) {
            name.push_str(&format!(" [{pn}]"));
        }
        let kind =
            if crash.python.is_some() && !t.has_python() { ", a native thread with no Python frames" } else { "" };
        field(out, "thread", &format!("{}{}{}", t.tid, name, kind));
    }
}

/// What went wrong: the reason and its message, other threads faulting with it, the faulting
/// frame and its caller outside the system libraries.
pub(super) fn fault(out: &mut String, crash: &Crash, st: &Style) {
    if let Some(c) = &crash.classification {
        field(out, "reason", &c.summary);
        if let Some(m) = &c.message {
            if !c.summary.contains(m.trim_end()) {
                field(out, "message", m.trim_end());
            }
        }
    }
    for f in &crash.also_faulting {
        let at = f.fault_address.map(|a| format!(" (at {a})")).unwrap_or_default();
        field(out, "also", &format!("thread {} got {} at the same time{at}", f.tid, f.signal));
    }
    if let Some(c) = &crash.culprit {
        // Escaped before it is painted: the colour codes are ours.
        let _ = writeln!(out, "  {:<12} {}", "faulted", st.red(&esc(&c.frame.describe())));
        if let Some(o) = &c.first_outside_system {
            field(out, "called from", &o.describe());
        }
        // Named once: when the suspect is the caller just named, the line would repeat it.
        let named = c.first_outside_system.as_ref().map(|f| f.address);
        if let Some(s) = c.suspect.as_ref().filter(|s| Some(s.frame.address) != named) {
            field(out, "suspect", &format!("{}'s code: {}", s.owner, s.frame.describe()));
        }
    }
}

/// What the report adds: the diagnosis, the fingerprint, where it is, what it could not read.
pub(super) fn closing(out: &mut String, crash: &Crash) {
    if let Some(d) = &crash.diagnosis {
        for (i, l) in wrap(d, 88).iter().enumerate() {
            field(out, if i == 0 { "diagnosis" } else { "" }, l);
        }
    }
    if let Some(f) = &crash.fingerprint {
        field(out, "fingerprint", f);
    }
    if let Some(f) = crash.files.first() {
        field(out, "report", f);
    }
    for n in &crash.notes {
        field(out, "note", n);
    }
}

/// `s` in lines of at most `width` characters, broken at white space.
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
