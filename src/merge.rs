//! Native and Python stacks into one stack per thread: each eval-loop frame is replaced by the
//! Python frames it was running.
//!
//! Which Python frames belong to which eval-loop call comes from the thread's entry flags
//! ([`PythonThread::entry`]): up to 3.10 every Python frame has its own C call of the eval loop;
//! from 3.11 one call runs a group of frames, the outermost of which is flagged as its entry.
//! The k-th eval-loop frame of the native stack (innermost first) ran the k-th group. When the
//! number of eval-loop frames and of groups disagree (a truncated native unwind, a stack the
//! walker could not finish, an eval loop this code does not recognise) nothing is guessed: the
//! native frames stay as they are and the Python stack is kept beside them.
//!
//! A thread that entered subinterpreters from Python has a thread state in each interpreter it
//! is inside, all their eval loops on its one native stack: they are merged as one Python stack,
//! the one entered last innermost (`python_thread_for`).
//!
//! The eval loop's frames are found by name; where that does not give one per group (a stripped
//! interpreter whose loop calls out of its unnamed `.cold` part), 3.12+ are found by stack
//! position: each call of the loop keeps its entry (shim) frame among its locals, so the native
//! frame whose stack space holds that frame's address is the loop ([`PythonThread::shims`]).
//!
//! An eval-loop frame that is the thread's innermost one (the loop itself faulted, as a stack
//! overflow often does at its prologue) is kept, with its Python frames after it: replacing it
//! would make its caller look like the function that faulted.

use std::borrow::Cow;

use crate::report::model::{Frame, MergeInfo, MergeKind, NativeFrame, PythonFrame, PythonState, PythonThread};

/// The eval loop proper, one native frame per C-level invocation (3.6+; `.cold`/`.part`/`.isra`
/// clones included).
const EVAL_LOOP: &[&str] = &["_PyEval_EvalFrameDefault"];
/// Python 2's eval loop. In 3.x the same name is a thin wrapper that calls the loop above
/// (sometimes as a tail call, so it is not always on the stack): counting it would count one
/// invocation twice, so it is only used when the stack has no `_PyEval_EvalFrameDefault`.
const EVAL_LOOP_PY2: &[&str] = &["PyEval_EvalFrameEx"];

/// The function name without compiler clone suffixes: `_PyEval_EvalFrameDefault.cold.12` →
/// `_PyEval_EvalFrameDefault`.
fn base_name(f: &NativeFrame) -> Option<&str> {
    f.function.as_deref().and_then(|n| n.split('.').next())
}

fn is_in(f: &NativeFrame, names: &[&str]) -> bool {
    base_name(f).is_some_and(|n| names.contains(&n))
}

/// Indices of the eval-loop frames of `native` for a thread whose Python frames form `groups`
/// groups: by name; where the names do not give one per group (a stripped interpreter whose loop
/// calls out of its unnamed `.cold` part, a loop under another name), by where each call of the
/// loop keeps its entry frame on the C stack (3.12+: [`PythonThread::shims`]).
fn eval_frames_for(native: &[NativeFrame], py: &PythonThread, groups: usize) -> Vec<usize> {
    let by_name = eval_frames(native);
    if by_name.len() == groups {
        return by_name;
    }
    match frames_holding(native, &py.shims) {
        Some(by_stack) if by_stack.len() == groups => by_stack,
        _ => by_name,
    }
}

/// For each address on the C stack (innermost first), the native frame whose locals hold it:
/// frame k's lie from its own stack pointer up to the next frame's. None unless every address
/// falls in a frame, each further out than the one before, and every frame's stack pointer is
/// known.
fn frames_holding(native: &[NativeFrame], addresses: &[u64]) -> Option<Vec<usize>> {
    if addresses.is_empty() {
        return None;
    }
    let sps: Vec<u64> = native.iter().map(|f| f.sp).collect::<Option<_>>()?;
    let mut out: Vec<usize> = Vec::with_capacity(addresses.len());
    // Each address must be in a frame further out than the one before, so the search for it
    // starts past that frame: one pass over the stack for all of them.
    let mut from = 0;
    for &a in addresses {
        let k = from + sps.get(from..)?.windows(2).position(|w| w[0] <= a && a < w[1])?;
        out.push(k);
        from = k + 1;
    }
    Some(out)
}

