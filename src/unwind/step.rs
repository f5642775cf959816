//! One unwinding step: from a frame's registers to its caller's, by CFI, by the frame-pointer
//! chain, or by scanning the stack; through signal frames by the saved context. What differs
//! per architecture (register numbers, the signal frame, call instructions, pointer
//! authentication) comes from [`ArchSpec`].

use super::cfi::{Cfa, CfiCache, Row, Rule};
use super::error::{CfiError, CfiMiss, FramePointerError, NoCaller, StepError, SCAN_WORDS};
use super::eval::evaluate;
use super::FrameAddress;
use super::Trust;
use crate::arch::DwarfRegs;
use crate::arch::{ArchSpec, BadPcReturn, MAX_DWARF};
use crate::modules::ModuleSet;
use crate::process::{Memory, MemoryExt};

/// A frame pointer further than this above the stack pointer is not believed.
const MAX_FRAME_SIZE: u64 = 64 << 20;

/// The state of one frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct State {
    pub regs: DwarfRegs,
    pub address: FrameAddress,
    pub trust: Trust,
}

#[allow(clippy::large_enum_variant)] // one per step, never stored
pub(crate) enum Step {
    /// The stack ends here normally (return address undefined or zero, outermost frame pointer).
    End,
    Caller(State),
}

/// Finds the caller of a frame, one step at a time.
pub(crate) struct Stepper<'a, 'm> {
    pub spec: &'static dyn ArchSpec,
    pub memory: &'a dyn Memory,
    pub modules: &'m ModuleSet,
    /// Shared by the threads of one process (see `UnwindCache`).
    pub cfi: &'a mut CfiCache<'m>,
}

impl<'a, 'm> Stepper<'a, 'm> {
    /// True when `addr` is inside an executable mapping of a known module.
    fn in_code(&self, addr: u64) -> bool {
        self.modules.find(addr).is_some_and(|m| m.is_executable_at(addr))
    }

    fn is_sigreturn(&self, pc: u64) -> bool {
        if !self.in_code(pc) {
            return false;
        }
        let want = self.spec.sigreturn();
        let mut b = [0u8; 16];
        let b = &mut b[..want.len()];
        self.memory.read_partial(pc, b) == b.len() && b == want
    }

    /// Could `ra` be a return address: in code, right after a call instruction?
    fn looks_like_return_address(&self, ra: u64) -> bool {
        if ra < 8 || !self.in_code(ra - 1) {
            return false;
        }
        let mut b = [0u8; 8];
        if self.memory.read_partial(ra - 8, &mut b) != 8 {
            // At the very start of a mapping: read byte by byte what is there.
            for (i, slot) in b.iter_mut().enumerate() {
                *slot = self.memory.read_u8(ra - 8 + i as u64).unwrap_or(0);
            }
        }
        self.spec.is_after_call(ra, &b)
    }

