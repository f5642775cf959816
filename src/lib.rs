//! crashcatch: catch native crashes of Python processes under ptrace and explain them.
//!
//! The pipeline, one module per stage:
//! [`supervise`] (the only user of ptrace, waitpid, kill and fork) stops a process at a fatal
//! signal and fills a [`process::Snapshot`]; [`capture`] runs [`unwind`], [`symbolize`],
//! [`python`] and [`merge`] over it, then its analysis, and returns a finished, immutable
//! [`report::model::Crash`]; [`report`] renders it (text, JSON, JUnit, GitHub) and writes it.
//! [`postmortem`] does what [`supervise`] does from a core file instead of a live process.
//! Each module depends only on those below it; [`report::model`] imports nothing but the two
//! closed sets the unwinder makes and the report names (`Trust`, `UnwindErrorKind`), and
//! [`unwind`] imports nothing of the report.
//!
//! Files are opened and written, and bytes printed, only through the doors (clippy.toml):
//! test code is free of that rule.
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_macros))]

pub mod arch;
pub mod capture;
pub mod door;
pub mod merge;
pub mod modules;
pub mod net;
pub mod postmortem;
pub mod process;
pub mod python;
pub mod report;
pub mod supervise;
pub mod symbolize;
pub mod unwind;