/// Indices of the native frames that are eval-loop invocations, by name.
pub(crate) fn eval_frames(native: &[NativeFrame]) -> Vec<usize> {
    let names = if native.iter().any(|f| is_in(f, EVAL_LOOP)) { EVAL_LOOP } else { EVAL_LOOP_PY2 };
    (0..native.len()).filter(|&i| is_in(&native[i], names)).collect()
}

/// The Python frames grouped by eval-loop invocation, innermost first, and whether frames were
/// left over past the last entry frame (an incomplete walk).
fn groups(py: &PythonThread) -> (Vec<Vec<PythonFrame>>, bool) {
    let all_entries = py.entry.len() != py.frames.len();
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for (i, f) in py.frames.iter().enumerate() {
        cur.push(f.clone());
        if all_entries || py.entry[i] {
            out.push(std::mem::take(&mut cur));
        }
    }
    let leftover = !cur.is_empty();
    (out, leftover)
}

fn info(kind: MergeKind, reason: Option<String>, python_frames: Vec<PythonFrame>) -> Option<MergeInfo> {
    Some(MergeInfo { kind, reason, python_frames })
}

/// The Python thread state of kernel thread `tid`, in any interpreter.
///
/// A thread that entered a subinterpreter from Python code has a thread state in each
/// interpreter it is inside, and its native stack holds the eval loops of all of them (the
/// innermost interpreter's innermost). Those with frames are stacked into one, innermost first
/// by [`PythonThread::c_stack`], so that the merge sees every entry frame. When their order
/// cannot be read (no C-stack address: ≤3.10) or one that is not the outermost ends without an
/// entry frame (an incomplete walk, whose frames would join the next one's group), the first
/// is given alone and the merge keeps the stacks side by side.
pub(crate) fn python_thread_for(state: &PythonState, tid: i32) -> Option<Cow<'_, PythonThread>> {
    let mine: Vec<&PythonThread> =
        state.interpreters.iter().flat_map(|i| i.threads.iter()).filter(|t| t.tid == Some(tid)).collect();
    let mut busy: Vec<&PythonThread> = mine.iter().copied().filter(|t| !t.frames.is_empty()).collect();
    let first = busy.first().or(mine.first()).copied()?;
    if busy.len() < 2 || busy.iter().any(|t| t.c_stack.is_none() || t.entry.len() != t.frames.len()) {
        return Some(Cow::Borrowed(first));
    }
    busy.sort_by_key(|t| t.c_stack);
    if busy[..busy.len() - 1].iter().any(|t| t.entry.last() != Some(&true)) {
        return Some(Cow::Borrowed(first));
    }
    Some(Cow::Owned(stacked(&busy)))
}

/// Thread states of one kernel thread, innermost first, as one: their frames and entry marks
/// one after the other; it holds a GIL when any of them does.
fn stacked(states: &[&PythonThread]) -> PythonThread {
    let inner = states[0];
    PythonThread {
        tid: inner.tid,
        thread_id: inner.thread_id,
        // The outermost's: the name the thread has where it was started.
        python_name: states.iter().rev().find_map(|t| t.python_name.clone()),
        idle: inner.idle,
        holds_gil: states.iter().any(|t| t.holds_gil),
        frames: states.iter().flat_map(|t| t.frames.iter().cloned()).collect(),
        entry: states.iter().flat_map(|t| t.entry.iter().copied()).collect(),
        error: states.iter().find_map(|t| t.error.clone()),
        c_stack: inner.c_stack,
        shims: states.iter().flat_map(|t| t.shims.iter().copied()).collect(),
    }
}

