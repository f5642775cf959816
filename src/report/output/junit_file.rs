//! The JUnit file: the `crashcatch` suite merged into the file pytest writes, rewritten after
//! every crash and once more at the end (pytest writes its own at its end).

use std::path::PathBuf;

use super::{Emitted, Output, OutputError};
use crate::report::model::Crash;
use crate::report::render::junit;

pub struct JunitFile {
    path: PathBuf,
    crashes: Vec<Crash>,
}

impl JunitFile {
    pub fn new(path: PathBuf) -> Self {
        JunitFile { path, crashes: Vec::new() }
    }

    fn write(&self) -> Result<(), OutputError> {
        let existing = std::fs::read_to_string(&self.path).unwrap_or_default();
        let out = junit::merge(&existing, &junit::suite(&self.crashes));
        let tmp = self.path.with_extension("xml.crashcatch-tmp");
        let err = |source| OutputError::Write { path: self.path.clone(), source };
        std::fs::write(&tmp, out).map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}

impl Output for JunitFile {
    fn report(&mut self, crash: &Crash) -> Result<(), OutputError> {
        if !crash.is_failure() {
            return Ok(());
        }
        self.crashes.push(crash.clone());
        self.write()
    }

    fn finish(&mut self, _emitted: &[Emitted]) -> Result<(), OutputError> {
        if self.crashes.is_empty() {
            return Ok(());
        }
        self.write()
    }
}
