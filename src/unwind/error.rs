//! Why a native stack ends before its natural end ([`UnwindStop`]), and why one step found no
//! caller: CFI that is missing or fails, a frame-pointer chain that does not hold, no return
//! address on the stack. Each keeps its cause; the `Display` of each is the whole sentence a
//! report carries (causes included, as `thread.unwind_error`), and [`UnwindStop::kind`] the
//! machine-readable part beside it (`thread.unwind_error_kind`).

use serde::{Deserialize, Serialize};

use crate::process::ReadError;

use super::MAX_SIGNAL_FRAMES;

/// Words read upward from the stack pointer when looking for a return address.
pub(crate) const SCAN_WORDS: u64 = 2048;

/// Why a thread's native stack ends before its natural end (`unwind_error_kind`, beside the
/// sentence in `unwind_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnwindErrorKind {
    /// The stack is deeper than the unwinder walks.
    FrameLimit,
    /// The report's time budget was spent before the stack's end (`--report-budget`).
    BudgetSpent,
    /// A caller's stack pointer was not above its callee's (the stack would loop).
    StackPointerNotIncreasing,
    /// Too many nested signal frames: the saved contexts look corrupt.
    TooManySignalFrames,
    /// A frame's stack pointer is unknown.
    StackPointerUnknown,
    /// The pc is in no module's code, and neither the frame pointer nor a scan found a caller.
    NotCode,
    /// The module has no call frame information for the pc, and nothing else found a caller.
    NoCfi,
    /// The CFI gives a return address that is not in any code.
    BadReturnAddress,
    /// A CFI rule could not be applied (a register unknown, an expression that failed).
    CfiFailed,
    /// Stack memory the unwinder needed could not be read.
    ReadFailed,
    /// The thread's registers could not be read: no stack at all.
    RegistersUnreadable,
    /// A kind this version does not know (a report written by a newer crashcatch).
    #[serde(other)]
    Other,
}

/// Why unwinding a thread stopped early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnwindStop {
    /// The stack is deeper than the frame limit.
    #[error("stopped after {limit} frames (the frame limit)")]
    FrameLimit {
        /// The limit.
        limit: usize,
    },
    /// The report's time budget was spent after `frames` frames.
    #[error("stopped after {frames} frames: the report's time budget was spent")]
    Deadline {
        /// Frames unwound when it stopped.
        frames: u64,
    },
    /// A caller whose stack pointer is not above its callee's: the stack would loop.
    #[error("stack pointer did not increase ({from:#x} to {to:#x}) unwinding from {pc:#x}")]
    StackPointerNotIncreasing {
        /// The callee's stack pointer.
        from: u64,
        /// The caller's.
        to: u64,
        /// The callee's address.
        pc: u64,
    },
    /// More nested signal frames than are believed.
    #[error("more than {MAX_SIGNAL_FRAMES} signal frames: the saved contexts look corrupt")]
    TooManySignalFrames,
    /// One step found no caller.
    #[error(transparent)]
    Step(#[from] StepError),
}

impl UnwindStop {
    /// What kind of stop this is, for the JSON report.
    pub fn kind(&self) -> UnwindErrorKind {
        match self {
            UnwindStop::FrameLimit { .. } => UnwindErrorKind::FrameLimit,
            UnwindStop::Deadline { .. } => UnwindErrorKind::BudgetSpent,
            UnwindStop::StackPointerNotIncreasing { .. } => UnwindErrorKind::StackPointerNotIncreasing,
            UnwindStop::TooManySignalFrames => UnwindErrorKind::TooManySignalFrames,
            UnwindStop::Step(StepError::StackPointerUnknown) => UnwindErrorKind::StackPointerUnknown,
            UnwindStop::Step(StepError::SignalFrame(_)) => UnwindErrorKind::ReadFailed,
            UnwindStop::Step(StepError::NoCaller(n)) => n.cfi.kind(),
        }
    }
}

