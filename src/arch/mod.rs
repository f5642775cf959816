//! What differs between the CPU architectures crashcatch reads: the register set and its DWARF
//! numbering, the signal frame the kernel pushes, what a return address looks like, and the
//! instructions that trap. One small module per architecture behind `ArchSpec`; everything
//! else (the unwinder, the classification, the report) is shared and asks it.
//!
//! Chosen at run time from the registers, not at compile time, so the aarch64 parts are tested
//! on an x86_64 machine on synthetic and recorded aarch64 stacks.

pub(crate) mod aarch64;
pub mod x86_64;

/// Register slots the unwinder keeps per frame, indexed by DWARF number (aarch64's 0..=31 is the
/// widest set: x0..x30 and sp).
pub(crate) const MAX_DWARF: usize = 33;

/// Values of DWARF registers of one frame; None = unknown.
pub(crate) type DwarfRegs = [Option<u64>; MAX_DWARF];

/// An instruction set crashcatch unwinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86-64.
    X86_64,
    /// AArch64.
    Aarch64,
}

impl Arch {
    /// The architecture crashcatch was built for (the one it can trace).
    pub const HOST: Arch = if cfg!(target_arch = "aarch64") { Arch::Aarch64 } else { Arch::X86_64 };

    pub(crate) fn spec(self) -> &'static dyn ArchSpec {
        match self {
            Arch::X86_64 => &x86_64::X86_64,
            Arch::Aarch64 => &aarch64::Aarch64,
        }
    }
}

/// Where the return address of a frame whose pc is not code (a call through a NULL or garbage
/// pointer) is: on x86_64 the call pushed it; on aarch64 it is in the link register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadPcReturn {
    /// The word at the stack pointer; the caller's stack pointer is one word higher.
    StackTop,
    /// This DWARF register; the stack pointer is unchanged.
    Register(usize),
}

/// The per-architecture facts the shared code asks for.
pub(crate) trait ArchSpec: Sync {
    fn arch(&self) -> Arch;
    /// DWARF numbers of the stack pointer and the frame pointer.
    fn sp(&self) -> usize;
    fn fp(&self) -> usize;
    /// The slot the unwinder keeps the return address in (the CIE's return-address column).
    fn ra_column(&self) -> usize;
    /// CFI columns below this are tracked (others, such as vector registers, are ignored).
    fn tracked(&self) -> usize;
    /// Registers a callee preserves (DWARF numbers).
    fn callee_saved(&self) -> &'static [usize];
    /// Where a frame with a bad pc returns to.
    fn bad_pc_return(&self) -> BadPcReturn;
    /// The link register, when the architecture has one: in the innermost frame (and one
    /// interrupted by a signal) the return address can still be in it, so the caller's stack
    /// pointer may equal this frame's.
    fn link_register(&self) -> Option<usize>;
    /// Name of the frame pointer register, for messages (`rbp`, `x29`).
    fn fp_name(&self) -> &'static str;
    /// The sigreturn trampoline's first instructions (`__restore_rt`, `__kernel_rt_sigreturn`).
    fn sigreturn(&self) -> &'static [u8];
    /// The saved registers of a signal frame: `(offset from the trampoline frame's stack pointer,
    /// bytes to read)`.
    fn signal_regs_at(&self) -> (u64, usize);
    /// The interrupted frame's registers and pc from the bytes read at [`Self::signal_regs_at`].
    fn signal_regs(&self, bytes: &[u8]) -> (DwarfRegs, u64);
    /// Could the instruction just before a return address be a call? `before` holds the 8 bytes
    /// before `ra`.
    fn is_after_call(&self, ra: u64, before: &[u8; 8]) -> bool;
    /// A return address with pointer-authentication bits removed (aarch64); unchanged elsewhere.
    fn clean_return_address(&self, ra: u64) -> u64;
    /// Bytes at the pc the classification reads to recognise a trap instruction.
    fn trap_len(&self) -> usize;
    /// The trap instruction at these bytes, by name (`ud2`, `brk`, `udf`), if it is one.
    fn trap_name(&self, code: &[u8]) -> Option<&'static str>;
    /// An address no user pointer can hold (x86_64's non-canonical hole).
    fn is_non_canonical(&self, addr: u64) -> bool;
    /// How far below the thread pointer glibc's `struct pthread` (CPython's `thread_id`) starts:
    /// x86_64's thread pointer is the `pthread_t` itself, aarch64's is just past it
    /// (`sizeof(struct pthread)`, 0x740 in glibc 2.36, differs between releases).
    fn pthread_below_thread_pointer(&self) -> std::ops::RangeInclusive<u64>;
    /// `offsetof(struct pthread, tid)` in glibc on this architecture (the first guess before a
    /// scan; see python::tids).
    fn glibc_tid_offset(&self) -> u64;
}

/// Registers of one thread, in its architecture's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registers {
    /// x86-64's.
    X86_64(x86_64::Regs),
    /// AArch64's.
    Aarch64(aarch64::Regs),
}

impl Registers {
    /// Which architecture they are of.
    pub fn arch(&self) -> Arch {
        match self {
            Registers::X86_64(_) => Arch::X86_64,
            Registers::Aarch64(_) => Arch::Aarch64,
        }
    }
    pub(crate) fn spec(&self) -> &'static dyn ArchSpec {
        self.arch().spec()
    }
    /// The instruction pointer.
    pub fn pc(&self) -> u64 {
        match self {
            Registers::X86_64(r) => r.rip,
            Registers::Aarch64(r) => r.pc,
        }
    }
    /// The stack pointer.
    pub fn sp(&self) -> u64 {
        match self {
            Registers::X86_64(r) => r.rsp,
            Registers::Aarch64(r) => r.sp,
        }
    }
    /// The thread pointer (x86_64 `fs_base`, aarch64 `tpidr_el0`).
    pub(crate) fn thread_pointer(&self) -> u64 {
        match self {
            Registers::X86_64(r) => r.fs_base,
            Registers::Aarch64(r) => r.tpidr,
        }
    }
    /// The registers the unwinder starts from, by DWARF number.
    pub fn dwarf(&self) -> DwarfRegs {
        match self {
            Registers::X86_64(r) => r.dwarf(),
            Registers::Aarch64(r) => r.dwarf(),
        }
    }
    /// Every register by its usual name, for the report.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        match self {
            Registers::X86_64(r) => r.named(),
            Registers::Aarch64(r) => r.named(),
        }
    }
}

impl From<x86_64::Regs> for Registers {
    fn from(r: x86_64::Regs) -> Self {
        Registers::X86_64(r)
    }
}

impl From<aarch64::Regs> for Registers {
    fn from(r: aarch64::Regs) -> Self {
        Registers::Aarch64(r)
    }
}
