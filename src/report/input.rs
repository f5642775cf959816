//! Reading report files back (`crashcatch summarize`, `crashcatch upload`): the JSON reports of
//! other runs, often downloaded CI artifacts, so untrusted. Folders are walked to a bounded
//! depth without following symbolic links; each file is opened through the input door
//! (`process::files::open_regular`: regular files only, never blocking) and streamed, one at a
//! time, into a `ReportView` of the few fields grouping needs, every string cut as it is read
//! and everything else skipped without being kept. Memory stays bounded by the largest single
//! string of one file, whatever the number and size of the files. A file that is not a
//! crashcatch report is skipped with a line saying why rather than ending the run.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

use super::render::groups::{self, Entry, EntryKind};
use crate::process::files::open_regular;

/// Bytes read of one report (a report of 10,000 threads is a few MB).
pub(crate) const MAX_FILE_BYTES: u64 = 64 << 20;
/// Report files read in all.
pub(crate) const MAX_FILES: usize = 10_000;
/// Folder levels walked below each argument (artifact/job/reports/...).
pub(crate) const MAX_DEPTH: usize = 6;

/// The report files under `paths` (files, or folders walked), in path order, and a line for
/// each thing skipped or missing.
#[derive(Debug, Default)]
pub struct Found {
    /// The report files.
    pub files: Vec<PathBuf>,
    /// What was skipped, and why (one line each).
    pub skipped: Vec<String>,
    /// Arguments that could not be read at all.
    pub missing: Vec<String>,
}

/// Finds every `*.json` file in `paths`.
pub fn find_reports(paths: &[PathBuf]) -> Found {
    let mut found = Found::default();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, 0, &mut found.files, &mut found.skipped),
            Ok(m) if m.is_file() => found.files.push(p.clone()),
            Ok(_) => found.missing.push(format!("{}: not a file or folder", p.display())),
            Err(e) => found.missing.push(format!("{}: {e}", p.display())),
        }
    }
    found.files.sort();
    found.files.dedup();
    if found.files.len() > MAX_FILES {
        found
            .skipped
            .push(format!("{} report files past the first {MAX_FILES} were not read", found.files.len() - MAX_FILES));
        found.files.truncate(MAX_FILES);
    }
    found
}

fn walk(dir: &Path, depth: usize, files: &mut Vec<PathBuf>, skipped: &mut Vec<String>) {
    if depth > MAX_DEPTH {
        skipped.push(format!("{}: deeper than {MAX_DEPTH} folders, not read", dir.display()));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            skipped.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    for entry in entries.flatten() {
        if files.len() > MAX_FILES {
            return;
        }
        let path = entry.path();
        // file_type does not follow symbolic links: a link is neither walked nor read.
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, depth + 1, files, skipped),
            Ok(t) if t.is_file() && path.extension().is_some_and(|e| e == "json") => files.push(path),
            _ => {}
        }
    }
}

/// The largest report read whole (`upload`, which sends all of it): a report of 10,000 threads
/// is a few MB; what a hostile 16 MiB file can make of the model stays around 100 MB.
pub(crate) const MAX_WHOLE_BYTES: u64 = 16 << 20;

