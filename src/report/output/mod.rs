//! Where reports go: files in `--output-dir` first (so a report is on disk before the signal is
//! delivered), then each [`Output`] in turn: the report on stderr (stdout for `dump` and
//! `core`), GitHub annotations, the JUnit file, and at the end of the run the summary line.

pub mod console;
mod error;
pub mod files;
mod junit_file;
pub mod sentry;
mod step_summary;
mod stream;
mod summary;

use std::path::PathBuf;

pub use error::OutputError;
pub use junit_file::beside_path as junit_beside_path;
pub use summary::line as summary_line;

use super::model::{Crash, CrashKind};
use super::render::escape::terminal;
use super::render::{GithubAnnotation, Json, Style, Text};
use crate::contain::{self, Stage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Where the whole report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Print {
    /// Beside the traced command's own output (run, attach).
    Stderr,
    /// As the command's product (dump, core: `crashcatch dump PID > stacks.txt`).
    Stdout,
    /// Not at all (`dump -q`, `core -q`: the files in the report folder only).
    Nowhere,
}

#[derive(Debug, Clone)]
pub struct OutputConfig {
    pub dir: Option<PathBuf>,
    pub format: Format,
    pub print: Print,
    pub quiet: bool,
    /// Write (or merge) a JUnit XML file with a testcase per crash.
    pub junit: Option<PathBuf>,
    /// Print GitHub Actions `::error` annotations (GITHUB_ACTIONS=true), with paths relative to
    /// this workspace (GITHUB_WORKSPACE) when set.
    pub github: Option<GithubAnnotation>,
    /// Append a Markdown table of the run's crashes to this file at the end (GitHub's
    /// GITHUB_STEP_SUMMARY, with GITHUB_ACTIONS=true).
    pub step_summary: Option<PathBuf>,
    /// Send crash and hang reports to a Sentry-protocol tracker (`--sentry-dsn`).
    pub sentry: Option<sentry::SentryConfig>,
}

/// One destination of reports.
pub trait Output {
    /// A report was made; its files (if any) are already written and named in `crash.files`.
    fn report(&mut self, crash: &Crash) -> Result<(), OutputError>;
    /// The run is over; `emitted` lists every report made.
    fn finish(&mut self, _emitted: &[Emitted]) -> Result<(), OutputError> {
        Ok(())
    }
}

/// What was emitted for one report.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub pid: i32,
    pub kind: CrashKind,
    /// `SIGSEGV`
    pub signal: String,
    /// The pytest test that was running.
    pub test: Option<String>,
    /// The report files written.
    pub files: Vec<PathBuf>,
    /// A `--test-timeout` report.
    pub timed_out: bool,
}

impl Emitted {
    /// What is kept of `crash`, written to `files`.
    pub fn of(crash: &Crash, files: Vec<PathBuf>) -> Self {
        Emitted {
            pid: crash.process.pid,
            kind: crash.kind,
            signal: if crash.test_timeout.is_some() { "timeout".into() } else { crash.signal.name.clone() },
            test: crash.process.test.clone(),
            timed_out: crash.test_timeout.is_some(),
            files,
        }
    }
}

/// Writes reports (files first, then every output) and keeps count.
pub struct Emitter {
    /// `--output-dir`, opened at start; the error when it could not be.
    dir: Option<Result<crate::door::OutDir, String>>,
    quiet: bool,
    outputs: Vec<Box<dyn Output>>,
    emitted: Vec<Emitted>,
    /// What is wrong with the destinations, said at start and again at the end of the run.
    setup_problems: Vec<String>,
}

impl Emitter {
    /// The outputs of `cfg`. The report folder is opened (made) now and the JUnit file's
    /// folder looked at, so that a destination that cannot work is said at start, in one line
    /// each, rather than at the one crash that needed it; the command runs either way.
    pub fn new(cfg: OutputConfig) -> Self {
        let mut setup_problems = Vec::new();
        let dir = cfg.dir.as_ref().map(|d| {
            crate::door::OutDir::open(d, true).map_err(|e| {
                let why = format!("--output-dir: {e}; reports will not be written there");
                setup_problems.push(why.clone());
                why
            })
        });
        if let Some(j) = &cfg.junit {
            if let Err(e) = crate::door::OutDir::for_file(j, true) {
                setup_problems.push(format!("--junit-xml: {e}; no JUnit file will be written"));
            }
        }
        for p in &setup_problems {
            console::say(&terminal::text(p));
        }
        Self::with_outputs(cfg, dir, setup_problems)
    }

