//! The event loop: follows every thread and descendant of the traced command, passes every
//! signal through unchanged, handles group-stops, and stops the process at a fatal signal to
//! have a report made before the signal is delivered.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::capture::{self, worker, Circumstances};
use crate::contain::contain;
use crate::process::signals::signal_name;
use crate::process::{live, SignalInfo, ThreadInfo};
use crate::report::model::{Crash, CrashKind, FaultingThread, Hex, TimeoutAction};
use crate::report::output::{console, Emitter};

use super::policy::{is_fatal, is_stop_signal, survives};
use super::ptrace;
use super::stopped::{release_untraced, Resume, Stopped};
use super::wait::{self, Event, Status};

/// How a traced process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Attach mode: crashcatch let go of a process that is still running.
    Detached,
}

/// A report made at a signal the program handles itself: emitted only if the process then dies.
struct Pending {
    tid: i32,
    signo: i32,
    addr: Option<u64>,
    crash: Box<Crash>,
    /// The state of the first fault, for `--core`: a handler that re-raises (faulthandler) dies
    /// of its own signal, and the core must show the fault, not the re-raise.
    first_fault: super::core_dump::Fault,
}

pub struct Tracer<'a> {
    emitter: &'a mut Emitter,
    capture_options: capture::Options,
    main_pid: i32,
    /// tid → tgid of every traced thread.
    threads: HashMap<i32, i32>,
    /// New threads and processes whose first stop came before their creator's fork/clone event
    /// (the two race): known already, so the event must not add them again.
    unannounced: HashSet<i32>,
    /// Those of them that have already exited (and were reaped) before that event arrived: the
    /// event must not bring them back, or a dead pid would be "left running" for ever.
    gone_unannounced: HashSet<i32>,
    pending: HashMap<i32, Pending>,
    /// Processes whose report is written and whose fatal signal was let through: they are
    /// dying. Another thread faulting on the way out gets no second report.
    dying: HashSet<i32>,
    main_exec_seen: bool,
    main_exit: Option<Exit>,
    deferred: VecDeque<(i32, Status)>,
    /// Attach mode: the process was running before us and must go on after us.
    attached: bool,
    /// `--hang-timeout`: what to do when it fires.
    pub hang_action: HangAction,
    /// `--test-timeout`: the running test of every process (see test_timeout.rs).
    pub test_watch: Option<super::test_timeout::Watch>,
    /// `--core`: write a core file of each crashed process, within these limits.
    pub core_dump: Option<super::CoreLimits>,
    /// Bytes of cores written so far this run.
    core_bytes: u64,
    /// The pytest plugin's session: the main thread is held at its PTRACE_EVENT_EXIT (the run
    /// ends there) until [`Tracer::finish_and_release`], so the outputs' last word comes
    /// before anyone can see the session ended.
    pub hold_main_at_exit: bool,
    /// Whether the main thread is held so now.
    main_held: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangAction {
    /// Dump every stack, then SIGTERM the command.
    Term,
    /// Dump every stack and leave it running.
    Dump,
}

impl<'a> Tracer<'a> {
    pub fn new(main_pid: i32, emitter: &'a mut Emitter, capture_options: capture::Options) -> Self {
        let mut threads = HashMap::new();
        threads.insert(main_pid, main_pid);
        Tracer {
            emitter,
            capture_options,
            main_pid,
            threads,
            unannounced: HashSet::new(),
            gone_unannounced: HashSet::new(),
            pending: HashMap::new(),
            dying: HashSet::new(),
            main_exec_seen: false,
            main_exit: None,
            deferred: VecDeque::new(),
            attached: false,
            hang_action: HangAction::Term,
            test_watch: None,
            core_dump: None,
            core_bytes: 0,
            hold_main_at_exit: false,
            main_held: false,
        }
    }

