//! One line for a crash, for annotations and JUnit messages:
//! `SIGSEGV in crash_here in libfoo.so (foo.c:3): NULL pointer dereference; Python t.py:8 in f`.

use std::fmt::Write as _;

use crate::report::model::{Crash, PythonFrame};

pub(crate) fn one_line(c: &Crash) -> String {
    if let Some(t) = &c.test_timeout {
        let mut s = format!("test ran longer than {} s ({})", t.limit_s, t.action.words());
        let main = c.threads.iter().find(|t| t.main);
        if let Some(p) = main.and_then(|m| m.user_frame().or_else(|| m.python_frames().next())) {
            let _ = write!(s, "; Python {}:{} in {}", p.file, p.line.unwrap_or(0), p.function);
        }
        return s;
    }
    let mut s = c.signal.name.clone();
    if let Some(cu) = &c.culprit {
        let _ = write!(s, " in {}", cu.frame.describe());
        if let Some(o) = &cu.first_outside_system {
            let _ = write!(s, ", called from {}", o.describe());
        }
    }
    if let Some(cl) = &c.classification {
        let _ = write!(s, ": {}", cl.summary);
    }
    if let Some(p) = python_site(c) {
        let _ = write!(s, "; Python {}:{} in {}", p.file, p.line.unwrap_or(0), p.function);
    }
    if let Some(f) = &c.fingerprint {
        let _ = write!(s, "; fingerprint {f}");
    }
    s
}

/// The Python line to point at: the user's own frame when the innermost one is in the standard
/// library or an installed package (ctypes' `string_at`), else the innermost.
pub(crate) fn python_site(c: &Crash) -> Option<&PythonFrame> {
    c.python_user_frame.as_ref().or(c.python_call_site.as_ref())
}
