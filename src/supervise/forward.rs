//! Forwarding signals sent to crashcatch to the traced command, as an init (tini) does.
//!
//! Signals the terminal sends (Ctrl-C, Ctrl-\, window size: si_code SI_KERNEL) reach the whole
//! foreground process group, the command included, so they are not sent a second time.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static TARGET: AtomicI32 = AtomicI32::new(0);
static GROUP: AtomicBool = AtomicBool::new(false);

/// The signals an init forwards.
pub const FORWARDED: [i32; 7] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler; kill() is
    // async-signal-safe.
    unsafe {
        let code = if info.is_null() { 0 } else { (*info).si_code };
        if code == libc::SI_KERNEL {
            return;
        }
        let pid = TARGET.load(Ordering::Relaxed);
        if pid > 0 {
            let dest = if GROUP.load(Ordering::Relaxed) { -pid } else { pid };
            libc::kill(dest, sig);
        }
    }
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

/// Where forwarded signals go from now on.
pub fn set_target(pid: i32) {
    TARGET.store(pid, Ordering::Relaxed);
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
    STOP.store(true, Ordering::Relaxed);
}

/// Attach mode: SIGINT, SIGTERM and SIGHUP ask crashcatch to detach and leave. Installed without
/// SA_RESTART so a blocking waitpid returns EINTR and the loop sees the request at once.
pub fn install_detach_handlers() {
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
    HANG.store(true, Ordering::Relaxed);
}

/// `--hang-timeout`: after `secs`, the event loop is interrupted to dump every stack.
pub fn arm_hang_timer(secs: u32) {
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