/// Why one step found no caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The frame's stack pointer is unknown.
    #[error("stack pointer unknown")]
    StackPointerUnknown,
    /// The saved registers of a signal frame could not be read.
    #[error("cannot read the signal frame's saved registers: {0}")]
    SignalFrame(#[source] ReadError),
    /// Every way to the caller failed.
    #[error(transparent)]
    NoCaller(#[from] NoCaller),
}

/// Every way to the caller was tried and failed: why CFI gave none, why the frame-pointer chain
/// gave none, and that no return address was found by scanning the stack above `sp`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{cfi}; {frame_pointer}; no return address found in {SCAN_WORDS} stack words above {sp:#x}")]
pub struct NoCaller {
    #[source]
    /// Why the call frame information gave none.
    pub cfi: CfiMiss,
    /// Why the frame-pointer chain gave none.
    pub frame_pointer: FramePointerError,
    /// The stack pointer the scan started from.
    pub sp: u64,
}

/// Why the call frame information gave no caller for the frame at `pc`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CfiMiss {
    /// The frame's address is in no module's code.
    #[error("{pc:#x} is not in any module's code")]
    NotCode {
        /// The frame's address.
        pc: u64,
    },
    /// The module has no call frame information for the address.
    #[error("no CFI for {pc:#x} in {module}")]
    NoCfi {
        /// The frame's address.
        pc: u64,
        /// The module's file name.
        module: String,
    },
    /// The CFI gives a return address outside any code.
    #[error("CFI at {pc:#x} gives return address {return_address:#x}, which is not in any code")]
    ReturnAddressNotCode {
        /// The frame's address.
        pc: u64,
        /// The return address the CFI gives.
        return_address: u64,
    },
    /// The row could not be applied.
    #[error("CFI at {pc:#x}: {source}")]
    Failed {
        /// The frame's address.
        pc: u64,
        /// Why the row could not be applied.
        #[source]
        source: CfiError,
    },
}

impl CfiMiss {
    fn kind(&self) -> UnwindErrorKind {
        match self {
            CfiMiss::NotCode { .. } => UnwindErrorKind::NotCode,
            CfiMiss::NoCfi { .. } => UnwindErrorKind::NoCfi,
            CfiMiss::ReturnAddressNotCode { .. } => UnwindErrorKind::BadReturnAddress,
            CfiMiss::Failed { source: CfiError::SavedRegister { .. }, .. } => UnwindErrorKind::ReadFailed,
            CfiMiss::Failed { .. } => UnwindErrorKind::CfiFailed,
        }
    }
}

/// Why a CFI row could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CfiError {
    /// A register the row reads is unknown (its DWARF number).
    #[error("register {0} is needed but unknown")]
    RegisterUnknown(u16),
    /// A saved register could not be read.
    #[error("cannot read saved register {register}: {source}")]
    SavedRegister {
        /// Its DWARF number.
        register: usize,
        /// Where it was saved, and how much was readable.
        #[source]
        source: ReadError,
    },
    /// An expression of the row failed.
    #[error(transparent)]
    Expression(#[from] ExpressionError),
}

/// Why a DWARF expression of a CFI rule could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpressionError {
    /// gimli could not evaluate it.
    #[error("CFI expression failed: {0}")]
    Gimli(#[source] gimli::Error),
    /// It asked for more inputs than a CFI expression needs.
    #[error("CFI expression needs too many inputs")]
    TooManyInputs,
    /// It read memory that could not be read (at this address).
    #[error("CFI expression reads unreadable memory at {0:#x}")]
    Unreadable(u64),
    /// It reads a register whose value is unknown (its DWARF number).
    #[error("CFI expression needs register {0} whose value is unknown")]
    RegisterUnknown(u16),
    /// gimli asked for something a CFI expression has no business asking (`{0}` as gimli
    /// names it).
    #[error("CFI expression needs something unavailable: {0}")]
    Unavailable(String),
    /// Its result is a register whose value is unknown (its DWARF number).
    #[error("CFI expression names register {0} whose value is unknown")]
    ResultRegisterUnknown(u16),
    /// Its result is not one word.
    #[error("CFI expression has no single-word result")]
    NoSingleWord,
}

