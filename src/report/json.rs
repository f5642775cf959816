//! The JSON renderer: the model through serde. The schema is docs/report-schema.md.

use super::model::Crash;

pub fn render(crash: &Crash) -> String {
    let mut s = serde_json::to_string_pretty(crash).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
