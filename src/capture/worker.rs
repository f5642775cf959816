//! A live capture on a worker thread that the supervisor never waits on for longer than the
//! report's budget.
//!
//! The supervisor stops the process and reads its registers (ptrace: only it may), then hands
//! a [`Job`] to [`start`]. The worker reads the process's memory (the read phase) through a
//! copy that keeps every page it reads, says so, then analyses what it read (symbols, source
//! lines, the stacks merged) without touching the process again. The supervisor waits in
//! [`Capture::wait_read`] (after which a process that is not dying may run again) and
//! [`Capture::finish`], in short slices: between them it looks at its own signals and at the
//! watchdog. A read that has not returned after [`STUCK_AFTER`] (a userfaultfd page nobody
//! serves, a hung FUSE or NFS file: see process/blocking.rs) has what it was reading fenced off,
//! and the worker is abandoned for a new attempt over the same copy and fence; past the
//! deadline, or when the supervisor must stop waiting, the report is the minimal one, with the
//! reason. Every attempt's result is tagged; an abandoned one's is ignored when it comes.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::{budget::Budget, Circumstances, Options};
use crate::contain::{contain, inject, Stage};
use crate::process::blocking::{self, Blocked, Fence, Scope};
use crate::process::copy::{CopyingMemory, PageCopy};
use crate::process::live::{self, LiveProcess};
use crate::process::{quiet_thread, SignalInfo, ThreadInfo};
use crate::report::model::{Ancestor, Crash};

/// A read blocked for this long is taken for one that will never return.
pub const STUCK_AFTER: Duration = Duration::from_millis(200);
/// Attempts at most; the last one reads neither memory nor files it has not read already.
const MAX_ATTEMPTS: u32 = 4;
/// How often the supervisor looks at its signals and the watchdog while it waits.
const SLICE: Duration = Duration::from_millis(5);
/// Time past the budget (and debuginfod's own bound) before the capture is given up on.
const GRACE: Duration = Duration::from_secs(1);

/// Everything a capture needs, owned, so that an attempt can start again from it.
#[derive(Debug, Clone)]
pub struct Job {
    pub pid: i32,
    /// The thread stopped at the fatal signal; 0 for a snapshot (dump, hang).
    pub crashed_tid: i32,
    pub signal: SignalInfo,
    /// Every thread, with the registers the supervisor read.
    pub threads: Vec<ThreadInfo>,
    pub event: Circumstances,
    pub options: Options,
    /// The traced command's pid: the report names the parents of `pid` up to it.
    pub command_pid: i32,
    /// When the supervisor began stopping the process: the report's budget counts from then.
    pub started: Instant,
}

enum Message {
    /// The read phase of attempt `n` is over: the process may run again.
    Read(u32),
    Done(u32, Box<Crash>),
    Failed(u32, String),
}

/// A capture under way.
pub struct Capture {
    job: Arc<Job>,
    copy: Arc<PageCopy>,
    fence: Arc<RwLock<Fence>>,
    tx: Sender<Message>,
    rx: Receiver<Message>,
    attempt: u32,
    scope: Arc<Scope>,
    read: bool,
    result: Option<Crash>,
    /// What the watchdog did, for the report's notes.
    notes: Vec<String>,
    deadline: Instant,
    uffd_fenced: bool,
}

/// Starts capturing `job` on a worker thread.
pub fn start(job: Job) -> Capture {
    let fetch = job.options.debuginfod.as_ref().map_or(Duration::ZERO, |c| c.budget);
    let deadline = job.started + job.options.budget() + fetch + GRACE;
    let (tx, rx) = mpsc::channel();
    let fence = Arc::new(RwLock::new(Fence::default()));
    let mut c = Capture {
        job: Arc::new(job),
        copy: PageCopy::new(),
        scope: Scope::new(fence.clone()),
        fence,
        tx,
        rx,
        attempt: 0,
        read: false,
        result: None,
        notes: Vec::new(),
        deadline,
        uffd_fenced: false,
    };
    c.spawn();
    c
}

impl Capture {
    /// Waits until the process's memory is read (or the capture is given up on): from then on
    /// the process may run again; call [`Capture::resumed`] when it does.
    pub fn wait_read(&mut self, interrupted: &dyn Fn() -> bool) {
        self.wait(true, interrupted);
    }

    /// The process runs again: no attempt may read its memory any more, only the copy.
    pub fn resumed(&mut self) {
        self.fence_mut().close_memory();
    }

    /// Waits for the report; within the deadline, always returns one.
    pub fn finish(mut self, interrupted: &dyn Fn() -> bool) -> Crash {
        self.wait(false, interrupted);
        let mut crash = self.result.take().unwrap_or_else(|| self.given_up("it was not finished"));
        crash.notes.append(&mut self.notes);
        crash
    }

    fn wait(&mut self, read_only: bool, interrupted: &dyn Fn() -> bool) {
        while self.result.is_none() && !(read_only && self.read) {
            match self.rx.recv_timeout(SLICE) {
                Ok(m) => self.take(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => unreachable!("the capture holds a sender"),
            }
            if self.result.is_some() || (read_only && self.read) {
                break;
            }
            if interrupted() {
                self.give_up("crashcatch was asked to stop (a signal) before the report was finished");
            } else if Instant::now() >= self.deadline {
                let why = format!(
                    "it was not finished {:.1} s after the signal (the report's budget and a grace second)",
                    self.deadline.duration_since(self.job.started).as_secs_f64()
                );
                self.give_up(&why);
            } else if let Some(what) = self.scope.stuck(STUCK_AFTER) {
                self.fence_off(&what);
                self.spawn();
            }
        }
    }

    fn take(&mut self, m: Message) {
        match m {
            Message::Read(n) if n == self.attempt => self.read = true,
            Message::Done(n, crash) if n == self.attempt => self.result = Some(*crash),
            Message::Failed(n, why) if n == self.attempt => self.result = Some(self.given_up(&why)),
            _ => {} // an abandoned attempt's
        }
    }

    fn fence_mut(&self) -> std::sync::RwLockWriteGuard<'_, Fence> {
        self.fence.write().unwrap_or_else(|p| p.into_inner())
    }