    /// A tracer for a process that is already running and whose threads are already seized.
    pub fn attached(pid: i32, tids: &[i32], emitter: &'a mut Emitter, capture_options: capture::Options) -> Self {
        let mut t = Tracer::new(pid, emitter, capture_options);
        for &tid in tids {
            t.threads.insert(tid, pid);
        }
        t.main_exec_seen = true;
        t.attached = true;
        t
    }

    pub fn main_exec_seen(&self) -> bool {
        self.main_exec_seen
    }

    /// Runs until the main command has exited; returns how it ended.
    pub fn run(&mut self) -> Exit {
        while self.main_exit.is_none() {
            super::wake::seen();
            if super::forward::take_hang() {
                self.on_hang();
            }
            if super::test_timeout::take_tick() {
                self.on_test_tick();
            }
            if super::forward::stop_requested() && self.deferred.is_empty() {
                self.release_all();
                return Exit::Detached;
            }
            let (tid, status) = match self.deferred.pop_front() {
                Some(d) => d,
                None => match wait::any(|| super::forward::interrupted() || super::test_timeout::tick_pending()) {
                    Ok(x) => x,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break, // no children left at all
                },
            };
            // A panic anywhere in handling one stop must not end the supervisor (and with it,
            // through PTRACE_O_EXITKILL, the whole run): the thread is let go as if untraced.
            if let Err(why) = contain(|| self.dispatch(tid, status)) {
                console::say(&format!("handling a stop of thread {tid} failed ({why}); letting it go on"));
                release_untraced(tid, status);
            }
        }
        if !self.main_held {
            self.release_all();
        }
        self.main_exit.unwrap_or(Exit::Code(0))
    }

    /// The end of a run whose main thread is held at its exit ([`Self::hold_main_at_exit`]):
    /// the outputs finish (the JUnit merge, the summary line, the job summary) while the
    /// process has not yet exited, then every tracee is let go, the main thread last (it then
    /// exits, and its parent sees it). Without a held thread: the outputs finish.
    pub fn finish_and_release(&mut self) {
        self.emitter.finish();
        if !self.main_held {
            return;
        }
        let main = self.main_pid;
        self.threads.remove(&main);
        self.release_all();
        let _ = ptrace::detach(main, 0);
        self.main_held = false;
    }

    fn tgid(&mut self, tid: i32) -> i32 {
        if let Some(&g) = self.threads.get(&tid) {
            return g;
        }
        let g = live::tgid_of(tid).unwrap_or(tid);
        self.threads.insert(tid, g);
        self.unannounced.insert(tid);
        g
    }

    fn dispatch(&mut self, tid: i32, status: Status) {
        match status {
            Status::Exited(_) | Status::Killed(_) => self.on_exit(tid, status),
            Status::Event(event, sig) => self.on_event(tid, sig, event),
            Status::Signal(sig) if is_fatal(sig) => self.on_fatal(tid, sig),
            Status::Signal(sig) => {
                self.tgid(tid);
                let _ = ptrace::cont(tid, sig);
            }
            Status::Other => {}
        }
    }

    fn on_exit(&mut self, tid: i32, status: Status) {
        let known = self.threads.remove(&tid);
        if self.unannounced.remove(&tid) || known.is_none() {
            // Its creator's fork/clone event may still be on its way: remember it is gone. (An
            // orphan reaped here never gets one; the set is kept small.)
            if self.gone_unannounced.len() >= 4096 {
                self.gone_unannounced.clear();
            }
            self.gone_unannounced.insert(tid);
        }
        let Some(tgid) = known else {
            // An orphan re-parented to us (PID 1 / subreaper), now reaped; a child killed
            // before its first stop; or the main pid reported before we ever saw it stop.
            if tid == self.main_pid {
                super::forward::set_target(0);
                self.set_main_exit(status);
            }
            return;
        };
        let tgid = if tid != tgid && (self.pending.contains_key(&tid) || self.dying.contains(&tid)) {
            tid // a process whose clone event could not tell it from a thread
        } else {
            tgid
        };
        if tid != tgid {
            return;
        }
        // The thread-group leader is reported last: the process is gone.
        let pending = self.pending.remove(&tgid);
        if let (Status::Killed(sig), Some(p)) = (status, pending) {
            if is_fatal(sig) {
                self.emitter.emit(capture::terminated_by(*p.crash, sig));
            }
        }
        self.dying.remove(&tgid);
        if let Some(w) = &mut self.test_watch {
            w.forget(tgid);
        }
        self.threads.retain(|_, g| *g != tgid);
        let threads = &self.threads;
        self.unannounced.retain(|t| threads.contains_key(t));
        if tid == self.main_pid {
            // Reaped: its pid may be reused from now on, so nothing more is forwarded to it.
            super::forward::set_target(0);
            self.set_main_exit(status);
        }
    }

