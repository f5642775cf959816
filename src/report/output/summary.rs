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
        let crashes: Vec<&Emitted> = emitted.iter().filter(|e| e.kind == CrashKind::Crash).collect();
        if crashes.is_empty() {
            return Ok(());
        }
        let files: Vec<String> = emitted
            .iter()
            .flat_map(|r| r.files.iter().filter(|p| p.extension().is_some_and(|e| e == "txt")))
            .map(|p| p.display().to_string())
            .collect();
        let procs: Vec<String> = crashes
            .iter()
            .map(|c| match &c.test {
                Some(t) => format!("pid {} {} ({})", c.pid, c.signal, terminal::text(t)),
                None => format!("pid {} {}", c.pid, c.signal),
            })
            .collect();
        let n = crashes.len();
        console::say(&format!(
            "{n} crash{}: {}{}",
            if n == 1 { "" } else { "es" },
            procs.join(", "),
            if files.is_empty() { String::new() } else { format!("; reports: {}", files.join(" ")) }
        ));
        Ok(())
    }
}
