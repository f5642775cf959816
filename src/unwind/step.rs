//! One unwinding step: from a frame's registers to its caller's, by CFI, by the frame-pointer
//! chain, or by scanning the stack; through signal frames by the saved `ucontext_t`.

use super::cfi::{Cfa, CfiCache, Row, Rule, RA};
use super::eval::evaluate;
use super::Regs;
use crate::modules::ModuleSet;
use crate::process::{Memory, MemoryExt};
use crate::report::model::Trust;

pub(crate) const RSP: usize = 7;
pub(crate) const RBP: usize = 6;
const RIP: usize = RA as usize;
/// rbx, rbp, r12-r15: preserved across calls by the x86_64 psABI.
const CALLEE_SAVED: [usize; 6] = [3, 6, 12, 13, 14, 15];

/// `mov $15, %rax; syscall` (rt_sigreturn): glibc's and musl's `__restore_rt`.
pub(crate) const SIGRETURN: [u8; 9] = [0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05];
/// Offset of `uc_mcontext.gregs` in `ucontext_t` (uc_flags, uc_link, 24-byte uc_stack).
pub(crate) const UC_GREGS: u64 = 40;
/// DWARF register number for each of the first 17 `gregs` slots (R8..R15, RDI, RSI, RBP, RBX,
/// RDX, RAX, RCX, RSP, RIP).
const GREGS_TO_DWARF: [usize; 17] = [8, 9, 10, 11, 12, 13, 14, 15, 5, 4, 6, 3, 1, 0, 2, 7, 16];

/// Words read upward from the stack pointer when looking for a return address.
const SCAN_WORDS: u64 = 2048;
/// A frame pointer further than this above the stack pointer is not believed.
const MAX_FRAME_SIZE: u64 = 64 << 20;

/// The state of one frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct State {
    pub regs: Regs,
    pub pc: u64,
    pub is_return_address: bool,
    pub trust: Trust,
}

impl State {
    pub fn sp(&self) -> Option<u64> {
        self.regs[RSP]
    }
    fn lookup_pc(&self) -> u64 {
        if self.is_return_address {
            self.pc.wrapping_sub(1)
        } else {
            self.pc
        }
    }
}

#[allow(clippy::large_enum_variant)] // one per step, never stored
pub(crate) enum Step {
    /// The stack ends here normally (return address undefined or zero, outermost frame pointer).
    End,
    Caller(State),
}

pub(crate) struct Walker<'a> {
    pub memory: &'a dyn Memory,
    pub modules: &'a ModuleSet,
    pub cfi: CfiCache<'a>,
}

impl<'a> Walker<'a> {
    /// True when `addr` is inside an executable mapping of a known module.
    fn in_code(&self, addr: u64) -> bool {
        self.modules.find(addr).is_some_and(|m| m.is_executable_at(addr))
    }

    fn is_sigreturn(&self, pc: u64) -> bool {
        if !self.in_code(pc) {
            return false;
        }
        let mut b = [0u8; 9];
        self.memory.read_partial(pc, &mut b) == b.len() && b == SIGRETURN
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
        let at = |back: usize| b[8 - back];
        // call rel32
        if at(5) == 0xe8 {
            return true;
        }
        // call r/m64 (ff /2) in its 2-, 3-, 4-, 6- and 7-byte forms (register, [reg], disp8,
        // SIB+disp8, disp32/rip-relative, SIB+disp32; a REX prefix makes the same lengths).
        [2usize, 3, 4, 6, 7].iter().any(|&k| at(k) == 0xff && (at(k - 1) >> 3) & 7 == 2)
    }

