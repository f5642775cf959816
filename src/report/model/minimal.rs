//! The smallest report: what a crash is before any stack is read (process, signal, time) and a
//! note. Made when crashcatch failed while building or writing the full report, so that a
//! crash still leaves a report that says what happened.

use super::{Crash, CrashKind, ProcessInfo, SignalReport, Timings, Tool, SCHEMA_VERSION};

/// The note that says why a report holds so little.
pub fn failure_note(why: &str) -> String {
    format!("crashcatch failed while making this report: {why}")
}

impl Crash {
    /// A report of the process and the signal only, with `note` (see [`failure_note`]).
    pub fn minimal(
        kind: CrashKind,
        time: String,
        process: ProcessInfo,
        signal: SignalReport,
        crashed_tid: i32,
        note: String,
    ) -> Crash {
        Crash {
            schema_version: SCHEMA_VERSION,
            kind,
            tool: Tool::default(),
            time,
            process,
            signal,
            classification: None,
            culprit: None,
            python_call_site: None,
            python_user_frame: None,
            diagnosis: None,
            fingerprint: None,
            crashed_tid,
            test_timeout: None,
            also_faulting: Vec::new(),
            threads: Vec::new(),
            python: None,
            modules: Vec::new(),
            notes: vec![note],
            timings: Timings::default(),
            files: Vec::new(),
        }
    }

    /// This report cut down to [`Crash::minimal`] (files already written stay named), for when
    /// rendering the whole of it failed.
    pub fn cut_down(&self, why: &str) -> Crash {
        let mut c = Crash::minimal(
            self.kind,
            self.time.clone(),
            self.process.clone(),
            self.signal.clone(),
            self.crashed_tid,
            failure_note(why),
        );
        c.files = self.files.clone();
        c.test_timeout = self.test_timeout.clone();
        c
    }
}
