//! The closed sets of the model: what kind of report, classification, merge and interpreter
//! state. Serialized in snake_case, as docs/report-schema.md names them.

use serde::{Deserialize, Serialize};

/// What made the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashKind {
    /// A fatal signal.
    #[default]
    Crash,
    /// `crashcatch dump`.
    Dump,
    /// `--hang-timeout`.
    Hang,
}

impl CrashKind {
    /// `crash`, `dump`, `hang`: the prefix of report file names.
    pub fn as_str(self) -> &'static str {
        match self {
            CrashKind::Crash => "crash",
            CrashKind::Dump => "dump",
            CrashKind::Hang => "hang",
        }
    }
}

/// What kind of crash it was, as far as the signal, the fault address and the stack tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassificationKind {
    NullPointerDereference,
    NullFunctionPointer,
    BadJump,
    ExecuteNonExecutable,
    NonCanonicalAddress,
    Permission,
    GeneralProtection,
    BadAddress,
    StackOverflow,
    AssertionFailed,
    PythonFatalError,
    CppTerminate,
    HeapCorruption,
    Abort,
    BusError,
    DivisionByZero,
    IntegerOverflow,
    FloatingPoint,
    Trap,
    IllegalInstruction,
    Seccomp,
    /// A kind this version does not know (a report written by a newer crashcatch).
    #[serde(other)]
    Other,
}

/// How a thread's native and Python stacks were put together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeKind {
    /// Each eval-loop frame replaced by the Python frames it ran.
    Merged,
    /// The counts did not line up: the Python stack is kept apart.
    SideBySide,
    /// No native stack for this thread.
    PythonOnly,
    /// No Python frames could be placed.
    NativeOnly,
}

/// Where the interpreter is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterpreterState {
    Running,
    /// Py_FinalizeEx is running.
    Finalizing,
    /// Py_FinalizeEx is done.
    Finalized,
    NotInitialized,
}

impl InterpreterState {
    /// `not initialized`, for people.
    pub fn words(self) -> &'static str {
        match self {
            InterpreterState::Running => "running",
            InterpreterState::Finalizing => "finalizing",
            InterpreterState::Finalized => "finalized",
            InterpreterState::NotInitialized => "not initialized",
        }
    }

    /// Finalizing or finalized.
    pub fn is_shutting_down(self) -> bool {
        matches!(self, InterpreterState::Finalizing | InterpreterState::Finalized)
    }
}

/// Why a thread's native stack ends early: the unwinder's ([`crate::unwind::UnwindErrorKind`]).
pub use crate::unwind::UnwindErrorKind;