    fn set_main_exit(&mut self, status: Status) {
        self.main_exit = match status {
            Status::Killed(sig) => Some(Exit::Signal(sig)),
            Status::Exited(code) => Some(Exit::Code(code)),
            _ => self.main_exit,
        };
    }

    fn on_event(&mut self, tid: i32, sig: i32, event: Event) {
        let tgid = self.tgid(tid);
        match event {
            Event::Fork | Event::Vfork | Event::Clone => {
                if let Ok(new) = ptrace::event_msg(tid) {
                    let new = new as i32;
                    if self.gone_unannounced.remove(&new) {
                        // It ran, exited and was reaped before this event reached us.
                    } else if self.unannounced.remove(&new) {
                        // Its first stop came first: already known.
                    } else {
                        // PTRACE_EVENT_CLONE is a thread of the creator's process but for the rare
                        // clone() without CLONE_THREAD and with an exit signal other than SIGCHLD
                        // (which also reports here). Not checking saves every thread creation
                        // system calls; the one place that must know (a fatal signal) asks /proc,
                        // and a leader's exit is recognised by its pending report too.
                        let new_tgid = if event == Event::Clone { tgid } else { new };
                        self.threads.insert(new, new_tgid);
                    }
                }
                let _ = ptrace::cont(tid, 0);
            }
            Event::Exec => {
                // After exec the thread has the thread-group id; the others are gone.
                if let Ok(former) = ptrace::event_msg(tid) {
                    self.threads.remove(&(former as i32));
                }
                self.threads.retain(|t, g| *g != tgid || *t == tid);
                let threads = &self.threads;
                self.unannounced.retain(|t| threads.contains_key(t));
                self.threads.insert(tid, tid);
                self.pending.remove(&tid);
                self.dying.remove(&tid);
                if let Some(w) = &mut self.test_watch {
                    w.forget(tid);
                }
                if tid == self.main_pid {
                    self.main_exec_seen = true;
                }
                let _ = ptrace::cont(tid, 0);
            }
            Event::Exit if tid == self.main_pid && self.hold_main_at_exit => {
                // Held (not continued) until finish_and_release; the run ends here.
                let status = ptrace::event_msg(tid).map_or(Status::Exited(0), |m| Status::decode(m as i32));
                self.main_held = true;
                super::forward::set_target(0);
                // A fault it handled, then death by a fatal signal: as at its exit (on_exit).
                if let (Status::Killed(sig), Some(p)) = (status, self.pending.remove(&tid)) {
                    if is_fatal(sig) {
                        self.emitter.emit(capture::terminated_by(*p.crash, sig));
                    }
                }
                self.set_main_exit(status);
                self.main_exit.get_or_insert(Exit::Code(0));
            }
            // Group-stop: stay stopped (Ctrl-Z, SIGSTOP) until SIGCONT, but keep reporting.
            Event::Stop if is_stop_signal(sig) => {
                let _ = ptrace::listen(tid);
            }
            _ => {
                let _ = ptrace::cont(tid, 0);
            }
        }
    }

