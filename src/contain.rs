//! The supervisor's panic policy: panics never end it, since PTRACE_O_EXITKILL means a
//! crashcatch that dies takes every traced process with it. Each report is built (capture) and
//! written (report::output) inside [`contain`]; a panic there becomes an error string (the
//! caller writes a minimal report with it and goes on), and the panic hook prints one line
//! instead of a backtrace. Shared by the stages that run under the supervisor, so it belongs to
//! none of them.
//!
//! `CRASHCATCH_TEST_PANIC_IN=capture|render` (read once, at start) injects a panic into that
//! stage, for the tests that prove it (tests/hostile_output.rs).

use std::panic::{self, AssertUnwindSafe};
use std::sync::OnceLock;

/// Where a test may inject a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Building the report from the stopped process.
    Capture,
    /// Rendering and writing it.
    Render,
}

static INJECT: OnceLock<Option<Stage>> = OnceLock::new();

fn injected() -> Option<Stage> {
    *INJECT.get_or_init(|| match std::env::var("CRASHCATCH_TEST_PANIC_IN").as_deref() {
        Ok("capture") => Some(Stage::Capture),
        Ok("render") => Some(Stage::Render),
        _ => None,
    })
}

/// Panics if a test asked for a panic in `stage`.
pub(crate) fn inject(stage: Stage) {
    if injected() == Some(stage) {
        panic!(
            "injected panic (CRASHCATCH_TEST_PANIC_IN={})",
            if stage == Stage::Capture { "capture" } else { "render" }
        );
    }
}

/// Installs the one-line panic hook, which prints through `say` (crashcatch's own stderr), and
/// reads the test switch. Call once, first thing.
pub fn install(say: fn(&str)) {
    injected();
    panic::set_hook(Box::new(move |info| {
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        say(&format!("internal error: {}{at}", message(info.payload())));
    }));
}

/// Runs `f`; a panic in it is returned as its message.
pub fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| message(p.as_ref()))
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(contain(|| 7), Ok(7));
        let r: Result<(), String> = contain(|| panic!("boom {}", 1));
        assert_eq!(r, Err("boom 1".to_string()));
    }
}