    /// The caller of `cur`, or why there is none.
    pub fn step(&mut self, cur: &State) -> Result<Step, StepError> {
        let (sp_reg, ra_reg) = (self.spec.sp(), self.spec.ra_column());
        let rsp = cur.regs[sp_reg].ok_or(StepError::StackPointerUnknown)?;
        let pc = cur.address.address();
        if self.is_sigreturn(pc) {
            return self.signal_frame(rsp);
        }
        let lookup = cur.address.lookup_pc();
        let module = self.modules.find(lookup).filter(|m| m.is_executable_at(lookup));
        let mut had_cfi = false;
        let cfi = match module {
            None => CfiMiss::NotCode { pc },
            Some(m) => match self.cfi.row(m, lookup) {
                None => CfiMiss::NoCfi { pc, module: m.name().to_string() },
                Some(row) => {
                    had_cfi = true;
                    match self.apply_row(&row, cur) {
                        Ok(None) => return Ok(Step::End),
                        Ok(Some(mut next)) if row.signal => {
                            next.trust = Trust::Signal;
                            next.address = next.address.as_instruction_pointer();
                            return Ok(Step::Caller(next));
                        }
                        Ok(Some(next)) if self.in_code(next.address.lookup_pc()) => {
                            return Ok(Step::Caller(self.finish(next)));
                        }
                        Ok(Some(next)) => CfiMiss::ReturnAddressNotCode { pc, return_address: next.address.address() },
                        Err(source) => CfiMiss::Failed { pc, source },
                    }
                }
            },
        };

        // A call through a NULL or garbage function pointer: the pc is not code, nothing was
        // pushed since the call, so the return address is at [rsp] (x86_64) or in the link
        // register (aarch64). That is a guess from stack contents rather than from unwind data,
        // hence Trust::Scan (the enum has nothing closer).
        if !cur.address.is_return_address() && module.is_none() {
            let found = match self.spec.bad_pc_return() {
                BadPcReturn::StackTop => self.memory.read_u64(rsp).ok().map(|ra| (ra, rsp.wrapping_add(8))),
                BadPcReturn::Register(r) => cur.regs[r].map(|ra| (self.spec.clean_return_address(ra), rsp)),
            };
            if let Some((address, caller_sp)) = found.and_then(|(ra, sp)| Some((self.return_address(ra)?, sp))) {
                let mut regs = self.callee_saved(&cur.regs);
                regs[sp_reg] = Some(caller_sp);
                regs[ra_reg] = Some(address.address());
                return Ok(Step::Caller(self.finish(State { regs, address, trust: Trust::Scan })));
            }
        }

        let frame_pointer = match self.frame_pointer(cur, rsp) {
            Ok(Some(next)) => return Ok(Step::Caller(self.finish(next))),
            // A frame pointer of 0 ends the chain, but only believed where there was no CFI to say
            // otherwise.
            Ok(None) if !had_cfi => return Ok(Step::End),
            Ok(None) => FramePointerError::Zero,
            Err(e) => e,
        };

        if let Some(next) = self.scan(rsp) {
            return Ok(Step::Caller(self.finish(next)));
        }
        Err(NoCaller { cfi, frame_pointer, sp: rsp }.into())
    }

    /// `ra` as a return address, when it could be one (in code, right after a call).
    fn return_address(&self, ra: u64) -> Option<FrameAddress> {
        FrameAddress::return_address(ra).filter(|_| self.looks_like_return_address(ra))
    }

    /// A frame whose pc is the sigreturn trampoline is not entered by a call: its address is
    /// an instruction pointer, so that its symbol and CFI look-ups use the pc itself.
    fn finish(&self, mut next: State) -> State {
        if next.address.is_return_address() && self.is_sigreturn(next.address.address()) {
            next.address = next.address.as_instruction_pointer();
        }
        next
    }

    /// Registers of the interrupted frame from the signal frame at `sp`, the stack pointer of the
    /// trampoline frame (x86_64: the `ucontext_t`; aarch64: the kernel's `rt_sigframe`).
    fn signal_frame(&self, sp: u64) -> Result<Step, StepError> {
        let (offset, len) = self.spec.signal_regs_at();
        let mut buf = [0u8; 64 * 8];
        let buf = &mut buf[..len.min(64 * 8)];
        self.memory.read_exact(sp.wrapping_add(offset), buf).map_err(StepError::SignalFrame)?;
        let (regs, pc) = self.spec.signal_regs(buf);
        Ok(Step::Caller(State { regs, address: FrameAddress::InstructionPointer(pc), trust: Trust::Signal }))
    }