/// Merges one thread's native frames (innermost first) with its Python thread state.
pub fn merge_thread(native: Vec<NativeFrame>, python: Option<&PythonThread>) -> (Vec<Frame>, Option<MergeInfo>) {
    let py_frames: &[PythonFrame] = python.map(|p| p.frames.as_slice()).unwrap_or(&[]);
    if py_frames.is_empty() {
        if native.is_empty() {
            return (Vec::new(), None);
        }
        let reason = match python {
            None => "no Python thread state for this thread",
            Some(_) => "the Python thread state has no frames",
        };
        return (
            native.into_iter().map(Frame::Native).collect(),
            info(MergeKind::NativeOnly, Some(reason.into()), vec![]),
        );
    }
    let py = python.expect("frames imply a thread state");
    if native.is_empty() {
        return (
            py_frames.iter().cloned().map(Frame::Python).collect(),
            info(MergeKind::PythonOnly, Some("no native stack for this thread".into()), vec![]),
        );
    }
    let (groups, leftover) = groups(py);
    let evals = eval_frames_for(&native, py, groups.len());
    let mismatch = if evals.is_empty() {
        Some("no eval-loop frame in the native stack".to_string())
    } else if leftover {
        Some(format!(
            "the Python stack ends in {} frame(s) without an entry frame (incomplete walk)",
            py_frames.len() - groups.iter().map(Vec::len).sum::<usize>()
        ))
    } else if evals.len() != groups.len() {
        Some(format!(
            "{} eval-loop frame(s) in the native stack but {} Python entry frame(s)",
            evals.len(),
            groups.len()
        ))
    } else {
        None
    };
    if let Some(reason) = mismatch {
        return (
            native.into_iter().map(Frame::Native).collect(),
            info(MergeKind::SideBySide, Some(reason), py_frames.to_vec()),
        );
    }
    let mut out = Vec::with_capacity(native.len() + py_frames.len());
    let mut groups = groups.into_iter();
    for (i, f) in native.into_iter().enumerate() {
        if evals.binary_search(&i).is_ok() {
            keep_innermost(&mut out, i, f);
            out.extend(groups.next().expect("counts checked").into_iter().map(Frame::Python));
        } else {
            out.push(Frame::Native(f));
        }
    }
    (out, info(MergeKind::Merged, None, vec![]))
}

/// Keeps the eval-loop frame `f` (at index `i` of the native stack) when it is the innermost
/// frame: the instruction that faulted (or where the thread stopped) is the loop's own.
fn keep_innermost(out: &mut Vec<Frame>, i: usize, f: NativeFrame) {
    if i == 0 {
        out.push(Frame::Native(f));
    }
}

/// A merged stack whose native unwind left out a middle part (a runaway recursion).
pub(crate) struct MergedElided {
    pub frames: Vec<Frame>,
    pub info: Option<MergeInfo>,
    /// Where the gap is in `frames`.
    pub at: usize,
    /// Python frames that belong to the eval loops in the gap, left out with them.
    pub python_elided: u64,
}

