//! A short classification of the crash from the signal, the fault address and the crashed
//! thread's registers and stack mapping.

use crate::process::{maps, Mapping, Registers, SignalInfo};
use crate::report::model::{Classification, ClassificationKind};

/// Facts about the crash that the classification reads.
pub(crate) struct Facts<'a> {
    pub signal: &'a SignalInfo,
    pub regs: Option<&'a Registers>,
    pub maps: &'a [Mapping],
    /// glibc's `__abort_msg`, when abort() or assert() left one.
    pub abort_message: Option<String>,
    /// The innermost function names of the crashed thread.
    pub top_functions: Vec<String>,
    /// The trap instruction at the pc, by name (`ud2`, `brk`, `udf`), when it is one.
    pub trap: Option<&'static str>,
}

/// A classification of `kind` with `summary` and no message.
fn classified(kind: ClassificationKind, summary: impl Into<String>) -> Classification {
    Classification { kind, summary: summary.into(), message: None }
}

/// Near the guard page below a stack: the fault is just below the mapping that holds the stack
/// pointer, or in a no-access mapping right under it, or the stack pointer itself left it.
fn is_stack_overflow(fault: u64, regs: &Registers, all: &[Mapping]) -> bool {
    const NEAR: u64 = 1 << 20;
    let sp = regs.sp();
    let Some(stack) = maps::find(all, sp).or_else(|| maps::find(all, sp.wrapping_add(4096))) else {
        // The stack pointer is in no mapping at all: it ran off the end.
        return fault.abs_diff(sp) < NEAR;
    };
    if fault < stack.start && stack.start - fault <= NEAR {
        return true;
    }
    if let Some(m) = maps::find(all, fault) {
        if !m.read && !m.write && m.end == stack.start {
            return true; // the guard mapping of a thread stack
        }
    }
    // Fault within a page of the stack pointer, which sits at the very bottom of its mapping.
    fault.abs_diff(sp) < 65536 && sp - stack.start < 65536 && !stack.contains(fault)
}

/// The si_code of a signal the kernel raised for a fault it has no address for.
const SI_KERNEL: i32 = 0x80;