    /// What `what` was reading is never read again; so is every userfaultfd area of the
    /// process (the kernel lists them in smaps), where the first stuck read is most likely.
    fn fence_off(&mut self, what: &Blocked) {
        let pid = self.job.pid;
        let limit = STUCK_AFTER.as_secs_f64();
        match what {
            Blocked::Memory { addr, .. } => {
                let maps = live::maps(pid);
                let (start, end) = match maps.iter().find(|m| m.contains(*addr)) {
                    Some(m) => (m.start, m.end),
                    None => (*addr & !0xfff, (*addr & !0xfff) + 0x1000),
                };
                let mut fence = self.fence_mut();
                fence.memory_range(start, end);
                if !self.uffd_fenced {
                    for (s, e) in live::userfaultfd_areas(pid) {
                        fence.memory_range(s, e);
                    }
                }
                drop(fence);
                self.uffd_fenced = true;
                self.notes.push(format!(
                    "a read of the process's memory at {addr:#x} did not return within {limit:.1} s (a \
                     userfaultfd page nobody serves, or a hung FUSE or NFS file?): {start:#x}-{end:#x} was left out"
                ));
            }
            Blocked::File { path } => {
                self.fence_mut().file(path);
                self.notes.push(format!(
                    "reading {} did not finish within {limit:.1} s (a hung FUSE or NFS mount?): it was left out",
                    crate::report::render::escape::terminal::text(&path.display().to_string())
                ));
            }
        }
    }

    /// Abandons the current attempt and starts the next one (the last reads nothing new).
    fn spawn(&mut self) {
        self.scope.abandon();
        self.attempt += 1;
        if self.attempt >= MAX_ATTEMPTS {
            let mut fence = self.fence_mut();
            fence.close_memory();
            fence.close_files();
        }
        if self.attempt > MAX_ATTEMPTS {
            self.result = Some(self.given_up("too many reads did not return"));
            return;
        }
        self.scope = Scope::new(self.fence.clone());
        let (job, copy, scope, tx, n) =
            (self.job.clone(), self.copy.clone(), self.scope.clone(), self.tx.clone(), self.attempt);
        let spawned = quiet_thread::spawn("cc-capture", move || run(&job, copy, scope, &tx, n));
        if let Err(e) = spawned {
            self.result = Some(self.given_up(&format!("no thread could be started ({e})")));
        }
    }

    /// Stops waiting for the current attempt: the minimal report, saying why.
    fn give_up(&mut self, why: &str) {
        self.scope.abandon();
        self.result = Some(self.given_up(why));
    }

    fn given_up(&self, why: &str) -> Crash {
        let j = &self.job;
        let mut crash = super::fallback::minimal(
            j.pid,
            live::exe(j.pid),
            Vec::new(),
            &j.signal,
            j.crashed_tid,
            j.event.clone(),
            why,
        );
        crash.notes.extend(self.notes.iter().cloned());
        crash
    }
}

/// One attempt, on its own thread: the read phase over a copy of the process's memory, then the
/// analysis from the copy. A panic is reported as a failure, never unwinds further.
fn run(job: &Job, copy: Arc<PageCopy>, scope: Arc<Scope>, tx: &Sender<Message>, n: u32) {
    blocking::enter(scope);
    let msg = match contain(|| {
        inject(Stage::Capture);
        attempt(job, copy, tx, n)
    }) {
        Ok(crash) => Message::Done(n, Box::new(crash)),
        Err(why) => Message::Failed(n, why),
    };
    let _ = tx.send(msg);
}

fn attempt(job: &Job, copy: Arc<PageCopy>, tx: &Sender<Message>, n: u32) -> Crash {
    let live = LiveProcess::new(job.pid);
    let memory = CopyingMemory::new(Some(&live.memory), copy);
    let snap = live.snapshot(&memory, job.crashed_tid, job.signal, job.threads.clone());
    let budget = Budget::new(job.started, job.options.budget());
    let modules = super::modules_of(&snap, &job.options);
    let reading = super::read_phase(&snap, &modules, &job.options, &budget);
    memory.freeze();
    let _ = tx.send(Message::Read(n));
    let mut event = job.event.clone();
    event.ancestry = ancestry(job.pid, job.command_pid);
    super::analyze(&snap, &modules, reading, event, &job.options, budget)
}

/// Parents of `pid` up to the traced command `command`, nearest first (their command lines are
/// watched reads: a parent is a traced process too).
fn ancestry(pid: i32, command: i32) -> Vec<Ancestor> {
    let mut out = Vec::new();
    if pid == command {
        return out;
    }
    let mut p = pid;
    for _ in 0..64 {
        let Some(pp) = live::parent(p) else { break };
        if pp <= 1 {
            break;
        }
        out.push(Ancestor { pid: pp, cmdline: live::cmdline(pp) });
        if pp == command {
            break;
        }
        p = pp;
    }
    out
}
