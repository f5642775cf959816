//! Native stack unwinding: registers and stack memory in, return addresses out.
//!
//! DWARF CFI (.eh_frame via .eh_frame_hdr, .eh_frame, .debug_frame) first, the frame-pointer
//! chain second, stack scanning last; each frame says how it was found. Signal frames
//! (`__restore_rt`) are unwound through the saved `ucontext`.
//!
//! Conventions: a frame's address is a [`FrameAddress`], an instruction pointer or a return
//! address (see address.rs for the pc-1 rule). The sigreturn trampoline's own frame is an
//! instruction pointer (the kernel "calls" the handler with the trampoline's first byte as
//! return address, so pc-1 would name the function before it); the interrupted frame restored
//! from the `ucontext` is `Trust::Signal`, also an instruction pointer. A frame-0 pc outside any code (a
//! call through a NULL or garbage pointer) takes its caller from `[rsp]`, marked `Trust::Scan`.
//! Registers a callee may clobber become unknown after the first frame.

mod address;
mod cfi;
mod ehindex;
mod error;
mod eval;
mod step;
#[cfg(test)]
mod tests;
mod trust;

use std::collections::VecDeque;

use crate::modules::ModuleSet;
use crate::process::{CachedMemory, Memory, Registers};

pub use address::FrameAddress;
pub use error::{
    CfiError, CfiMiss, ExpressionError, FramePointerError, NoCaller, StepError, UnwindErrorKind, UnwindStop,
};
use step::{State, Step, Stepper};
pub use trust::Trust;

/// Nested signal handlers beyond this are taken for a corrupt stack.
const MAX_SIGNAL_FRAMES: u32 = 64;

/// How far to unwind, and what to keep.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Stop after this many frames in all (a runaway recursion has ~100k).
    pub max_frames: usize,
    /// Frames kept from the top and from the bottom when a stack is longer than both together.
    pub keep_top: usize,
    /// Frames kept from the bottom.
    pub keep_bottom: usize,
    /// Stop when this moment has passed (the report's budget), looked at every
    /// `DEADLINE_EVERY` frames, so that a stack always gets its first frames.
    pub deadline: Option<std::time::Instant>,
}

/// How many frames are unwound between two looks at the deadline.
pub(crate) const DEADLINE_EVERY: u64 = 256;

impl Default for Limits {
    fn default() -> Self {
        Limits { max_frames: 1_000_000, keep_top: 200, keep_bottom: 50, deadline: None }
    }
}

/// One frame as unwound: where it is, its stack pointer, and how it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnwoundFrame {
    /// The instruction pointer (frame 0, or a frame interrupted by a signal) or the return address.
    pub address: FrameAddress,
    /// Stack pointer in this frame.
    pub sp: u64,
    /// How it was found.
    pub trust: Trust,
}

/// A thread's native stack, as unwound.
#[derive(Debug, Clone, Default)]
pub struct UnwoundStack {
    /// Innermost first. When the stack was longer than the limits allow, the top `keep_top`
    /// frames and the bottom `keep_bottom` frames, with `elided` saying what is missing.
    pub frames: Vec<UnwoundFrame>,
    /// (index in `frames` of the first frame after the gap, how many frames are missing): the
    /// missing frames were between `frames[at - 1]` and `frames[at]`; `at` is `keep_top`.
    pub elided: Option<(usize, u64)>,
    /// Why the unwind ended early, if it did.
    pub error: Option<UnwindStop>,
}

/// What unwinding one thread learns that the other threads of the same process can use: each
/// module's CFI index and the unwind row found for each address. The threads of a process wait
/// at the same few places (200 threads in `pthread_cond_wait` share every row), so a report
/// unwinds them all with one cache.
pub(crate) struct UnwindCache<'m> {
    cfi: cfi::CfiCache<'m>,
}

impl<'m> UnwindCache<'m> {
    pub fn new(arch: crate::arch::Arch) -> Self {
        UnwindCache { cfi: cfi::CfiCache::new(arch) }
    }
}