    fn with_outputs(
        cfg: OutputConfig,
        dir: Option<Result<crate::door::OutDir, String>>,
        setup_problems: Vec<String>,
    ) -> Self {
        let mut outputs: Vec<Box<dyn Output>> = Vec::new();
        let to = match cfg.print {
            Print::Stderr => Some(stream::Stream::Stderr),
            Print::Stdout => Some(stream::Stream::Stdout),
            Print::Nowhere => None,
        };
        if let Some(to) = to {
            outputs.push(match cfg.format {
                Format::Text => {
                    Box::new(stream::Printed::every(Text { style: Style::detect(console::is_terminal(to)) }, to))
                }
                Format::Json => Box::new(stream::Printed::every(Json, to)),
            });
        }
        if let Some(path) = cfg.step_summary {
            let workspace = cfg.github.as_ref().and_then(|g| g.workspace.clone());
            outputs.push(Box::new(step_summary::StepSummary::new(path, workspace)));
        }
        if let Some(g) = cfg.github {
            outputs.push(Box::new(stream::Printed::crashes(g)));
        }
        if let Some(path) = cfg.junit {
            outputs.push(Box::new(junit_file::JunitFile::new(path)));
        }
        if cfg.format == Format::Text {
            outputs.push(Box::new(summary::SummaryLine));
        }
        if let Some(s) = cfg.sentry {
            outputs.push(Box::new(sentry::Sentry::new(s)));
        }
        Emitter { dir, quiet: cfg.quiet, outputs, emitted: Vec::new(), setup_problems }
    }

    /// One more destination, after the configured ones (`dump --subprocesses --format json`
    /// keeps each report to print it inside its own line).
    pub fn add_output(&mut self, output: Box<dyn Output>) {
        self.outputs.push(output);
    }

    /// The report folder, when it is open.
    pub fn dir(&self) -> Option<&crate::door::OutDir> {
        self.dir.as_ref().and_then(|d| d.as_ref().ok())
    }

    /// Every report emitted so far.
    pub fn emitted(&self) -> &[Emitted] {
        &self.emitted
    }

    /// Writes one report everywhere. Each destination is written inside [`contain`]: should
    /// rendering or writing the report panic, that destination gets the report cut down to
    /// the process and the signal with the panic's message ([`Crash::cut_down`]), and the run
    /// goes on.
    pub fn emit(&mut self, mut crash: Crash) {
        let mut files = Vec::new();
        // A folder that could not be opened was said at start, and is again at the end of the
        // run: not once more per report.
        if let Some(Ok(dir)) = &self.dir {
            match contained(&mut crash, |c| files::write_report(c, dir)) {
                Some(Ok(f)) => files = f,
                Some(Err(e)) => console::say(&format!("could not write the report: {e}")),
                None => {}
            }
        }
        for o in &mut self.outputs {
            if let Some(Err(e)) = contained(&mut crash, |c| o.report(c)) {
                console::say(&e.to_string());
            }
        }
        self.emitted.push(Emitted::of(&crash, files));
    }

    /// The end of the run: each output's last word (the JUnit file once more, since pytest may
    /// have rewritten it; the summary line).
    pub fn finish(&mut self) {
        // The destinations that did not work, once more where the run's last lines are read.
        if !self.emitted.is_empty() || !self.quiet {
            for p in &self.setup_problems {
                console::say(&terminal::text(p));
            }
        }
        for o in &mut self.outputs {
            match contain::contain(|| o.finish(&self.emitted)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => console::say(&e.to_string()),
                Err(why) => console::say(&format!("could not finish an output: {why}")),
            }
        }
    }

    /// One line on stderr, unless quiet.
    pub fn note(&mut self, msg: &str) {
        if !self.quiet {
            console::say(msg);
        }
    }
}

/// Runs `write` on the report inside [`contain`]; after a panic, once more on the report cut
/// down to its first lines with the panic's message. `None` when that panicked too (one line
/// on stderr says so).
fn contained<T>(crash: &mut Crash, mut write: impl FnMut(&mut Crash) -> T) -> Option<T> {
    let why = match contain::contain(|| {
        contain::inject(Stage::Render);
        write(crash)
    }) {
        Ok(v) => return Some(v),
        Err(why) => why,
    };
    let mut small = crash.cut_down(&why);
    match contain::contain(|| write(&mut small)) {
        Ok(v) => {
            crash.files = small.files;
            Some(v)
        }
        Err(again) => {
            console::say(&format!("could not write a report for pid {}: {again}", crash.process.pid));
            None
        }
    }
}
