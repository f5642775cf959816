//! What can go wrong writing a report, with the path it concerns.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("could not write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{} exists", path.display())]
    Exists { path: PathBuf },
    #[error(transparent)]
    Dir(#[from] crate::door::OpenDirError),
    #[error("too many reports named {stem}-* in {}", dir.display())]
    TooManyNames { dir: PathBuf, stem: String },
}
