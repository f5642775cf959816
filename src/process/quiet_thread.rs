//! Helper threads that never receive a signal: the supervisor's signal handlers must run on the
//! main thread, where they interrupt its waitpid, not on a helper that happens to be running.

use std::thread::JoinHandle;

/// Spawns `f` on a named thread with every signal blocked (the mask is inherited from the
/// spawning thread, which blocks everything for the moment of the spawn and then restores:
/// a signal arriving meanwhile stays pending, none is lost).
pub(crate) fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<JoinHandle<T>> {
    spawn_sized(name, None, f)
}

/// The same, with a stack of `stack` bytes (the default otherwise).
pub(crate) fn spawn_sized<T: Send + 'static>(
    name: &str,
    stack: Option<usize>,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<JoinHandle<T>> {
    // SAFETY: sigfillset/pthread_sigmask on local sets.
    let old = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    };
    let mut builder = std::thread::Builder::new().name(name.to_string());
    if let Some(size) = stack {
        builder = builder.stack_size(size);
    }
    let r = builder.spawn(f);
    // SAFETY: restoring this thread's own mask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_thread_blocks_every_signal_and_the_caller_keeps_its_mask() {
        // SAFETY: reading masks into local sets.
        let mask = || unsafe {
            let mut cur: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut cur);
            (libc::sigismember(&cur, libc::SIGINT), libc::sigismember(&cur, libc::SIGTERM))
        };
        let before = mask();
        let inside = super::spawn("cc-test", mask).unwrap().join().unwrap();
        assert_eq!(inside, (1, 1));
        assert_eq!(mask(), before);
    }
}
