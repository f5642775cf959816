//! Forwarding signals sent to crashcatch to the traced command, as an init (tini) does.
//!
//! Signals the terminal sends (Ctrl-C, Ctrl-\, window size: si_code SI_KERNEL) reach the whole
//! foreground process group, the command included, so they are not sent a second time.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static TARGET: AtomicI32 = AtomicI32::new(0);
/// A pidfd of the target when there is one: signals sent through it can never reach another
/// process that reused the pid.
static TARGET_PIDFD: AtomicI32 = AtomicI32::new(-1);
static GROUP: AtomicBool = AtomicBool::new(false);

/// Runs `f` with errno as it was: a handler must not change errno under the code it interrupts.
fn keeping_errno(f: impl FnOnce()) {
    // SAFETY: errno is thread-local; reading and restoring it is async-signal-safe.
    unsafe {
        let saved = *libc::__errno_location();
        f();
        *libc::__errno_location() = saved;
    }
}

/// The signals an init forwards.
pub const FORWARDED: [i32; 7] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler; kill() and the raw
    // pidfd_send_signal are async-signal-safe.
    keeping_errno(|| unsafe {
        let code = if info.is_null() { 0 } else { (*info).si_code };
        if code == libc::SI_KERNEL {
            return;
        }
        let pid = TARGET.load(Ordering::Acquire);
        if pid <= 0 {
            return;
        }
        let pidfd = TARGET_PIDFD.load(Ordering::Acquire);
        if GROUP.load(Ordering::Relaxed) {
            libc::kill(-pid, sig);
        } else if pidfd < 0
            || libc::syscall(libc::SYS_pidfd_send_signal, pidfd, sig, std::ptr::null::<libc::siginfo_t>(), 0) != 0
                && *libc::__errno_location() == libc::ENOSYS
        {
            libc::kill(pid, sig);
        }
    })
}

/// Blocks the forwarded signals (before the command is started): one that arrives before the
/// target is known stays pending, and is forwarded once [`install`] unblocks it. Returns the
/// mask to restore.
pub fn block() -> libc::sigset_t {
    // SAFETY: sigprocmask on local sets.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

/// Puts back the mask [`block`] returned: a pending forwarded signal is delivered now.
pub fn unblock(old: &libc::sigset_t) {
    // SAFETY: restoring our own mask.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

/// Installs the forwarding handlers; `group` sends to the child's whole process group.
pub fn install(group: bool) {
    GROUP.store(group, Ordering::Relaxed);
    for sig in FORWARDED {
        // SAFETY: installing a handler that only calls async-signal-safe functions.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Where forwarded signals go from now on (0: nowhere, once the target is reaped).
pub fn set_target(pid: i32) {
    let pidfd = if pid > 0 {
        // SAFETY: pidfd_open with integer arguments; the descriptor is ours (closed below).
        unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32 }
    } else {
        -1
    };
    TARGET.store(0, Ordering::Release);
    let old = TARGET_PIDFD.swap(pidfd, Ordering::AcqRel);
    TARGET.store(pid, Ordering::Release);
    if old >= 0 {
        // SAFETY: closing the pidfd we opened. A handler that loaded it a moment ago gets EBADF
        // (nothing is sent), or a descriptor reused for a non-pidfd (EBADF too).
        unsafe { libc::close(old) };
    }
}

/// Puts every forwarded signal back to its default action.
pub fn uninstall() {
    TARGET.store(0, Ordering::Relaxed);
    for sig in FORWARDED {
        // SAFETY: resetting a disposition.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_sig: libc::c_int) {
    keeping_errno(|| {
        STOP.store(true, Ordering::Relaxed);
        super::wake::request();
    })
}

/// Attach mode: SIGINT, SIGTERM and SIGHUP ask crashcatch to detach and leave. Installed without
/// SA_RESTART so a blocking waitpid returns EINTR and the loop sees the request at once.
pub fn install_detach_handlers() {
    super::wake::start();
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_stop as *const () as usize;
            sa.sa_flags = 0;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// True once a detach was asked for.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

static HANG: AtomicBool = AtomicBool::new(false);

extern "C" fn on_alarm(_sig: libc::c_int) {
    keeping_errno(|| {
        HANG.store(true, Ordering::Relaxed);
        super::wake::request();
    })
}

/// `--hang-timeout`: after `secs`, the event loop is interrupted to dump every stack.
pub fn arm_hang_timer(secs: u32) {
    super::wake::start();
    // SAFETY: the handler only stores to an atomic; alarm() arms a timer.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_alarm as *const () as usize;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
        libc::alarm(secs.max(1));
    }
}

/// True once, when the hang timer has fired.
pub fn take_hang() -> bool {
    HANG.swap(false, Ordering::Relaxed)
}

/// Something asks the event loop to stop waiting: a detach request or the hang timer.
pub fn interrupted() -> bool {
    STOP.load(Ordering::Relaxed) || HANG.load(Ordering::Relaxed)
}