/// Like [`merge_thread`] for a native stack with a gap after index `at` (the top `at` frames,
/// then the bottom ones). The top eval-loop frames ran the innermost Python groups, the bottom
/// ones the outermost: both ends are merged, and the Python groups in between go into the gap.
/// When there are fewer groups than eval-loop frames at both ends, nothing is guessed.
pub(crate) fn merge_thread_elided(native: Vec<NativeFrame>, python: Option<&PythonThread>, at: usize) -> MergedElided {
    let side = |native: Vec<NativeFrame>, info| MergedElided {
        frames: native.into_iter().map(Frame::Native).collect(),
        info,
        at,
        python_elided: 0,
    };
    let Some(py) = python.filter(|p| !p.frames.is_empty()) else {
        let (frames, info) = merge_thread(native, python);
        return MergedElided { frames, info, at, python_elided: 0 };
    };
    let at = at.min(native.len());
    let evals = eval_frames(&native);
    let (groups, leftover) = groups(py);
    let k_top = evals.iter().filter(|&&i| i < at).count();
    let k_bottom = evals.len() - k_top;
    if evals.is_empty() || leftover || groups.len() < evals.len() {
        let reason = format!(
            "the native stack is too deep to show whole; {} eval-loop frame(s) kept at its ends, {} Python entry frame(s){}",
            evals.len(),
            groups.len(),
            if leftover { " and an incomplete Python walk" } else { "" }
        );
        return side(native, info(MergeKind::SideBySide, Some(reason), py.frames.clone()));
    }
    let middle: u64 = groups[k_top..groups.len() - k_bottom].iter().map(|g| g.len() as u64).sum();
    let mut chosen: Vec<Vec<PythonFrame>> = groups[..k_top].to_vec();
    chosen.extend(groups[groups.len() - k_bottom..].iter().cloned());
    let mut chosen = chosen.into_iter();
    let mut out = Vec::new();
    let mut new_at = 0;
    for (i, f) in native.into_iter().enumerate() {
        if i == at {
            new_at = out.len();
        }
        if evals.binary_search(&i).is_ok() {
            keep_innermost(&mut out, i, f);
            out.extend(chosen.next().expect("counts checked").into_iter().map(Frame::Python));
        } else {
            out.push(Frame::Native(f));
        }
    }
    if at >= out.len() {
        new_at = out.len();
    }
    MergedElided { frames: out, info: info(MergeKind::Merged, None, vec![]), at: new_at, python_elided: middle }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Hex, Trust};

    fn nf(name: &str) -> NativeFrame {
        NativeFrame {
            address: Hex(0x1000),
            module: None,
            module_offset: None,
            function: Some(name.to_string()),
            function_offset: None,
            file: None,
            line: None,
            inlined: vec![],
            trust: Trust::Cfi,
            sp: None,
        }
    }
    fn pf(name: &str) -> PythonFrame {
        PythonFrame { file: "/app/m.py".into(), function: name.into(), line: Some(1), ..Default::default() }
    }
    fn pt(frames: &[&str], entry: &[bool]) -> PythonThread {
        PythonThread { frames: frames.iter().map(|n| pf(n)).collect(), entry: entry.to_vec(), ..Default::default() }
    }
    fn names(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| match f {
                Frame::Native(n) => n.function.clone().unwrap_or_default(),
                Frame::Python(p) => format!("py:{}", p.function),
            })
            .collect()
    }

    #[test]
    fn one_python_frame_per_eval_frame_up_to_310() {
        let native = vec![
            nf("crash_here"),
            nf("call_function"),
            nf("_PyEval_EvalFrameDefault"),
            nf("_PyFunction_Vectorcall"),
            nf("_PyEval_EvalFrameDefault.cold"),
            nf("PyEval_EvalCode"),
            nf("main"),
        ];
        let py = pt(&["inner", "outer"], &[true, true]);
        let (frames, m) = merge_thread(native, Some(&py));
        assert_eq!(
            names(&frames),
            [
                "crash_here",
                "call_function",
                "py:inner",
                "_PyFunction_Vectorcall",
                "py:outer",
                "PyEval_EvalCode",
                "main"
            ]
        );
        assert_eq!(m.unwrap().kind, MergeKind::Merged);
    }

    #[test]
    fn groups_up_to_the_entry_frame_from_311() {
        let native = vec![
            nf("segv"),
            nf("_PyEval_EvalFrameDefault"),
            nf("PyObject_Call"),
            nf("_PyEval_EvalFrameDefault"),
            nf("PyRun_SimpleFile"),
        ];
        // c, b run by the inner loop (b is its entry); a, <module> by the outer one.
        let py = pt(&["c", "b", "a", "<module>"], &[false, true, false, true]);
        let (frames, m) = merge_thread(native, Some(&py));
        assert_eq!(
            names(&frames),
            ["segv", "py:c", "py:b", "PyObject_Call", "py:a", "py:<module>", "PyRun_SimpleFile"]
        );
        assert_eq!(m.unwrap().kind, MergeKind::Merged);
    }

    /// A fault inside the eval loop itself (a stack overflow at its prologue): the loop stays
    /// the innermost frame, its Python frames follow it.
    #[test]
    fn an_eval_loop_that_faulted_stays_innermost() {
        let native = vec![
            nf("_PyEval_EvalFrameDefault"),
            nf("_PyEval_Vector"),
            nf("slot_mp_subscript"),
            nf("_PyEval_EvalFrameDefault"),
            nf("main"),
        ];
        let py = pt(&["b", "a"], &[true, true]);
        let (frames, m) = merge_thread(native.clone(), Some(&py));
        assert_eq!(
            names(&frames),
            ["_PyEval_EvalFrameDefault", "py:b", "_PyEval_Vector", "slot_mp_subscript", "py:a", "main"]
        );
        assert_eq!(m.unwrap().kind, MergeKind::Merged);
        let m = merge_thread_elided(native, Some(&py), 2);
        assert_eq!(
            names(&m.frames),
            ["_PyEval_EvalFrameDefault", "py:b", "_PyEval_Vector", "slot_mp_subscript", "py:a", "main"]
        );
    }

    #[test]
    fn mismatched_counts_stay_side_by_side() {
        let native = vec![nf("segv"), nf("_PyEval_EvalFrameDefault"), nf("main")];
        let py = pt(&["b", "a"], &[true, true]);
        let (frames, m) = merge_thread(native, Some(&py));
        assert_eq!(names(&frames), ["segv", "_PyEval_EvalFrameDefault", "main"]);
        let m = m.unwrap();
        assert_eq!(m.kind, MergeKind::SideBySide);
        assert!(m.reason.unwrap().contains("1 eval-loop frame(s) in the native stack but 2"));
        assert_eq!(m.python_frames.len(), 2);

        // Frames past the last entry (incomplete walk) are not guessed at either.
        let native = vec![nf("_PyEval_EvalFrameDefault"), nf("_PyEval_EvalFrameDefault")];
        let py = pt(&["b", "a"], &[true, false]);
        let (_, m) = merge_thread(native, Some(&py));
        assert_eq!(m.unwrap().kind, MergeKind::SideBySide);

        // No eval loop at all in the native stack.
        let (_, m) = merge_thread(vec![nf("start_thread")], Some(&py));
        assert!(m.unwrap().reason.unwrap().contains("no eval-loop frame"));
    }

    #[test]
    fn python_2_and_wrappers() {
        // 2.7: PyEval_EvalFrameEx is the loop.
        let native = vec![
            nf("leaf"),
            nf("PyEval_EvalFrameEx"),
            nf("fast_function"),
            nf("PyEval_EvalFrameEx.part.3"),
            nf("main"),
        ];
        let py = pt(&["f", "<module>"], &[true, true]);
        let (frames, m) = merge_thread(native, Some(&py));
        assert_eq!(names(&frames), ["leaf", "py:f", "fast_function", "py:<module>", "main"]);
        assert_eq!(m.unwrap().kind, MergeKind::Merged);
        // 3.6: PyEval_EvalFrameEx wraps _PyEval_EvalFrameDefault and must not count twice.
        let native = vec![nf("leaf"), nf("_PyEval_EvalFrameDefault"), nf("PyEval_EvalFrameEx"), nf("main")];
        let py = pt(&["<module>"], &[true]);
        let (frames, _) = merge_thread(native, Some(&py));
        assert_eq!(names(&frames), ["leaf", "py:<module>", "PyEval_EvalFrameEx", "main"]);
    }

    #[test]
    fn finds_threads_by_tid() {
        use crate::report::model::{PythonInterpreter, PythonState};
        let mut a = pt(&["x"], &[true]);
        a.tid = Some(7);
        let mut b = pt(&["y"], &[true]);
        b.tid = Some(8);
        let st = PythonState {
            interpreters: vec![
                PythonInterpreter { id: 0, threads: vec![a], ..Default::default() },
                PythonInterpreter { id: 1, threads: vec![b], ..Default::default() },
            ],
            ..Default::default()
        };
        assert_eq!(python_thread_for(&st, 8).unwrap().frames[0].function, "y");
        assert!(python_thread_for(&st, 9).is_none());
    }

    /// Thread 7 runs main-interpreter code that entered interpreter 1, which entered
    /// interpreter 2: three thread states, one native stack with the eval loops of all three.
    #[test]
    fn nested_interpreters_on_one_thread_stack_innermost_first() {
        use crate::report::model::{PythonInterpreter, PythonState};
        let state = |c_stacks: [Option<u64>; 3], inner_entry: bool| {
            let on7 =
                |frames: &[&str], entry: &[bool], c_stack| PythonThread { tid: Some(7), c_stack, ..pt(frames, entry) };
            let interp = |id, t| PythonInterpreter { id, threads: vec![t], ..Default::default() };
            // Listed out of stack order: the order comes from the C-stack addresses.
            PythonState {
                interpreters: vec![
                    interp(1, on7(&["enter", "<module>"], &[false, true], c_stacks[1])),
                    interp(2, on7(&["nap", "<module>"], &[false, inner_entry], c_stacks[2])),
                    interp(0, on7(&["enter", "launch"], &[false, true], c_stacks[0])),
                ],
                ..Default::default()
            }
        };
        let native = || {
            ["sleep", "_PyEval_EvalFrameDefault", "exec", "_PyEval_EvalFrameDefault", "exec"]
                .into_iter()
                .chain(["_PyEval_EvalFrameDefault", "start_thread"])
                .map(nf)
                .collect::<Vec<_>>()
        };
        let st = state([Some(0x7f30), Some(0x7f20), Some(0x7f10)], true);
        let (frames, m) = merge_thread(native(), python_thread_for(&st, 7).as_deref());
        assert_eq!(
            names(&frames),
            ["sleep", "py:nap", "py:<module>", "exec", "py:enter", "py:<module>", "exec", "py:enter", "py:launch"]
                .into_iter()
                .chain(["start_thread"])
                .collect::<Vec<_>>()
        );
        assert_eq!(m.unwrap().kind, MergeKind::Merged);
        // No C-stack address (≤3.10): the order is not guessed.
        let st = state([Some(0x7f30), None, Some(0x7f10)], true);
        let (_, m) = merge_thread(native(), python_thread_for(&st, 7).as_deref());
        assert_eq!(m.unwrap().kind, MergeKind::SideBySide);
        // The innermost walk stopped mid-group: its frames must not join the next group.
        let st = state([Some(0x7f30), Some(0x7f20), Some(0x7f10)], false);
        assert_eq!(python_thread_for(&st, 7).unwrap().frames.len(), 2);
    }

    /// A stripped 3.12+ interpreter whose eval loop calls out of its unnamed `.cold` part: no
    /// frame is called `_PyEval_EvalFrameDefault`, and the loop's frames are the ones whose
    /// stack space holds each call's entry frame.
    #[test]
    fn unnamed_eval_loops_are_found_by_their_entry_frames_on_the_c_stack() {
        let at = |name: Option<&str>, sp: u64| NativeFrame { function: name.map(Into::into), sp: Some(sp), ..nf("x") };
        let native = vec![
            at(Some("strlen"), 0x1000),
            at(None, 0x1100), // the inner loop (its .cold part): entry frame at 0x1180
            at(Some("PyObject_Vectorcall"), 0x1400),
            at(None, 0x1500), // the outer loop: entry frame at 0x1600
            at(Some("PyEval_EvalCode"), 0x1800),
            at(Some("main"), 0x1900),
        ];
        let mut py = pt(&["inner", "run", "<module>"], &[false, true, true]);
        py.shims = vec![0x1180, 0x1600];
        let (frames, info) = merge_thread(native.clone(), Some(&py));
        assert_eq!(info.unwrap().kind, MergeKind::Merged);
        assert_eq!(
            names(&frames),
            ["strlen", "py:inner", "py:run", "PyObject_Vectorcall", "py:<module>", "PyEval_EvalCode", "main"]
        );
        // Without the addresses, or with one outside every frame, nothing is guessed.
        for shims in [vec![], vec![0x1180, 0x2000], vec![0x1600, 0x1180]] {
            py.shims = shims;
            let (_, info) = merge_thread(native.clone(), Some(&py));
            assert_eq!(info.unwrap().kind, MergeKind::SideBySide);
        }
    }

    #[test]
    fn only_one_side() {
        let py = pt(&["b", "a"], &[true, true]);
        let (frames, m) = merge_thread(vec![], Some(&py));
        assert_eq!(names(&frames), ["py:b", "py:a"]);
        assert_eq!(m.unwrap().kind, MergeKind::PythonOnly);
        let (frames, m) = merge_thread(vec![nf("start_thread")], None);
        assert_eq!(names(&frames), ["start_thread"]);
        assert_eq!(m.unwrap().kind, MergeKind::NativeOnly);
        let (frames, m) = merge_thread(vec![nf("x")], Some(&pt(&[], &[])));
        assert_eq!(frames.len(), 1);
        assert_eq!(m.unwrap().kind, MergeKind::NativeOnly);
        assert!(merge_thread(vec![], None).1.is_none());
        // An unnamed native frame is never an eval loop.
        let mut unnamed = nf("x");
        unnamed.function = None;
        assert!(eval_frames(&[unnamed]).is_empty());
        // Missing entry flags mean one frame per eval loop (≤3.10 semantics).
        let (_, m) = merge_thread(
            vec![nf("_PyEval_EvalFrameDefault"), nf("_PyEval_EvalFrameDefault")],
            Some(&pt(&["b", "a"], &[])),
        );
        assert_eq!(m.unwrap().kind, MergeKind::Merged);
    }

    #[test]
    fn elided_stack_merges_both_ends() {
        // Native: [eval(top) x2] ... gap ... [eval(bottom) x1, main]; 5 Python frames, ≤3.10 style.
        let native = vec![
            nf("leaf"),
            nf("_PyEval_EvalFrameDefault"),
            nf("_PyEval_EvalFrameDefault"),
            nf("_PyEval_EvalFrameDefault"),
            nf("main"),
        ];
        let py = pt(&["f1", "f2", "f3", "f4", "f5"], &[true, true, true, true, true]);
        let m = merge_thread_elided(native, Some(&py), 3);
        let names: Vec<String> = m
            .frames
            .iter()
            .map(|f| match f {
                Frame::Native(n) => n.function.clone().unwrap(),
                Frame::Python(p) => format!("py:{}", p.function),
            })
            .collect();
        assert_eq!(names, vec!["leaf", "py:f1", "py:f2", "py:f5", "main"]);
        assert_eq!(m.at, 3);
        assert_eq!(m.python_elided, 2);
        assert_eq!(m.info.unwrap().kind, MergeKind::Merged);
    }
}
