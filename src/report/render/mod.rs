//! Renderers: a finished report in, text out. One small trait; text and JSON render whole
//! reports, GitHub a workflow command, JUnit a testcase (see [`junit`] for the suite).

pub mod escape;
pub mod github;
pub mod groups;
pub mod json;
pub mod junit;
pub mod junit_merge;
pub mod markdown;
pub mod sentry;
pub mod summary;
pub mod text;

use super::model::Crash;

/// Turns one report into the text of one medium.
pub trait Render {
    fn render(&self, crash: &Crash) -> String;
}

pub use github::GithubAnnotation;
pub use json::Json;
pub use text::{Style, Text};
