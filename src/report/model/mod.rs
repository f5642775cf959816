//! The report's typed model. The JSON report is exactly these structs through serde; see
//! docs/report-schema.md. Every field that can be unknown is optional. The model is the ground
//! every stage stands on: it imports nothing of crashcatch but what the unwinder makes and it
//! names as it is (how a frame was found, why a stack ends early).

mod asyncio;
mod frames;
mod hang;
mod kinds;
mod minimal;

pub use asyncio::*;
pub use frames::*;
pub use hang::*;
pub use kinds::*;
pub use minimal::failure_note;

use serde::{Deserialize, Serialize};

/// Version of the JSON schema; bump on incompatible changes (docs/report-schema.md).
pub const SCHEMA_VERSION: u32 = 1;

/// An address, serialised as a `"0x…"` hex string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hex(pub u64);

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:#x}", self.0))
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let t = s.trim_start_matches("0x");
        u64::from_str_radix(t, 16).map(Hex).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A report: a crash, a dump or a hang, and everything known about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Crash {
    /// [`SCHEMA_VERSION`] when written.
    pub schema_version: u32,
    /// `crash` (a fatal signal), `dump` (`crashcatch dump`), or `hang` (`--hang-timeout`).
    #[serde(default)]
    pub kind: CrashKind,
    /// A short stable id of the crash (same signal, native function and Python call site: same
    /// id), for crashes only; see docs/report-schema.md, "Fingerprint".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The crashcatch that wrote it.
    pub tool: Tool,
    /// When the fatal signal was caught, UTC, RFC 3339.
    pub time: String,
    /// The process.
    pub process: ProcessInfo,
    /// The fatal signal (number 0, `SIG0`, in a dump or a hang report).
    pub signal: SignalReport,
    /// What kind of crash, from the signal, the fault address and the stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Classification>,
    /// The native frame that faulted, and the first frame outside libc when the fault is in libc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culprit: Option<Culprit>,
    /// The innermost Python frame of the crashed thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_call_site: Option<PythonFrame>,
    /// The innermost Python frame of the user's own code (not the standard library or an
    /// installed package), when it differs from `python_call_site`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_user_frame: Option<PythonFrame>,
    /// A plain-language explanation for well-known crash patterns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<String>,
    /// The thread the signal was delivered to.
    pub crashed_tid: i32,
    /// A `hang` report made because one pytest test ran longer than `--test-timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_timeout: Option<TestTimeout>,
    /// Other threads that were stopped with a fatal signal of their own at the same time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_faulting: Vec<FaultingThread>,
    /// The crashed thread first, then the others in tid order.
    pub threads: Vec<Thread>,
    /// The interpreter, when the process runs CPython.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonState>,
    /// Every ELF file mapped in the process.
    pub modules: Vec<ModuleInfo>,
    /// What could not be read or worked out, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// How long each stage of making the report took.
    #[serde(default)]
    pub timings: Timings,
    /// Where this report was written (filled in by the writer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// The tool that wrote a report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    /// `crashcatch`.
    pub name: String,
    /// Its version.
    pub version: String,
}

impl Default for Tool {
    fn default() -> Self {
        Tool { name: "crashcatch".into(), version: env!("CARGO_PKG_VERSION").into() }
    }
}

/// The process a report is about.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: i32,
    /// The executable (/proc/PID/exe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// Its arguments, the program first.
    pub cmdline: Vec<String>,
    /// The pytest test that was running (`PYTEST_CURRENT_TEST` from the live environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// Parents up to the command crashcatch started, nearest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestry: Vec<Ancestor>,
    /// Selected environment variables (values redacted unless allow-listed or --show-env).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<EnvVar>,
}

/// A parent process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ancestor {
    /// Its pid.
    pub pid: i32,
    /// Its arguments.
    pub cmdline: Vec<String>,
}

/// An environment variable of the process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvVar {
    /// Its name.
    pub name: String,
    /// Its value, `<redacted>` unless allow-listed or `--show-env`.
    pub value: String,
}

