//! Signal and si_code names, in words.

/// `SIGSEGV` for 11, `SIG37` for unknown numbers.
pub(crate) fn signal_name(sig: i32) -> String {
    let n = match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        16 => "SIGSTKFLT",
        17 => "SIGCHLD",
        18 => "SIGCONT",
        19 => "SIGSTOP",
        20 => "SIGTSTP",
        21 => "SIGTTIN",
        22 => "SIGTTOU",
        23 => "SIGURG",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        26 => "SIGVTALRM",
        27 => "SIGPROF",
        28 => "SIGWINCH",
        29 => "SIGIO",
        30 => "SIGPWR",
        31 => "SIGSYS",
        n if (34..=64).contains(&n) => return format!("SIGRTMIN+{}", n - 34),
        _ => return format!("SIG{sig}"),
    };
    n.to_string()
}

/// The si_code's name and its meaning in words.
pub(crate) fn code_name(sig: i32, code: i32) -> (Option<&'static str>, &'static str) {
    // Codes any signal can carry (sent by a process).
    let generic = match code {
        0 => Some(("SI_USER", "sent by kill()")),
        0x80 => Some(("SI_KERNEL", "sent by the kernel")),
        -1 => Some(("SI_QUEUE", "sent by sigqueue()")),
        -2 => Some(("SI_TIMER", "POSIX timer expired")),
        -3 => Some(("SI_MESGQ", "message queue state changed")),
        -4 => Some(("SI_ASYNCIO", "AIO completed")),
        -6 => Some(("SI_TKILL", "sent by tkill()/raise()")),
        _ => None,
    };
    let specific = match (sig, code) {
        (11, 1) => Some(("SEGV_MAPERR", "address not mapped")),
        (11, 2) => Some(("SEGV_ACCERR", "invalid permissions for mapped object")),
        (11, 3) => Some(("SEGV_BNDERR", "failed address bound checks")),
        (11, 4) => Some(("SEGV_PKUERR", "access denied by memory protection keys")),
        (11, 5) => Some(("SEGV_ACCADI", "ADI not enabled for mapped object")),
        (11, 8) => Some(("SEGV_CPERR", "control protection fault")),
        (7, 1) => Some(("BUS_ADRALN", "invalid address alignment")),
        (7, 2) => Some(("BUS_ADRERR", "nonexistent physical address (e.g. mmap past the end of a file)")),
        (7, 3) => Some(("BUS_OBJERR", "object-specific hardware error")),
        (7, 4) => Some(("BUS_MCEERR_AR", "hardware memory error consumed on a machine check")),
        (7, 5) => Some(("BUS_MCEERR_AO", "hardware memory error detected, action optional")),
        (8, 1) => Some(("FPE_INTDIV", "integer divide by zero")),
        (8, 2) => Some(("FPE_INTOVF", "integer overflow")),
        (8, 3) => Some(("FPE_FLTDIV", "floating-point divide by zero")),
        (8, 4) => Some(("FPE_FLTOVF", "floating-point overflow")),
        (8, 5) => Some(("FPE_FLTUND", "floating-point underflow")),
        (8, 6) => Some(("FPE_FLTRES", "floating-point inexact result")),
        (8, 7) => Some(("FPE_FLTINV", "floating-point invalid operation")),
        (8, 8) => Some(("FPE_FLTSUB", "subscript out of range")),
        (4, 1) => Some(("ILL_ILLOPC", "illegal opcode")),
        (4, 2) => Some(("ILL_ILLOPN", "illegal operand")),
        (4, 3) => Some(("ILL_ILLADR", "illegal addressing mode")),
        (4, 4) => Some(("ILL_ILLTRP", "illegal trap")),
        (4, 5) => Some(("ILL_PRVOPC", "privileged opcode")),
        (4, 6) => Some(("ILL_PRVREG", "privileged register")),
        (4, 7) => Some(("ILL_COPROC", "coprocessor error")),
        (4, 8) => Some(("ILL_BADSTK", "internal stack error")),
        (31, 1) => Some(("SYS_SECCOMP", "system call blocked by seccomp")),
        (31, 2) => Some(("SYS_USER_DISPATCH", "system call intercepted by syscall user dispatch")),
        _ => None,
    };
    match specific.or(generic) {
        Some((n, d)) => (Some(n), d),
        None => (None, "unknown code"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names() {
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(6), "SIGABRT");
        assert_eq!(signal_name(34), "SIGRTMIN+0");
        assert_eq!(code_name(11, 1), (Some("SEGV_MAPERR"), "address not mapped"));
        assert_eq!(code_name(6, -6).0, Some("SI_TKILL"));
        assert_eq!(code_name(8, 1).0, Some("FPE_INTDIV"));
    }
}
