//! The JUnit file: each crash merged into pytest's testcase for its test (else into a
//! `crashcatch` suite) in the file pytest writes, rewritten after every crash and once more at
//! the end (pytest writes its own at its end). The existing file
//! is read back through the output door ([`super::door`]: no link, no FIFO, capped) and merged
//! as bytes ([`junit_merge`]); the result is written like the reports, with the existing
//! file's mode and owner. When
//! it cannot be merged (a symlink, FIFO or other non-file there, too large, not UTF-8, not
//! JUnit XML, unfinished), pytest's file is left alone and the suite goes to
//! `<stem>.crashcatch.xml` beside it, with one line on stderr saying so.

use std::path::{Path, PathBuf};

use super::{console, Emitted, Output, OutputError};
use crate::door::{Existing, FileMode, OutDir, Place};
use crate::report::model::Crash;
use crate::report::render::escape::terminal;
use crate::report::render::{junit, junit_merge};

pub struct JunitFile {
    path: PathBuf,
    /// The crashes so far, rendered once each.
    cases: Vec<junit::Case>,
    /// The file beside it, when this run wrote one.
    beside: Option<PathBuf>,
    /// Whether stderr was told why (once per run).
    told: bool,
}

/// The largest JUnit file merged into (pytest's file of a very large suite is a few MB).
pub const MAX_BYTES: u64 = 64 << 20;

/// `reports/junit.xml` → `reports/junit.crashcatch.xml`.
pub fn beside_path(path: &Path) -> PathBuf {
    path.with_extension("crashcatch.xml")
}

/// The file name of `path` (the folder is opened through the door each time it is written:
/// pytest may create it meanwhile).
fn name_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

impl JunitFile {
    pub fn new(path: PathBuf) -> Self {
        JunitFile { path, cases: Vec::new(), beside: None, told: false }
    }

    fn write(&mut self) -> Result<(), OutputError> {
        let (dir, name) = OutDir::for_file(&self.path, true)?;
        let beside = beside_path(&self.path);
        let beside_name = name_of(&beside);
        let why = match dir.read(&name, MAX_BYTES) {
            Ok(found) => {
                let (bytes, mode) = match &found {
                    Some(e) => (e.bytes.as_slice(), merged_mode(e)),
                    None => (&[][..], FileMode::PRIVATE),
                };
                match junit_merge::merge(bytes, &self.cases) {
                    Ok(doc) => {
                        dir.write(&name, doc.as_bytes(), mode, Place::Replace)
                            .map_err(|source| OutputError::Write { path: self.path.clone(), source })?;
                        if self.beside.take().is_some() {
                            // Merged after all (pytest has written its file): one place only.
                            let _ = dir.remove(&beside_name);
                        }
                        return Ok(());
                    }
                    Err(e) => e.to_string(),
                }
            }
            Err(e) => e.to_string(),
        };
        dir.write(&beside_name, junit_merge::alone_cases(&self.cases).as_bytes(), FileMode::PRIVATE, Place::Replace)
            .map_err(|source| OutputError::Write { path: beside.clone(), source })?;
        if !self.told {
            console::say(&format!(
                "{} was left as it is ({why}); the crashcatch JUnit suite is in {}",
                terminal::text(&self.path.display().to_string()),
                terminal::text(&beside.display().to_string())
            ));
            self.told = true;
        }
        self.beside = Some(beside);
        Ok(())
    }
}

/// The mode of a file merged into: the existing file's, and (when crashcatch runs as root)
/// its owner.
fn merged_mode(e: &Existing) -> FileMode {
    let root = rustix::process::geteuid().is_root();
    FileMode { bits: e.mode & 0o777, owner: root.then_some((e.uid, e.gid)) }
}

impl Output for JunitFile {
    fn report(&mut self, crash: &Crash) -> Result<(), OutputError> {
        if !crash.is_failure() {
            return Ok(());
        }
        self.cases.push(junit::case(crash));
        self.write()
    }

    fn finish(&mut self, _emitted: &[Emitted]) -> Result<(), OutputError> {
        if self.cases.is_empty() {
            return Ok(());
        }
        self.write()
    }
}
