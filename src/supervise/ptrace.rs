//! Thin wrappers over the ptrace requests the tracer uses. Signals are raw numbers, because a
//! tracee can receive real-time signals that nix's `Signal` enum cannot represent.

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::unistd::Pid;

use crate::process::{siginfo, Registers, SignalInfo};

/// The type of ptrace's request argument: `unsigned int` in glibc, `int` in musl.
#[cfg(target_env = "musl")]
type Request = libc::c_int;
#[cfg(not(target_env = "musl"))]
type Request = libc::c_uint;

fn req(request: Request, tid: i32, data: usize) -> Result<(), Errno> {
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

/// The thread's general-purpose registers (and thread pointer).
#[cfg(target_arch = "x86_64")]
pub fn regs(tid: i32) -> Result<Registers, Errno> {
    let r = ptrace::getregs(Pid::from_raw(tid))?;
    Ok(Registers::X86_64(crate::arch::x86_64::Regs {
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
    }))
}

/// The thread's registers: PTRACE_GETREGSET NT_PRSTATUS (`user_pt_regs`: x0..x30, sp, pc,
/// pstate), and the thread pointer from NT_ARM_TLS (0 when that cannot be read).
#[cfg(target_arch = "aarch64")]
pub fn regs(tid: i32) -> Result<Registers, Errno> {
    let mut raw = [0u64; 34];
    regset(tid, libc::NT_PRSTATUS as usize, &mut raw)?;
    let mut tls = [0u64; 1];
    let tpidr = regset(tid, 0x401 /* NT_ARM_TLS */, &mut tls).map(|_| tls[0]).unwrap_or(0);
    let mut x = [0u64; 31];
    x.copy_from_slice(&raw[..31]);
    Ok(Registers::Aarch64(crate::arch::aarch64::Regs { x, sp: raw[31], pc: raw[32], pstate: raw[33], tpidr }))
}

/// PTRACE_GETREGSET of `note` into `words`; the kernel may fill fewer bytes, which is an error.
#[cfg(target_arch = "aarch64")]
fn regset(tid: i32, note: usize, words: &mut [u64]) -> Result<(), Errno> {
    let len = std::mem::size_of_val(words);
    let mut iov = libc::iovec { iov_base: words.as_mut_ptr().cast(), iov_len: len };
    // SAFETY: the kernel writes at most iov_len bytes into `words`, which outlives the call.
    let r = unsafe {
        libc::ptrace(libc::PTRACE_GETREGSET as Request, tid, note as *mut libc::c_void, &mut iov as *mut libc::iovec)
    };
    if r == -1 {
        return Err(Errno::last());
    }
    if iov.iov_len != len {
        return Err(Errno::EIO);
    }
    Ok(())
}

/// The siginfo of the signal a tracee is stopped for.
pub fn siginfo(tid: i32) -> Result<SignalInfo, Errno> {
    let si = ptrace::getsiginfo(Pid::from_raw(tid))?;
    // SAFETY: siginfo_t is plain old data of exactly this size.
    let raw: [u8; siginfo::SIGINFO_SIZE] = unsafe { std::mem::transmute(si) };
    Ok(siginfo::decode(&raw))
}
