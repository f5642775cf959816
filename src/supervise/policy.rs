//! The supervisor's signal policy: which signals are crashes, which stop a process, and whether
//! a thread will live through a signal it is about to get.

use crate::process::live;

/// The signals crashcatch treats as crashes.
pub const FATAL_SIGNALS: [i32; 6] =
    [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT, libc::SIGSYS];

pub fn is_fatal(sig: i32) -> bool {
    FATAL_SIGNALS.contains(&sig)
}

/// A signal whose default action stops the process (a group-stop follows).
pub fn is_stop_signal(sig: i32) -> bool {
    matches!(sig, libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU)
}

/// Will the thread live through `sig`, rather than die of it: it runs a handler (caught and not
/// blocked), or the signal is ignored. Under ptrace the kernel lets even an ignored signal stop
/// the thread, and discards it only at delivery; a signal the kernel raised (positive si_code: a
/// fault, or SI_KERNEL for a general protection fault) is forced through an ignored or blocked
/// disposition, so that one is fatal.
pub fn survives(tgid: i32, tid: i32, sig: i32, code: i32) -> bool {
    let bit = 1u64 << (sig - 1);
    let masks = live::signal_masks(tgid, tid).unwrap_or_default();
    let handled = masks.caught & bit != 0 && masks.blocked & bit == 0;
    let ignored = masks.ignored & bit != 0 && code <= 0;
    handled || ignored
}