    fn on_fatal(&mut self, tid: i32, sig: i32) {
        // The one place the process must be known for sure (see the clone event): ask /proc.
        let tgid = live::tgid_of(tid).unwrap_or_else(|| self.tgid(tid));
        self.threads.insert(tid, tgid);
        if self.dying.contains(&tgid) {
            // A second thread faulted after the first one's report was made (it was stopped for
            // the capture before it reached its own fault): the process is already being torn
            // down by the first signal. One crash, one report.
            let _ = ptrace::cont(tid, sig);
            return;
        }
        // From here on the crashed thread (and every thread stopped for the report) is held by
        // the guard: whatever happens, each goes on as it would have, the signal delivered.
        let mut stopped = Stopped::new();
        stopped.push(tid, Resume::Cont(sig));
        let info = ptrace::siginfo(tid).unwrap_or(SignalInfo { signo: sig, ..Default::default() });
        let dies = !survives(tgid, tid, sig, info.code);
        let reuse = self
            .pending
            .get(&tgid)
            .is_some_and(|p| p.tid == tid && ((p.signo == sig && p.addr == info.addr) || !info.is_fault()));
        let pending = self.pending.remove(&tgid);
        let (crash, fault) = match pending {
            Some(p) if reuse => (capture::terminated_by(*p.crash, sig), p.first_fault),
            _ => {
                let fault = super::core_dump::Fault::at(tid, info);
                (self.capture(tgid, tid, info, CrashKind::Crash, &mut stopped), fault)
            }
        };
        if dies {
            // The report is on disk before the signal is delivered.
            self.emitter.emit(crash);
            self.dying.insert(tgid);
            if self.core_dump.is_some() {
                // A re-raise reused the first fault's report: the other threads run; stop them.
                self.stop_others(tgid, tid, &mut stopped);
                self.write_core(tgid, &fault, &stopped);
            }
        } else {
            self.pending
                .insert(tgid, Pending { tid, signo: sig, addr: info.addr, crash: Box::new(crash), first_fault: fault });
        }
        stopped.release(&mut self.deferred);
    }

    /// `--core`: the process is still stopped (every thread in `stopped`): write its core next
    /// to the report just emitted, the crashed thread at its first fault.
    fn write_core(&mut self, tgid: i32, fault: &super::core_dump::Fault, stopped: &Stopped) {
        let Some(limits) = self.core_dump else { return };
        let left = limits.total.saturating_sub(self.core_bytes);
        // A core of less than a MiB of contents holds no stack worth having.
        if left < 1 << 20 {
            self.emitter.note(&format!(
                "--core: no core written for pid {tgid}: this run's cores reached --core-max-total-mb ({} MB)",
                limits.total >> 20
            ));
            return;
        }
        let tids: Vec<i32> = stopped.tids().collect();
        let files = self.emitter.emitted().last().map(|e| e.files.clone()).unwrap_or_default();
        let name = super::core_dump::name_for(&files, tgid);
        let (result, path) = {
            let here;
            let dir = match self.emitter.dir() {
                Some(d) => d,
                None => match crate::door::OutDir::open(std::path::Path::new("."), false) {
                    Ok(d) => {
                        here = d;
                        &here
                    }
                    Err(e) => return console::say(&format!("--core: {e}")),
                },
            };
            (super::core_dump::write(dir, &name, tgid, fault, &tids, limits.per_core.min(left)), dir.path_of(&name))
        };
        match result {
            Ok(w) => {
                self.core_bytes += w.bytes;
                self.emitter.note(&format!("core file written: {} ({})", path.display(), w.summary()));
            }
            Err(e) => console::say(&format!("--core: {e}")),
        }
    }