/// Unwinds one thread. Never panics and always ends: every step must move the stack pointer
/// up (except into a signal frame's saved context), and at most `limits.max_frames` are walked.
pub fn unwind(regs: &Registers, memory: &dyn Memory, modules: &ModuleSet, limits: Limits) -> UnwoundStack {
    unwind_with(regs, memory, modules, limits, &mut UnwindCache::new(regs.spec().arch()))
}

/// [`unwind`] with a cache shared by the threads of one process (`modules` must be that
/// process's, as for every thread unwound with the same cache). A cache made for another
/// architecture than the registers' is not used.
pub(crate) fn unwind_with<'m>(
    regs: &Registers,
    memory: &dyn Memory,
    modules: &'m ModuleSet,
    limits: Limits,
    cache: &mut UnwindCache<'m>,
) -> UnwoundStack {
    let spec = regs.spec();
    if cache.cfi.arch() != spec.arch() {
        return unwind(regs, memory, modules, limits);
    }
    let sp = spec.sp();
    let cached = CachedMemory::new(memory);
    let mut stepper = Stepper { spec, memory: &cached, modules, cfi: &mut cache.cfi };
    let mut out = Collector::new(limits, sp);

    let mut cur =
        State { regs: regs.dwarf(), address: FrameAddress::InstructionPointer(regs.pc()), trust: Trust::Context };
    out.push(&cur);
    let mut error = None;
    let mut signal_frames = 0u32;
    loop {
        if out.count >= limits.max_frames as u64 {
            error = Some(UnwindStop::FrameLimit { limit: limits.max_frames });
            break;
        }
        if out.count % DEADLINE_EVERY == 0 && limits.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            error = Some(UnwindStop::Deadline { frames: out.count });
            break;
        }
        let next = match stepper.step(&cur) {
            Ok(Step::End) => break,
            Ok(Step::Caller(next)) => next,
            Err(e) => {
                error = Some(e.into());
                break;
            }
        };
        let (old_sp, new_sp) = (cur.regs[sp].unwrap_or(0), next.regs[sp].unwrap_or(0));
        // With a link register, the innermost frame (or one a signal interrupted) may not have
        // touched the stack: its caller's stack pointer can be the same.
        let same_ok = new_sp == old_sp && !cur.address.is_return_address() && spec.link_register().is_some();
        if next.trust != Trust::Signal && new_sp <= old_sp && !same_ok {
            error = Some(UnwindStop::StackPointerNotIncreasing { from: old_sp, to: new_sp, pc: cur.address.address() });
            break;
        }
        if next.trust == Trust::Signal {
            // Signal frames may move the stack pointer anywhere (sigaltstack), so bound them apart.
            signal_frames += 1;
            if signal_frames > MAX_SIGNAL_FRAMES {
                error = Some(UnwindStop::TooManySignalFrames);
                break;
            }
        }
        out.push(&next);
        cur = next;
    }
    let mut stack = out.finish();
    stack.error = error;
    stack
}

/// Keeps the top `keep_top` frames and a ring of the last `keep_bottom`.
struct Collector {
    /// DWARF number of the stack pointer.
    sp: usize,
    keep_top: usize,
    keep_bottom: usize,
    top: Vec<UnwoundFrame>,
    bottom: VecDeque<UnwoundFrame>,
    count: u64,
}

impl Collector {
    fn new(limits: Limits, sp: usize) -> Self {
        Collector {
            sp,
            keep_top: limits.keep_top,
            keep_bottom: limits.keep_bottom,
            top: Vec::new(),
            bottom: VecDeque::new(),
            count: 0,
        }
    }

    fn push(&mut self, s: &State) {
        let f = UnwoundFrame { address: s.address, sp: s.regs[self.sp].unwrap_or(0), trust: s.trust };
        self.count += 1;
        if self.top.len() < self.keep_top {
            self.top.push(f);
        } else if self.keep_bottom > 0 {
            if self.bottom.len() == self.keep_bottom {
                self.bottom.pop_front();
            }
            self.bottom.push_back(f);
        }
    }

    fn finish(self) -> UnwoundStack {
        let kept = (self.top.len() + self.bottom.len()) as u64;
        let elided = (self.count > kept).then(|| (self.top.len(), self.count - kept));
        let mut frames = self.top;
        frames.extend(self.bottom);
        UnwoundStack { frames, elided, error: None }
    }
}
