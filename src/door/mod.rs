//! The door out: every file crashcatch writes goes through [`output::OutDir`] (reports, cores,
//! the JUnit file, the job summary, the debuginfod cache, their temporary files). It sits below
//! every stage, so that none has a reason to write a file on its own; clippy.toml forbids the
//! other ways. Files are opened for input through the other door, `process::files` (with the
//! rights of the process that named them: `process::TargetFiles`).

pub mod output;

pub use output::{Existing, FileMode, OpenDirError, OutDir, Place, ReadBackError};
