//! Why part of the Python state could not be read: a `str` or `bytes` object ([`StringError`]),
//! the walk over interpreters, thread states and frames ([`WalkError`]), the interpreter's
//! layout (`LayoutError`, with [`OffsetsError`] for 3.13+'s `_Py_DebugOffsets`). Each keeps
//! its cause (a [`ReadError`] keeps the address and how much was readable); the `Display` of
//! each is the sentence the report carries (`python.errors`, a thread's `error`).

use crate::process::ReadError;

use super::layout::{Instr, LineTable};
use super::walk::{DEADLINE_NOTE, MAX_FRAMES, MAX_FRAME_TEXT, MAX_INTERPRETERS, MAX_THREADS, SHORT_NAME_CHARS};

/// Why a `str` or `bytes` object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StringError {
    /// The pointer to the string is NULL.
    #[error("NULL string")]
    NullString,
    /// The pointer to the bytes object is NULL.
    #[error("NULL bytes object")]
    NullBytes,
    /// A field or the data could not be read.
    #[error("{what}: {source}")]
    Read {
        /// What was read: `string`, `string data`, `string data pointer`, `bytes`, `object data`.
        what: &'static str,
        /// Where, and how much of it was readable.
        #[source]
        source: ReadError,
    },
    /// A 2.7 `str` whose size is negative or over 2^30.
    #[error("string at {addr:#x} has implausible size {len}")]
    StringSize {
        /// The object's address.
        addr: u64,
        /// The size it claims.
        len: i64,
    },
    /// A `str` whose length is negative or over 2^30.
    #[error("string at {addr:#x} has implausible length {len}")]
    StringLength {
        /// The object's address.
        addr: u64,
        /// The length it claims.
        len: i64,
    },
    /// A `str` whose `state` names no PEP 393 kind (1, 2 or 4 bytes a character).
    #[error("string at {addr:#x} has unknown kind {kind} (state {state:#x})")]
    UnknownKind {
        /// The object's address.
        addr: u64,
        /// The kind read from `state`.
        kind: usize,
        /// The whole `state` word.
        state: u32,
    },
    /// A `str` marked ASCII whose characters are wider than a byte.
    #[error("string at {addr:#x} is marked ASCII with kind {kind}")]
    AsciiWide {
        /// The object's address.
        addr: u64,
        /// Its kind.
        kind: usize,
    },
    /// A non-compact `str` whose data pointer is NULL.
    #[error("string at {addr:#x} has no data")]
    NoData {
        /// The object's address.
        addr: u64,
    },
    /// A bytes object whose size is negative or over the cap.
    #[error("bytes object at {addr:#x} has implausible size {len}")]
    BytesSize {
        /// The object's address.
        addr: u64,
        /// The size it claims.
        len: i64,
    },
    /// An object whose data would run past the end of the address space.
    #[error("object at {addr:#x} runs past the address space")]
    PastAddressSpace {
        /// Where its data starts.
        addr: u64,
    },
}

