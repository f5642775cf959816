//! No lost wake-up: a signal that asks the event loop to act (Ctrl-C in attach mode, the hang
//! timer) may arrive after the loop checked its flags and before it blocks in waitpid; waitpid
//! would then sleep until the tracee next reports, maybe never. The handler only counts the
//! request and writes a byte to a pipe; a helper thread, woken by it, interrupts the main
//! thread's waitpid (a SIGURG with an empty handler, no SA_RESTART) every few milliseconds until
//! the loop has been round once since the request.

use std::os::fd::{IntoRawFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Once;
use std::time::Duration;

/// How often the main thread is poked while a request is not yet seen.
const POKE_EVERY: Duration = Duration::from_millis(5);
/// The signal that interrupts waitpid (ignored by default, so nobody else is disturbed).
const POKE: i32 = libc::SIGURG;

static REQUESTED: AtomicU64 = AtomicU64::new(0);
static SEEN: AtomicU64 = AtomicU64::new(0);
static PIPE_W: AtomicI32 = AtomicI32::new(-1);
static MAIN_TID: AtomicI32 = AtomicI32::new(0);
static START: Once = Once::new();

extern "C" fn on_poke(_sig: libc::c_int) {}

/// Starts the helper thread (once). Call from the main thread, the one that waits.
pub fn start() {
    START.call_once(|| {
        let flags = rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK;
        let Ok((read_end, write_end)) = rustix::pipe::pipe_with(flags) else { return };
        // SAFETY: sigaction with a handler that does nothing.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_poke as *const () as usize;
            sa.sa_flags = 0;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(POKE, &sa, std::ptr::null_mut());
        }
        MAIN_TID.store(rustix::thread::gettid().as_raw_nonzero().get(), Ordering::Relaxed);
        let read_end: RawFd = read_end.into_raw_fd();
        if crate::process::quiet_thread::spawn("cc-wake", move || poke_loop(read_end)).is_ok() {
            // Kept open for the life of the process: the handler writes to it.
            PIPE_W.store(write_end.into_raw_fd(), Ordering::Relaxed);
        }
    });
}

fn poke_loop(read_end: RawFd) {
    loop {
        let mut pfd = libc::pollfd { fd: read_end, events: libc::POLLIN, revents: 0 };
        let mut buf = [0u8; 64];
        // SAFETY: poll on one valid pollfd; read into a local buffer from our own pipe.
        unsafe {
            if libc::poll(&mut pfd, 1, -1) < 0 {
                continue;
            }
            while libc::read(read_end, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) > 0 {}
        }
        while SEEN.load(Ordering::Acquire) < REQUESTED.load(Ordering::Acquire) {
            // SAFETY: a signal to our own main thread, whose handler does nothing.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), MAIN_TID.load(Ordering::Relaxed), POKE) };
            std::thread::sleep(POKE_EVERY);
        }
    }
}

/// From a signal handler: the loop must look at its flags. Async-signal-safe (atomics and
/// write; errno is saved by the caller's handler).
pub fn request() {
    REQUESTED.fetch_add(1, Ordering::AcqRel);
    let fd = PIPE_W.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: writing one byte to our own non-blocking pipe; a full pipe already wakes.
        unsafe { libc::write(fd, b"w".as_ptr() as *const libc::c_void, 1) };
    }
}

/// The loop is about to look at its flags: every request made so far will be seen.
pub fn seen() {
    SEEN.store(REQUESTED.load(Ordering::Acquire), Ordering::Release);
}
