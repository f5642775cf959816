//! The walk: interpreters → thread states → frames, over any [`Memory`] and a [`Layout`].
//! Nothing here knows about modules or processes, so it runs the same over synthetic images.
//! Every loop is bounded and every pointer is checked before it is followed; corrupt memory ends
//! as a [`WalkError`], never as a panic or a hang.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

pub use super::error::WalkError;
use super::layout::{Instr, Layout, LineTable, TopFrame};
use super::linetable::{self, Position};
use super::strings::{read_bytes_object, read_str, MAX_BYTES, MAX_STR_CHARS};
use crate::process::{Memory, MemoryExt};

/// Most frames per thread and thread states per interpreter (as py-spy).
pub(crate) const MAX_FRAMES: usize = 4096;
pub(crate) const MAX_THREADS: usize = 4096;
pub(crate) const MAX_INTERPRETERS: usize = 256;
/// Frames over all threads: bounds the time a corrupt image can cost, and the report's size
/// (at this many frames crashcatch's peak RSS is about 60 MB: see tests/hostile.rs).
pub(crate) const MAX_TOTAL_FRAMES: usize = 32768;
/// Bytes of file and function names kept over all frames in full; past it, every further
/// frame's names are cut to `SHORT_NAME_CHARS` (a deep recursion through a function whose file
/// name is 4000 characters long must not cost gigabytes in the report).
pub(crate) const MAX_FRAME_TEXT: usize = 2 << 20;
pub(crate) const SHORT_NAME_CHARS: usize = 120;

/// The addresses the walk starts from, found by discovery (or set by a test).
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    /// `_PyRuntime` (3.7+).
    pub runtime: Option<u64>,
    /// The address of the `interp_head` variable (2.7, 3.6).
    pub interp_head_ptr: Option<u64>,
    /// The address of `_PyThreadState_Current` (2.7, 3.6).
    pub tstate_current_ptr: Option<u64>,
    /// The address of `_Py_Finalizing` (3.6).
    pub finalizing_ptr: Option<u64>,
    /// `&PyCode_Type`, to check that a frame's code really is a code object.
    pub code_type: Option<u64>,
    /// `&PyFrame_Type` (≤3.10 frames are objects).
    pub frame_type: Option<u64>,
}

/// A Python frame as the walk read it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawFrame {
    /// `co_filename`.
    pub file: String,
    /// `co_qualname` (3.11+) or `co_name`.
    pub function: String,
    /// The line it is at.
    pub line: Option<u32>,
    /// The first frame a C-level eval loop ran (the outermost of its group).
    pub entry: bool,
    /// The frame (a frame object up to 3.10, an interpreter frame from 3.11) and its code
    /// object: where its arguments and locals are read after the walk.
    pub addr: u64,
    /// Its code object.
    pub code: u64,
    /// The end line and columns of the expression running (3.11+, when the table has them).
    pub end_line: Option<u32>,
    /// The first column of the expression.
    pub column: Option<u32>,
    /// The column after its last.
    pub end_column: Option<u32>,
}

impl RawFrame {
    /// A frame at `addr` running `code`, at `pos`.
    fn new(file: String, function: String, pos: Position, entry: bool, addr: u64, code: u64) -> Self {
        let u = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
        RawFrame {
            file,
            function,
            line: u(pos.line),
            entry,
            addr,
            code,
            end_line: u(pos.end_line),
            column: pos.column,
            end_column: pos.end_column,
        }
    }
}

/// A thread state as the walk read it.
#[derive(Debug, Clone, Default)]
pub struct RawThread {
    /// Address of the thread state.
    pub addr: u64,
    /// `thread_id`: the `pthread_t`.
    pub thread_id: u64,
    /// `native_thread_id`: the kernel tid (3.8+).
    pub native_thread_id: Option<u64>,
    /// It holds a GIL.
    pub holds_gil: bool,
    /// Innermost first.
    pub frames: Vec<RawFrame>,
    /// Why its frames stop where they do, when they stop early.
    pub error: Option<WalkError>,
    /// An address on the C stack inside the innermost eval-loop call running this thread state
    /// (3.12+: that call's own entry frame, a local of it; 3.11: its `_PyCFrame`, also a
    /// local), when it has frames. Thread states of one kernel thread in different interpreters
    /// (a subinterpreter entered from Python) are ordered by it: the stack grows down, so the
    /// lower address was entered later, inside the other.
    pub c_stack: Option<u64>,
    /// 3.12+: the C-stack address of each eval-loop call's entry frame that closes a group of
    /// Python frames (one per group, innermost first). The merge finds the eval loop's native
    /// frames by them where the loop has no name to find it by (a stripped interpreter whose
    /// loop calls out of its unnamed `.cold` part).
    pub shims: Vec<u64>,
}

