//! Thin wrappers over the ptrace requests the tracer uses. Signals are raw numbers, because a
//! tracee can receive real-time signals that nix's `Signal` enum cannot represent.

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::unistd::Pid;

use crate::process::{siginfo, Registers, SignalInfo};

fn req(request: libc::c_uint, tid: i32, data: usize) -> Result<(), Errno> {
    // SAFETY: plain ptrace requests with integer arguments; the kernel validates them.
    let r = unsafe { libc::ptrace(request, tid, std::ptr::null_mut::<libc::c_void>(), data as *mut libc::c_void) };
    if r == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Resumes a stopped tracee, delivering `sig` (0 for none).
pub fn cont(tid: i32, sig: i32) -> Result<(), Errno> {
    req(libc::PTRACE_CONT, tid, sig as usize)
}

/// Lets a tracee in group-stop stay stopped, but report when it is woken (SIGCONT) or killed.
pub fn listen(tid: i32) -> Result<(), Errno> {
    req(libc::PTRACE_LISTEN, tid, 0)
}

pub fn detach(tid: i32, sig: i32) -> Result<(), Errno> {
    req(libc::PTRACE_DETACH, tid, sig as usize)
}

pub fn interrupt(tid: i32) -> Result<(), Errno> {
    ptrace::interrupt(Pid::from_raw(tid))
}

pub fn seize(tid: i32, options: ptrace::Options) -> Result<(), Errno> {
    ptrace::seize(Pid::from_raw(tid), options)
}

pub fn event_msg(tid: i32) -> Result<i64, Errno> {
    ptrace::getevent(Pid::from_raw(tid))
}

pub fn regs(tid: i32) -> Result<Registers, Errno> {
    let r = ptrace::getregs(Pid::from_raw(tid))?;
    Ok(Registers {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rbp: r.rbp,
        rsp: r.rsp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        rip: r.rip,
        eflags: r.eflags,
        fs_base: r.fs_base,
        gs_base: r.gs_base,
        orig_rax: r.orig_rax,
    })
}

/// The siginfo of the signal a tracee is stopped for.
pub fn siginfo(tid: i32) -> Result<SignalInfo, Errno> {
    let si = ptrace::getsiginfo(Pid::from_raw(tid))?;
    // SAFETY: siginfo_t is plain old data of exactly this size.
    let raw: [u8; siginfo::SIGINFO_SIZE] = unsafe { std::mem::transmute(si) };
    Ok(siginfo::decode(&raw))
}
