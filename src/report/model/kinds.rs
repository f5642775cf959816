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
    /// An access near address 0 (a NULL pointer or a field of one).
    NullPointerDereference,
    /// A call through a NULL function pointer.
    NullFunctionPointer,
    /// A jump to an unmapped address (a corrupt function pointer or return address).
    BadJump,
    /// A jump into memory that is not executable.
    ExecuteNonExecutable,
    /// An access to a non-canonical address (a corrupt pointer).
    NonCanonicalAddress,
    /// An access the mapping does not allow (read-only, no-access).
    Permission,
    /// A general protection fault (a non-canonical or misaligned access).
    GeneralProtection,
    /// An access to an unmapped address (a dangling or corrupt pointer).
    BadAddress,
    /// A fault at the guard page below a thread's stack.
    StackOverflow,
    /// `assert()` failed.
    AssertionFailed,
    /// `Py_FatalError()`.
    PythonFatalError,
    /// `std::terminate()` (an uncaught C++ exception?).
    CppTerminate,
    /// glibc detected heap corruption.
    HeapCorruption,
    /// `abort()` called.
    Abort,
    /// SIGBUS: a misaligned access, or a mapped file cut short.
    BusError,
    /// Integer division by zero.
    DivisionByZero,
    /// Integer overflow (`INT_MIN / -1`).
    IntegerOverflow,
    /// Another floating-point exception.
    FloatingPoint,
    /// A trap instruction (`__builtin_trap()`, code marked unreachable).
    Trap,
    /// An illegal instruction (built for a newer CPU, or a corrupt jump).
    IllegalInstruction,
    /// A system call seccomp refused.
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
    /// Running.
    Running,
    /// Py_FinalizeEx is running.
    Finalizing,
    /// Py_FinalizeEx is done.
    Finalized,
    /// Not initialized (or no longer).
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
