//! Threads the supervisor has stopped, owned by a guard: whatever happens between stopping them
//! and letting them go (a panic in a report, an early return, a capture given up on), every one
//! is resumed as it would have gone on untraced when the guard is dropped. Crash capture, the
//! stack dumps of `dump` and `--hang-timeout`, and `--test-timeout` all stop threads through it.

use std::collections::VecDeque;

use super::policy::is_stop_signal;
use super::ptrace;
use super::wait::{Event, Status};

/// How one stopped thread goes on.
#[derive(Debug, Clone, Copy)]
pub enum Resume {
    /// PTRACE_CONT, delivering this signal (0: none).
    Cont(i32),
    /// It was in a group-stop: PTRACE_LISTEN, so it stays stopped until SIGCONT.
    Listen,
    /// It reported something else while being stopped (an event, its exit): the event loop
    /// must see it.
    Redispatch(Status),
}

/// Stopped threads, in the order they are to be resumed.
#[derive(Debug, Default)]
pub struct Stopped {
    threads: Vec<(i32, Resume)>,
}

impl Stopped {
    pub fn new() -> Self {
        Stopped::default()
    }

    /// `tid` is stopped and goes on with `how`.
    pub fn push(&mut self, tid: i32, how: Resume) {
        self.threads.push((tid, how));
    }

    /// Whether `tid` is held here.
    pub fn holds(&self, tid: i32) -> bool {
        self.threads.iter().any(|(t, _)| *t == tid)
    }

    /// The tids held, in order.
    pub fn tids(&self) -> impl Iterator<Item = i32> + '_ {
        self.threads.iter().map(|(t, _)| *t)
    }

    /// Resumes every thread now; what a thread reported meanwhile is queued in `deferred` for
    /// the event loop.
    pub fn release(&mut self, deferred: &mut VecDeque<(i32, Status)>) {
        for (tid, how) in self.threads.drain(..) {
            match how {
                Resume::Redispatch(st) => deferred.push_back((tid, st)),
                how => resume(tid, how),
            }
        }
    }
}

impl Drop for Stopped {
    /// Not released by the event loop (a panic unwinding, an early return): every thread goes
    /// on as it would have untraced, an event it stopped with included.
    fn drop(&mut self) {
        for (tid, how) in self.threads.drain(..) {
            match how {
                Resume::Redispatch(st) => release_untraced(tid, st),
                how => resume(tid, how),
            }
        }
    }
}

fn resume(tid: i32, how: Resume) {
    let _ = match how {
        Resume::Cont(sig) => ptrace::cont(tid, sig),
        Resume::Listen => ptrace::listen(tid),
        Resume::Redispatch(_) => Ok(()),
    };
}

/// Resumes a thread stopped with `status` as it would have gone on untraced (its signal
/// delivered, a group-stop kept). A thread already resumed just gives ESRCH.
pub fn release_untraced(tid: i32, status: Status) {
    match status {
        Status::Signal(sig) => resume(tid, Resume::Cont(sig)),
        Status::Event(Event::Stop, sig) if is_stop_signal(sig) => resume(tid, Resume::Listen),
        Status::Event(..) => resume(tid, Resume::Cont(0)),
        Status::Exited(_) | Status::Killed(_) | Status::Other => {}
    }
}
