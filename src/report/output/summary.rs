//! The end-of-run line on stderr when anything crashed: which processes, which signals, which
//! tests, and where the text reports are.

use super::{console, Emitted, Output, OutputError};
use crate::report::model::{Crash, CrashKind};
use crate::report::render::escape::terminal;

pub struct SummaryLine;

impl Output for SummaryLine {
    fn report(&mut self, _crash: &Crash) -> Result<(), OutputError> {
        Ok(())
    }

    fn finish(&mut self, emitted: &[Emitted]) -> Result<(), OutputError> {
        if let Some(line) = line(emitted) {
            console::say(&line);
        }
        Ok(())
    }
}

/// The line (without `crashcatch: `), or None when nothing crashed or timed out.
pub fn line(emitted: &[Emitted]) -> Option<String> {
    let crashes: Vec<&Emitted> = emitted.iter().filter(|e| e.kind == CrashKind::Crash || e.timed_out).collect();
    if crashes.is_empty() {
        return None;
    }
    let files: Vec<String> = emitted
        .iter()
        .flat_map(|r| r.files.iter().filter(|p| p.extension().is_some_and(|e| e == "txt")))
        .map(|p| terminal::text(&p.display().to_string()).into_owned())
        .collect();
    let procs: Vec<String> = crashes
        .iter()
        .map(|c| match &c.test {
            Some(t) => format!("pid {} {} ({})", c.pid, terminal::text(&c.signal), terminal::text(t)),
            None => format!("pid {} {}", c.pid, terminal::text(&c.signal)),
        })
        .collect();
    let timeouts = crashes.iter().filter(|c| c.timed_out).count();
    let n = crashes.len() - timeouts;
    let mut counts = Vec::new();
    if n > 0 {
        counts.push(format!("{n} crash{}", if n == 1 { "" } else { "es" }));
    }
    if timeouts > 0 {
        counts.push(format!("{timeouts} test timeout{}", if timeouts == 1 { "" } else { "s" }));
    }
    Some(format!(
        "{}: {}{}",
        counts.join(", "),
        procs.join(", "),
        if files.is_empty() { String::new() } else { format!("; reports: {}", files.join(" ")) }
    ))
}