/// Why the walk over interpreters, thread states and frames stopped where it did (or, for
/// [`WalkError::NamesShortened`], what it left out).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    /// A field could not be read.
    #[error("{what}: {source}")]
    Read {
        /// The field: `frame back link`, `f_lasti`, `thread list head`, ...
        what: &'static str,
        /// Where, and how much of it was readable.
        #[source]
        source: ReadError,
    },
    /// A code object's file name, name or line table could not be read.
    #[error("{what}: {source}")]
    String {
        /// The field: `co_filename`, `co_name`, `line table`.
        what: &'static str,
        /// Why the object could not be read.
        #[source]
        source: StringError,
    },
    /// The qualified name could not be read, nor the plain name it falls back to.
    #[error("co_qualname: {qualname}")]
    Qualname {
        /// Why the qualified name could not be read.
        qualname: StringError,
        /// Why the plain name could not be read either.
        #[source]
        fallback: Box<WalkError>,
    },
    /// Discovery found neither `_PyRuntime` nor `interp_head`.
    #[error("no anchor for the interpreter list (_PyRuntime or interp_head)")]
    NoAnchor,
    /// More interpreters than `MAX_INTERPRETERS`.
    #[error("more than {MAX_INTERPRETERS} interpreters: the list is probably corrupt")]
    TooManyInterpreters,
    /// The interpreter list comes back to the interpreter at this address.
    #[error("the interpreter list loops at {0:#x}")]
    InterpreterLoop(u64),
    /// The thread list of an interpreter ends early.
    #[error("interpreter {id}: {source}")]
    Interpreter {
        /// The interpreter's id.
        id: i64,
        /// Why its thread list ends.
        #[source]
        source: Box<WalkError>,
    },
    /// The link to the next interpreter could not be read.
    #[error("interpreter {id} next: {source}")]
    InterpreterNext {
        /// The interpreter's id.
        id: i64,
        /// Where, and how much was readable.
        #[source]
        source: ReadError,
    },
    /// Frame names past `MAX_FRAME_TEXT` bytes were cut to `SHORT_NAME_CHARS` characters.
    #[error("frame names past {} KiB of text cut to {SHORT_NAME_CHARS} characters", MAX_FRAME_TEXT >> 10)]
    NamesShortened,
    /// More thread states than `MAX_THREADS` in one interpreter.
    #[error("more than {MAX_THREADS} thread states: the list is probably corrupt")]
    TooManyThreads,
    /// The thread list comes back to the thread state at this address.
    #[error("the thread list loops at {0:#x}")]
    ThreadLoop(u64),
    /// A thread state on one interpreter's list that names another interpreter.
    #[error("thread state {tstate:#x} belongs to interpreter {owner:#x}, not {interp:#x}: stale or corrupt")]
    ForeignThread {
        /// The thread state.
        tstate: u64,
        /// The interpreter it names.
        owner: u64,
        /// The interpreter whose list it is on.
        interp: u64,
    },
    /// A thread state could not be read.
    #[error("thread state {tstate:#x}: {source}")]
    ThreadState {
        /// The thread state.
        tstate: u64,
        /// Where, and how much was readable.
        #[source]
        source: ReadError,
    },
    /// The link to the next thread state could not be read.
    #[error("thread state {tstate:#x} next: {source}")]
    ThreadNext {
        /// The thread state.
        tstate: u64,
        /// Where, and how much was readable.
        #[source]
        source: ReadError,
    },
    /// More frames than `MAX_FRAMES` in one thread.
    #[error("more than {MAX_FRAMES} frames: stopped there")]
    TooManyFrames,
    /// The frames of the whole process reached their cap.
    #[error("frame budget for this process exhausted: stopped there")]
    BudgetSpent,
    /// The report's deadline passed.
    #[error("{DEADLINE_NOTE}")]
    Deadline,
    /// The frame chain comes back to the frame at this address.
    #[error("the frame chain loops at {0:#x}")]
    FrameLoop(u64),
    /// What should be a frame object (≤3.10) is of another type.
    #[error("{0:#x} is not a frame object")]
    NotAFrame(u64),
    /// A frame whose code is not a code object.
    #[error("frame {frame:#x} has no code object (at {code:#x})")]
    NoCodeObject {
        /// The frame.
        frame: u64,
        /// What it points at as its code.
        code: u64,
    },
    /// A frame whose code pointer is NULL.
    #[error("frame with a NULL code object")]
    NullCode,
    /// A layout whose instruction kind and line table do not go together.
    #[error("layout mixes instruction kind {instr:?} with line table {table:?}")]
    Mismatched {
        /// What the layout says a frame's instruction field holds.
        instr: Instr,
        /// The line table format it names.
        table: LineTable,
    },
    /// A free-threaded frame's bytecode copy index outside its code's copies.
    #[error("tlbc_index {index} outside co_tlbc of {size} entries")]
    TlbcIndex {
        /// The frame's `tlbc_index`.
        index: i32,
        /// How many copies `co_tlbc` says it holds.
        size: i64,
    },
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
    /// The table's first bytes could not be read.
    #[error("_PyRuntime: {0}")]
    Runtime(#[source] ReadError),
    /// An offset or size too large for any of these structs.
    #[error("{group}.{field} is {value}, not a believable offset")]
    Unbelievable {
        /// The struct (`runtime_state`, `interpreter_state`, ...).
        group: &'static str,
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// A field whose offset and width reach past its struct's size.
    #[error("{group}.{field} ({offset}) lies outside its struct of {size} bytes")]
    OutsideStruct {
        /// The struct.
        group: &'static str,
        /// The field.
        field: &'static str,
        /// Its offset.
        offset: u64,
        /// The struct's size.
        size: u64,
    },
    /// A `PyObject` header of a size no object has.
    #[error("pyobject is {size} bytes with ob_type at {ob_type}: not an object header")]
    NotAnObjectHeader {
        /// The header's size.
        size: u64,
        /// Where `ob_type` is in it.
        ob_type: u64,
    },
    /// A header field of `bytes` or `str` not where the object header puts it.
    #[error("{field} is {got}, not {want} after a {header}-byte object header")]
    Misplaced {
        /// The field.
        field: &'static str,
        /// Its offset in the table.
        got: u64,
        /// Where it must be.
        want: u64,
        /// The object header's size.
        header: u64,
    },
    /// `bytes` or `str` smaller than its own fields.
    #[error("bytes_object or unicode_object is smaller than its own fields")]
    TooSmall,
    /// A version (named as the table gives it) that has no such table.
    #[error("_Py_DebugOffsets carries version {0}, which has no such table")]
    NoTable(String),
    /// A tested version whose table has a shape this reader does not know.
    #[error("_Py_DebugOffsets of {0} has a shape this reader does not know")]
    UnknownShape(String),
    /// The table fit none of the shapes tried.
    #[error("{} ({})", what(.version, .newer, .tested_up_to), attempts(.tried))]
    NoShapeFits {
        /// The version, as the table gives it.
        version: String,
        /// Newer than any version this reader was tested with.
        newer: bool,
        /// The newest minor version tested.
        tested_up_to: u32,
        /// Each shape tried (by minor version), and why it did not fit.
        tried: Vec<(u32, ShapeMiss)>,
    },
}

/// Why the table did not fit one shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeMiss {
    /// The table is shorter than that shape.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Its values, read in that shape, are not believable.
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
pub(crate) enum LayoutError {
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
