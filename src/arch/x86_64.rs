//! x86_64: general-purpose registers (psABI DWARF numbering, the return address as column 16),
//! glibc's and musl's `__restore_rt` and the `ucontext_t` it restores, `call` encodings, `ud2`.

use super::{Arch, ArchSpec, BadPcReturn, DwarfRegs, MAX_DWARF};

/// x86_64 general-purpose registers of one thread (PTRACE_GETREGS' `user_regs_struct`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regs {
    /// `rax`.
    pub rax: u64,
    /// `rbx`.
    pub rbx: u64,
    /// `rcx`.
    pub rcx: u64,
    /// `rdx`.
    pub rdx: u64,
    /// `rsi`.
    pub rsi: u64,
    /// `rdi`.
    pub rdi: u64,
    /// `rbp`.
    pub rbp: u64,
    /// `rsp`.
    pub rsp: u64,
    /// `r8`.
    pub r8: u64,
    /// `r9`.
    pub r9: u64,
    /// `r10`.
    pub r10: u64,
    /// `r11`.
    pub r11: u64,
    /// `r12`.
    pub r12: u64,
    /// `r13`.
    pub r13: u64,
    /// `r14`.
    pub r14: u64,
    /// `r15`.
    pub r15: u64,
    /// `rip`.
    pub rip: u64,
    /// `eflags`.
    pub eflags: u64,
    /// `fs_base`.
    pub fs_base: u64,
    /// `gs_base`.
    pub gs_base: u64,
    /// `orig_rax`.
    pub orig_rax: u64,
}

impl Regs {
    /// The register with this DWARF number (x86_64 psABI numbering), if it is a GPR or the RA.
    pub(crate) fn get_dwarf(&self, n: u16) -> Option<u64> {
        Some(match n {
            0 => self.rax,
            1 => self.rdx,
            2 => self.rcx,
            3 => self.rbx,
            4 => self.rsi,
            5 => self.rdi,
            6 => self.rbp,
            7 => self.rsp,
            8 => self.r8,
            9 => self.r9,
            10 => self.r10,
            11 => self.r11,
            12 => self.r12,
            13 => self.r13,
            14 => self.r14,
            15 => self.r15,
            16 => self.rip,
            _ => return None,
        })
    }

    pub(crate) fn dwarf(&self) -> DwarfRegs {
        let mut out: DwarfRegs = [None; MAX_DWARF];
        for (n, slot) in out.iter_mut().enumerate().take(17) {
            *slot = self.get_dwarf(n as u16);
        }
        out
    }

    /// Every register with its name, for the report.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("rax", self.rax),
            ("rbx", self.rbx),
            ("rcx", self.rcx),
            ("rdx", self.rdx),
            ("rsi", self.rsi),
            ("rdi", self.rdi),
            ("rbp", self.rbp),
            ("rsp", self.rsp),
            ("r8", self.r8),
            ("r9", self.r9),
            ("r10", self.r10),
            ("r11", self.r11),
            ("r12", self.r12),
            ("r13", self.r13),
            ("r14", self.r14),
            ("r15", self.r15),
            ("rip", self.rip),
            ("eflags", self.eflags),
            ("fs_base", self.fs_base),
        ]
    }
}

/// `mov $15, %rax; syscall` (rt_sigreturn): glibc's and musl's `__restore_rt`.
pub(crate) const SIGRETURN: [u8; 9] = [0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05];
/// Offset of `uc_mcontext.gregs` in `ucontext_t` (uc_flags, uc_link, 24-byte uc_stack).
pub(crate) const UC_GREGS: u64 = 40;
/// DWARF register number for each of the first 17 `gregs` slots (R8..R15, RDI, RSI, RBP, RBX,
/// RDX, RAX, RCX, RSP, RIP).
const GREGS_TO_DWARF: [usize; 17] = [8, 9, 10, 11, 12, 13, 14, 15, 5, 4, 6, 3, 1, 0, 2, 7, 16];

pub(crate) const RSP: usize = 7;
pub(crate) const RBP: usize = 6;
pub(crate) const RIP: usize = 16;

pub(crate) struct X86_64;

impl ArchSpec for X86_64 {
    fn arch(&self) -> Arch {
        Arch::X86_64
    }
    fn sp(&self) -> usize {
        RSP
    }
    fn fp(&self) -> usize {
        RBP
    }
    fn ra_column(&self) -> usize {
        RIP
    }
    fn tracked(&self) -> usize {
        16
    }
    fn callee_saved(&self) -> &'static [usize] {
        // rbx, rbp, r12-r15
        &[3, 6, 12, 13, 14, 15]
    }
    fn bad_pc_return(&self) -> BadPcReturn {
        BadPcReturn::StackTop
    }
    fn link_register(&self) -> Option<usize> {
        None
    }
    fn fp_name(&self) -> &'static str {
        "rbp"
    }
    fn sigreturn(&self) -> &'static [u8] {
        &SIGRETURN
    }
    fn signal_regs_at(&self) -> (u64, usize) {
        // The trampoline frame's rsp is the ucontext (the handler's `ret` popped pretcode).
        (UC_GREGS, 17 * 8)
    }
    fn signal_regs(&self, bytes: &[u8]) -> (DwarfRegs, u64) {
        let mut regs: DwarfRegs = [None; MAX_DWARF];
        for (i, &dw) in GREGS_TO_DWARF.iter().enumerate() {
            regs[dw] = word(bytes, i);
        }
        (regs, regs[RIP].unwrap_or(0))
    }
    fn is_after_call(&self, _ra: u64, b: &[u8; 8]) -> bool {
        let at = |back: usize| b[8 - back];
        // call rel32
        if at(5) == 0xe8 {
            return true;
        }
        // call r/m64 (ff /2) in its 2-, 3-, 4-, 6- and 7-byte forms (register, [reg], disp8,
        // SIB+disp8, disp32/rip-relative, SIB+disp32; a REX prefix makes the same lengths).
        [2usize, 3, 4, 6, 7].iter().any(|&k| at(k) == 0xff && (at(k - 1) >> 3) & 7 == 2)
    }
    fn clean_return_address(&self, ra: u64) -> u64 {
        ra
    }
    fn trap_len(&self) -> usize {
        2
    }
    fn trap_name(&self, code: &[u8]) -> Option<&'static str> {
        (code.get(..2) == Some(&[0x0f, 0x0b][..])).then_some("ud2")
    }
    fn is_non_canonical(&self, addr: u64) -> bool {
        (0x0000_8000_0000_0000..0xffff_8000_0000_0000).contains(&addr)
    }
    fn pthread_below_thread_pointer(&self) -> std::ops::RangeInclusive<u64> {
        0..=0
    }
    fn glibc_tid_offset(&self) -> u64 {
        // x86_64 glibc 2.36 (and many releases around it).
        0x2d0
    }
}

/// The little-endian word `i` of `bytes`, if it is there.
pub(super) fn word(bytes: &[u8], i: usize) -> Option<u64> {
    let b = bytes.get(i * 8..i * 8 + 8)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}
