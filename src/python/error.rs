//! Why part of the Python state could not be read: a `str` or `bytes` object ([`StringError`]),
//! the walk over interpreters, thread states and frames ([`WalkError`]), the interpreter's
//! layout ([`LayoutError`], with [`OffsetsError`] for 3.13+'s `_Py_DebugOffsets`). Each keeps
//! its cause (a [`ReadError`] keeps the address and how much was readable); the `Display` of
//! each is the sentence the report carries (`python.errors`, a thread's `error`).

use crate::process::ReadError;

use super::layout::{Instr, LineTable};
use super::walk::{DEADLINE_NOTE, MAX_FRAMES, MAX_FRAME_TEXT, MAX_INTERPRETERS, MAX_THREADS, SHORT_NAME_CHARS};

/// Why a `str` or `bytes` object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StringError {
    #[error("NULL string")]
    NullString,
    #[error("NULL bytes object")]
    NullBytes,
    /// A field or the data could not be read (`what`: `string`, `string data`, `bytes`, ...).
    #[error("{what}: {source}")]
    Read {
        what: &'static str,
        #[source]
        source: ReadError,
    },
    #[error("string at {addr:#x} has implausible size {len}")]
    StringSize { addr: u64, len: i64 },
    #[error("string at {addr:#x} has implausible length {len}")]
    StringLength { addr: u64, len: i64 },
    #[error("string at {addr:#x} has unknown kind {kind} (state {state:#x})")]
    UnknownKind { addr: u64, kind: usize, state: u32 },
    #[error("string at {addr:#x} is marked ASCII with kind {kind}")]
    AsciiWide { addr: u64, kind: usize },
    #[error("string at {addr:#x} has no data")]
    NoData { addr: u64 },
    #[error("bytes object at {addr:#x} has implausible size {len}")]
    BytesSize { addr: u64, len: i64 },
    #[error("object at {addr:#x} runs past the address space")]
    PastAddressSpace { addr: u64 },
}

/// Why the walk over interpreters, thread states and frames stopped where it did (or, for
/// [`WalkError::NamesShortened`], what it left out).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    /// A field could not be read (`what` names it: `frame back link`, `f_lasti`, ...).
    #[error("{what}: {source}")]
    Read {
        what: &'static str,
        #[source]
        source: ReadError,
    },
    /// A code object's file name, name or line table could not be read.
    #[error("{what}: {source}")]
    String {
        what: &'static str,
        #[source]
        source: StringError,
    },
    /// The qualified name could not be read, nor the plain name it falls back to (`fallback`).
    #[error("co_qualname: {qualname}")]
    Qualname {
        qualname: StringError,
        #[source]
        fallback: Box<WalkError>,
    },
    #[error("no anchor for the interpreter list (_PyRuntime or interp_head)")]
    NoAnchor,
    #[error("more than {MAX_INTERPRETERS} interpreters: the list is probably corrupt")]
    TooManyInterpreters,
    #[error("the interpreter list loops at {0:#x}")]
    InterpreterLoop(u64),
    /// The thread list of interpreter `id` ends early.
    #[error("interpreter {id}: {source}")]
    Interpreter {
        id: i64,
        #[source]
        source: Box<WalkError>,
    },
    #[error("interpreter {id} next: {source}")]
    InterpreterNext {
        id: i64,
        #[source]
        source: ReadError,
    },
    #[error("frame names past {} KiB of text cut to {SHORT_NAME_CHARS} characters", MAX_FRAME_TEXT >> 10)]
    NamesShortened,
    #[error("more than {MAX_THREADS} thread states: the list is probably corrupt")]
    TooManyThreads,
    #[error("the thread list loops at {0:#x}")]
    ThreadLoop(u64),
    #[error("thread state {tstate:#x} belongs to interpreter {owner:#x}, not {interp:#x}: stale or corrupt")]
    ForeignThread { tstate: u64, owner: u64, interp: u64 },
    #[error("thread state {tstate:#x}: {source}")]
    ThreadState {
        tstate: u64,
        #[source]
        source: ReadError,
    },
    #[error("thread state {tstate:#x} next: {source}")]
    ThreadNext {
        tstate: u64,
        #[source]
        source: ReadError,
    },
    #[error("more than {MAX_FRAMES} frames: stopped there")]
    TooManyFrames,
    #[error("frame budget for this process exhausted: stopped there")]
    BudgetSpent,
    /// The report's deadline passed.
    #[error("{DEADLINE_NOTE}")]
    Deadline,
    #[error("the frame chain loops at {0:#x}")]
    FrameLoop(u64),
    #[error("{0:#x} is not a frame object")]
    NotAFrame(u64),
    #[error("frame {frame:#x} has no code object (at {code:#x})")]
    NoCodeObject { frame: u64, code: u64 },
    #[error("frame with a NULL code object")]
    NullCode,
    /// A layout whose instruction kind and line table do not go together.
    #[error("layout mixes instruction kind {instr:?} with line table {table:?}")]
    Mismatched { instr: Instr, table: LineTable },
    #[error("tlbc_index {index} outside co_tlbc of {size} entries")]
    TlbcIndex { index: i32, size: i64 },
}

