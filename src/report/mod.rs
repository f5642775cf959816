//! The report: the typed model every stage fills or reads ([`model`]), the renderers that turn
//! it into text, JSON, JUnit or GitHub annotations ([`render`]), and the outputs that write it to
//! stderr, files and CI ([`output`]); and report files read back ([`input`]).

pub mod input;
pub mod model;
#[allow(missing_docs)] // Documented, and narrowed, with the output door's rework (issue 23, then issue 27).
pub mod output;
pub mod render;

pub use model::Crash;
