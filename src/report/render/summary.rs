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

/// Where a test that ran past `--test-timeout` was: the innermost frame in the test's own file
/// (the test id names it, relative to pytest's rootdir) on the thread running it (the main
/// thread first), the test function's own frame preferred; else the main thread's innermost
/// frame of the user's code. None for other reports.
pub fn test_site(c: &Crash) -> Option<&PythonFrame> {
    let t = c.test_timeout.as_ref()?;
    let id = t.test.rsplit_once(" (").map_or(t.test.as_str(), |x| x.0);
    let file = id.split("::").next().unwrap_or("");
    let function = id.rsplit("::").next().unwrap_or("");
    let function = function.split('[').next().unwrap_or(function);
    let main = c.threads.iter().filter(|t| t.main);
    let others = c.threads.iter().filter(|t| !t.main);
    let ordered: Vec<&crate::report::model::Thread> = main.chain(others).collect();
    let in_file = |p: &&PythonFrame| {
        !file.is_empty() && (p.file == file || p.file.strip_suffix(file).is_some_and(|r| r.ends_with('/')))
    };
    let named = |p: &&PythonFrame| p.function == function || p.function.ends_with(&format!(".{function}"));
    let frames = || ordered.iter().flat_map(|t| t.python_frames());
    frames()
        .filter(in_file)
        .find(named)
        .or_else(|| frames().find(in_file))
        .or_else(|| ordered.first().and_then(|m| m.user_frame()))
}
