//! crashcatch: catch native crashes of Python processes under ptrace and explain them.
//!
//! The pipeline, one module per stage:
//! [`supervise`] (the only user of ptrace) stops a process at a fatal signal and fills a
//! [`process::Snapshot`]; [`capture`] runs [`unwind`], [`symbolize`], [`python`] and [`merge`]
//! over it and returns a [`report::model::Crash`], which [`report`] renders as text or JSON.

pub mod capture;
pub mod merge;
pub mod modules;
pub mod process;
pub mod python;
pub mod report;
pub mod supervise;
pub mod symbolize;
pub mod unwind;
