//! Whether the cyclic garbage collector was running (pystack's "Garbage collecting"): gcmodule's
//! `collecting` flag, a static in 2.7 and 3.6, in `_PyRuntime` in 3.7 and 3.8, in each
//! interpreter from 3.9.

use super::objects::layout::GcCollecting;
use super::objects::{Known, ObjectLayout};
use crate::process::{Memory, MemoryExt};

/// The flag for the interpreter at `interp` (None when it cannot be read).
pub fn collecting(
    mem: &dyn Memory,
    l: &ObjectLayout,
    known: &Known,
    runtime: Option<u64>,
    interp: u64,
) -> Option<bool> {
    let at = match l.gc_collecting {
        GcCollecting::Static => known.gc_collecting?,
        GcCollecting::Runtime(off) => runtime?.wrapping_add(off),
        GcCollecting::Interpreter(off) => interp.wrapping_add(off),
    };
    let v = mem.read_i32(at).ok()?;
    // A flag: anything but 0 and 1 means the offset is wrong for this build.
    matches!(v, 0 | 1).then_some(v == 1)
}
