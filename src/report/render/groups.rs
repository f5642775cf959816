//! Crashes and hangs grouped by fingerprint: one row per distinct crash (or test timeout) with
//! how often it happened, in which tests and which report files; the rows of the GitHub job
//! summary and of `crashcatch summarize`. Reports may come from other machines (downloaded CI
//! artifacts): every count and string is capped, and a report is taken in as an [`Entry`] of a
//! few capped strings, so that grouping keeps nothing of it but its row.

use std::path::Path;

use serde::Serialize;

use super::escape::terminal;
use crate::report::model::{project_path, Crash, CrashKind, NativeFrame};

/// What a row stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A fatal signal.
    #[default]
    Crash,
    /// A test that ran longer than `--test-timeout`.
    Timeout,
    /// The whole command ran longer than `--hang-timeout`.
    Hang,
}

/// What grouping takes of one report: a handful of capped strings.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// A crash or a timeout.
    pub kind: EntryKind,
    /// The report's fingerprint.
    pub fingerprint: Option<String>,
    /// The signal (`SIGSEGV`), or `timeout`.
    pub signal: String,
    /// The faulting function and library, and the first frame outside the system libraries.
    pub faulted: Option<String>,
    /// The user's Python frame, else the call site: file, line, function.
    pub python: Option<(String, Option<u32>, String)>,
    /// The pytest test (for a timeout, the test that ran too long).
    pub test: Option<String>,
}

impl Entry {
    /// The entry of a report made here; None for what is not grouped (a `dump`).
    pub fn of(c: &Crash) -> Option<Entry> {
        let kind = match (c.kind, &c.test_timeout) {
            (CrashKind::Crash, _) => EntryKind::Crash,
            (CrashKind::Hang, Some(_)) => EntryKind::Timeout,
            (CrashKind::Hang, None) => EntryKind::Hang,
            (CrashKind::Dump, _) => return None,
        };
        let faulted = c.culprit.as_ref().map(|cu| faulted_words(&cu.frame, cu.first_outside_system.as_ref()));
        let python = c
            .python_user_frame
            .as_ref()
            .or(c.python_call_site.as_ref())
            .map(|p| (p.file.clone(), p.line, p.function.clone()));
        let test = c.test_timeout.as_ref().map(|t| t.test.clone()).or_else(|| c.process.test.clone());
        Some(Entry {
            kind,
            fingerprint: c.fingerprint.clone(),
            signal: match kind {
                EntryKind::Crash => c.signal.name.clone(),
                EntryKind::Timeout => "timeout".into(),
                EntryKind::Hang => "hang".into(),
            },
            faulted,
            python,
            test,
        })
    }
}

/// `strlen in libc.so.6, called from parse in _ext.so`.
pub(crate) fn faulted_words(top: &NativeFrame, outside: Option<&NativeFrame>) -> String {
    let mut s = frame_words(top);
    if let Some(o) = outside {
        s.push_str(&format!(", called from {}", frame_words(o)));
    }
    capped(&s)
}

/// Distinct crashes kept; more are counted in [`Groups::dropped`].
pub(crate) const MAX_GROUPS: usize = 200;
/// Test ids and file names kept per group; more are counted.
pub(crate) const MAX_NAMES: usize = 30;
/// Characters kept of any string from a report.
pub(crate) const MAX_STRING: usize = 300;

/// One distinct crash (or timeout).
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// A crash or a timeout.
    pub kind: EntryKind,
    /// The reports' fingerprint (`-` for reports that have none).
    pub fingerprint: String,
    /// How many reports.
    pub count: usize,
    /// The signal (`SIGSEGV`).
    pub signal: String,
    /// The faulting function and library, and the first frame outside the system libraries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faulted: Option<String>,
    /// The Python call site of the first report: `tests/test_a.py:12 in helper`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    /// The pytest tests, without the phase: `tests/test_a.py::test_b`.
    pub tests: Vec<String>,
    /// Test ids beyond `MAX_NAMES`.
    #[serde(skip_serializing_if = "is_zero")]
    pub more_tests: usize,
    /// Report files, as the caller names them (file names in the job summary, paths as found
    /// by `crashcatch summarize`).
    pub files: Vec<String>,
    /// Report files beyond `MAX_NAMES`.
    #[serde(skip_serializing_if = "is_zero")]
    pub more_files: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Crashes and hangs added one by one, grouped by fingerprint in order of first appearance.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Groups {
    /// Crash reports added.
    pub crashes: usize,
    /// Test timeouts and hang reports added (dumps are left out).
    #[serde(skip_serializing_if = "is_zero")]
    pub hangs: usize,
    /// One per distinct crash, in order of first appearance.
    pub groups: Vec<Group>,
    /// Crashes whose group was past `MAX_GROUPS`.
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped: usize,
}

