//! `crashcatch core FILE`: the report of a crash from its core file, post-mortem. The core is
//! read as a `CoreView` (a third kind of stopped process, next to a live one and a synthetic
//! image) and goes through the very capture a live crash goes through.

use std::path::PathBuf;

use crate::capture::{self, Circumstances};
use crate::process::core::{CoreOptions, CoreView};
use crate::report::model::CrashKind;
use crate::report::output::{Emitter, OutputConfig};

/// What `crashcatch core` does.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// The core file.
    pub core: PathBuf,
    /// How it is read (the executable, a sysroot).
    pub options: CoreOptions,
    /// Where the report goes.
    pub output: OutputConfig,
    /// How the report is made.
    pub capture: capture::Options,
}

/// Reads the core, writes the report; returns the exit status (0: a report was made, 1: the
/// core could not be read at all).
pub fn run(cfg: CoreConfig) -> i32 {
    let view = match CoreView::open(&cfg.core, cfg.options.clone()) {
        Ok(v) => v,
        Err(e) => {
            crate::report::output::console::say(&e.to_string());
            return 1;
        }
    };
    let snap = view.snapshot();
    let kind = if view.is_crash() { CrashKind::Crash } else { CrashKind::Dump };
    let mut crash = capture::capture(&snap, Circumstances { kind, ..Default::default() }, &cfg.capture);
    let mut notes = view.remarks();
    notes.append(&mut crash.notes);
    crash.notes = notes;
    let mut emitter = Emitter::new(cfg.output);
    emitter.emit(crash);
    emitter.finish();
    0
}