pub(crate) fn classify(f: &Facts<'_>) -> Option<Classification> {
    let s = f.signal;
    let fault = s.addr;
    let has = |name: &str| f.top_functions.iter().take(8).any(|t| t == name || t.starts_with(&format!("{name}.")));
    match s.signo {
        libc::SIGSEGV => {
            let fault = fault?;
            // SI_KERNEL: a general protection fault (x86-64: a non-canonical address, such as a
            // wild index off a table, or a misaligned SSE access). The kernel reports no address
            // and si_addr is 0, which is not a NULL pointer: say so before the checks below read it.
            if fault == 0 && s.code == SI_KERNEL {
                return Some(classified(
                    ClassificationKind::GeneralProtection,
                    "general protection fault (a non-canonical or misaligned access; the kernel gives no address)",
                ));
            }
            if let Some(regs) = f.regs {
                if is_stack_overflow(fault, regs, f.maps) && fault >= 65536 {
                    return Some(classified(
                        ClassificationKind::StackOverflow,
                        format!(
                            "stack overflow: the fault at {fault:#x} is at the guard page below the thread's stack"
                        ),
                    ));
                }
                if fault == regs.pc() {
                    let mapped = maps::find(f.maps, fault);
                    return Some(match mapped {
                        None if fault < 65536 => classified(
                            ClassificationKind::NullFunctionPointer,
                            format!("called a NULL function pointer (jumped to {fault:#x})"),
                        ),
                        None => classified(
                            ClassificationKind::BadJump,
                            format!(
                                "jumped to an unmapped address {fault:#x} (corrupt function pointer or return address)"
                            ),
                        ),
                        Some(_) => classified(
                            ClassificationKind::ExecuteNonExecutable,
                            format!("jumped into non-executable memory at {fault:#x}"),
                        ),
                    });
                }
            }
            if fault < 65536 {
                return Some(classified(
                    ClassificationKind::NullPointerDereference,
                    if fault == 0 {
                        "NULL pointer dereference".to_string()
                    } else {
                        format!("NULL pointer dereference (address {fault:#x} is a field of a NULL struct pointer)")
                    },
                ));
            }
            if f.regs.is_some_and(|r| r.spec().is_non_canonical(fault))
                || (f.regs.is_none() && crate::arch::Arch::HOST.spec().is_non_canonical(fault))
            {
                return Some(classified(
                    ClassificationKind::NonCanonicalAddress,
                    format!("access to a non-canonical address {fault:#x} (corrupt pointer)"),
                ));
            }
            if s.code == 2 {
                let what = match maps::find(f.maps, fault) {
                    Some(m) if !m.read && !m.write => "no-access memory (a guard page or a freed arena?)",
                    Some(m) if m.read && !m.write => "read-only memory",
                    _ => "memory it may not access",
                };
                return Some(classified(ClassificationKind::Permission, format!("access to {what} at {fault:#x}")));
            }
            Some(classified(
                ClassificationKind::BadAddress,
                format!("access to unmapped address {fault:#x} (dangling or corrupt pointer)"),
            ))
        }
        libc::SIGABRT => {
            let mut cl = if f.abort_message.as_deref().is_some_and(|m| m.contains("Assertion")) || has("__assert_fail")
            {
                classified(ClassificationKind::AssertionFailed, "assertion failed")
            } else if has("Py_FatalError") || has("_Py_FatalErrorFunc") || has("fatal_error") {
                classified(ClassificationKind::PythonFatalError, "Python fatal error (Py_FatalError)")
            } else if has("__gnu_cxx::__verbose_terminate_handler()")
                || has("std::terminate()")
                || f.top_functions.iter().take(10).any(|t| t.contains("terminate"))
            {
                classified(ClassificationKind::CppTerminate, "std::terminate called (uncaught C++ exception?)")
            } else if f.abort_message.as_deref().is_some_and(|m| {
                m.contains("free()") || m.contains("malloc") || m.contains("double free") || m.contains("corrupted")
            }) {
                classified(ClassificationKind::HeapCorruption, "glibc detected heap corruption")
            } else {
                classified(ClassificationKind::Abort, "abort() called")
            };
            cl.message = f.abort_message.clone();
            if let Some(m) = &cl.message {
                if matches!(cl.kind, ClassificationKind::HeapCorruption | ClassificationKind::AssertionFailed) {
                    cl.summary = format!("{}: {}", cl.summary, m.trim_end());
                }
            }
            Some(cl)
        }
        libc::SIGBUS => Some(match s.code {
            2 => classified(
                ClassificationKind::BusError,
                "bus error: access to a file mapping beyond the end of the file (was the file truncated?)",
            ),
            1 => classified(ClassificationKind::BusError, "bus error: misaligned access"),
            _ => classified(ClassificationKind::BusError, "bus error"),
        }),
        libc::SIGFPE => Some(match s.code {
            1 => classified(ClassificationKind::DivisionByZero, "integer division by zero"),
            2 => classified(ClassificationKind::IntegerOverflow, "integer overflow (e.g. INT_MIN / -1)"),
            _ => classified(ClassificationKind::FloatingPoint, "floating-point exception"),
        }),
        libc::SIGILL => Some(match f.trap {
            Some(name) => classified(
                ClassificationKind::Trap,
                format!("trap instruction ({name}): __builtin_trap(), or code the compiler marked unreachable"),
            ),
            _ => classified(
                ClassificationKind::IllegalInstruction,
                "illegal instruction (code built for a newer CPU, or a corrupt jump)",
            ),
        }),
        libc::SIGSYS => Some(classified(
            ClassificationKind::Seccomp,
            match s.syscall {
                Some(n) => format!("system call {n} blocked by seccomp"),
                None => "system call blocked by seccomp".to_string(),
            },
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(sig: &'a SignalInfo, regs: Option<&'a Registers>, maps: &'a [Mapping]) -> Facts<'a> {
        Facts { signal: sig, regs, maps, abort_message: None, top_functions: vec![], trap: None }
    }

    #[test]
    fn null_and_stack_overflow() {
        let m = maps::parse_maps("7ffc0000000-7ffc0800000 rw-p 00000000 00:00 0 [stack]\n");
        let regs: Registers =
            crate::arch::x86_64::Regs { rsp: 0x7ffc0000010, rip: 0x401000, ..Default::default() }.into();
        let segv = |a| SignalInfo { signo: 11, code: 1, addr: Some(a), ..Default::default() };
        let s = segv(0);
        assert_eq!(classify(&facts(&s, Some(&regs), &m)).unwrap().kind, ClassificationKind::NullPointerDereference);
        let s = segv(0x7ffbffffff8);
        assert_eq!(classify(&facts(&s, Some(&regs), &m)).unwrap().kind, ClassificationKind::StackOverflow);
        let s = segv(0xdead0000);
        assert_eq!(classify(&facts(&s, Some(&regs), &m)).unwrap().kind, ClassificationKind::BadAddress);
        let s = segv(0x401000);
        assert_eq!(classify(&facts(&s, Some(&regs), &m)).unwrap().kind, ClassificationKind::BadJump);
    }

    /// pandas issue 63167: a table indexed far past its end reads a non-canonical address; the
    /// kernel raises SIGSEGV with SI_KERNEL and si_addr 0. That 0 is no NULL pointer.
    #[test]
    fn general_protection_is_not_a_null_pointer() {
        let m = maps::parse_maps("7ffc0000000-7ffc0800000 rw-p 00000000 00:00 0 [stack]\n");
        let regs: Registers =
            crate::arch::x86_64::Regs { rsp: 0x7ffc0000010, rip: 0x401000, ..Default::default() }.into();
        let s = SignalInfo { signo: 11, code: SI_KERNEL, addr: Some(0), ..Default::default() };
        for r in [Some(&regs), None] {
            let cl = classify(&facts(&s, r, &m)).unwrap();
            assert_eq!(cl.kind, ClassificationKind::GeneralProtection);
            assert!(!cl.summary.contains("NULL"), "{}", cl.summary);
        }
        // A page fault at 0 (SEGV_MAPERR) is still one.
        let s = SignalInfo { signo: 11, code: 1, addr: Some(0), ..Default::default() };
        assert_eq!(classify(&facts(&s, Some(&regs), &m)).unwrap().kind, ClassificationKind::NullPointerDereference);
    }

    #[test]
    fn aarch64_pc_sp_and_traps() {
        let m = maps::parse_maps("ffffc0000000-ffffc0800000 rw-p 00000000 00:00 0 [stack]\n");
        let regs: Registers =
            crate::arch::aarch64::Regs { sp: 0xffffc0000010, pc: 0xaaaa0000, ..Default::default() }.into();
        let segv = |a| SignalInfo { signo: 11, code: 1, addr: Some(a), ..Default::default() };
        let s = segv(0xffffbffffff0);
        assert_eq!(classify(&facts(&s, Some(&regs), &m)).unwrap().kind, ClassificationKind::StackOverflow);
        let s = segv(0xaaaa0000);
        assert_eq!(classify(&facts(&s, Some(&regs), &m)).unwrap().kind, ClassificationKind::BadJump);
        // x86_64's non-canonical hole is an ordinary address on aarch64 (48-bit and 52-bit VAs).
        let s = segv(0x0000_9000_0000_0000);
        assert_eq!(classify(&facts(&s, Some(&regs), &m)).unwrap().kind, ClassificationKind::BadAddress);
        let s = SignalInfo { signo: libc::SIGILL, code: 1, addr: Some(0xaaaa0000), ..Default::default() };
        let mut f = facts(&s, Some(&regs), &m);
        f.trap = regs.spec().trap_name(&0u32.to_le_bytes());
        let cl = classify(&f).unwrap();
        assert_eq!(cl.kind, ClassificationKind::Trap);
        assert!(cl.summary.contains("(udf)"), "{}", cl.summary);
    }

    #[test]
    fn abort_with_assertion_message() {
        let s = SignalInfo { signo: 6, code: -6, ..Default::default() };
        let mut f = facts(&s, None, &[]);
        f.abort_message = Some("prog: x.c:3: main: Assertion `0' failed.\n".into());
        let cl = classify(&f).unwrap();
        assert_eq!(cl.kind, ClassificationKind::AssertionFailed);
        assert!(cl.summary.contains("Assertion `0' failed"));
    }
}