/// `s` cut to [`MAX_STRING`] characters.
pub(crate) fn capped(s: &str) -> String {
    match s.char_indices().nth(MAX_STRING) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn frame_words(f: &NativeFrame) -> String {
    let name = f.inlined.first().map(|i| i.function.as_str()).or(f.function.as_deref());
    frame_words_of(name, f.module.as_deref(), Some(&f.address.to_string()))
}

/// `name in module.so` (the module's file name), from a frame's parts; a pc in no module and
/// no function (a jump through a bad pointer) is its address, as the text report shows it.
pub(crate) fn frame_words_of(function: Option<&str>, module: Option<&str>, address: Option<&str>) -> String {
    let module = module.map(|m| m.rsplit('/').next().unwrap_or(m));
    match (function, module, address) {
        (Some(name), Some(m), _) => format!("{name} in {m}"),
        (None, Some(m), _) => format!("an unnamed function in {m}"),
        (Some(name), None, _) => name.to_string(),
        (None, None, Some(a)) => format!("{a} (in no known module)"),
        (None, None, None) => "an unnamed function in no known module".to_string(),
    }
}

impl Groups {
    /// Adds a report made here whose files are `files`; Python paths are shown relative to
    /// `root` (the checkout) when under it.
    pub fn add(&mut self, c: &Crash, files: &[String], root: Option<&Path>) {
        if let Some(e) = Entry::of(c) {
            self.add_entry(e, files, root);
        }
    }

    /// Adds one entry.
    pub fn add_entry(&mut self, e: Entry, files: &[String], root: Option<&Path>) {
        match e.kind {
            EntryKind::Crash => self.crashes += 1,
            EntryKind::Timeout | EntryKind::Hang => self.hangs += 1,
        }
        let fingerprint = capped(&match (&e.fingerprint, e.kind, &e.test) {
            (Some(f), _, _) => f.clone(),
            (None, EntryKind::Timeout, Some(t)) => format!("timeout {}", strip_phase(t)),
            (None, _, _) => "-".into(),
        });
        let index = match self.groups.iter().position(|g| g.fingerprint == fingerprint && g.kind == e.kind) {
            Some(i) => i,
            None if self.groups.len() >= MAX_GROUPS => {
                self.dropped += 1;
                return;
            }
            None => {
                self.groups.push(new_group(&e, fingerprint, root));
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[index];
        g.count += 1;
        if let Some(t) = &e.test {
            let t = capped(strip_phase(t));
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

    /// Nothing was added.
    pub fn is_empty(&self) -> bool {
        self.crashes == 0 && self.hangs == 0
    }

    /// How many distinct crashes.
    pub fn distinct(&self) -> usize {
        self.groups.len()
    }

    /// For people, on a terminal or in a CI log: a block per distinct crash, every string from
    /// a report escaped for the terminal (a field never begins a line with its own text).
    pub fn text(&self) -> String {
        let t = |s: &str| terminal::text(s).into_owned();
        let mut out = format!("crashcatch: {}\n", self.counts());
        for g in &self.groups {
            out.push_str(&format!("\n{}  {}x  {}", terminal::line_start(&g.fingerprint), g.count, t(&g.signal)));
            if let Some(f) = &g.faulted {
                out.push_str(&format!(" in {}", t(f)));
            }
            out.push('\n');
            let mut field = |k: &str, v: String| out.push_str(&format!("  {k:<8} {v}\n"));
            if let Some(p) = &g.python {
                field("python", t(p));
            }
            let more = |n: usize| if n > 0 { format!(" and {n} more") } else { String::new() };
            if !g.tests.is_empty() {
                field("tests", format!("{}{}", t(&g.tests.join(", ")), more(g.more_tests)));
            }
            if !g.files.is_empty() {
                field("reports", format!("{}{}", t(&g.files.join(", ")), more(g.more_files)));
            }
        }
        if self.dropped > 0 {
            out.push_str(&format!(
                "\n{} more reports (past {MAX_GROUPS} distinct ones) are not listed\n",
                self.dropped
            ));
        }
        out
    }

    /// `3 crashes, 2 distinct` (and `, 1 test timeout` when there were some).
    pub fn counts(&self) -> String {
        let n = self.crashes;
        let mut s = format!("{n} crash{}", if n == 1 { "" } else { "es" });
        if self.hangs > 0 {
            s.push_str(&format!(", {} hang{} or test timeout{}", self.hangs, plural(self.hangs), plural(self.hangs)));
        }
        s.push_str(&format!(", {} distinct", self.distinct()));
        s
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `t.py::test_x (call)` → `t.py::test_x`.
fn strip_phase(t: &str) -> &str {
    t.rsplit_once(" (").map_or(t, |x| x.0)
}

fn new_group(e: &Entry, fingerprint: String, root: Option<&Path>) -> Group {
    let python = e.python.as_ref().map(|(file, line, function)| {
        let file = if file.starts_with('/') && root.is_some() { project_path(file, root) } else { file.clone() };
        let line = line.map(|l| format!(":{l}")).unwrap_or_default();
        capped(&format!("{file}{line} in {function}"))
    });
    Group {
        kind: e.kind,
        fingerprint,
        count: 0,
        signal: capped(&e.signal),
        faulted: e.faulted.as_deref().map(capped),
        python,
        tests: Vec::new(),
        more_tests: 0,
        files: Vec::new(),
        more_files: 0,
    }
}
