//! Where a stopped process's files, working folder and starting environment are read from.
//!
//! Three implementations, and nothing above `process/` knows which one it reads: a live process
//! stopped under ptrace ([`super::live::LiveView`], through /proc), a core file
//! (`super::core::CoreView`, its notes, its memory and the files it names, under a sysroot),
//! and a synthetic image for tests (`SyntheticView`). The memory itself is the other half of
//! a [`super::Snapshot`]: a [`super::Memory`] of the same three kinds.

use std::path::{Path, PathBuf};

use super::Mapping;

/// The files and start-up facts of a stopped process, as seen from here.
pub trait ProcessView {
    /// The path under which the process's file `path` can be opened from here (the process's
    /// root for a live one, the sysroot for a core), or `path` itself.
    fn host_path(&self, path: &str) -> PathBuf;
    /// The very file the process mapped at `mapping`, when the view can reach it even after
    /// the file at its path was replaced (/proc/PID/map_files). None otherwise.
    fn mapped_file(&self, mapping: &Mapping) -> Option<PathBuf>;
    /// Where relative paths the process names are resolved, as seen from here, when known.
    fn cwd(&self) -> Option<PathBuf>;
    /// The process's working folder as the process itself names it (`/ws/proj`, inside its
    /// own root), when known: the Python file names it reports are relative to it.
    fn working_dir(&self) -> Option<String>;
    /// The environment the process started with, `NAME=value` each (the live environment is
    /// read from memory; this is the fallback).
    fn initial_environment(&self) -> Vec<String>;
    /// The auxiliary vector (`AT_*` type, value pairs), empty when unknown.
    fn auxv(&self) -> Vec<(u64, u64)>;
}

/// `root/path` when that exists, else `path` as given.
pub(crate) fn under_root(root: Option<&Path>, path: &str) -> PathBuf {
    if let Some(root) = root {
        let p = root.join(path.trim_start_matches('/'));
        if super::blocking::exists(&p) {
            return p;
        }
    }
    PathBuf::from(path)
}

/// A view with no process behind it: tests and fuzzers over an [`super::ImageMemory`].
#[cfg(any(test, feature = "synthetic"))]
#[derive(Debug, Clone, Default)]
pub struct SyntheticView {
    /// Files are looked up under this folder first.
    pub root: Option<PathBuf>,
    /// The working folder.
    pub cwd: Option<PathBuf>,
    /// The starting environment (`NAME=value`).
    pub environment: Vec<String>,
}

/// A synthetic view with no files, folder or environment.
#[cfg(any(test, feature = "synthetic"))]
pub static DETACHED: SyntheticView = SyntheticView { root: None, cwd: None, environment: Vec::new() };

#[cfg(any(test, feature = "synthetic"))]
impl ProcessView for SyntheticView {
    fn host_path(&self, path: &str) -> PathBuf {
        under_root(self.root.as_deref(), path)
    }
    fn mapped_file(&self, _mapping: &Mapping) -> Option<PathBuf> {
        None
    }
    fn cwd(&self) -> Option<PathBuf> {
        self.cwd.clone()
    }
    fn working_dir(&self) -> Option<String> {
        self.cwd.as_ref().and_then(|c| c.to_str()).map(str::to_string)
    }
    fn initial_environment(&self) -> Vec<String> {
        self.environment.clone()
    }
    fn auxv(&self) -> Vec<(u64, u64)> {
        Vec::new()
    }
}