    /// Stops every thread of process `tgid` that `stopped` does not hold yet, looking again
    /// until none is new; returns the threads that could not be stopped (with why) and those
    /// that had a fatal signal of their own pending.
    fn stop_others(
        &mut self,
        tgid: i32,
        _crashed: i32,
        stopped: &mut Stopped,
    ) -> (Vec<(i32, String)>, Vec<FaultingThread>) {
        let mut seen: HashSet<i32> = stopped.tids().collect();
        let mut notes: Vec<(i32, String)> = Vec::new();
        let mut also = Vec::new();
        // Threads can be created while we stop the others: look again until none is new.
        for _ in 0..16 {
            let new: Vec<i32> = live::thread_ids(tgid).into_iter().filter(|t| !seen.contains(t)).collect();
            if new.is_empty() {
                break;
            }
            let mut interrupted = Vec::new();
            for t in new {
                seen.insert(t);
                match ptrace::interrupt(t) {
                    Ok(()) => interrupted.push(t),
                    Err(e) => notes.push((t, format!("could not stop this thread ({e})"))),
                }
            }
            for t in interrupted {
                match wait::tid_within(t, Duration::from_secs(2)) {
                    None => notes.push((t, "did not stop within 2 s (uninterruptible sleep?)".into())),
                    Some(Status::Event(Event::Stop, s)) => {
                        stopped.push(t, if is_stop_signal(s) { Resume::Listen } else { Resume::Cont(0) });
                    }
                    Some(Status::Signal(s)) => {
                        if is_fatal(s) {
                            let fi = ptrace::siginfo(t).ok();
                            also.push(FaultingThread {
                                tid: t,
                                signal: signal_name(s),
                                fault_address: fi.and_then(|f| f.addr).map(Hex),
                            });
                        }
                        stopped.push(t, Resume::Cont(s));
                    }
                    // A clone/fork/exec event: registers are valid, the event is handled after.
                    Some(st @ Status::Event(..)) => stopped.push(t, Resume::Redispatch(st)),
                    Some(st) => {
                        notes.push((t, "exited while the process was being stopped".into()));
                        self.deferred.push_back((t, st));
                    }
                }
            }
        }
        (notes, also)
    }

    /// Stops every other thread of the process, reads all registers, and has the report built
    /// by a capture worker ([`worker`]) the supervisor never waits on past the report's budget.
    /// `tid` is the thread stopped at the fatal signal (already in `stopped`); 0 for a snapshot
    /// (dump, hang) where every thread is still running. A process that is not dying runs
    /// again as soon as its memory is read: `stopped` is released then.
    fn capture(&mut self, tgid: i32, tid: i32, info: SignalInfo, kind: CrashKind, stopped: &mut Stopped) -> Crash {
        if kind != CrashKind::Crash {
            // While it still runs: the file work of its report (bounded), so that the stop below
            // covers only reading its memory.
            capture::warm::warm(tgid, &self.capture_options);
        }
        let t0 = Instant::now();
        let (mut notes, also) = self.stop_others(tgid, tid, stopped);
        let mut tids: Vec<i32> = stopped.tids().chain(notes.iter().map(|(t, _)| *t)).collect();
        tids.sort_unstable();
        tids.dedup();
        let threads: Vec<ThreadInfo> = tids
            .iter()
            // Leave out threads that could not be stopped (they have a note), but never the crashed one.
            .filter(|&&t| stopped.holds(t) || t == tid)
            .map(|&t| {
                let (regs, note) = if stopped.holds(t) {
                    match ptrace::regs(t) {
                        Ok(r) => (Some(r), None),
                        Err(e) => (None, Some(format!("registers could not be read ({e})"))),
                    }
                } else {
                    (None, notes.iter().find(|(n, _)| *n == t).map(|(_, w)| w.clone()))
                };
                ThreadInfo { tid: t, name: live::thread_name(tgid, t), regs, note }
            })
            .collect();
        notes.sort_unstable();
        let event = Circumstances {
            kind,
            ancestry: Vec::new(),
            also_faulting: also,
            thread_notes: notes,
            capture_time: t0.elapsed(),
            test_timeout: None,
        };
        let job = worker::Job {
            pid: tgid,
            crashed_tid: tid,
            signal: info,
            threads,
            event,
            options: self.capture_options.clone(),
            command_pid: self.main_pid,
            started: t0,
        };
        let interrupted = || self.attached && super::forward::stop_requested();
        let mut running = worker::start(job);
        if kind != CrashKind::Crash {
            running.wait_read(&interrupted);
            stopped.release(&mut self.deferred);
            running.resumed();
        }
        running.finish(&interrupted)
    }

