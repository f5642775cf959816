//! Crashes grouped by fingerprint: one row per distinct crash with how often it happened,
//! in which tests and which report files; the rows of the GitHub job summary and of
//! `crashcatch summarize`. Reports may come from other machines (downloaded CI artifacts):
//! every count and string is capped.

use std::path::Path;

use serde::Serialize;

use super::escape::terminal;
use crate::report::model::{project_path, Crash, CrashKind, NativeFrame};

/// Distinct crashes kept; more are counted in [`Groups::dropped`].
pub const MAX_GROUPS: usize = 200;
/// Test ids and file names kept per group; more are counted.
pub const MAX_NAMES: usize = 30;
/// Characters kept of any string from a report.
pub const MAX_STRING: usize = 300;

/// One distinct crash.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The reports' fingerprint (`-` for reports that have none).
    pub fingerprint: String,
    pub count: usize,
    pub signal: String,
    /// The faulting function and library, and the first frame outside the system libraries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faulted: Option<String>,
    /// The Python call site of the first report: `tests/test_a.py:12 in helper`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    /// The pytest tests, without the phase: `tests/test_a.py::test_b`.
    pub tests: Vec<String>,
    /// Test ids beyond [`MAX_NAMES`].
    #[serde(skip_serializing_if = "is_zero")]
    pub more_tests: usize,
    /// Report files, as the caller names them (file names in the job summary, paths as found
    /// by `crashcatch summarize`).
    pub files: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub more_files: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Crashes added one by one, grouped by fingerprint in order of first appearance.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Groups {
    /// Crash reports added (dumps and hang reports are not crashes and are left out).
    pub crashes: usize,
    pub groups: Vec<Group>,
    /// Crashes whose group was past [`MAX_GROUPS`].
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped: usize,
}

/// `s` cut to [`MAX_STRING`] characters.
pub fn capped(s: &str) -> String {
    match s.char_indices().nth(MAX_STRING) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn frame_words(f: &NativeFrame) -> String {
    let name =
        f.inlined.first().map(|i| i.function.as_str()).or(f.function.as_deref()).unwrap_or("an unnamed function");
    match f.module_name() {
        Some(m) => format!("{name} in {m}"),
        None => name.to_string(),
    }
}

impl Groups {
    /// Adds a report whose files are `files`; Python paths are shown relative to `root` (the
    /// checkout) when under it.
    pub fn add(&mut self, c: &Crash, files: &[String], root: Option<&Path>) {
        if c.kind != CrashKind::Crash {
            return;
        }
        self.crashes += 1;
        let fingerprint = capped(c.fingerprint.as_deref().unwrap_or("-"));
        let index = match self.groups.iter().position(|g| g.fingerprint == fingerprint) {
            Some(i) => i,
            None if self.groups.len() >= MAX_GROUPS => {
                self.dropped += 1;
                return;
            }
            None => {
                self.groups.push(new_group(c, fingerprint, root));
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[index];
        g.count += 1;
        if let Some(t) = &c.process.test {
            let t = capped(t.rsplit_once(" (").map_or(t.as_str(), |x| x.0));
            if !g.tests.contains(&t) {
                if g.tests.len() < MAX_NAMES {
                    g.tests.push(t);
                } else {
                    g.more_tests += 1;
                }
            }
        }
        for f in files {
            let name = capped(f);
            if g.files.len() < MAX_NAMES {
                g.files.push(name);
            } else {
                g.more_files += 1;
            }
        }
    }

    pub fn distinct(&self) -> usize {
        self.groups.len()
    }

    /// For people, on a terminal: a block per distinct crash, every string from a report
    /// escaped for the terminal (the fingerprint, which begins a line, as a line start).
    pub fn text(&self) -> String {
        let clean = |s: &str| terminal::text(s).into_owned();
        let n = self.crashes;
        let mut out =
            format!("crashcatch: {n} crash{}, {} distinct\n", if n == 1 { "" } else { "es" }, self.distinct());
        for g in &self.groups {
            out.push_str(&format!("\n{}  {}x  {}", terminal::line_start(&g.fingerprint), g.count, clean(&g.signal)));
            if let Some(f) = &g.faulted {
                out.push_str(&format!(" in {}", clean(f)));
            }
            out.push('\n');
            let mut field = |k: &str, v: String| out.push_str(&format!("  {k:<8} {v}\n"));
            if let Some(p) = &g.python {
                field("python", clean(p));
            }
            let more = |n: usize| if n > 0 { format!(" and {n} more") } else { String::new() };
            if !g.tests.is_empty() {
                field("tests", format!("{}{}", clean(&g.tests.join(", ")), more(g.more_tests)));
            }
            if !g.files.is_empty() {
                field("reports", format!("{}{}", clean(&g.files.join(", ")), more(g.more_files)));
            }
        }
        if self.dropped > 0 {
            out.push_str(&format!(
                "\n{} more crashes (past {MAX_GROUPS} distinct ones) are not listed\n",
                self.dropped
            ));
        }
        out
    }
}

fn new_group(c: &Crash, fingerprint: String, root: Option<&Path>) -> Group {
    let faulted = c.culprit.as_ref().map(|cu| {
        let mut s = frame_words(&cu.frame);
        if let Some(o) = &cu.first_outside_system {
            s.push_str(&format!(", called from {}", frame_words(o)));
        }
        capped(&s)
    });
    let python = c.python_user_frame.as_ref().or(c.python_call_site.as_ref()).map(|p| {
        let file = if p.file.starts_with('/') && root.is_some() { project_path(&p.file, root) } else { p.file.clone() };
        let line = p.line.map(|l| format!(":{l}")).unwrap_or_default();
        capped(&format!("{file}{line} in {}", p.function))
    });
    Group {
        fingerprint,
        count: 0,
        signal: capped(&c.signal.name),
        faulted,
        python,
        tests: Vec::new(),
        more_tests: 0,
        files: Vec::new(),
        more_files: 0,
    }
}
