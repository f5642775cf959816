//! Plain-language explanations of well-known crash patterns, from the finished report.

use crate::report::model::*;

/// Functions a native thread calls to enter the interpreter.
const ENTER_PYTHON: &[&str] = &[
    "PyGILState_Ensure",
    "PyThreadState_New",
    "_PyThreadState_New",
    "new_threadstate",
    "PyEval_RestoreThread",
    "PyEval_AcquireThread",
    "take_gil",
    "_PyThreadState_Swap",
    "PyThreadState_Swap",
    "tstate_activate",
    "_PyEval_AcquireLock",
    "drop_gil",
];

fn base(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// The first native frame in a module that is neither a system library nor the interpreter:
/// the extension or library whose code called in.
fn first_foreign(t: &Thread) -> Option<&NativeFrame> {
    t.native_frames().find(|n| n.module.as_deref().is_some_and(|m| !is_system_module(m) && !is_python_runtime(m)))
}

pub(crate) fn diagnose(c: &Crash) -> Option<String> {
    let crashed = c.threads.iter().find(|t| t.crashed)?;
    let kind = c.classification.as_ref().map(|k| k.kind);
    let py = c.python.as_ref();

    // A native thread entering a finalized interpreter.
    let enters = crashed.native_frames().take(12).find_map(|n| {
        let f = n.function.as_deref().map(base)?;
        ENTER_PYTHON.contains(&f).then_some(f)
    });
    if let Some(enter) = enters {
        let finalized = py.and_then(|p| p.state).is_some_and(InterpreterState::is_shutting_down);
        let main_exiting = c.threads.iter().filter(|t| t.main && !t.crashed).any(|t| {
            t.native_frames().any(|n| {
                n.function.as_deref().is_some_and(|f| {
                    let f = base(f);
                    f == "__run_exit_handlers"
                        || f == "exit"
                        || f == "Py_FinalizeEx"
                        || f == "Py_Finalize"
                        || f == "_Py_Finalize"
                })
            })
        });
        if !crashed.has_python() && (finalized || main_exiting) {
            let who = first_foreign(crashed)
                .map(|n| {
                    let lib = n.module_name().unwrap_or("a native library");
                    match &n.function {
                        Some(f) => format!("{f} in {lib}"),
                        None => lib.to_string(),
                    }
                })
                .unwrap_or_else(|| "a native library's thread".to_string());
            return Some(format!(
                "a native thread called into Python ({enter}) after the interpreter was finalized. \
                 A callback from {who} outlived the interpreter: close the client or stop its \
                 background work before the program exits (for example in an atexit hook)."
            ));
        }
    }

    if kind == Some(ClassificationKind::StackOverflow) {
        // A stack this deep is usually not merged (the native stack is elided in the middle,
        // the Python walk stops at its frame limit): count the Python frames kept beside it too.
        let pys: Vec<&PythonFrame> = crashed.python_frames().collect();
        if pys.len() >= 50 {
            // The most repeated Python function.
            let mut counts: std::collections::HashMap<(&str, &str), usize> = Default::default();
            for p in &pys {
                *counts.entry((p.file.as_str(), p.function.as_str())).or_default() += 1;
            }
            let ((file, func), n) = counts.into_iter().max_by_key(|e| e.1)?;
            // Frames left out with the middle of the native stack are that recursion too.
            let n = n as u64 + crashed.elided.as_ref().map_or(0, |e| e.python_count);
            return Some(format!(
                "stack overflow from deep recursion in Python: {func} ({file}) is on the stack at least {n} times. \
                 The C stack ran out before Python's recursion limit was reached (a raised \
                 sys.setrecursionlimit, or large C frames per call): make the recursion iterative \
                 or bounded."
            ));
        }
        let first = crashed.native_frames().next()?;
        let f = first.function.as_deref()?;
        let n = crashed.native_frames().filter(|x| x.function.as_deref() == Some(f)).count() as u64
            + crashed.elided.as_ref().map_or(0, |e| e.count);
        if n > 100 {
            return Some(format!(
                "stack overflow from unbounded recursion in native code: {f} ({}) calls itself \
                 over and over.",
                first.module_name().unwrap_or("?")
            ));
        }
        return None;
    }

    if kind == Some(ClassificationKind::NullPointerDereference) {
        let culprit = c.culprit.as_ref()?;
        if culprit.frame.in_system_library() && crashed.has_python() {
            // `__strlen_evex` → `strlen`: the libc entry point the caller used.
            let func = match culprit.frame.function.as_deref().map(base) {
                Some(f) => {
                    let f = f.trim_start_matches("__").split('_').next().filter(|s| !s.is_empty()).unwrap_or(f);
                    format!("the C function {f}")
                }
                None => format!("a C function in {}", culprit.frame.module_name().unwrap_or("a system library")),
            };
            let site = crashed
                .user_frame()
                .or(c.python_call_site.as_ref())
                .map(|p| format!(" at {}:{} in {}", p.file, p.line.unwrap_or(0), p.function))
                .unwrap_or_default();
            let via =
                culprit.first_outside_system.as_ref().map(|n| format!(" through {}", n.describe())).unwrap_or_default();
            return Some(format!(
                "a NULL pointer was passed from Python{site} into {func}{via}: \
                 check the arguments at that line (a None, 0 or empty handle where a pointer was expected)."
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn native(function: &str) -> Frame {
        Frame::Native(NativeFrame {
            address: Hex(0x1000),
            module: Some("/usr/lib/libpython3.10.so.1.0".into()),
            module_offset: None,
            function: Some(function.into()),
            function_offset: None,
            file: None,
            line: None,
            inlined: vec![],
            trust: Trust::Cfi,
            sp: None,
        })
    }

    fn python(function: &str) -> PythonFrame {
        PythonFrame { file: "/app/rec.py".into(), function: function.into(), line: Some(4), ..Default::default() }
    }

    fn overflow(thread: Thread) -> Crash {
        Crash {
            schema_version: SCHEMA_VERSION,
            kind: CrashKind::Crash,
            fingerprint: None,
            tool: Tool::default(),
            time: String::new(),
            process: ProcessInfo::default(),
            signal: SignalReport::default(),
            classification: Some(Classification {
                kind: ClassificationKind::StackOverflow,
                summary: String::new(),
                message: None,
            }),
            culprit: None,
            python_call_site: None,
            python_user_frame: None,
            diagnosis: None,
            crashed_tid: thread.tid,
            test_timeout: None,
            also_faulting: vec![],
            threads: vec![thread],
            python: None,
            modules: vec![],
            notes: vec![],
            timings: Timings::default(),
            files: vec![],
        }
    }

    #[test]
    fn deep_python_recursion_kept_side_by_side_is_python_recursion() {
        // What a real overflow looks like: the native stack elided in the middle, so the
        // eval-loop count disagrees with the Python stack and the two are kept side by side.
        let frames: Vec<Frame> = (0..250)
            .map(|i| native(if i % 2 == 0 { "_PyFrame_New_NoTrack" } else { "_PyEval_EvalFrameDefault" }))
            .collect();
        let t = Thread {
            tid: 1,
            crashed: true,
            main: true,
            frames,
            elided: Some(Elided { at: 200, count: 40000, python_count: 0 }),
            merge: Some(MergeInfo {
                kind: MergeKind::SideBySide,
                reason: Some("120 eval-loop frame(s) in the native stack but 4096 Python entry frame(s)".into()),
                python_frames: (0..4096).map(|_| python("down")).collect(),
            }),
            ..Default::default()
        };
        let d = diagnose(&overflow(t)).expect("a diagnosis");
        assert!(d.contains("deep recursion in Python: down (/app/rec.py) is on the stack at least 4096 times"), "{d}");
    }
}
