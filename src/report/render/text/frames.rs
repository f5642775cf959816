//! One thread's stack, innermost first: native frames numbered as gdb numbers them (inlined
//! calls too) in aligned columns, Python frames under the eval loop that ran them, deep
//! recursion folded, the gap of a stack too deep to keep whole, the Python stack apart when it
//! could not be merged, and why the native stack ends early.

use std::fmt::Write;

use super::super::escape::terminal::{line_start, text as esc};
use super::Style;
use crate::report::model::{location, Frame, MergeKind, NativeFrame, PythonFrame, Thread, Trust};

/// The longest cycle of frames folded: a Python function and the interpreter's frames that call
/// it.
const MAX_PERIOD: usize = 6;

/// Widths of the function and module columns.
struct Columns {
    function: usize,
    module: usize,
}

impl Columns {
    fn of(frames: &[Frame]) -> Self {
        let natives = || {
            frames.iter().filter_map(|f| match f {
                Frame::Native(n) => Some(n),
                Frame::Python(_) => None,
            })
        };
        let function = natives()
            .map(|n| {
                let inlined = n.inlined.iter().map(|i| i.function.len() + 10).max().unwrap_or(0);
                n.function.as_deref().map_or(12, str::len).max(inlined)
            })
            .max()
            .unwrap_or(20)
            .clamp(20, 48);
        let module = natives().filter_map(|n| n.module_name().map(str::len)).max().unwrap_or(10).clamp(10, 44);
        Columns { function, module }
    }
}

