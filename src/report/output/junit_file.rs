//! The JUnit file: the `crashcatch` suite merged into the file pytest writes, rewritten after
//! every crash and once more at the end (pytest writes its own at its end). The existing file
//! is read safely ([`super::existing`]) and merged as bytes ([`junit_merge`]); the result is
//! written like the reports ([`super::atomic`]), with the existing file's mode and owner. When
//! it cannot be merged (a symlink, FIFO or other non-file there, too large, not UTF-8, not
//! JUnit XML, unfinished), pytest's file is left alone and the suite goes to
//! `<stem>.crashcatch.xml` beside it, with one line on stderr saying so.

use std::path::{Path, PathBuf};

use super::atomic::{self, Mode, Place};
use super::existing;
use super::{console, Emitted, Output, OutputError};
use crate::report::model::Crash;
use crate::report::render::escape::terminal;
use crate::report::render::{junit, junit_merge};

pub struct JunitFile {
    path: PathBuf,
    /// The testcases so far, rendered once each.
    cases: Vec<String>,
    /// The file beside it, when this run wrote one.
    beside: Option<PathBuf>,
    /// Whether stderr was told why (once per run).
    told: bool,
}

/// `reports/junit.xml` → `reports/junit.crashcatch.xml`.
pub fn beside_path(path: &Path) -> PathBuf {
    path.with_extension("crashcatch.xml")
}

impl JunitFile {
    pub fn new(path: PathBuf) -> Self {
        JunitFile { path, cases: Vec::new(), beside: None, told: false }
    }

    fn write(&mut self) -> Result<(), OutputError> {
        let suite = junit::suite(&self.cases);
        let why = match existing::read(&self.path) {
            Ok(found) => {
                let (bytes, mode) = match &found {
                    Some(e) => (e.bytes.as_slice(), merged_mode(e)),
                    None => (&[][..], Mode::PRIVATE),
                };
                match junit_merge::merge(bytes, &suite) {
                    Ok(doc) => {
                        atomic::write_file(&self.path, doc.as_bytes(), mode, Place::Replace)
                            .map_err(|source| OutputError::Write { path: self.path.clone(), source })?;
                        if let Some(b) = self.beside.take() {
                            // Merged after all (pytest has written its file): one place only.
                            let _ = std::fs::remove_file(b);
                        }
                        return Ok(());
                    }
                    Err(e) => e.to_string(),
                }
            }
            Err(e) => e.to_string(),
        };
        let beside = beside_path(&self.path);
        atomic::write_file(&beside, junit_merge::alone(&suite).as_bytes(), Mode::PRIVATE, Place::Replace)
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
fn merged_mode(e: &existing::Existing) -> Mode {
    // SAFETY: geteuid(2) cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    Mode { bits: e.mode & 0o777, owner: root.then_some((e.uid, e.gid)) }
}

impl Output for JunitFile {
    fn report(&mut self, crash: &Crash) -> Result<(), OutputError> {
        if !crash.is_failure() {
            return Ok(());
        }
        self.cases.push(junit::testcase(crash));
        self.write()
    }

    fn finish(&mut self, _emitted: &[Emitted]) -> Result<(), OutputError> {
        if self.cases.is_empty() {
            return Ok(());
        }
        self.write()
    }
}
