//! The one door to waitpid: every wait of the supervisor, with the raw status decoded once into
//! what happened to the tracee.

use std::time::{Duration, Instant};

use nix::errno::Errno;

/// A ptrace event stop (`PTRACE_EVENT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Fork,
    Vfork,
    Clone,
    Exec,
    /// PTRACE_EVENT_EXIT: a thread about to exit (its status in the event message).
    Exit,
    /// A group-stop or PTRACE_INTERRUPT stop of a seized tracee.
    Stop,
    Other(i32),
}

impl Event {
    fn from_raw(e: i32) -> Self {
        match e {
            libc::PTRACE_EVENT_FORK => Event::Fork,
            libc::PTRACE_EVENT_VFORK => Event::Vfork,
            libc::PTRACE_EVENT_CLONE => Event::Clone,
            libc::PTRACE_EVENT_EXEC => Event::Exec,
            libc::PTRACE_EVENT_EXIT => Event::Exit,
            libc::PTRACE_EVENT_STOP => Event::Stop,
            other => Event::Other(other),
        }
    }
}

/// What waitpid said about one tracee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal.
    Killed(i32),
    /// A signal-delivery-stop: `sig` is about to be delivered.
    Signal(i32),
    /// A ptrace event stop; `sig` is the stop signal (SIGTRAP, or the group-stop's signal).
    Event(Event, i32),
    /// Anything else (continued).
    Other,
}

impl Status {
    pub fn decode(raw: i32) -> Self {
        if libc::WIFEXITED(raw) {
            return Status::Exited(libc::WEXITSTATUS(raw));
        }
        if libc::WIFSIGNALED(raw) {
            return Status::Killed(libc::WTERMSIG(raw));
        }
        if !libc::WIFSTOPPED(raw) {
            return Status::Other;
        }
        let sig = libc::WSTOPSIG(raw);
        match (raw >> 16) & 0xff {
            0 => Status::Signal(sig),
            e => Status::Event(Event::from_raw(e), sig),
        }
    }

    /// It exited or was killed: the tid is gone.
    pub fn is_gone(self) -> bool {
        matches!(self, Status::Exited(_) | Status::Killed(_))
    }

    /// It is stopped (for a signal or an event).
    pub fn is_stopped(self) -> bool {
        matches!(self, Status::Signal(_) | Status::Event(..))
    }
}

fn waitpid(pid: i32, flags: i32) -> Result<Option<(i32, Status)>, Errno> {
    let mut raw = 0;
    // SAFETY: waitpid with a valid status pointer.
    let r = unsafe { libc::waitpid(pid, &mut raw, flags | libc::__WALL) };
    match r {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        tid => Ok(Some((tid, Status::decode(raw)))),
    }
}

/// Blocks until any tracee or child reports. EINTR is retried unless `interrupted()` says a
/// signal asked the loop to look at something; then it is returned.
pub fn any(interrupted: impl Fn() -> bool) -> Result<(i32, Status), Errno> {
    loop {
        match waitpid(-1, 0) {
            Ok(Some(x)) => return Ok(x),
            Ok(None) => continue,
            Err(Errno::EINTR) if !interrupted() => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Whatever tracee has something to report now, without blocking.
pub fn poll_any() -> Option<(i32, Status)> {
    waitpid(-1, libc::WNOHANG).ok().flatten()
}

/// Waits up to `limit` for one tracee to report; None on timeout or if it is gone.
pub fn tid_within(tid: i32, limit: Duration) -> Option<Status> {
    let start = Instant::now();
    let mut nap = Duration::from_micros(20);
    loop {
        match waitpid(tid, libc::WNOHANG) {
            Ok(Some((_, st))) => return Some(st),
            Ok(None) | Err(Errno::EINTR) => {}
            Err(_) => return None,
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(5));
    }
}

/// Blocks until one tracee reports.
pub fn tid(tid: i32) -> Option<Status> {
    loop {
        match waitpid(tid, 0) {
            Ok(Some((_, st))) => return Some(st),
            Err(Errno::EINTR) | Ok(None) => continue,
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_statuses() {
        assert_eq!(Status::decode(3 << 8), Status::Exited(3));
        assert_eq!(Status::decode(libc::SIGSEGV), Status::Killed(libc::SIGSEGV));
        assert_eq!(Status::decode((libc::SIGSEGV << 8) | 0x7f), Status::Signal(libc::SIGSEGV));
        let clone = (libc::PTRACE_EVENT_CLONE << 16) | (libc::SIGTRAP << 8) | 0x7f;
        assert_eq!(Status::decode(clone), Status::Event(Event::Clone, libc::SIGTRAP));
        let stop = (libc::PTRACE_EVENT_STOP << 16) | (libc::SIGTSTP << 8) | 0x7f;
        assert_eq!(Status::decode(stop), Status::Event(Event::Stop, libc::SIGTSTP));
    }
}