/// Reads one report file whole, through the door, for a tool that needs all of it (`upload`).
pub fn read_crash(path: &Path) -> Result<super::model::Crash, String> {
    let file = open_regular(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len > MAX_WHOLE_BYTES {
        return Err(format!("larger than {} MB, not read", MAX_WHOLE_BYTES >> 20));
    }
    let crash: super::model::Crash = serde_json::from_reader(BufReader::new(file.take(MAX_WHOLE_BYTES)))
        .map_err(|e| format!("not a crashcatch report ({})", first_words(&e.to_string())))?;
    if crash.tool.name != "crashcatch" {
        return Err("not a crashcatch report (tool.name)".into());
    }
    Ok(crash)
}

/// Reads one report file into its [`Entry`] (None for a `dump`, which is not grouped).
pub fn read_entry(path: &Path) -> Result<Option<Entry>, String> {
    let file = open_regular(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len > MAX_FILE_BYTES {
        return Err(format!("larger than {} MB, not read", MAX_FILE_BYTES >> 20));
    }
    let reader = BufReader::new(file.take(MAX_FILE_BYTES));
    let view: ReportView = serde_json::from_reader(reader)
        .map_err(|e| format!("not a crashcatch report ({})", first_words(&e.to_string())))?;
    if view.tool.name.0 != "crashcatch" {
        return Err("not a crashcatch report (tool.name)".into());
    }
    Ok(view.entry())
}

fn first_words(s: &str) -> String {
    s.chars().take(120).map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// A string of a report, cut to [`groups::MAX_STRING`] characters as it is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Capped(String);

impl<'de> Deserialize<'de> for Capped {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Capped;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Capped, E> {
                Ok(Capped(groups::capped(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The first element of a list; the others are skipped without being kept.
#[derive(Debug)]
struct First<T>(Option<T>);

impl<T> Default for First<T> {
    fn default() -> Self {
        First(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<First<T>, A::Error> {
                let first = seq.next_element::<T>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// The fields of a report that grouping needs; every other field is skipped.
#[derive(Debug, Deserialize)]
struct ReportView {
    tool: ToolView,
    #[serde(default)]
    kind: Option<Capped>,
    #[serde(default)]
    fingerprint: Option<Capped>,
    #[serde(default)]
    process: Option<ProcessFields>,
    #[serde(default)]
    signal: Option<SignalView>,
    #[serde(default)]
    culprit: Option<CulpritView>,
    #[serde(default)]
    python_call_site: Option<PythonView>,
    #[serde(default)]
    python_user_frame: Option<PythonView>,
    #[serde(default)]
    test_timeout: Option<TimeoutView>,
}

#[derive(Debug, Deserialize)]
struct ToolView {
    name: Capped,
}

#[derive(Debug, Deserialize)]
struct ProcessFields {
    #[serde(default)]
    test: Option<Capped>,
}

#[derive(Debug, Deserialize)]
struct SignalView {
    name: Capped,
}

#[derive(Debug, Deserialize)]
struct CulpritView {
    frame: FrameView,
    #[serde(default)]
    first_outside_system: Option<FrameView>,
}

#[derive(Debug, Deserialize)]
struct FrameView {
    #[serde(default)]
    function: Option<Capped>,
    #[serde(default)]
    module: Option<Capped>,
    #[serde(default)]
    inlined: First<InlinedView>,
    #[serde(default)]
    address: Option<Capped>,
}

#[derive(Debug, Deserialize)]
struct InlinedView {
    function: Capped,
}

#[derive(Debug, Deserialize)]
struct PythonView {
    file: Capped,
    function: Capped,
    #[serde(default)]
    line: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct TimeoutView {
    test: Capped,
}

impl FrameView {
    fn words(&self) -> String {
        let name =
            self.inlined.0.as_ref().map(|i| i.function.0.as_str()).or(self.function.as_ref().map(|f| f.0.as_str()));
        let address = self.address.as_ref().map(|a| a.0.as_str());
        groups::frame_words_of(name, self.module.as_ref().map(|m| m.0.as_str()), address)
    }
}

impl ReportView {
    fn entry(self) -> Option<Entry> {
        let kind = match (self.kind.as_ref().map(|k| k.0.as_str()), &self.test_timeout) {
            (None | Some("crash"), _) => EntryKind::Crash,
            (Some("hang"), Some(_)) => EntryKind::Timeout,
            (Some("hang"), None) => EntryKind::Hang,
            _ => return None,
        };
        let faulted = self.culprit.as_ref().map(|c| {
            let mut s = c.frame.words();
            if let Some(o) = &c.first_outside_system {
                s.push_str(&format!(", called from {}", o.words()));
            }
            groups::capped(&s)
        });
        let python = self.python_user_frame.or(self.python_call_site).map(|p| (p.file.0, p.line, p.function.0));
        let test = self.test_timeout.map(|t| t.test.0).or_else(|| self.process.and_then(|p| p.test).map(|t| t.0));
        let signal = match kind {
            EntryKind::Timeout => "timeout".to_string(),
            EntryKind::Hang => "hang".to_string(),
            EntryKind::Crash => self.signal.map(|s| s.name.0).unwrap_or_default(),
        };
        Some(Entry { kind, fingerprint: self.fingerprint.map(|f| f.0), signal, faulted, python, test })
    }
}
