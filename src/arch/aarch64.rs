//! aarch64: x0..x30, sp and pc (PTRACE_GETREGSET NT_PRSTATUS, `user_pt_regs`), tpidr_el0
//! (NT_ARM_TLS); DWARF numbering x0..x30 = 0..30, sp = 31, the return address in the link
//! register x30 (the CIE's return-address column); the kernel's `rt_sigframe` restored by
//! `__kernel_rt_sigreturn` in the vDSO (musl's `__restore_rt` is the same two instructions);
//! pointer-authentication bits stripped from return addresses; `bl`/`blr` before a return
//! address; `brk` and `udf` as traps.

use super::x86_64::word;
use super::{Arch, ArchSpec, BadPcReturn, DwarfRegs, MAX_DWARF};

/// aarch64 registers of one thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regs {
    /// x0..x30 (x29 is the frame pointer, x30 the link register).
    pub x: [u64; 31],
    pub sp: u64,
    pub pc: u64,
    pub pstate: u64,
    /// tpidr_el0, the thread pointer.
    pub tpidr: u64,
}

pub(crate) const FP: usize = 29;
pub(crate) const LR: usize = 30;
pub(crate) const SP: usize = 31;

impl Regs {
    pub(crate) fn dwarf(&self) -> DwarfRegs {
        let mut out: DwarfRegs = [None; MAX_DWARF];
        for (i, v) in self.x.iter().enumerate() {
            out[i] = Some(*v);
        }
        out[SP] = Some(self.sp);
        out
    }

    pub fn named(&self) -> Vec<(&'static str, u64)> {
        const NAMES: [&str; 31] = [
            "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15",
            "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29", "x30",
        ];
        let mut v: Vec<(&'static str, u64)> = NAMES.iter().copied().zip(self.x).collect();
        v.extend([("sp", self.sp), ("pc", self.pc), ("pstate", self.pstate), ("tpidr_el0", self.tpidr)]);
        v
    }
}

/// `mov x8, #139; svc #0` (rt_sigreturn), little-endian.
pub(crate) const SIGRETURN: [u8; 8] = [0x68, 0x11, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4];
/// From the trampoline frame's sp (the `rt_sigframe`): its 128-byte siginfo, then the ucontext,
/// whose `uc_mcontext` (a `sigcontext`) is 16-byte aligned after uc_flags, uc_link, the 24-byte
/// uc_stack and the 128-byte uc_sigmask (at 176), then sigcontext's fault_address: x0 is here.
pub(crate) const SIGFRAME_X0: u64 = 128 + 176 + 8;
/// Bits a user address can have; above them are pointer-authentication codes (and a top-byte tag).
const VA_MASK: u64 = (1 << 48) - 1;

pub(crate) struct Aarch64;

impl ArchSpec for Aarch64 {
    fn arch(&self) -> Arch {
        Arch::Aarch64
    }
    fn sp(&self) -> usize {
        SP
    }
    fn fp(&self) -> usize {
        FP
    }
    fn ra_column(&self) -> usize {
        LR
    }
    fn tracked(&self) -> usize {
        32
    }
    fn callee_saved(&self) -> &'static [usize] {
        // x19-x28 and the frame pointer x29 (AAPCS64).
        &[19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]
    }
    fn bad_pc_return(&self) -> BadPcReturn {
        BadPcReturn::Register(LR)
    }
    fn link_register(&self) -> Option<usize> {
        Some(LR)
    }
    fn fp_name(&self) -> &'static str {
        "x29"
    }
    fn sigreturn(&self) -> &'static [u8] {
        &SIGRETURN
    }
    fn signal_regs_at(&self) -> (u64, usize) {
        // x0..x30, sp, pc
        (SIGFRAME_X0, 33 * 8)
    }
    fn signal_regs(&self, bytes: &[u8]) -> (DwarfRegs, u64) {
        let mut regs: DwarfRegs = [None; MAX_DWARF];
        for (i, slot) in regs.iter_mut().enumerate().take(32) {
            *slot = word(bytes, i);
        }
        (regs, word(bytes, 32).unwrap_or(0))
    }
    fn is_after_call(&self, ra: u64, b: &[u8; 8]) -> bool {
        if ra % 4 != 0 {
            return false;
        }
        let insn = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        insn & 0xfc00_0000 == 0x9400_0000 // bl imm26
            || insn & 0xffff_fc1f == 0xd63f_0000 // blr xN
            || insn & 0xfeff_f800 == 0xd63f_0800 // blraa, blrab, blraaz, blrabz
    }
    fn clean_return_address(&self, ra: u64) -> u64 {
        ra & VA_MASK
    }
    fn trap_len(&self) -> usize {
        4
    }
    fn trap_name(&self, code: &[u8]) -> Option<&'static str> {
        let insn = u32::from_le_bytes(code.get(..4)?.try_into().ok()?);
        if insn & 0xffe0_001f == 0xd420_0000 {
            Some("brk")
        } else if insn & 0xffff_0000 == 0 {
            Some("udf")
        } else {
            None
        }
    }
    fn is_non_canonical(&self, addr: u64) -> bool {
        // Above the largest user address space (52 bits) and below the kernel's.
        (1u64 << 52..0xfff0_0000_0000_0000).contains(&addr)
    }
    fn pthread_below_thread_pointer(&self) -> std::ops::RangeInclusive<u64> {
        // glibc 2.36: `mrs x0, tpidr_el0; sub x0, x0, #0x740` in pthread_self.
        0x400..=0x1000
    }
    fn glibc_tid_offset(&self) -> u64 {
        // aarch64 glibc 2.36: `ldr w0, [x0, #208]` in pthread_getcpuclockid.
        0xd0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_traps_and_pac() {
        let a = Aarch64;
        let before = |insn: u32| {
            let mut b = [0u8; 8];
            b[4..].copy_from_slice(&insn.to_le_bytes());
            b
        };
        assert!(a.is_after_call(0x1000, &before(0x9400_0010))); // bl
        assert!(a.is_after_call(0x1000, &before(0xd63f_0020))); // blr x1
        assert!(a.is_after_call(0x1000, &before(0xd63f_083f))); // blraaz x1
        assert!(!a.is_after_call(0x1000, &before(0xd65f_03c0))); // ret
        assert!(!a.is_after_call(0x1002, &before(0x9400_0010))); // misaligned
        assert_eq!(a.trap_name(&0xd420_7d00u32.to_le_bytes()), Some("brk")); // brk #0x3e8
        assert_eq!(a.trap_name(&0x0000_0000u32.to_le_bytes()), Some("udf"));
        assert_eq!(a.trap_name(&0xd503_201fu32.to_le_bytes()), None); // nop
        assert_eq!(a.clean_return_address(0x003a_aaaa_dead_beef), 0xaaaa_dead_beef);
        assert_eq!(a.clean_return_address(0x0000_ffff_8000_1234), 0xffff_8000_1234);
    }
}
