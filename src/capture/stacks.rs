//! Every thread's stack: native frames unwound and symbolized, Python frames read, the two
//! merged into one stack per thread.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::merge;
use crate::modules::ModuleSet;
use crate::process::{Registers, Snapshot};
use crate::report::model::{Elided, Hex, NativeFrame, PythonState, Thread, UnwindErrorKind};
use crate::symbolize::Symbolizer;
use crate::unwind::{self, Limits, UnwindCache, UnwindStop, UnwoundFrame, UnwoundStack};

use super::budget::Budget;

/// Milliseconds, rounded to microseconds.
pub(crate) fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The native stacks of every thread (None where the registers could not be read), with the
/// time it took. The threads share one unwind cache: what one thread's unwinding read of a
/// module's CFI, the next ones do not read again.
pub(crate) fn unwind_all(
    snap: &Snapshot<'_>,
    modules: &ModuleSet,
    budget: &Budget,
) -> (Vec<Option<UnwoundStack>>, f64) {
    let t = Instant::now();
    let limits = Limits { deadline: Some(budget.deadline()), ..Limits::default() };
    let arch = snap.threads.iter().find_map(|th| th.regs.as_ref().map(|r| r.arch()));
    let mut cache = UnwindCache::new(arch.unwrap_or(crate::arch::Arch::HOST));
    let raw = snap
        .threads
        .iter()
        .map(|th| th.regs.as_ref().map(|regs| unwind::unwind_with(regs, snap.memory, modules, limits, &mut cache)))
        .collect();
    (raw, ms(t.elapsed()))
}

/// Every frame of every stack symbolized, the crashed thread's first, with the time it took.
/// Frames reached after the budget is spent keep their address and module only; the count of
/// those is returned for the report's notes.
pub(crate) fn symbolize_all(
    raw: &[Option<UnwoundStack>],
    crashed: Option<usize>,
    modules: &ModuleSet,
    budget: &Budget,
) -> (Vec<Vec<NativeFrame>>, usize, f64) {
    let t = Instant::now();
    let symbolizer = Symbolizer::new(modules);
    symbolizer.prepare(raw.iter().flatten().flat_map(|s| &s.frames));
    let mut natives: Vec<Vec<NativeFrame>> = vec![Vec::new(); raw.len()];
    let mut left_out = 0;
    let order = crashed.into_iter().chain((0..raw.len()).filter(|&i| Some(i) != crashed));
    for i in order {
        let Some(stack) = &raw[i] else { continue };
        natives[i] = stack
            .frames
            .iter()
            .map(|f| {
                let frame = if budget.spent() {
                    left_out += 1;
                    unnamed(f, modules)
                } else {
                    symbolizer.symbolize(f)
                };
                NativeFrame { sp: Some(f.sp), ..frame }
            })
            .collect();
    }
    (natives, left_out, ms(t.elapsed()))
}

/// A frame with its address and module only (no file is read).
fn unnamed(f: &UnwoundFrame, modules: &ModuleSet) -> NativeFrame {
    let module = modules.find(f.address.lookup_pc()).map(|m| m.path.clone());
    NativeFrame { module, ..NativeFrame::at(f.address.address(), f.trust) }
}

/// The report's threads, native and Python merged, the crashed one first, then by tid.
pub(crate) fn threads(
    snap: &Snapshot<'_>,
    raw: &[Option<UnwoundStack>],
    natives: Vec<Vec<NativeFrame>>,
    py: Option<&PythonState>,
) -> Vec<Thread> {
    let mut threads = Vec::with_capacity(snap.threads.len());
    for ((t, r), native) in snap.threads.iter().zip(raw).zip(natives) {
        let py_thread = py.and_then(|p| merge::python_thread_for(p, t.tid));
        let py_thread = py_thread.as_deref();
        let (frames, merge, elided) = match r.as_ref().and_then(|s| s.elided) {
            Some((at, count)) => {
                let m = merge::merge_thread_elided(native, py_thread, at);
                (m.frames, m.info, Some(Elided { at: m.at, count, python_count: m.python_elided }))
            }
            None => {
                let (f, m) = merge::merge_thread(native, py_thread);
                (f, m, None)
            }
        };
        let crashed = t.tid == snap.crashed_tid;
        threads.push(Thread {
            tid: t.tid,
            name: t.name.clone(),
            crashed,
            main: t.tid == snap.pid,
            holds_gil: py_thread.is_some_and(|p| p.holds_gil),
            frames,
            elided,
            merge,
            unwind_error: match (r, &t.note) {
                (Some(s), _) => s.error.as_ref().map(ToString::to_string),
                (None, Some(n)) => Some(n.clone()),
                (None, None) => Some("registers could not be read".into()),
            },
            unwind_error_kind: match r {
                Some(s) => s.error.as_ref().map(UnwindStop::kind),
                None => Some(UnwindErrorKind::RegistersUnreadable),
            },
            registers: if crashed { t.regs.as_ref().map(registers_map) } else { None },
        });
    }
    threads.sort_by_key(|t| (!t.crashed, t.tid));
    threads
}

fn registers_map(r: &Registers) -> BTreeMap<String, Hex> {
    r.named().into_iter().map(|(n, v)| (n.to_string(), Hex(v))).collect()
}