/// The shim frames a walk met (3.12+): the first one, and those that close a group of frames.
#[derive(Debug, Default)]
struct Shims {
    first: Option<u64>,
    closing: Vec<u64>,
}

/// An interpreter as the walk read it.
#[derive(Debug, Clone, Default)]
pub struct RawInterp {
    /// Its address.
    pub addr: u64,
    /// Its id.
    pub id: i64,
    /// Its thread states, newest first.
    pub threads: Vec<RawThread>,
}

/// Everything the walk read.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    /// Every interpreter, the main one first.
    pub interpreters: Vec<RawInterp>,
    /// Thread state addresses holding a GIL.
    pub gil_holders: Vec<u64>,
    /// The finalizing thread state, when finalization has begun.
    pub finalizing: Option<u64>,
    /// `_PyRuntime.initialized`, where the layout has it.
    pub initialized: Option<bool>,
    /// What stopped the walk early, or what it left out.
    pub errors: Vec<WalkError>,
}

struct CodeInfo {
    file: String,
    function: String,
    firstlineno: i32,
    table: Vec<u8>,
}

struct Walker<'a> {
    mem: &'a dyn Memory,
    layout: &'a Layout,
    anchors: &'a Anchors,
    codes: HashMap<u64, Result<std::rc::Rc<CodeInfo>, WalkError>>,
    budget: usize,
    /// Bytes of frame names still kept in full (see `MAX_FRAME_TEXT`).
    text_budget: usize,
    shortened: bool,
    /// The report's deadline: past it, every thread's frames stop where the walk is.
    deadline: Option<Instant>,
}

/// Whether `deadline` (none: no deadline) has passed.
pub(crate) fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// What a thread's frame list says when the report's deadline stopped it.
pub const DEADLINE_NOTE: &str = "the rest of this thread's frames: left out, the report's time budget was spent";

fn ptr(mem: &dyn Memory, addr: u64, what: &'static str) -> Result<u64, WalkError> {
    mem.read_u64(addr).map_err(WalkError::read(what))
}

/// Walks everything reachable from `anchors`. Errors about one thread stay with that thread;
/// errors that stop the whole walk go to `Walk::errors`.
pub fn walk(mem: &dyn Memory, layout: &Layout, anchors: &Anchors) -> Walk {
    walk_until(mem, layout, anchors, None)
}