    /// Applies one CFI row. None when the return address is undefined or zero (stack end).
    fn apply_row(&self, row: &Row<'_>, cur: &State) -> Result<Option<State>, CfiError> {
        let (sp_reg, ra_reg) = (self.spec.sp(), self.spec.ra_column());
        let regs = &cur.regs;
        let reg = |n: u16| regs.get(n as usize).copied().flatten().ok_or(CfiError::RegisterUnknown(n));
        let cfa = match &row.cfa {
            Cfa::RegisterOffset(r, off) => reg(*r)?.wrapping_add(*off as u64),
            Cfa::Expression(e) => evaluate(e, row.encoding, regs, self.memory, None, row.bias)?,
        };
        let mut new = self.callee_saved(regs);
        // In the innermost frame (or one a signal interrupted), a return address with no rule is
        // still in the link register (an aarch64 leaf function); in a caller, its call clobbered it.
        if let Some(lr) = self.spec.link_register().filter(|_| !cur.address.is_return_address()) {
            new[lr] = regs[lr];
        }
        let mut rsp_rule = false;
        for (n, rule) in &row.rules {
            let n = *n as usize;
            if n >= MAX_DWARF {
                continue;
            }
            let read = |addr: u64| {
                self.memory.read_u64(addr).map(Some).map_err(|source| CfiError::SavedRegister { register: n, source })
            };
            let value = match rule {
                Rule::Undefined => Ok(None),
                Rule::SameValue => Ok(regs[n]),
                Rule::Offset(o) => read(cfa.wrapping_add(*o as u64)),
                Rule::ValOffset(o) => Ok(Some(cfa.wrapping_add(*o as u64))),
                Rule::Register(r) => Ok(regs.get(*r as usize).copied().flatten()),
                Rule::Expression(e) => evaluate(e, row.encoding, regs, self.memory, Some(cfa), row.bias)
                    .map_err(CfiError::from)
                    .and_then(read),
                Rule::ValExpression(e) => {
                    evaluate(e, row.encoding, regs, self.memory, Some(cfa), row.bias).map(Some).map_err(CfiError::from)
                }
                Rule::Constant(c) => Ok(Some(*c)),
            };
            new[n] = match value {
                Ok(v) => v,
                // Without the return address or the stack pointer there is no caller; any other
                // register merely becomes unknown.
                Err(e) if n == ra_reg || n == sp_reg => return Err(e),
                Err(_) => None,
            };
            rsp_rule |= n == sp_reg;
        }
        if !rsp_rule {
            new[sp_reg] = Some(cfa);
        }
        // No return address, or one of 0: the end of the stack.
        let Some(ra) = new[ra_reg].map(|ra| self.spec.clean_return_address(ra)) else { return Ok(None) };
        let Some(address) = FrameAddress::return_address(ra) else { return Ok(None) };
        new[ra_reg] = Some(ra);
        Ok(Some(State { regs: new, address, trust: Trust::Cfi }))
    }

    /// The frame-pointer chain: [fp] is the caller's frame pointer, [fp+8] the return address
    /// (x86_64's `push rbp; mov rsp,rbp` and aarch64's frame record `stp x29, x30` alike).
    /// Ok(None) when the frame pointer is 0 in a caller frame (the outermost frame clears it).
    fn frame_pointer(&self, cur: &State, rsp: u64) -> Result<Option<State>, FramePointerError> {
        let (fp_reg, name) = (self.spec.fp(), self.spec.fp_name());
        let Some(rbp) = cur.regs[fp_reg] else { return Err(FramePointerError::Unknown) };
        if rbp == 0 && cur.address.is_return_address() {
            return Ok(None);
        }
        if rbp % 8 != 0 || rbp < rsp || rbp - rsp > MAX_FRAME_SIZE {
            return Err(FramePointerError::NotAFramePointer { register: name, value: rbp });
        }
        let caller_rbp = self.memory.read_u64(rbp).map_err(FramePointerError::Read)?;
        let raw = self.memory.read_u64(rbp.wrapping_add(8)).map_err(FramePointerError::Read)?;
        let ra = self.spec.clean_return_address(raw);
        let address =
            self.return_address(ra).ok_or(FramePointerError::NotAReturnAddress { register: name, value: raw })?;
        let mut regs: DwarfRegs = [None; MAX_DWARF];
        regs[fp_reg] = Some(caller_rbp);
        regs[self.spec.sp()] = Some(rbp.checked_add(16).ok_or(FramePointerError::TopOfAddressSpace)?);
        regs[self.spec.ra_column()] = Some(ra);
        Ok(Some(State { regs, address, trust: Trust::FramePointer }))
    }

    /// Looks upward from `rsp` for a word that is a plausible return address.
    fn scan(&self, rsp: u64) -> Option<State> {
        for i in 0..SCAN_WORDS {
            let slot = rsp.checked_add(i * 8)?;
            let v = self.spec.clean_return_address(self.memory.read_u64(slot).ok()?);
            if let Some(address) = self.return_address(v) {
                let mut regs: DwarfRegs = [None; MAX_DWARF];
                regs[self.spec.sp()] = Some(slot.checked_add(8)?);
                regs[self.spec.ra_column()] = Some(v);
                return Some(State { regs, address, trust: Trust::Scan });
            }
        }
        None
    }

    /// The registers a callee preserves; everything else is unknown in the caller.
    fn callee_saved(&self, regs: &DwarfRegs) -> DwarfRegs {
        let mut out: DwarfRegs = [None; MAX_DWARF];
        for &r in self.spec.callee_saved() {
            out[r] = regs[r];
        }
        out
    }
}
