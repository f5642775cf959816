//! A thread's merged stack as a Sentry stack trace: oldest frame first, native frames with their
//! address, module, function and line, inlined calls as frames of their own at the same address,
//! Python frames with `platform: "python"`, and `in_app` by the rule the fingerprint uses: a
//! native frame is the application's when it is outside the system libraries and the
//! interpreter, a Python frame when it is the user's own code (not the standard library or an
//! installed package).

use super::event::{Frame, Stacktrace};
use crate::report::model::{
    is_python_runtime, project_path, short_source, Frame as ModelFrame, NativeFrame, PythonFrame, Thread,
};

/// Longest function name or path kept (trackers keep 256 characters; the rest only costs size).
const MAX_NAME: usize = 1024;

/// At most this many frames per stack trace (what Sentry keeps): the innermost 4/5, the
/// outermost 1/5, and a frame saying how many were left out between them.
pub const MAX_FRAMES: usize = 250;

/// The stack trace of `thread` with at most `max` frames; `None` when it has no frame.
/// `registers`: the thread's registers go with it (the crashed thread); `snapshot`: it is a
/// thread caught as it was, not the one that raised the event.
pub fn stacktrace(thread: &Thread, max: usize, registers: bool, snapshot: bool) -> Option<Stacktrace> {
    let mut inner_first = innermost_first(thread);
    if inner_first.is_empty() {
        return None;
    }
    cap(&mut inner_first, max.max(2));
    inner_first.reverse();
    let registers = match (&thread.registers, registers) {
        (Some(r), true) => r.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
        _ => Default::default(),
    };
    Some(Stacktrace { frames: inner_first, registers, instruction_addr_adjustment: "all_but_first", snapshot })
}

/// The thread's frames, innermost first: the merged stack, with the Python stack that could not
/// be merged put where its eval loop runs (or, when no eval loop is named, as the outermost
/// frames: a stripped interpreter's), and a marker where frames were left out.
fn innermost_first(thread: &Thread) -> Vec<Frame> {
    let mut out = Vec::new();
    let apart: &[PythonFrame] = thread.merge.as_ref().map_or(&[], |m| &m.python_frames);
    let mut apart_placed = apart.is_empty();
    for (i, f) in thread.frames.iter().enumerate() {
        match f {
            ModelFrame::Native(n) => {
                if !apart_placed && is_eval_loop(n) {
                    out.extend(apart.iter().map(python));
                    apart_placed = true;
                }
                native(n, &mut out);
            }
            ModelFrame::Python(p) => out.push(python(p)),
        }
        if let Some(e) = thread.elided.as_ref().filter(|e| e.at == i && e.count > 0) {
            let python = if e.python_count > 0 { format!(" and {} Python", e.python_count) } else { String::new() };
            out.push(marker(format!("[{} native{python} frames left out by crashcatch]", e.count)));
        }
    }
    if !apart_placed {
        out.extend(apart.iter().map(python));
    }
    out
}

/// Keeps the innermost 4/5 and the outermost 1/5 of `max`, with a marker between them.
fn cap(frames: &mut Vec<Frame>, max: usize) {
    if frames.len() <= max {
        return;
    }
    let outer = (max - 1) / 5;
    let inner = max - 1 - outer;
    let dropped = frames.len() - inner - outer;
    let tail = frames.split_off(frames.len() - outer);
    frames.truncate(inner);
    frames.push(marker(format!("[{dropped} frames left out to fit the tracker]")));
    frames.extend(tail);
}

