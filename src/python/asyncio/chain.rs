//! A task's await chain: from its coroutine, each suspended coroutine or generator's frame
//! (function, file, line), then what its value stack's top holds while it is inside `await` /
//! `yield from` (`_PyGen_yf`): another coroutine, a Future's `__await__` iterator, a Future, a
//! Task.

use super::layout::{AsyncioLayout, Stack, YieldFrom};
use super::objects::{Kind, Types};
use crate::process::{Memory, MemoryExt};
use crate::python::layout::Layout;
use crate::python::walk::{self, Anchors};
use crate::report::model::{CoroutineFrame, CoroutineKind};

/// Most coroutines followed in one chain.
pub(crate) const MAX_DEPTH: usize = 64;

/// Where a chain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// A Future (or subclass) object.
    Future(u64),
    /// A Task object.
    Task(u64),
    /// Something else on the stack top (or nothing followable).
    Other(u64),
    /// The outermost coroutine is executing: it runs on a thread now.
    Running,
    /// Nothing awaited (created and never started, or finished).
    Nothing,
}

pub(crate) struct Chain {
    pub frames: Vec<CoroutineFrame>,
    pub end: End,
    /// The embedded frame of the outermost coroutine (to find the thread running it).
    pub first_frame: Option<u64>,
    pub error: Option<String>,
}

pub(crate) struct TaskReader<'a> {
    pub mem: &'a dyn Memory,
    pub py: &'a Layout,
    pub anchors: &'a Anchors,
    pub layout: &'a AsyncioLayout,
    pub types: &'a Types<'a>,
}

impl TaskReader<'_> {
    /// Follows the chain from the coroutine at `coro`.
    pub fn chain(&self, coro: u64) -> Chain {
        let mut out = Chain { frames: Vec::new(), end: End::Nothing, first_frame: None, error: None };
        let mut obj = coro;
        for depth in 0..MAX_DEPTH {
            let kind = self.types.kind(obj);
            match kind {
                Kind::Coroutine | Kind::Generator | Kind::AsyncGenerator => {}
                Kind::FutureIter => {
                    obj = self.mem.read_u64(obj.wrapping_add(self.layout.future_iter_future)).unwrap_or(0);
                    continue;
                }
                Kind::Future => {
                    out.end = End::Future(obj);
                    return out;
                }
                Kind::Task => {
                    out.end = End::Task(obj);
                    return out;
                }
                _ => {
                    out.end = if obj == 0 || depth == 0 { End::Nothing } else { End::Other(obj) };
                    return out;
                }
            }
            let frame = obj.wrapping_add(self.layout.gen_iframe);
            let state = match self.mem.read_u8(obj.wrapping_add(self.layout.gen_frame_state)) {
                Ok(s) => s as i8,
                Err(e) => {
                    out.error = Some(format!("coroutine at {obj:#x}: {e}"));
                    return out;
                }
            };
            if depth == 0 {
                out.first_frame = Some(frame);
            }
            // Created (not started), completed or cleared: no frame worth showing.
            if state <= self.layout.frame_created || state > self.layout.frame_executing {
                return out;
            }
            match walk::frame_at(self.mem, self.py, self.anchors, frame) {
                Ok(f) => out.frames.push(CoroutineFrame {
                    function: f.function,
                    file: f.file,
                    line: f.line,
                    kind: match kind {
                        Kind::Coroutine => CoroutineKind::Coroutine,
                        Kind::AsyncGenerator => CoroutineKind::AsyncGenerator,
                        _ => CoroutineKind::Generator,
                    },
                }),
                Err(e) => {
                    out.error = Some(e.to_string());
                    return out;
                }
            }
            if state == self.layout.frame_executing {
                out.end = End::Running;
                return out;
            }
            match self.awaited(frame, state) {
                Some(next) => obj = next,
                None => return out,
            }
        }
        out.error = Some(format!("the await chain is deeper than {MAX_DEPTH}: stopped there"));
        out
    }

    /// The object a suspended frame is inside `await` / `yield from` of, if it is.
    fn awaited(&self, frame: u64, state: i8) -> Option<u64> {
        match self.layout.yield_from {
            YieldFrom::States(states) if !states.contains(&state) => return None,
            YieldFrom::ResumeAfter { .. } if state != self.layout.frame_suspended => return None,
            _ => {}
        }
        if let YieldFrom::ResumeAfter { resume } = self.layout.yield_from {
            let prev = self.mem.read_u64(frame.wrapping_add(self.py.frame.instr)).ok()?;
            let next = self.mem.read_u16(prev.wrapping_add(2)).ok()?;
            let (op, arg) = ((next & 0xff) as u8, next >> 8);
            if !resume.contains(&op) || arg < 2 {
                return None;
            }
        }
        match self.layout.stack {
            Stack::Top { stacktop, localsplus } => {
                let top = self.mem.read_i32(frame.wrapping_add(stacktop)).ok()?;
                if !(1..=1 << 20).contains(&top) {
                    return None;
                }
                let at = frame.wrapping_add(localsplus).wrapping_add(8 * (top as u64 - 1));
                self.mem.read_u64(at).ok().filter(|&p| p != 0)
            }
            Stack::Pointer { stackpointer, peek } => {
                let sp = self.mem.read_u64(frame.wrapping_add(stackpointer)).ok()?;
                // The stack lies inside the frame, after it.
                if sp <= frame || sp > frame.wrapping_add(1 << 20) {
                    return None;
                }
                self.mem.read_u64(sp.wrapping_sub(8 * peek)).ok().map(|r| r & !3).filter(|&p| p != 0)
            }
        }
    }
}
