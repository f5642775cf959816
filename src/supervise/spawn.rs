//! Starting the traced command: fork, hold the child until it is seized, exec, and report an
//! exec failure through a close-on-exec pipe (a usage error, never a "crash").

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::sys::ptrace::Options;

use super::ptrace;

/// Why the command could not be started (crashcatch exits 125).
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("argument {0:?} contains a NUL byte")]
    NulInArgument(OsString),
    #[error("{call}: {errno}")]
    System { call: &'static str, errno: Errno },
    #[error("cannot trace the command (PTRACE_SEIZE: {errno}); {hint}")]
    Seize { errno: Errno, hint: String },
}

pub struct Spawned {
    pub pid: i32,
    /// Read end of the exec-error pipe: 4 bytes of errno if exec failed, EOF if it succeeded.
    pub exec_error: OwnedFd,
    /// `own_group`: the terminal's foreground process group we handed to the command's group,
    /// to be given back when it is done ([`restore_terminal`]).
    pub terminal_pgrp: Option<i32>,
}

/// The foreground process group of the terminal on stdin, when it is ours (crashcatch runs in
/// the foreground): the command's new group must then take over the terminal.
fn foreground_is_ours() -> Option<i32> {
    let stdin = std::io::stdin();
    let stdin = std::os::fd::AsFd::as_fd(&stdin);
    if !rustix::termios::isatty(stdin) {
        return None;
    }
    let fg = rustix::termios::tcgetpgrp(stdin).ok()?.as_raw_nonzero().get();
    (fg == rustix::process::getpgrp().as_raw_nonzero().get()).then_some(fg)
}

/// tcsetpgrp from a process outside the foreground group raises SIGTTOU: block it meanwhile.
///
/// # Safety
/// Async-signal-safe (only sigprocmask and tcsetpgrp): may be called in a forked child.
unsafe fn set_foreground(pgrp: i32) {
    let mut ttou: libc::sigset_t = std::mem::zeroed();
    let mut old: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut ttou);
    libc::sigaddset(&mut ttou, libc::SIGTTOU);
    libc::sigprocmask(libc::SIG_BLOCK, &ttou, &mut old);
    libc::tcsetpgrp(0, pgrp);
    libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
}

/// Gives the terminal back to crashcatch's own process group after the command (started in a
/// group of its own with the terminal) is done.
pub fn restore_terminal(spawned: &Spawned) {
    if let Some(pgrp) = spawned.terminal_pgrp {
        // SAFETY: see set_foreground.
        unsafe { set_foreground(pgrp) };
    }
}

fn pipe_cloexec() -> Result<(OwnedFd, OwnedFd), Errno> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Errno::from_raw(e.raw_os_error()))
}

/// Forks and execs `argv` (searched in PATH like a shell) under ptrace with `options`.
///
/// `own_group` (`--signal-group`) starts the command as the leader of a process group of its
/// own, so that a signal sent to the group reaches it and everything it starts (and nothing
/// else: not crashcatch, not the shell's other jobs); when crashcatch was in the terminal's
/// foreground, that group becomes the foreground one, so Ctrl-C still reaches the command.
pub fn spawn(argv: &[OsString], options: Options, own_group: bool) -> Result<Spawned, SpawnError> {
    let cargs: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| SpawnError::NulInArgument(a.clone())))
        .collect::<Result<_, _>>()?;
    let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let pipe_error = |errno| SpawnError::System { call: "pipe", errno };
    let (go_r, go_w) = pipe_cloexec().map_err(pipe_error)?;
    let (err_r, err_w) = pipe_cloexec().map_err(pipe_error)?;
    let terminal_pgrp = if own_group { foreground_is_ours() } else { None };

    // SAFETY: the child only calls async-signal-safe functions (read, close, prctl, signal,
    // sigprocmask, execvp, write, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        return Err(SpawnError::System { call: "fork", errno: Errno::last() });
    }
    if pid == 0 {
        unsafe {
            if own_group {
                libc::setpgid(0, 0);
                if terminal_pgrp.is_some() {
                    set_foreground(libc::getpid());
                }
            }
            // Undo what the Rust runtime and our signal forwarding changed in this process, so the
            // command starts as it would from the shell: SIGPIPE to default, nothing blocked.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            // If crashcatch dies from here on, so does the command (it would run untraced).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            // Wait until the parent has seized us, so the exec is traced. Our copy of the write
            // end is closed first, so a parent that died before writing gives EOF, not a hang.
            libc::close(go_w.as_raw_fd());
            let mut b = 0u8;
            let mut n;
            loop {
                n = libc::read(go_r.as_raw_fd(), &mut b as *mut u8 as *mut libc::c_void, 1);
                if !(n == -1 && *libc::__errno_location() == libc::EINTR) {
                    break;
                }
            }
            if n != 1 {
                libc::_exit(125);
            }
            // Seized with PTRACE_O_EXITKILL now: that covers crashcatch's death from here on.
            libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
            libc::execvp(ptrs[0], ptrs.as_ptr());
            let e = *libc::__errno_location();
            let bytes = e.to_le_bytes();
            libc::write(err_w.as_raw_fd(), bytes.as_ptr() as *const libc::c_void, 4);
            libc::_exit(127);
        }
    }
    drop(go_r);
    drop(err_w);
    if own_group {
        // Also from this side (as shells do), so the group exists before spawn returns and a
        // forwarded signal cannot miss it; fails harmlessly when the child was first.
        // SAFETY: setpgid on our own child, which has not exec'd yet (it waits for `go`).
        unsafe { libc::setpgid(pid, pid) };
    }
    if let Err(e) = ptrace::seize(pid, options) {
        // SAFETY: pid is our own child; set_foreground as below.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            let _ = super::wait::tid(pid);
            if let Some(pgrp) = terminal_pgrp {
                set_foreground(pgrp);
            }
        }
        return Err(SpawnError::Seize { errno: e, hint: super::permission_hint() });
    }
    let _ = rustix::io::write(&go_w, b"g");
    drop(go_w);
    Ok(Spawned { pid, exec_error: err_r, terminal_pgrp })
}

/// The errno the child reported, if its exec failed.
pub fn read_exec_error(fd: &OwnedFd) -> Option<i32> {
    let mut b = [0u8; 4];
    let n = rustix::io::read(fd, &mut b).ok()?;
    (n == 4).then(|| i32::from_le_bytes(b))
}