    /// The caller of `cur`, or why there is none.
    pub fn step(&mut self, cur: &State) -> Result<Step, String> {
        let rsp = cur.sp().ok_or("stack pointer unknown")?;
        if self.is_sigreturn(cur.pc) {
            return self.signal_frame(rsp);
        }
        let lookup = cur.lookup_pc();
        let module = self.modules.find(lookup).filter(|m| m.is_executable_at(lookup));
        let mut had_cfi = false;
        let mut why = match module {
            None => format!("{:#x} is not in any module's code", cur.pc),
            Some(m) => match self.cfi.row(m, lookup) {
                None => format!("no CFI for {:#x} in {}", cur.pc, m.name()),
                Some(row) => {
                    had_cfi = true;
                    match self.apply_row(&row, &cur.regs) {
                        Ok(None) => return Ok(Step::End),
                        Ok(Some(mut next)) if row.signal => {
                            next.trust = Trust::Signal;
                            next.is_return_address = false;
                            return Ok(Step::Caller(next));
                        }
                        Ok(Some(next)) if self.in_code(next.pc.wrapping_sub(1)) => {
                            return Ok(Step::Caller(self.finish(next)));
                        }
                        Ok(Some(next)) => format!(
                            "CFI at {:#x} gives return address {:#x}, which is not in any code",
                            cur.pc, next.pc
                        ),
                        Err(e) => format!("CFI at {:#x}: {e}", cur.pc),
                    }
                }
            },
        };

        // A call through a NULL or garbage function pointer: the pc is not code, nothing was
        // pushed since the call, so the return address is at [rsp]. That is a guess from stack
        // contents rather than from unwind data, hence Trust::Scan (the enum has nothing closer).
        if !cur.is_return_address && module.is_none() {
            if let Ok(ra) = self.memory.read_u64(rsp) {
                if self.looks_like_return_address(ra) {
                    let mut regs = callee_saved(&cur.regs);
                    regs[RSP] = Some(rsp.wrapping_add(8));
                    regs[RIP] = Some(ra);
                    return Ok(Step::Caller(self.finish(State {
                        regs,
                        pc: ra,
                        is_return_address: true,
                        trust: Trust::Scan,
                    })));
                }
            }
        }

        match self.frame_pointer(cur, rsp) {
            Ok(Some(next)) => return Ok(Step::Caller(self.finish(next))),
            // rbp = 0 ends the chain, but only believed where there was no CFI to say otherwise.
            Ok(None) if !had_cfi => return Ok(Step::End),
            Ok(None) => why = format!("{why}; frame pointer is 0"),
            Err(e) => why = format!("{why}; {e}"),
        }

        if let Some(next) = self.scan(rsp) {
            return Ok(Step::Caller(self.finish(next)));
        }
        Err(format!("{why}; no return address found in {SCAN_WORDS} stack words above {rsp:#x}"))
    }

    /// A frame whose pc is the sigreturn trampoline is not entered by a call: mark it so that
    /// its symbol and CFI look-ups use the pc itself.
    fn finish(&self, mut next: State) -> State {
        if next.is_return_address && self.is_sigreturn(next.pc) {
            next.is_return_address = false;
        }
        next
    }

