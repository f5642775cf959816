//! The GitHub job summary: with GITHUB_ACTIONS=true and GITHUB_STEP_SUMMARY set, a Markdown
//! section appended at the end of the run, one table row per distinct crash (fingerprint).
//! The file is the runner's: opened for appending only (never truncated, never created
//! through a symbolic link), written once, and not at all when nothing crashed.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::{Emitted, Output, OutputError};
use crate::report::model::{Crash, CrashKind};
use crate::report::render::groups::Groups;
use crate::report::render::markdown;

pub struct StepSummary {
    path: PathBuf,
    /// GITHUB_WORKSPACE: Python paths are shown relative to it.
    workspace: Option<PathBuf>,
    groups: Groups,
}

impl StepSummary {
    pub fn new(path: PathBuf, workspace: Option<PathBuf>) -> Self {
        StepSummary { path, workspace, groups: Groups::default() }
    }
}

impl Output for StepSummary {
    fn report(&mut self, crash: &Crash) -> Result<(), OutputError> {
        if crash.kind == CrashKind::Crash {
            let names: Vec<String> =
                crash.files.iter().map(|f| f.rsplit('/').next().unwrap_or(f).to_string()).collect();
            self.groups.add(crash, &names, self.workspace.as_deref());
        }
        Ok(())
    }

    fn finish(&mut self, _emitted: &[Emitted]) -> Result<(), OutputError> {
        if self.groups.crashes == 0 {
            return Ok(());
        }
        let text = markdown::section("crashcatch", &self.groups);
        let err = |source| OutputError::Write { path: self.path.clone(), source };
        // O_NONBLOCK: a FIFO put in the file's place (by a test, say) fails at once rather
        // than blocking the end of the run; only a regular file is written to.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&self.path)
            .map_err(err)?;
        if !f.metadata().map_err(err)?.file_type().is_file() {
            return Err(err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file")));
        }
        // A summary that does not start on a line of its own would join the previous paragraph.
        f.write_all(format!("\n{text}").as_bytes()).map_err(err)
    }
}
