//! The JSON renderer: the model through serde (with what a terminal would act on escaped too,
//! see [`super::escape::json`]). The schema is docs/report-schema.md.

use super::Render;
use crate::report::model::Crash;

/// The JSON report, for machines.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Render for Json {
    fn render(&self, crash: &Crash) -> String {
        let mut s = serde_json::to_string_pretty(crash)
            .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string());
        s.push('\n');
        super::escape::json::harden(s)
    }
}
