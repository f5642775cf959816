//! The report's first line: which program, which pid, and what happened to it (the signal, the
//! hang timeout, the test timeout, or a dump on request).

use std::fmt::Write;

use super::super::escape::terminal::text as esc;
use super::Style;
use crate::report::model::{Crash, CrashKind};

fn short(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `crashcatch: python3 (pid 7) was killed by SIGSEGV (SEGV_MAPERR: address not mapped) at 0x0`.
fn headline(crash: &Crash) -> String {
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
    match crash.kind {
        CrashKind::Dump => format!("crashcatch: {prog} (pid {}), every thread's stack at {}", p.pid, crash.time),
        CrashKind::Hang if crash.test_timeout.is_some() => {
            let t = crash.test_timeout.as_ref().map(|t| (t.elapsed_s, t.action.words())).unwrap_or_default();
            format!("crashcatch: {prog} (pid {}) ran one test for {:.0} s, past --test-timeout; {}", p.pid, t.0, t.1)
        }
        CrashKind::Hang => {
            format!("crashcatch: {prog} (pid {}) is still running at the hang timeout; its stacks:", p.pid)
        }
        CrashKind::Crash => format!("crashcatch: {prog} (pid {}) {verb}", p.pid),
    }
}

/// The headline, in bold.
pub(super) fn write(out: &mut String, crash: &Crash, st: &Style) {
    // Every part of it may come from the target (the program's name) or its siginfo.
    let _ = writeln!(out, "{}", st.bold(&esc(&headline(crash))));
}