impl WalkError {
    /// A field at `what` could not be read.
    pub(crate) fn read(what: &'static str) -> impl FnOnce(ReadError) -> WalkError {
        move |source| WalkError::Read { what, source }
    }

    /// An object at `what` could not be read as a string or bytes.
    pub(crate) fn string(what: &'static str) -> impl FnOnce(StringError) -> WalkError {
        move |source| WalkError::String { what, source }
    }
}

/// Why 3.13+'s `_Py_DebugOffsets` could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetsError {
    #[error("_PyRuntime: {0}")]
    Runtime(#[source] ReadError),
    #[error("{group}.{field} is {value}, not a believable offset")]
    Unbelievable { group: &'static str, field: &'static str, value: u64 },
    #[error("{group}.{field} ({offset}) lies outside its struct of {size} bytes")]
    OutsideStruct { group: &'static str, field: &'static str, offset: u64, size: u64 },
    #[error("pyobject is {size} bytes with ob_type at {ob_type}: not an object header")]
    NotAnObjectHeader { size: u64, ob_type: u64 },
    #[error("{field} is {got}, not {want} after a {header}-byte object header")]
    Misplaced { field: &'static str, got: u64, want: u64, header: u64 },
    #[error("bytes_object or unicode_object is smaller than its own fields")]
    TooSmall,
    #[error("_Py_DebugOffsets carries version {0}, which has no such table")]
    NoTable(String),
    #[error("_Py_DebugOffsets of {0} has a shape this reader does not know")]
    UnknownShape(String),
    /// The table fit none of the shapes tried (`tried`: each shape's minor and why).
    #[error("{} ({})", what(.version, .newer, .tested_up_to), attempts(.tried))]
    NoShapeFits { version: String, newer: bool, tested_up_to: u32, tried: Vec<(u32, ShapeMiss)> },
}

/// Why the table did not fit one shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeMiss {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Check(#[from] Box<OffsetsError>),
}

fn what(version: &str, newer: &bool, tested_up_to: &u32) -> String {
    if *newer {
        format!(
            "{version} is newer than this reader (tested up to 3.{tested_up_to}) and its _Py_DebugOffsets fit none of the known shapes"
        )
    } else {
        format!("_Py_DebugOffsets of {version} hold implausible values")
    }
}

fn attempts(tried: &[(u32, ShapeMiss)]) -> String {
    tried.iter().map(|(minor, why)| format!("as 3.{minor}: {why}")).collect::<Vec<_>>().join("; ")
}

/// Why there is no layout to walk the interpreter with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error(transparent)]
    Offsets(#[from] OffsetsError),
    #[error("cannot tell which CPython version {module} is")]
    UnknownVersion { module: String },
    #[error("CPython {version} is not supported by this reader")]
    Unsupported { version: String },
    /// A 2.7–3.6 interpreter without `interp_head`, or a 3.7+ one without `_PyRuntime`.
    #[error("CPython {major}.{minor} but no {anchor} in {module}")]
    NoAnchor { major: u32, minor: u32, anchor: &'static str, module: String },
}