/// The signal, as the kernel told it (siginfo).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SignalReport {
    /// Its number.
    pub number: i32,
    /// `SIGSEGV`
    pub name: String,
    /// si_code as a number and a name (`SEGV_MAPERR`) with words (`address not mapped`).
    pub code: i32,
    /// The si_code's name (`SEGV_MAPERR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_name: Option<String>,
    /// The si_code in words (`address not mapped`).
    pub description: String,
    /// The address that faulted (SIGSEGV, SIGBUS, SIGILL, SIGFPE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_address: Option<Hex>,
    /// For signals sent by a process (kill, raise, abort).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_pid: Option<i32>,
    /// When the program handled the fault and later died of a (re-raised) signal: that signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated_by: Option<String>,
}

/// What kind of crash it was.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Classification {
    /// Stable identifier: `null_pointer_dereference`, `stack_overflow`, `abort`,
    /// `assertion_failed`, `bad_address`, `permission`, `bus_error`, `division_by_zero`, ...
    pub kind: ClassificationKind,
    /// In words, for people.
    pub summary: String,
    /// e.g. glibc's `__abort_msg` ("python3: foo.c:12: main: Assertion `x' failed.").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The native frame that faulted, and whose bug it likely is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Culprit {
    /// The innermost native frame of the crashed thread.
    pub frame: NativeFrame,
    /// When `frame` is in libc (or another system library), the first frame outside it: the caller
    /// whose bug it usually is (strlen(NULL)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_outside_system: Option<NativeFrame>,
    /// When `frame` is in a system library or the interpreter: the first frame outside both
    /// before the Python code that called in, and whose code that is (the frame the
    /// fingerprint also uses: the party whose bug it most likely is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect: Option<Suspect>,
}

/// The frame most likely at fault, outside the interpreter and the system libraries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Suspect {
    /// The installed package (`numpy`) or library (`libz`) the frame's module belongs to.
    pub owner: String,
    /// The frame.
    pub frame: NativeFrame,
}

/// Another thread that got a fatal signal of its own at the same time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultingThread {
    /// Its tid.
    pub tid: i32,
    /// Its signal (`SIGSEGV`).
    pub signal: String,
    /// The address that faulted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_address: Option<Hex>,
}

/// One thread of the process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Thread {
    /// Its kernel thread id.
    pub tid: i32,
    /// Its name (/proc/PID/task/TID/comm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The thread the fatal signal was delivered to.
    pub crashed: bool,
    /// The process's main thread (tid == pid).
    pub main: bool,
    /// It holds the GIL.
    #[serde(default)]
    pub holds_gil: bool,
    /// Native and Python frames, innermost first, merged where possible.
    pub frames: Vec<Frame>,
    /// When the stack was too deep: `count` frames after index `at` of `frames` were left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elided: Option<Elided>,
    /// How the native and Python stacks were put together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeInfo>,
    /// Why the native stack stops where it does, when that is not its natural end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unwind_error: Option<String>,
    /// What kind of stop `unwind_error` is, for machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unwind_error_kind: Option<UnwindErrorKind>,
    /// Registers of the crashed thread at the fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registers: Option<std::collections::BTreeMap<String, Hex>>,
}

impl Thread {
    /// The native frames, innermost first.
    pub fn native_frames(&self) -> impl Iterator<Item = &NativeFrame> {
        self.frames.iter().filter_map(|f| match f {
            Frame::Native(n) => Some(n),
            Frame::Python(_) => None,
        })
    }

    /// The Python frames, innermost first: those merged into `frames`, then those kept beside
    /// them when the stacks could not be merged.
    pub fn python_frames(&self) -> impl Iterator<Item = &PythonFrame> {
        self.frames
            .iter()
            .filter_map(|f| match f {
                Frame::Python(p) => Some(p),
                Frame::Native(_) => None,
            })
            .chain(self.merge.iter().flat_map(|m| m.python_frames.iter()))
    }

    /// Whether any Python frame is known for this thread.
    pub fn has_python(&self) -> bool {
        self.python_frames().next().is_some()
    }