    /// Registers of the interrupted frame from the `ucontext_t` at `uc` (the handler's CFA, which
    /// is the stack pointer of the trampoline frame).
    fn signal_frame(&self, uc: u64) -> Result<Step, String> {
        let mut buf = [0u8; 17 * 8];
        let at = uc.wrapping_add(UC_GREGS);
        self.memory
            .read_exact(at, &mut buf)
            .map_err(|e| format!("cannot read the signal frame's saved registers: {e}"))?;
        let mut regs: Regs = [None; 17];
        for (i, &dw) in GREGS_TO_DWARF.iter().enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&buf[i * 8..i * 8 + 8]);
            regs[dw] = Some(u64::from_le_bytes(w));
        }
        let pc = regs[RIP].unwrap_or(0);
        Ok(Step::Caller(State { regs, pc, is_return_address: false, trust: Trust::Signal }))
    }

    /// Applies one CFI row. None when the return address is undefined or zero (stack end).
    fn apply_row(&self, row: &Row<'_>, regs: &Regs) -> Result<Option<State>, String> {
        let reg = |n: u16| -> Result<u64, String> {
            regs.get(n as usize).copied().flatten().ok_or_else(|| format!("register {n} is needed but unknown"))
        };
        let cfa = match &row.cfa {
            Cfa::RegisterOffset(r, off) => reg(*r)?.wrapping_add(*off as u64),
            Cfa::Expression(e) => evaluate(e, row.encoding, regs, self.memory, None, row.bias)?,
        };
        let mut new = callee_saved(regs);
        let mut rsp_rule = false;
        for (n, rule) in &row.rules {
            let n = *n as usize;
            let read = |addr: u64| {
                self.memory.read_u64(addr).map(Some).map_err(|e| format!("cannot read saved register {n}: {e}"))
            };
            let value = match rule {
                Rule::Undefined => Ok(None),
                Rule::SameValue => Ok(regs[n]),
                Rule::Offset(o) => read(cfa.wrapping_add(*o as u64)),
                Rule::ValOffset(o) => Ok(Some(cfa.wrapping_add(*o as u64))),
                Rule::Register(r) => Ok(regs.get(*r as usize).copied().flatten()),
                Rule::Expression(e) => evaluate(e, row.encoding, regs, self.memory, Some(cfa), row.bias).and_then(read),
                Rule::ValExpression(e) => evaluate(e, row.encoding, regs, self.memory, Some(cfa), row.bias).map(Some),
                Rule::Constant(c) => Ok(Some(*c)),
            };
            new[n] = match value {
                Ok(v) => v,
                // Without the return address or the stack pointer there is no caller; any other
                // register merely becomes unknown.
                Err(e) if n == RIP || n == RSP => return Err(e),
                Err(_) => None,
            };
            rsp_rule |= n == RSP;
        }
        if !rsp_rule {
            new[RSP] = Some(cfa);
        }
        match new[RIP] {
            None | Some(0) => Ok(None),
            Some(pc) => Ok(Some(State { regs: new, pc, is_return_address: true, trust: Trust::Cfi })),
        }
    }

    /// The frame-pointer chain: [rbp] is the caller's rbp, [rbp+8] the return address.
    /// Ok(None) when rbp is 0 in a caller frame (the outermost frame clears it).
    fn frame_pointer(&self, cur: &State, rsp: u64) -> Result<Option<State>, String> {
        let Some(rbp) = cur.regs[RBP] else { return Err("frame pointer unknown".into()) };
        if rbp == 0 && cur.is_return_address {
            return Ok(None);
        }
        if rbp % 8 != 0 || rbp < rsp || rbp - rsp > MAX_FRAME_SIZE {
            return Err(format!("rbp {rbp:#x} is not a frame pointer"));
        }
        let caller_rbp = self.memory.read_u64(rbp).map_err(|e| format!("frame pointer: {e}"))?;
        let ra = self.memory.read_u64(rbp.wrapping_add(8)).map_err(|e| format!("frame pointer: {e}"))?;
        if !self.looks_like_return_address(ra) {
            return Err(format!("[rbp+8] = {ra:#x} is not a return address"));
        }
        let mut regs: Regs = [None; 17];
        regs[RBP] = Some(caller_rbp);
        regs[RSP] = Some(rbp.checked_add(16).ok_or("frame pointer at the top of the address space")?);
        regs[RIP] = Some(ra);
        Ok(Some(State { regs, pc: ra, is_return_address: true, trust: Trust::FramePointer }))
    }

    /// Looks upward from `rsp` for a word that is a plausible return address.
    fn scan(&self, rsp: u64) -> Option<State> {
        for i in 0..SCAN_WORDS {
            let slot = rsp.checked_add(i * 8)?;
            let v = self.memory.read_u64(slot).ok()?;
            if self.looks_like_return_address(v) {
                let mut regs: Regs = [None; 17];
                regs[RSP] = Some(slot.checked_add(8)?);
                regs[RIP] = Some(v);
                return Some(State { regs, pc: v, is_return_address: true, trust: Trust::Scan });
            }
        }
        None
    }
}

/// The registers a callee preserves; everything else is unknown in the caller.
fn callee_saved(regs: &Regs) -> Regs {
    let mut out: Regs = [None; 17];
    for r in CALLEE_SAVED {
        out[r] = regs[r];
    }
    out
}