/// What makes two frames the same, for folding.
fn frame_key(f: &Frame) -> String {
    match f {
        // Unknown functions are told apart by their address in the module, or by their address
        // when that is unknown too (a report whose budget was spent).
        Frame::Native(n) if n.function.is_none() => {
            format!("n{:?}{:?}", n.module, n.module_offset.unwrap_or(n.address))
        }
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

/// A native frame, its inlined calls first (numbered like frames, as gdb does).
fn native(out: &mut String, n: &NativeFrame, index: &mut usize, cols: &Columns, st: &Style) {
    let (wf, wm) = (cols.function, cols.module);
    for inl in &n.inlined {
        let loc = location(inl.file.as_deref(), inl.line).unwrap_or_default();
        let (func, module) = (esc(&inl.function), esc(n.module_name().unwrap_or("")));
        let loc = format!("{} {}", esc(&loc), st.dim("(inlined)"));
        let _ = writeln!(out, "  {}{func:<wf$} {module:<wm$} {}", frame_index(*index), loc.trim_start());
        *index += 1;
    }
    let func = match (&n.function, n.module_name(), n.module_offset) {
        (Some(f), _, _) => f.clone(),
        (None, Some(_), Some(off)) => format!("?? +{off}"),
        (None, _, _) => format!("?? {}", n.address),
    };
    let loc = location(n.file.as_deref(), n.line).unwrap_or_default();
    let trust = match n.trust {
        Trust::Scan => " [scanned]",
        Trust::FramePointer => " [fp]",
        _ => "",
    };
    let (func, module) = (esc(&func), esc(n.module_name().unwrap_or("??")));
    let _ = writeln!(out, "  {}{func:<wf$} {module:<wm$} {}{}", frame_index(*index), esc(&loc), st.dim(trust));
    *index += 1;
}

/// A Python frame, under the native frame that ran it, with its source line, the caret under
/// the running expression and its variables.
fn python(out: &mut String, p: &PythonFrame, st: &Style) {
    let line = p.line.map(|l| format!(":{l}")).unwrap_or_default();
    let stale = if p.stale { " (may be stale)" } else { "" };
    let _ = writeln!(out, "      py  {}{} in {}{}", esc(&p.file), line, esc(&p.function), stale);
    if let Some(src) = &p.source {
        let _ = writeln!(out, "              {}", line_start(src.trim()));
        if let Some(c) = super::variables::caret(p) {
            let _ = writeln!(out, "              {}", st.dim(&c));
        }
    }
    super::variables::write(out, p, st);
}

/// Native frames a frame stands for (itself and its inlined calls).
fn native_count(f: &Frame) -> usize {
    match f {
        Frame::Native(n) => 1 + n.inlined.len(),
        Frame::Python(_) => 0,
    }
}

/// Deep recursion: the same frame, or the same short cycle of frames, repeated back to back.
struct Folds {
    keys: Vec<String>,
    /// Where the stack's gap is: nothing is folded across it.
    gap: Option<usize>,
}

impl Folds {
    /// How many times the block starting at `i` of `p` frames repeats back to back from `i`.
    fn repeats(&self, i: usize, p: usize) -> usize {
        let (keys, shown) = (&self.keys, self.keys.len());
        let mut reps = 1;
        while i + (reps + 1) * p <= shown
            && (0..p).all(|k| keys[i + reps * p + k] == keys[i + k])
            && self.gap.map_or(true, |g| !(i < g && g < i + (reps + 1) * p))
        {
            reps += 1;
        }
        reps
    }

    /// (period, repeats) of the fold at `i`: the one that covers the most frames.
    fn at(&self, i: usize) -> (usize, usize) {
        let (mut period, mut reps) = (1, self.repeats(i, 1));
        for p in 2..=MAX_PERIOD {
            let r = self.repeats(i, p);
            if r >= 3 && r * p > reps * period {
                (period, reps) = (p, r);
            }
        }
        (period, reps)
    }
}

/// The thread's stack, its first `limit` frames when given.
pub(super) fn write(out: &mut String, t: &Thread, limit: Option<usize>, st: &Style) {
    let frames = &t.frames;
    let shown = limit.map_or(frames.len(), |l| l.min(frames.len()));
    let cols = Columns::of(&frames[..shown]);
    let folds = Folds { keys: frames[..shown].iter().map(frame_key).collect(), gap: t.elided.as_ref().map(|e| e.at) };
    let (mut i, mut index) = (0, 0usize);
    while i < shown {
        if let Some(e) = t.elided.as_ref().filter(|e| i == e.at && e.count > 0) {
            let py =
                if e.python_count > 0 { format!(" (and {} Python frames)", e.python_count) } else { String::new() };
            let _ = writeln!(out, "  {}", st.dim(&format!("... {} frames not shown{py} ...", e.count)));
            index += e.count as usize;
        }
        let (period, reps) = folds.at(i);
        for f in &frames[i..i + period] {
            match f {
                Frame::Native(n) => native(out, n, &mut index, &cols, st),
                Frame::Python(p) => python(out, p, st),
            }
        }
        if reps > 1 {
            let more = reps - 1;
            let times = if more == 1 { "time" } else { "times" };
            let msg = if period == 1 {
                format!("(the same frame {more} more {times})")
            } else {
                format!("(the {period} frames above repeat {more} more {times})")
            };
            let _ = writeln!(out, "      {}", st.dim(&msg));
            index += more * frames[i..i + period].iter().map(native_count).sum::<usize>();
        }
        i += period * reps;
    }
    if shown < frames.len() {
        let _ = writeln!(out, "  {}", st.dim(&format!("... {} more frames", frames.len() - shown)));
    }
    side_by_side(out, t);
    if let Some(e) = &t.unwind_error {
        let _ = writeln!(out, "  {}", st.dim(&format!("(stack ends: {})", esc(e))));
    }
}

/// The Python stack, when it could not be merged into the native one.
fn side_by_side(out: &mut String, t: &Thread) {
    let Some(m) = t.merge.as_ref().filter(|m| m.kind == MergeKind::SideBySide && !m.python_frames.is_empty()) else {
        return;
    };
    let why = m.reason.as_deref().unwrap_or("the native and Python stacks did not line up");
    let _ = writeln!(out, "  Python stack (not merged: {}):", esc(why));
    for p in &m.python_frames {
        let line = p.line.map(|l| format!(":{l}")).unwrap_or_default();
        let _ = writeln!(out, "      py  {}{} in {}", esc(&p.file), line, esc(&p.function));
    }
}
