//! Helper threads that never receive a signal: the supervisor's signal handlers must run on the
//! main thread, where they interrupt its waitpid, not on a helper that happens to be running.

/// Spawns `f` on a named thread with every signal blocked (the mask is inherited from the
/// spawning thread, which blocks everything for the moment of the spawn and then restores).
pub fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    // SAFETY: sigfillset/pthread_sigmask on local sets.
    let old = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    };
    let r = std::thread::Builder::new().name(name.to_string()).spawn(f);
    // SAFETY: restoring this thread's own mask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    r.map(drop)
}
