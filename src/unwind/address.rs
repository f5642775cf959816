//! What a frame's address is, and the one place its pc-1 rule lives: the instruction pointer of
//! the innermost frame (or of a frame a signal interrupted, or of the sigreturn trampoline,
//! which no call entered) is the instruction itself; every other frame's address is a return
//! address, and the call that made the frame is the instruction before it. Symbols, lines and
//! CFI are looked up at `return address - 1`: after a call to a function that never returns,
//! the return address is already the first byte of the next function.

use std::num::NonZeroU64;

/// A frame's address, as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameAddress {
    /// The instruction executing in this frame.
    InstructionPointer(u64),
    /// Where the call from this frame returns to (never 0: a return address of 0 ends a stack).
    ReturnAddress(NonZeroU64),
}

impl FrameAddress {
    /// A return address; None for 0, which ends a stack.
    pub fn return_address(ra: u64) -> Option<FrameAddress> {
        NonZeroU64::new(ra).map(FrameAddress::ReturnAddress)
    }

    /// The address as found: the pc, or the return address.
    pub fn address(self) -> u64 {
        match self {
            FrameAddress::InstructionPointer(pc) => pc,
            FrameAddress::ReturnAddress(ra) => ra.get(),
        }
    }

    /// The address to look up for symbols, lines and CFI: the instruction itself, or the
    /// call before a return address.
    pub(crate) fn lookup_pc(self) -> u64 {
        match self {
            FrameAddress::InstructionPointer(pc) => pc,
            FrameAddress::ReturnAddress(ra) => ra.get() - 1,
        }
    }

    pub(crate) fn is_return_address(self) -> bool {
        matches!(self, FrameAddress::ReturnAddress(_))
    }

    /// The same address taken as an instruction pointer: a frame no call entered (the
    /// sigreturn trampoline) or one restored from a signal frame's saved context.
    pub(crate) fn as_instruction_pointer(self) -> FrameAddress {
        FrameAddress::InstructionPointer(self.address())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_is_before_a_return_address() {
        let ra = FrameAddress::return_address(0x1000).unwrap();
        assert_eq!((ra.address(), ra.lookup_pc(), ra.is_return_address()), (0x1000, 0xfff, true));
        let ip = ra.as_instruction_pointer();
        assert_eq!((ip.address(), ip.lookup_pc(), ip.is_return_address()), (0x1000, 0x1000, false));
        assert_eq!(FrameAddress::return_address(0), None);
        assert_eq!(FrameAddress::InstructionPointer(0).lookup_pc(), 0);
        assert_eq!(FrameAddress::return_address(1).map(FrameAddress::lookup_pc), Some(0));
    }
}
