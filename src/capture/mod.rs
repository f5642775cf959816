//! A stopped process in, a finished report out. The supervisor hands over the stopped process
//! (a [`Snapshot`]) and what only it knows (an [`Event`]: the kind of report, the ancestry,
//! other faulting threads, threads it could not stop, how long stopping took); capture runs
//! unwind, symbolize, python and merge, then the analysis, and returns an immutable [`Crash`].

pub mod analysis;
pub mod budget;
mod clock;
pub mod environment;
mod fallback;
mod stacks;

use std::time::{Duration, Instant};

use crate::modules::ModuleSet;
use crate::process::{signals, Snapshot};
use crate::python;
use crate::report::model::*;

pub use fallback::fallback;

/// Settings that shape a report.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Skip the Python stage (tests, or when the user asks).
    pub no_python: bool,
    /// Every Python frame's arguments and locals (`--locals`).
    pub locals: bool,
    /// Put the whole environment in the report (default: only an allow-list of names).
    pub show_env: bool,
    /// Extra folders searched for separate debug files (`--debug-dir`), before /usr/lib/debug.
    pub debug_dirs: Vec<std::path::PathBuf>,
    /// Where missing debug files are fetched from (DEBUGINFOD_URLS), when enabled.
    pub debuginfod: Option<crate::modules::debuginfod::Config>,
    /// How long a report may take (None: [`budget::REPORT_TIME`]).
    pub report_budget: Option<Duration>,
}

/// What the supervisor knows about the event that the process's memory does not tell.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub kind: CrashKind,
    /// Parents of the process up to the traced command, nearest first.
    pub ancestry: Vec<Ancestor>,
    /// Other threads stopped with a fatal signal of their own at the same time.
    pub also_faulting: Vec<FaultingThread>,
    /// Threads that could not be stopped or read, and why.
    pub thread_notes: Vec<(i32, String)>,
    /// How long the supervisor took to stop the threads and read their registers.
    pub capture_time: Duration,
    /// A per-test timeout made this report (`--test-timeout`).
    pub test_timeout: Option<TestTimeout>,
}

/// Builds the finished report for a stopped process.
pub fn capture(snap: &Snapshot<'_>, event: Event, opts: &Options) -> Crash {
    let t0 = Instant::now();
    let modules = ModuleSet::from_snapshot(snap).with_debug_dirs(&opts.debug_dirs);

    let (raw, unwind_ms) = stacks::unwind_all(snap, &modules);
    // Debug files of the frames' modules from debuginfod servers, when configured (bounded).
    let mut fetch_notes = Vec::new();
    let fetch_start = Instant::now();
    if let Some(config) = &opts.debuginfod {
        let pcs = raw.iter().flatten().flat_map(|s| s.frames.iter().map(|f| f.pc));
        crate::modules::debuginfod::fetch_missing(config, &modules, pcs, &mut fetch_notes);
    }
    // The report's own budget counts from the fatal signal, less the fetch (it has its own,
    // --debuginfod-timeout, which the user chose).
    let started = t0.checked_sub(event.capture_time).unwrap_or(t0) + fetch_start.elapsed();
    let budget = budget::Budget::new(started, opts.report_budget.unwrap_or(budget::REPORT_TIME));
    let crashed_index = snap.threads.iter().position(|t| t.tid == snap.crashed_tid);
    let (natives, unnamed, symbolize_ms) = stacks::symbolize_all(&raw, crashed_index, &modules, &budget);
    if unnamed > 0 {
        fetch_notes.push(budget.note(&format!("names and lines of {unnamed} native frame(s)")));
    }
    let t_py = Instant::now();
    let py = if opts.no_python {
        None
    } else if budget.spent() {
        fetch_notes.push(budget.note("the Python stacks"));
        None
    } else {
        python::inspect_with(snap, &modules, Some(budget.deadline()), python::Options { locals: opts.locals })
    };
    let python_ms = stacks::ms(t_py.elapsed());
    let threads = stacks::threads(snap, &raw, natives, py.as_ref());

    let crashed = threads.iter().find(|t| t.crashed);
    let culprit = analysis::culprit(crashed);
    let python_call_site = analysis::python_call_site(crashed);
    let python_user_frame = analysis::python_user_frame(crashed, python_call_site.as_ref());
    let classification = analysis::classification(snap, &modules, crashed);

    let mut notes = fetch_notes;
    notes.extend(py.iter().flat_map(|p| p.errors.iter().map(|e| format!("python: {e}"))));
    notes.extend(
        event
            .thread_notes
            .iter()
            .filter(|(tid, _)| !threads.iter().any(|t| t.tid == *tid))
            .map(|(tid, n)| format!("thread {tid}: {n}")),
    );

    let env = environment::live_environment(snap, &modules);
    let test = env.iter().find(|(k, _)| k == "PYTEST_CURRENT_TEST").map(|(_, v)| v.clone());
    let mut crash = Crash {
        schema_version: SCHEMA_VERSION,
        kind: event.kind,
        fingerprint: None,
        tool: Tool::default(),
        time: clock::now_rfc3339(),
        process: ProcessInfo {
            pid: snap.pid,
            exe: snap.exe.clone(),
            cmdline: snap.cmdline.clone(),
            test,
            ancestry: event.ancestry,
            environment: environment::shown(env, opts.show_env),
        },
        signal: signal_report(snap),
        classification,
        culprit,
        python_user_frame,
        python_call_site,
        diagnosis: None,
        crashed_tid: snap.crashed_tid,
        test_timeout: event.test_timeout,
        also_faulting: event.also_faulting,
        threads,
        python: py,
        modules: module_infos(&modules),
        notes,
        timings: Timings::default(),
        files: Vec::new(),
    };
    crash.diagnosis = analysis::diagnose::diagnose(&crash);
    if crash.kind == CrashKind::Crash {
        crash.fingerprint = Some(analysis::fingerprint::fingerprint(&crash, snap.cwd().as_deref()));
    }
    crash.timings = Timings {
        capture_ms: stacks::ms(event.capture_time),
        unwind_ms,
        symbolize_ms,
        python_ms,
        total_ms: stacks::ms(event.capture_time + t0.elapsed()),
    };
    crash
}

/// A report made at a fault the program handled, for a process that then died of `signal`:
/// when that is another signal, the report says so.
pub fn terminated_by(mut crash: Crash, signal: i32) -> Crash {
    if signal != crash.signal.number {
        crash.signal.terminated_by = Some(signals::signal_name(signal));
    }
    crash
}

fn signal_report(snap: &Snapshot<'_>) -> SignalReport {
    let s = &snap.signal;
    let (code_name, description) = signals::code_name(s.signo, s.code);
    SignalReport {
        number: s.signo,
        name: signals::signal_name(s.signo),
        code: s.code,
        code_name: code_name.map(str::to_string),
        description: description.to_string(),
        fault_address: s.addr.map(Hex),
        sender_pid: s.sender_pid,
        terminated_by: None,
    }
}

fn module_infos(modules: &ModuleSet) -> Vec<ModuleInfo> {
    modules
        .iter()
        .map(|m| ModuleInfo {
            path: m.path.clone(),
            base: Hex(m.start),
            end: Hex(m.end),
            build_id: m.build_id_hex(),
            debug_file: m
                .elf()
                .ok()
                .and_then(|e| e.loaded_debug_file())
                .and_then(|d| d.path.as_ref())
                .map(|p| p.display().to_string()),
        })
        .collect()
}