/// At most [`MAX_NAME`] characters.
fn text(s: &str) -> String {
    match s.char_indices().nth(MAX_NAME) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

fn marker(text: String) -> Frame {
    Frame { function: Some(text), in_app: false, ..Frame::default() }
}

fn is_eval_loop(f: &NativeFrame) -> bool {
    f.function
        .as_deref()
        .is_some_and(|n| n.starts_with("_PyEval_EvalFrameDefault") || n.starts_with("PyEval_EvalFrameEx"))
}

/// The application's own native code: in a known module outside the system libraries and the
/// interpreter (the frames the fingerprint looks for).
pub fn native_in_app(f: &NativeFrame) -> bool {
    f.module.as_deref().is_some_and(|m| !f.in_system_library() && !is_python_runtime(m))
}

/// One native frame, innermost first: its inlined calls, then the function they are inlined into.
fn native(n: &NativeFrame, out: &mut Vec<Frame>) {
    let in_app = native_in_app(n);
    let addr = Some(n.address.to_string());
    let package = n.module.as_deref().map(text);
    for inl in &n.inlined {
        out.push(Frame {
            function: Some(text(&inl.function)),
            package: package.clone(),
            filename: inl.file.as_deref().map(|f| text(short_source(f))),
            abs_path: inl.file.as_deref().filter(|f| f.starts_with('/')).map(text),
            lineno: inl.line,
            in_app,
            instruction_addr: addr.clone(),
            ..Frame::default()
        });
    }
    out.push(Frame {
        function: n.function.as_deref().map(text),
        package,
        filename: n.file.as_deref().map(|f| text(short_source(f))),
        abs_path: n.file.as_deref().filter(|f| f.starts_with('/')).map(text),
        lineno: n.line,
        in_app,
        instruction_addr: addr,
        symbol_addr: n.function_offset.map(|o| crate::report::model::Hex(n.address.0.wrapping_sub(o.0)).to_string()),
        ..Frame::default()
    });
}

fn python(p: &PythonFrame) -> Frame {
    Frame {
        platform: Some("python"),
        function: Some(text(&p.function)),
        filename: Some(text(&project_path(&p.file, None))),
        abs_path: Some(text(&p.file)).filter(|f| f.starts_with('/')),
        lineno: p.line,
        context_line: p.source.as_deref().map(|s| text(s.trim_end())).filter(|s| !s.is_empty()),
        in_app: p.is_user_code(),
        ..Frame::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Elided, Hex, InlinedFrame, MergeInfo, MergeKind, Trust};

    fn nf(module: &str, function: &str, address: u64) -> ModelFrame {
        let mut f = NativeFrame::at(address, Trust::Cfi);
        f.module = Some(module.into());
        f.function = Some(function.into());
        f.function_offset = Some(Hex(0x10));
        ModelFrame::Native(f)
    }

    fn py(file: &str, function: &str, line: u32) -> PythonFrame {
        PythonFrame { file: file.into(), function: function.into(), line: Some(line), ..PythonFrame::default() }
    }

    fn names(st: &Stacktrace) -> Vec<String> {
        st.frames.iter().map(|f| f.function.clone().unwrap_or_default()).collect()
    }

    #[test]
    fn oldest_first_with_inlined_calls_and_in_app() {
        let mut top = NativeFrame::at(0x1000, Trust::Context);
        top.module = Some("/usr/lib/libc.so.6".into());
        top.function = Some("__strlen_evex".into());
        let mut ext = NativeFrame::at(0x2000, Trust::Cfi);
        ext.module = Some("/site/ext.cpython-311-x86_64-linux-gnu.so".into());
        ext.function = Some("outer".into());
        ext.function_offset = Some(Hex(0x20));
        ext.inlined = vec![InlinedFrame { function: "helper".into(), file: Some("/src/ext.c".into()), line: Some(7) }];
        let t = Thread {
            tid: 1,
            crashed: true,
            main: true,
            frames: vec![
                ModelFrame::Native(top),
                ModelFrame::Native(ext),
                ModelFrame::Python(py("/proj/tests/t.py", "test_a", 3)),
                nf("/usr/lib/libpython3.11.so.1.0", "Py_RunMain", 0x3000),
            ],
            ..Thread::default()
        };
        let st = stacktrace(&t, MAX_FRAMES, true, false).unwrap();
        assert_eq!(names(&st), ["Py_RunMain", "test_a", "outer", "helper", "__strlen_evex"]);
        let in_app: Vec<bool> = st.frames.iter().map(|f| f.in_app).collect();
        assert_eq!(in_app, [false, true, true, true, false]);
        assert_eq!(st.frames[1].platform, Some("python"));
        assert_eq!(st.frames[2].instruction_addr.as_deref(), Some("0x2000"));
        assert_eq!(st.frames[3].instruction_addr.as_deref(), Some("0x2000"));
        assert_eq!(st.frames[2].symbol_addr.as_deref(), Some("0x1fe0"));
        assert_eq!(st.frames[3].symbol_addr, None);
        assert_eq!(st.frames[3].filename.as_deref(), Some("src/ext.c"));
    }

    #[test]
    fn python_kept_apart_goes_where_its_eval_loop_runs() {
        let t = Thread {
            tid: 1,
            frames: vec![
                nf("/lib/libfoo.so", "crash", 0x10),
                nf("/usr/bin/python3.11", "_PyEval_EvalFrameDefault", 0x20),
                nf("/usr/bin/python3.11", "main", 0x30),
            ],
            merge: Some(MergeInfo {
                kind: MergeKind::SideBySide,
                reason: None,
                python_frames: vec![py("t.py", "inner", 2), py("t.py", "outer", 1)],
            }),
            ..Thread::default()
        };
        let st = stacktrace(&t, MAX_FRAMES, false, true).unwrap();
        assert_eq!(names(&st), ["main", "_PyEval_EvalFrameDefault", "outer", "inner", "crash"]);
        assert!(st.snapshot);
        let mut stripped = t.clone();
        stripped.frames.remove(1);
        let st = stacktrace(&stripped, MAX_FRAMES, false, true).unwrap();
        assert_eq!(names(&st), ["outer", "inner", "main", "crash"]);
    }

    #[test]
    fn long_stacks_are_cut_in_the_middle_and_say_so() {
        let t = Thread {
            tid: 1,
            frames: (0..1000).map(|i| nf("/lib/libfoo.so", &format!("f{i}"), 0x1000 + i)).collect(),
            elided: Some(Elided { at: 5, count: 77, python_count: 0 }),
            ..Thread::default()
        };
        let st = stacktrace(&t, MAX_FRAMES, false, false).unwrap();
        assert_eq!(st.frames.len(), MAX_FRAMES);
        let n = names(&st);
        assert_eq!(n.last().unwrap(), "f0");
        assert_eq!(n[0], "f999");
        assert!(n.iter().any(|f| f == "[77 native frames left out by crashcatch]"), "{n:?}");
        assert!(n.iter().any(|f| f.ends_with("frames left out to fit the tracker]")), "{n:?}");
    }
}