    /// The innermost Python frame of the user's own code, if any.
    pub fn user_frame(&self) -> Option<&PythonFrame> {
        self.python_frames().find(|p| p.is_user_code())
    }
}

/// The frames left out of a stack too deep to keep whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Elided {
    /// The index in `frames` of the first frame after the gap.
    pub at: usize,
    /// Native frames left out.
    pub count: u64,
    /// Python frames left out with them (the eval loops in the gap ran them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub python_count: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How a thread's native and Python stacks were put together.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergeInfo {
    /// `merged`: each eval-loop frame replaced by its Python frames; `side_by_side`: the counts
    /// did not line up, so `python_frames` holds the Python stack apart; `python_only`, `native_only`.
    pub kind: MergeKind,
    /// Why they were put together so, when it is not the natural way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The Python stack, innermost first, when it could not be merged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub python_frames: Vec<PythonFrame>,
}

/// The Python state of the process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PythonState {
    /// `3.11.7`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where the interpreter was found (libpython path or the executable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// `running`, `finalizing`, `finalized` (Py_FinalizeEx done), or `not_initialized`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<InterpreterState>,
    /// The thread running Py_FinalizeEx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalizing_tid: Option<i32>,
    /// The thread that holds the GIL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gil_holder_tid: Option<i32>,
    /// Every interpreter, with its threads.
    pub interpreters: Vec<PythonInterpreter>,
    /// Why the Python part is missing or partial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// The asyncio tasks, when the process runs asyncio (see docs/report-schema.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asyncio: Option<AsyncioState>,
}

/// One interpreter.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PythonInterpreter {
    /// Its id (0: the main interpreter).
    pub id: i64,
    /// Whether the cyclic garbage collector was running (pystack's "Garbage collecting").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc_collecting: Option<bool>,
    /// Its threads, newest first (as CPython lists them).
    pub threads: Vec<PythonThread>,
}

/// One thread state of an interpreter.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PythonThread {
    /// Kernel thread id, when it could be worked out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    /// pthread_t of the thread state.
    pub thread_id: Hex,
    /// `threading.Thread.name` (`MainThread`, `kafka-poller`), from `threading._active`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_name: Option<String>,
    /// True when the thread was waiting (in a blocking system call, or in a Python wait such
    /// as `threading.Event.wait`), false when it was running (py-spy's idle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<bool>,
    /// It holds the GIL.
    pub holds_gil: bool,
    /// Innermost first.
    pub frames: Vec<PythonFrame>,
    /// Entry-frame markers, parallel to `frames`: true where a C-level eval loop began (3.11+),
    /// always true for ≤3.10 where every frame has its own eval-loop call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<bool>,
    /// Why its frames stop where they do, when they stop early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where on the C stack its innermost eval loop runs ([`crate::python::walk::RawThread::c_stack`]):
    /// orders the thread states of one kernel thread for the merge. Not part of the report.
    #[serde(skip)]
    pub c_stack: Option<u64>,
    /// Where on the C stack each eval-loop call that ran a group of its frames keeps its entry
    /// frame (3.12+, innermost first; [`crate::python::walk::RawThread::shims`]). Not part of
    /// the report.
    #[serde(skip)]
    pub shims: Vec<u64>,
}

/// One ELF file mapped in the process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// Its path as the process sees it (or `[vdso]`).
    pub path: String,
    /// The lowest address of its mappings.
    pub base: Hex,
    /// The end of its highest mapping.
    pub end: Hex,
    /// Its GNU build-id, in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// The separate debug file its names and lines came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_file: Option<String>,
}

/// Milliseconds spent in each stage of making this report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    /// Reading the stopped process's memory, registers and maps.
    pub capture_ms: f64,
    /// Unwinding every thread.
    pub unwind_ms: f64,
    /// Naming native frames (symbols, DWARF).
    pub symbolize_ms: f64,
    /// Reading the Python state.
    pub python_ms: f64,
    /// All of it, from the stop to the finished report.
    pub total_ms: f64,
}