/// [`walk`] with the report's deadline, checked before each frame: a hostile process can make
/// each of up to `MAX_TOTAL_FRAMES` frames cost the largest reads the caps allow. Past it, each
/// thread's frames end with [`DEADLINE_NOTE`].
pub fn walk_until(mem: &dyn Memory, layout: &Layout, anchors: &Anchors, deadline: Option<Instant>) -> Walk {
    let mut out = Walk::default();
    let mut w = Walker {
        mem,
        layout,
        anchors,
        codes: HashMap::new(),
        budget: MAX_TOTAL_FRAMES,
        text_budget: MAX_FRAME_TEXT,
        shortened: false,
        deadline,
    };

    // Interpreter list head, finalization, GIL (≤3.11: one global).
    let head = match (anchors.runtime, layout.runtime.interpreters_head, anchors.interp_head_ptr) {
        (Some(rt), Some(off), _) => ptr(mem, rt.wrapping_add(off), "_PyRuntime.interpreters.head"),
        (_, _, Some(p)) => ptr(mem, p, "interp_head"),
        _ => Err(WalkError::NoAnchor),
    };
    if let (Some(rt), Some(off)) = (anchors.runtime, layout.runtime.finalizing) {
        match mem.read_u64(rt.wrapping_add(off)) {
            Ok(v) => out.finalizing = (v != 0).then_some(v),
            Err(e) => out.errors.push(WalkError::read("_PyRuntime finalizing")(e)),
        }
    } else if let Some(p) = anchors.finalizing_ptr {
        if let Ok(v) = mem.read_u64(p) {
            out.finalizing = (v != 0).then_some(v);
        }
    }
    if let (Some(rt), Some(off)) = (anchors.runtime, layout.runtime.initialized) {
        if let Ok(v) = mem.read_i32(rt.wrapping_add(off)) {
            out.initialized = Some(v != 0);
        }
    }
    let global_holder = match (anchors.runtime, layout.runtime.tstate_current, anchors.tstate_current_ptr) {
        (Some(rt), Some(off), _) => mem.read_u64(rt.wrapping_add(off)).ok(),
        (_, _, Some(p)) => mem.read_u64(p).ok(),
        _ => None,
    };
    if let Some(h) = global_holder.filter(|&h| h != 0) {
        out.gil_holders.push(h);
    }

    let mut interp = match head {
        Ok(h) => h,
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    let mut seen = HashSet::new();
    while interp != 0 {
        if out.interpreters.len() >= MAX_INTERPRETERS {
            out.errors.push(WalkError::TooManyInterpreters);
            break;
        }
        if !seen.insert(interp) {
            out.errors.push(WalkError::InterpreterLoop(interp));
            break;
        }
        let index = out.interpreters.len() as i64;
        let id = match layout.interp.id {
            Some(o) => mem.read_i64(interp.wrapping_add(o)).unwrap_or(index),
            None => index,
        };
        // 3.12+: each interpreter points at the GIL it uses.
        if let Some(o) = layout.interp.ceval_gil {
            if let Ok(gil) = mem.read_u64(interp.wrapping_add(o)) {
                if gil != 0 {
                    let locked = mem.read_i32(gil.wrapping_add(layout.gil.locked)).unwrap_or(0);
                    if locked != 0 {
                        if let Ok(h) = mem.read_u64(gil.wrapping_add(layout.gil.last_holder)) {
                            if h != 0 && !out.gil_holders.contains(&h) {
                                out.gil_holders.push(h);
                            }
                        }
                    }
                }
            }
        }
        let (threads, err) = w.threads(interp);
        if let Some(e) = err {
            out.errors.push(WalkError::Interpreter { id, source: Box::new(e) });
        }
        out.interpreters.push(RawInterp { addr: interp, id, threads });
        match mem.read_u64(interp.wrapping_add(layout.interp.next)) {
            Ok(n) => interp = n,
            Err(source) => {
                out.errors.push(WalkError::InterpreterNext { id, source });
                break;
            }
        }
    }
    for i in &mut out.interpreters {
        for t in &mut i.threads {
            t.holds_gil = out.gil_holders.contains(&t.addr);
        }
    }
    if w.shortened {
        out.errors.push(WalkError::NamesShortened);
    }
    out
}

/// `s` cut to `SHORT_NAME_CHARS` characters, marked with `…` when cut.
fn shortened(s: &str) -> String {
    match s.char_indices().nth(SHORT_NAME_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The code, file, function and line of the one frame at `f` (a suspended coroutine's or
/// generator's embedded `_PyInterpreterFrame`, 3.11+), read as the walk reads a thread's frames.
pub(crate) fn frame_at(mem: &dyn Memory, layout: &Layout, anchors: &Anchors, f: u64) -> Result<RawFrame, WalkError> {
    let w = Walker {
        mem,
        layout,
        anchors,
        codes: HashMap::new(),
        budget: 1,
        text_budget: MAX_FRAME_TEXT,
        shortened: false,
        deadline: None,
    };
    let mut code = ptr(mem, f.wrapping_add(layout.frame.code), "frame code")?;
    if layout.frame.code_tagged {
        code &= !3;
    }
    if let Some(ct) = anchors.code_type {
        if mem.read_u64(code.wrapping_add(layout.ob_type)).ok() != Some(ct) {
            return Err(WalkError::NoCodeObject { frame: f, code });
        }
    }
    let info = w.read_code(code)?;
    let pos = w.line(f, code, &info)?;
    Ok(RawFrame::new(info.file, info.function, pos, false, f, code))
}

impl Walker<'_> {
    fn threads(&mut self, interp: u64) -> (Vec<RawThread>, Option<WalkError>) {
        let layout = self.layout;
        let mut v = Vec::new();
        let mut t = match ptr(self.mem, interp.wrapping_add(layout.interp.threads_head), "thread list head") {
            Ok(t) => t,
            Err(e) => return (v, Some(e)),
        };
        let mut seen = HashSet::new();
        while t != 0 {
            if v.len() >= MAX_THREADS {
                return (v, Some(WalkError::TooManyThreads));
            }
            if !seen.insert(t) {
                return (v, Some(WalkError::ThreadLoop(t)));
            }
            match self.mem.read_u64(t.wrapping_add(layout.tstate.interp)) {
                Ok(i) if i == interp => {}
                Ok(owner) => return (v, Some(WalkError::ForeignThread { tstate: t, owner, interp })),
                Err(source) => return (v, Some(WalkError::ThreadState { tstate: t, source })),
            }
            let thread_id = self.mem.read_u64(t.wrapping_add(layout.tstate.thread_id)).unwrap_or(0);
            let native_thread_id =
                layout.tstate.native_thread_id.and_then(|o| self.mem.read_u64(t.wrapping_add(o)).ok());
            let mut th = RawThread { addr: t, thread_id, native_thread_id, ..Default::default() };
            match self.top_frame(t) {
                Ok(f) => {
                    let (frames, shims, err) = self.frames(f);
                    th.c_stack = shims.first.or_else(|| self.cframe(t)).filter(|_| !frames.is_empty());
                    th.shims = shims.closing;
                    th.frames = frames;
                    th.error = err;
                }
                Err(e) => th.error = Some(e),
            }
            v.push(th);
            match self.mem.read_u64(t.wrapping_add(layout.tstate.next)) {
                Ok(n) => t = n,
                Err(source) => return (v, Some(WalkError::ThreadNext { tstate: t, source })),
            }
        }
        (v, None)
    }

    fn top_frame(&self, t: u64) -> Result<u64, WalkError> {
        match self.layout.tstate.top_frame {
            TopFrame::Direct(o) => ptr(self.mem, t.wrapping_add(o), "thread state frame"),
            TopFrame::ViaCFrame { cframe, current_frame } => {
                let cf = ptr(self.mem, t.wrapping_add(cframe), "thread state cframe")?;
                if cf == 0 {
                    return Ok(0);
                }
                ptr(self.mem, cf.wrapping_add(current_frame), "cframe current_frame")
            }
        }
    }

    /// 3.11 and 3.12's `tstate->cframe`: the running eval loop's `_PyCFrame`, on the C stack.
    fn cframe(&self, t: u64) -> Option<u64> {
        match self.layout.tstate.top_frame {
            TopFrame::ViaCFrame { cframe, .. } => self.mem.read_u64(t.wrapping_add(cframe)).ok().filter(|&c| c != 0),
            TopFrame::Direct(_) => None,
        }
    }

    /// The thread's frames from `f` outwards, and the address of the first shim frame met (the
    /// innermost eval-loop call's entry frame, on the C stack: see [`RawThread::c_stack`]).
    fn frames(&mut self, f: u64) -> (Vec<RawFrame>, Shims, Option<WalkError>) {
        let mut shims = Shims::default();
        let (frames, err) = self.frames_from(f, &mut shims);
        (frames, shims, err)
    }

    fn frames_from(&mut self, mut f: u64, shims: &mut Shims) -> (Vec<RawFrame>, Option<WalkError>) {
        let layout = self.layout;
        let mut out: Vec<RawFrame> = Vec::new();
        let mut seen = HashSet::new();
        // Index of the frame visited just before, if it was a Python frame (3.12+ entry marks).
        let mut last_pushed: Option<usize> = None;
        let mut steps = 0usize;
        while f != 0 {
            steps += 1;
            if steps > MAX_FRAMES {
                return (out, Some(WalkError::TooManyFrames));
            }
            if self.budget == 0 {
                return (out, Some(WalkError::BudgetSpent));
            }
            if past(self.deadline) {
                return (out, Some(WalkError::Deadline));
            }
            self.budget -= 1;
            if !seen.insert(f) {
                return (out, Some(WalkError::FrameLoop(f)));
            }
            let back = match ptr(self.mem, f.wrapping_add(layout.frame.back), "frame back link") {
                Ok(b) => b,
                Err(e) => return (out, Some(e)),
            };
            if layout.frame.is_object {
                if let Some(ft) = self.anchors.frame_type {
                    match self.mem.read_u64(f.wrapping_add(layout.ob_type)) {
                        Ok(t) if t == ft => {}
                        Ok(_) => return (out, Some(WalkError::NotAFrame(f))),
                        Err(e) => return (out, Some(WalkError::read("frame")(e))),
                    }
                }
            }
            let owner = match layout.frame.owner {
                Some(o) => match self.mem.read_u8(f.wrapping_add(o)) {
                    Ok(v) => Some(v),
                    Err(e) => return (out, Some(WalkError::read("frame owner")(e))),
                },
                None => None,
            };
            if owner.is_some_and(|o| layout.frame.shim_owners.contains(&o)) {
                // A frame the C eval loop pushed for itself: the Python frame just inside it
                // is the first one that loop ran.
                if let Some(i) = last_pushed {
                    out[i].entry = true;
                    shims.closing.push(f);
                }
                shims.first.get_or_insert(f);
                last_pushed = None;
                f = back;
                continue;
            }
            let mut code = match ptr(self.mem, f.wrapping_add(layout.frame.code), "frame code") {
                Ok(c) => c,
                Err(e) => return (out, Some(e)),
            };
            if layout.frame.code_tagged {
                code &= !3;
            }
            if let Some(ct) = self.anchors.code_type {
                let ty = self.mem.read_u64(code.wrapping_add(layout.ob_type)).ok();
                if ty != Some(ct) {
                    if layout.major == 3 && layout.minor >= 13 {
                        // f_executable may legitimately be something else (None, a function
                        // in some trampolines): skip it.
                        last_pushed = None;
                        f = back;
                        continue;
                    }
                    return (out, Some(WalkError::NoCodeObject { frame: f, code }));
                }
            }
            let info = match self.code(code) {
                Ok(i) => i,
                Err(e) => return (out, Some(e)),
            };
            let pos = match self.line(f, code, &info) {
                Ok(p) => p,
                Err(e) => return (out, Some(e)),
            };
            let entry = match (layout.frame.is_object, layout.frame.is_entry) {
                (true, _) => true,
                (false, Some(o)) => self.mem.read_u8(f.wrapping_add(o)).map(|b| b != 0).unwrap_or(false),
                (false, None) => false,
            };
            let cost = info.file.len() + info.function.len();
            let (file, function) = if cost <= self.text_budget {
                self.text_budget -= cost;
                (info.file.clone(), info.function.clone())
            } else {
                self.shortened = true;
                (shortened(&info.file), shortened(&info.function))
            };
            out.push(RawFrame::new(file, function, pos, entry, f, code));
            last_pushed = Some(out.len() - 1);
            f = back;
        }
        (out, None)
    }

    fn code(&mut self, code: u64) -> Result<std::rc::Rc<CodeInfo>, WalkError> {
        if let Some(c) = self.codes.get(&code) {
            return c.clone();
        }
        let r = self.read_code(code).map(std::rc::Rc::new);
        self.codes.insert(code, r.clone());
        r
    }

    fn read_code(&self, code: u64) -> Result<CodeInfo, WalkError> {
        let (mem, layout) = (self.mem, self.layout);
        if code == 0 {
            return Err(WalkError::NullCode);
        }
        let name_field = layout.code.qualname.unwrap_or(layout.code.name);
        let fname = ptr(mem, code.wrapping_add(layout.code.filename), "co_filename")?;
        let name = ptr(mem, code.wrapping_add(name_field), "co_name")?;
        let file = read_str(mem, &layout.string, fname, MAX_STR_CHARS).map_err(WalkError::string("co_filename"))?;
        let function = match read_str(mem, &layout.string, name, MAX_STR_CHARS) {
            Ok(s) => s,
            // Fall back to the plain name when the qualified name is unreadable.
            Err(qualname) if layout.code.qualname.is_some() => ptr(mem, code.wrapping_add(layout.code.name), "co_name")
                .and_then(|p| read_str(mem, &layout.string, p, MAX_STR_CHARS).map_err(WalkError::string("co_name")))
                .map_err(|fallback| WalkError::Qualname { qualname, fallback: Box::new(fallback) })?,
            Err(e) => return Err(WalkError::string("co_name")(e)),
        };
        let firstlineno =
            mem.read_i32(code.wrapping_add(layout.code.firstlineno)).map_err(WalkError::read("co_firstlineno"))?;
        let tp = ptr(mem, code.wrapping_add(layout.code.linetable), "line table")?;
        let table = read_bytes_object(mem, layout.bytes, tp, MAX_BYTES).map_err(WalkError::string("line table"))?;
        Ok(CodeInfo { file, function, firstlineno, table })
    }

    /// The frame's line (and from 3.11 its columns).
    fn line(&self, f: u64, code: u64, info: &CodeInfo) -> Result<Position, WalkError> {
        let (mem, layout) = (self.mem, self.layout);
        let line_only = |line| Position { line, ..Default::default() };
        Ok(match (layout.frame.instr_kind, layout.code.table) {
            (Instr::LastiBytes, LineTable::Lnotab { signed }) => {
                let lasti = mem.read_i32(f.wrapping_add(layout.frame.instr)).map_err(WalkError::read("f_lasti"))?;
                line_only(Some(linetable::lnotab_line(&info.table, info.firstlineno, i64::from(lasti), signed)))
            }
            (Instr::LastiUnits, LineTable::Linetable310) => {
                let lasti = mem.read_i32(f.wrapping_add(layout.frame.instr)).map_err(WalkError::read("f_lasti"))?;
                line_only(linetable::linetable310_line(&info.table, info.firstlineno, i64::from(lasti) * 2))
            }
            (Instr::Pointer, LineTable::Locations) => {
                let ip =
                    mem.read_u64(f.wrapping_add(layout.frame.instr)).map_err(WalkError::read("instruction pointer"))?;
                let start = self.bytecode_start(f, code)?;
                let units = (ip.wrapping_sub(start) as i64) / 2;
                linetable::locations_position(&info.table, info.firstlineno, units)
            }
            (instr, table) => return Err(WalkError::Mismatched { instr, table }),
        })
    }

    /// Where the bytecode `instr_ptr` points into starts: the code object's own
    /// `co_code_adaptive`, or in free-threaded 3.14+ the thread-local copy `tlbc_index` names,
    /// `co_tlbc->entries[tlbc_index]` (`_PyCodeArray`: `Py_ssize_t size; char *entries[]`).
    fn bytecode_start(&self, f: u64, code: u64) -> Result<u64, WalkError> {
        let (mem, layout) = (self.mem, self.layout);
        let own = code.wrapping_add(layout.code.code_adaptive.unwrap_or(0));
        let (Some(ti), Some(ct)) = (layout.frame.tlbc_index, layout.code.tlbc) else { return Ok(own) };
        let index = mem.read_i32(f.wrapping_add(ti)).map_err(WalkError::read("tlbc_index"))?;
        if index == 0 {
            return Ok(own);
        }
        let array = ptr(mem, code.wrapping_add(ct), "co_tlbc")?;
        let size = mem.read_i64(array).map_err(WalkError::read("co_tlbc size"))?;
        if index < 0 || i64::from(index) >= size.min(MAX_TLBC) {
            return Err(WalkError::TlbcIndex { index, size });
        }
        ptr(mem, array.wrapping_add(8 + 8 * index as u64), "co_tlbc entry")
    }
}

/// Most thread-local bytecode copies believed in one code object (one per thread at most).
const MAX_TLBC: i64 = 1 << 16;