/// Why the frame-pointer chain gave no caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramePointerError {
    /// A caller frame whose frame pointer is 0: the outermost frame, were there no CFI to say
    /// otherwise.
    #[error("frame pointer is 0")]
    Zero,
    /// The frame-pointer register's value is unknown.
    #[error("frame pointer unknown")]
    Unknown,
    /// The register does not point at a frame record on the stack.
    #[error("{register} {value:#x} is not a frame pointer")]
    NotAFramePointer {
        /// The register's name (`rbp`, `x29`).
        register: &'static str,
        /// Its value.
        value: u64,
    },
    /// The frame record could not be read.
    #[error("frame pointer: {0}")]
    Read(#[source] ReadError),
    /// The frame record's return address is not one.
    #[error("[{register}+8] = {value:#x} is not a return address")]
    NotAReturnAddress {
        /// The frame-pointer register's name.
        register: &'static str,
        /// The word read as the return address.
        value: u64,
    },
    /// A frame record at the very top of the address space.
    #[error("frame pointer at the top of the address space")]
    TopOfAddressSpace,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_caller(cfi: CfiMiss, frame_pointer: FramePointerError) -> UnwindStop {
        UnwindStop::Step(StepError::NoCaller(NoCaller { cfi, frame_pointer, sp: 0x7ff0 }))
    }

    #[test]
    fn the_sentence_and_the_kind() {
        let read = ReadError { addr: 0x10, len: 8, got: 0 };
        let e = no_caller(CfiMiss::NoCfi { pc: 0x401000, module: "libx.so".into() }, FramePointerError::Zero);
        assert_eq!(
            e.to_string(),
            "no CFI for 0x401000 in libx.so; frame pointer is 0; no return address found in 2048 stack words above 0x7ff0"
        );
        assert_eq!(e.kind(), UnwindErrorKind::NoCfi);
        let e = no_caller(
            CfiMiss::Failed { pc: 0x401000, source: CfiError::SavedRegister { register: 16, source: read } },
            FramePointerError::NotAFramePointer { register: "rbp", value: 1 },
        );
        assert_eq!(
            e.to_string(),
            "CFI at 0x401000: cannot read saved register 16: memory at 0x10 is not readable; rbp 0x1 is not a \
             frame pointer; no return address found in 2048 stack words above 0x7ff0"
        );
        assert_eq!(e.kind(), UnwindErrorKind::ReadFailed);
        let e = no_caller(
            CfiMiss::Failed { pc: 1, source: ExpressionError::TooManyInputs.into() },
            FramePointerError::Read(read),
        );
        assert_eq!(e.kind(), UnwindErrorKind::CfiFailed);
        assert!(e.to_string().contains("CFI at 0x1: CFI expression needs too many inputs; frame pointer: memory at"));
        let e = no_caller(CfiMiss::NotCode { pc: 0 }, FramePointerError::Unknown);
        assert_eq!(
            (e.kind(), e.to_string().starts_with("0x0 is not in any module's code; frame pointer unknown;")),
            (UnwindErrorKind::NotCode, true)
        );
        let e = UnwindStop::Step(StepError::SignalFrame(read));
        assert_eq!(e.to_string(), "cannot read the signal frame's saved registers: memory at 0x10 is not readable");
        assert_eq!(e.kind(), UnwindErrorKind::ReadFailed);
        // The cause is kept: why the CFI gave no caller, and why its rule failed below that.
        let e = no_caller(
            CfiMiss::Failed { pc: 1, source: CfiError::SavedRegister { register: 6, source: read } },
            FramePointerError::Zero,
        );
        let rule = std::error::Error::source(&e).and_then(std::error::Error::source);
        assert_eq!(
            rule.and_then(|c| c.downcast_ref::<CfiError>()),
            Some(&CfiError::SavedRegister { register: 6, source: read })
        );
    }
}
