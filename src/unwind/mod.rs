//! Native stack unwinding: registers and stack memory in, return addresses out.
//!
//! DWARF CFI (.eh_frame via .eh_frame_hdr, .eh_frame, .debug_frame) first, the frame-pointer
//! chain second, stack scanning last; each frame says how it was found. Signal frames
//! (`__restore_rt`) are unwound through the saved `ucontext`.

use crate::modules::ModuleSet;
use crate::process::{Memory, Registers};
use crate::report::model::Trust;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Stop after this many frames in all (a runaway recursion has ~100k).
    pub max_frames: usize,
    /// Frames kept from the top and from the bottom when a stack is longer than both together.
    pub keep_top: usize,
    pub keep_bottom: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_frames: 1_000_000, keep_top: 200, keep_bottom: 50 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame {
    /// The instruction pointer (frame 0, or a frame interrupted by a signal) or the return address.
    pub pc: u64,
    /// True when `pc` is a return address: symbol and CFI look-ups must use `pc - 1`.
    pub is_return_address: bool,
    /// Stack pointer in this frame.
    pub sp: u64,
    pub trust: Trust,
}

impl RawFrame {
    /// The address to look up for symbols, lines and CFI.
    pub fn lookup_pc(&self) -> u64 {
        if self.is_return_address {
            self.pc.saturating_sub(1)
        } else {
            self.pc
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct UnwoundStack {
    /// Innermost first. When the stack was longer than the limits allow, the top `keep_top`
    /// frames and the bottom `keep_bottom` frames, with `elided` saying what is missing.
    pub frames: Vec<RawFrame>,
    /// (index in `frames` after which frames are missing, how many).
    pub elided: Option<(usize, u64)>,
    /// Why the unwind ended early, if it did.
    pub error: Option<String>,
}

/// Unwinds one thread.
pub fn unwind(regs: &Registers, memory: &dyn Memory, modules: &ModuleSet, limits: Limits) -> UnwoundStack {
    let _ = (memory, modules, limits);
    UnwoundStack {
        frames: vec![RawFrame { pc: regs.rip, is_return_address: false, sp: regs.rsp, trust: Trust::Context }],
        elided: None,
        error: Some("unwinding not implemented yet".into()),
    }
}
