//! Whether a thread was waiting rather than running (py-spy's "idle"): stopped inside a system
//! call that blocks (a futex for a lock or the GIL, a sleep, a poll, a read on a socket), as the
//! registers say: the instruction before the pc is `syscall` and `orig_rax` names a waiting call.
//! A thread stopped anywhere else was running. x86_64 only: elsewhere it is not known.

use crate::arch::Registers;
use crate::process::{Memory, MemoryExt};

/// x86_64 system calls that wait for something (Linux's numbering).
const WAITING: &[u64] = &[
    0,   // read
    7,   // poll
    19,  // readv
    23,  // select
    34,  // pause
    35,  // nanosleep
    42,  // connect
    43,  // accept
    45,  // recvfrom
    47,  // recvmsg
    61,  // wait4
    70,  // msgrcv
    73,  // flock
    128, // rt_sigtimedwait
    130, // rt_sigsuspend
    202, // futex
    208, // io_getevents
    220, // semtimedop
    230, // clock_nanosleep
    232, // epoll_wait
    247, // waitid
    270, // pselect6
    271, // ppoll
    281, // epoll_pwait
    288, // accept4
    299, // recvmmsg
    441, // epoll_pwait2
    449, // futex_waitv
];

/// Whether the thread with registers `regs` was waiting; None when that cannot be told.
pub fn idle(regs: Option<&Registers>, mem: &dyn Memory) -> Option<bool> {
    let Registers::X86_64(r) = regs? else { return None };
    if r.orig_rax as i64 == -1 {
        return Some(false);
    }
    let mut insn = [0u8; 2];
    mem.read_exact(r.rip.wrapping_sub(2), &mut insn).ok()?;
    if insn != [0x0f, 0x05] {
        return Some(false);
    }
    Some(WAITING.contains(&r.orig_rax))
}
