//! How the unwinder found a frame, as the report says it (`trust` of a native frame).

use serde::{Deserialize, Serialize};

/// How a native frame was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// The thread's own registers (the innermost frame).
    Context,
    /// DWARF call frame information.
    Cfi,
    /// The frame-pointer chain.
    FramePointer,
    /// A return-address-looking value found by scanning the stack: may be wrong.
    Scan,
    /// Restored from a signal frame's saved context.
    Signal,
}
