//! The GitHub job summary: with GITHUB_ACTIONS=true and GITHUB_STEP_SUMMARY set, a Markdown
//! section appended at the end of the run, one table row per distinct crash (fingerprint).
//! The file is the runner's: opened for appending only (never truncated, never created
//! through a symbolic link), written once, and not at all when nothing crashed.

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
        if crash.kind != CrashKind::Dump {
            let names: Vec<String> =
                crash.files.iter().map(|f| f.rsplit('/').next().unwrap_or(f).to_string()).collect();
            self.groups.add(crash, &names, self.workspace.as_deref());
        }
        Ok(())
    }

    fn finish(&mut self, _emitted: &[Emitted]) -> Result<(), OutputError> {
        if self.groups.is_empty() {
            return Ok(());
        }
        let text = markdown::section("crashcatch", &self.groups);
        let err = |source| OutputError::Write { path: self.path.clone(), source };
        // Through the output door: appended only (never truncated), never through a link, and
        // a FIFO or anything but a regular file in its place fails at once, never blocks.
        let (dir, name) = crate::door::OutDir::for_file(&self.path, false)?;
        // A summary that does not start on a line of its own would join the previous paragraph.
        dir.append(&name, format!("\n{text}").as_bytes()).map_err(err)
    }
}
