//! The report: a typed model, rendered as text for people and JSON for machines, and written
//! to files safely.

pub mod ci;
pub mod classify;
pub mod diagnose;
pub mod json;
pub mod model;
pub mod signals;
pub mod text;
pub mod write;

pub use model::Crash;