    /// Stops every traced process, reports each one's stacks (kind `dump` or `hang`), and lets
    /// them run on.
    pub fn snapshot_all(&mut self, kind: CrashKind) {
        let mut procs: Vec<i32> = self.threads.values().copied().collect::<HashSet<_>>().into_iter().collect();
        procs.sort_unstable();
        for tgid in procs {
            let mut stopped = Stopped::new();
            let crash = self.capture(tgid, 0, SignalInfo::default(), kind, &mut stopped);
            stopped.release(&mut self.deferred);
            self.emitter.emit(crash);
        }
    }

    fn on_hang(&mut self) {
        let n = self.threads.values().copied().collect::<HashSet<_>>().len();
        self.emitter
            .note(&format!("hang timeout: the command is still running; dumping the stacks of {n} traced process(es)"));
        self.snapshot_all(CrashKind::Hang);
        if self.hang_action == HangAction::Term {
            self.emitter.note(&format!("hang timeout: sending SIGTERM to pid {}", self.main_pid));
            // SAFETY: signalling our own child.
            unsafe { libc::kill(self.main_pid, libc::SIGTERM) };
        }
    }

    /// `--test-timeout`: takes the readings of every process's running test (made by the
    /// poller thread, never here); reports (kind `hang`) each process whose test ran too long,
    /// then kills, terminates or leaves it as configured.
    fn on_test_tick(&mut self) {
        let mut procs: Vec<i32> = self.threads.values().copied().collect::<HashSet<_>>().into_iter().collect();
        procs.retain(|p| !self.dying.contains(p));
        procs.sort_unstable();
        let Some(watch) = &mut self.test_watch else { return };
        let expired = watch.tick(&procs);
        for note in watch.take_notes() {
            self.emitter.note(&note);
        }
        for expired in expired {
            let pid = expired.pid;
            let mut stopped = Stopped::new();
            let mut crash = self.capture(pid, 0, SignalInfo::default(), CrashKind::Hang, &mut stopped);
            stopped.release(&mut self.deferred);
            let action = expired.timeout.action;
            crash.test_timeout = Some(expired.timeout);
            self.emitter.emit(crash);
            let sig = match action {
                TimeoutAction::Kill => libc::SIGKILL,
                TimeoutAction::Term => libc::SIGTERM,
                TimeoutAction::Dump => continue,
            };
            // SAFETY: signalling a process we trace.
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// Lets go of every remaining tracee (descendants that outlive the main command), so they
    /// go on running after crashcatch exits.
    pub fn release_all(&mut self) {
        let tids: Vec<i32> = self.threads.keys().copied().collect();
        if tids.is_empty() {
            return;
        }
        let mut waiting: HashSet<i32> = HashSet::new();
        for t in tids {
            if ptrace::interrupt(t).is_ok() {
                waiting.insert(t);
            }
        }
        let procs: HashSet<i32> = self.threads.values().copied().collect();
        let deadline = Instant::now() + Duration::from_secs(2);
        while !waiting.is_empty() && Instant::now() < deadline {
            let Some((r, status)) = wait::poll_any() else {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            };
            if !waiting.remove(&r) {
                continue;
            }
            match status {
                Status::Signal(sig) => {
                    let _ = ptrace::detach(r, sig);
                }
                Status::Event(..) => {
                    let _ = ptrace::detach(r, 0);
                }
                _ => {}
            }
        }
        if !procs.is_empty() && !self.attached {
            let mut list: Vec<i32> = procs.into_iter().collect();
            list.sort_unstable();
            self.emitter.note(&format!(
                "the command exited; {} descendant process(es) still running were left running untraced: {}",
                list.len(),
                list.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
}
