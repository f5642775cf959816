//! crashcatch's own stderr and stdout: the one writer every message, report and summary goes
//! through (clippy.toml forbids the print macros and `std::io::stdout`/`stderr` elsewhere).
//! It never panics (`eprintln!` does when stderr is a closed pipe) and never fails: a closed
//! pipe (EPIPE: `crashcatch -- cmd 2>&1 | head`, a dead log collector) or a hung-up terminal
//! (EIO) means "no stderr" from then on; the command's exit status is never changed by it.
//! SIGPIPE is ignored in crashcatch (Rust's runtime sets SIG_IGN before `main`), so a write
//! to a closed pipe returns EPIPE instead of killing crashcatch; the command is started with
//! SIGPIPE at its default (supervise/spawn.rs).

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use super::stream::Stream;

/// Set once stderr is known to be gone.
static GONE: AtomicBool = AtomicBool::new(false);
/// Set once stdout is known to be gone.
static OUT_GONE: AtomicBool = AtomicBool::new(false);

/// How long a write may wait for a non-blocking stderr that is full.
const FULL_PIPE_WAIT: Duration = Duration::from_secs(2);

/// Writes all of `bytes` to stderr, or as much as it takes; never fails, never panics.
pub fn write(bytes: &[u8]) {
    write_fd(fd_of(Stream::Stderr), bytes, &GONE);
}

/// Writes a document (a summary, stacks) to stdout; false when stdout is gone.
pub fn out(bytes: &[u8]) -> bool {
    write_fd(fd_of(Stream::Stdout), bytes, &OUT_GONE);
    !OUT_GONE.load(Ordering::Relaxed)
}

/// Whether `to` is a terminal (colours are for terminals only).
pub fn is_terminal(to: Stream) -> bool {
    rustix::termios::isatty(fd_of(to))
}

fn fd_of(to: Stream) -> BorrowedFd<'static> {
    match to {
        Stream::Stderr => rustix::stdio::stderr(),
        Stream::Stdout => rustix::stdio::stdout(),
    }
}

fn write_fd(fd: BorrowedFd<'_>, bytes: &[u8], gone: &AtomicBool) {
    let mut rest = bytes;
    let started = Instant::now();
    while !rest.is_empty() && !gone.load(Ordering::Relaxed) {
        match rustix::io::write(fd, rest) {
            Ok(n) if n > 0 => rest = &rest[n.min(rest.len())..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) if started.elapsed() < FULL_PIPE_WAIT => wait_writable(fd),
            // EPIPE, EIO, EBADF, ENOSPC, a full pipe nobody reads, 0 bytes written: no stderr.
            _ => gone.store(true, Ordering::Relaxed),
        }
    }
}

/// A non-blocking stderr (shared with a process that set O_NONBLOCK) is full: wait a little.
fn wait_writable(fd: BorrowedFd<'_>) {
    let mut p = [PollFd::new(&fd, PollFlags::OUT)];
    let _ = rustix::event::poll(&mut p, Some(&Timespec { tv_sec: 0, tv_nsec: 100_000_000 }));
}

/// One line, `crashcatch: {msg}`, escaped for the terminal here (a message may carry a file
/// name, a path from a core, a test id: nothing in it can start a line, move the cursor or
/// reorder the text). Escaping is idempotent: a message escaped already is unchanged.
pub fn say(msg: &str) {
    write(line(msg).as_bytes());
}

/// The line [`say`] writes: `crashcatch: {msg}\n`, `msg` escaped for the terminal.
pub fn line(msg: &str) -> String {
    let msg = crate::report::render::escape::terminal::text(msg);
    let mut line = String::with_capacity(msg.len() + 13);
    line.push_str("crashcatch: ");
    line.push_str(&msg);
    line.push('\n');
    line
}

/// Whether stderr was found closed (tests).
pub fn gone() -> bool {
    GONE.load(Ordering::Relaxed)
}
