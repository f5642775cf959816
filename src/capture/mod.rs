//! A stopped process in, a finished report out. The supervisor hands over the stopped process
//! (a [`Snapshot`]) and what only it knows ([`Circumstances`]: the kind of report, the ancestry,
//! other faulting threads, threads it could not stop, how long stopping took); capture runs
//! unwind, symbolize, python and merge, then the analysis, and returns an immutable [`Crash`].

pub mod analysis;
pub mod budget;
mod clock;
pub mod environment;
mod fallback;
mod stacks;
pub mod warm;
pub mod worker;

use std::time::{Duration, Instant};

use crate::modules::ModuleSet;
use crate::process::{signals, Snapshot};
use crate::python;
use crate::report::model::*;
use crate::unwind::UnwoundStack;

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
    pub debuginfod: Option<crate::modules::debuginfod::DebuginfodConfig>,
    /// How long a report may take (None: [`budget::REPORT_TIME`]).
    pub report_budget: Option<Duration>,
}

/// What the supervisor knows about the event that the process's memory does not tell.
#[derive(Debug, Clone, Default)]
pub struct Circumstances {
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

/// Builds the finished report for a stopped process: [`read_phase`], then [`analyze`], on the
/// calling thread (core files, tests). The supervisor runs the two on a worker it can abandon
/// ([`worker`]), and lets the process run again between them when it is not dying.
pub fn capture(snap: &Snapshot<'_>, event: Circumstances, opts: &Options) -> Crash {
    let t0 = Instant::now();
    let budget = budget::Budget::new(t0.checked_sub(event.capture_time).unwrap_or(t0), opts.budget());
    let modules = modules_of(snap, opts);
    let reading = read_phase(snap, &modules, opts, &budget);
    analyze(snap, &modules, reading, event, opts, budget)
}

/// The modules of the snapshot, with the user's debug folders.
pub fn modules_of(snap: &Snapshot<'_>, opts: &Options) -> ModuleSet {
    ModuleSet::from_snapshot(snap).with_debug_dirs(&opts.debug_dirs)
}

impl Options {
    /// The report's time budget.
    pub fn budget(&self) -> Duration {
        self.report_budget.unwrap_or(budget::REPORT_TIME)
    }
}

/// What the read phase took from the stopped process: everything the report needs of its
/// memory. Files (symbols, source lines) are the analysis's.
#[derive(Debug, Default)]
pub struct Reading {
    raw: Vec<Option<UnwoundStack>>,
    unwind_ms: f64,
    python: Option<PythonState>,
    python_ms: f64,
    environment: Vec<(String, String)>,
    facts: analysis::MemoryFacts,
    notes: Vec<String>,
    /// When the read phase ended (the process may run again from then on).
    pub read_ms: f64,
}

/// The part of a report that reads the process's memory: every thread's stack unwound, the
/// Python state, the live environment and the few bytes the classification needs. The process
/// must stay stopped until it returns; nothing after it reads the process.
pub fn read_phase(snap: &Snapshot<'_>, modules: &ModuleSet, opts: &Options, budget: &budget::Budget) -> Reading {
    let (raw, unwind_ms) = stacks::unwind_all(snap, modules, budget);
    let mut notes = Vec::new();
    let t_py = Instant::now();
    let python = if opts.no_python {
        None
    } else if budget.spent() {
        notes.push(budget.note("the Python stacks"));
        None
    } else {
        // A quarter of the budget is kept for naming the native frames.
        let po = python::ReadOptions { locals: opts.locals };
        python::read_with(snap, modules, Some(budget.at_fraction(3, 4)), po)
    };
    let python_ms = stacks::ms(t_py.elapsed());
    let environment = environment::live_environment(snap, modules);
    let facts = analysis::memory_facts(snap, modules);
    Reading { raw, unwind_ms, python, python_ms, environment, facts, notes, read_ms: budget.elapsed_ms() }
}

/// The rest of the report, from what the read phase took and the files the process names:
/// debug files fetched, frames symbolized, source lines read, stacks merged, the analysis.
pub fn analyze(
    snap: &Snapshot<'_>,
    modules: &ModuleSet,
    reading: Reading,
    event: Circumstances,
    opts: &Options,
    mut budget: budget::Budget,
) -> Crash {
    let t_analysis = Instant::now();
    let Reading { raw, unwind_ms, python: mut py, python_ms, environment: env, facts, notes: read_notes, .. } = reading;
    // Debug files of the frames' modules from debuginfod servers, when configured (bounded by
    // its own --debuginfod-timeout, which the user chose: not counted in the report's budget).
    let mut fetch_notes = Vec::new();
    if let Some(config) = &opts.debuginfod {
        let fetch_start = Instant::now();
        let pcs = raw.iter().flatten().flat_map(|s| s.frames.iter().map(|f| f.address.address()));
        crate::modules::debuginfod::fetch_missing(config, modules, pcs, &mut fetch_notes);
        budget.extend(fetch_start.elapsed());
    }
    let crashed_index = snap.threads.iter().position(|t| t.tid == snap.crashed_tid);
    let (natives, unnamed, symbolize_ms) = stacks::symbolize_all(&raw, crashed_index, modules, &budget);
    if unnamed > 0 {
        fetch_notes.push(budget.note(&format!("names and lines of {unnamed} native frame(s)")));
    }
    if let Some(p) = py.as_mut() {
        if !budget.spent() {
            python::add_source_lines(p, snap);
        }
    }
    let threads = stacks::threads(snap, &raw, natives, py.as_ref());

    let crashed = threads.iter().find(|t| t.crashed);
    let culprit = analysis::culprit(crashed);
    let python_call_site = analysis::python_call_site(crashed);
    let python_user_frame = analysis::python_user_frame(crashed, python_call_site.as_ref());
    let classification = analysis::classification(snap, &facts, crashed);

    let mut notes = fetch_notes;
    notes.extend(read_notes);
    notes.extend(py.iter().flat_map(|p| p.errors.iter().map(|e| format!("python: {e}"))));
    notes.extend(
        event
            .thread_notes
            .iter()
            .filter(|(tid, _)| !threads.iter().any(|t| t.tid == *tid))
            .map(|(tid, n)| format!("thread {tid}: {n}")),
    );

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
        modules: module_infos(modules),
        notes,
        timings: Timings::default(),
        files: Vec::new(),
    };
    crash.diagnosis = analysis::diagnose::diagnose(&crash);
    if crash.kind == CrashKind::Crash {
        let root = analysis::fingerprint::project_root(&crash, snap.working_dir().as_deref());
        crash.fingerprint = Some(analysis::fingerprint::fingerprint(&crash, root.as_deref()));
    }
    crash.timings = Timings {
        capture_ms: stacks::ms(event.capture_time),
        unwind_ms,
        symbolize_ms,
        python_ms,
        total_ms: budget.elapsed_ms().max(stacks::ms(t_analysis.elapsed())),
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
    signal_info_report(&snap.signal)
}

fn signal_info_report(s: &crate::process::SignalInfo) -> SignalReport {
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
