//! Markdown for crashes grouped by fingerprint: the GitHub job summary's section and
//! `crashcatch summarize --format markdown`. Every string from a report is escaped for a
//! Markdown table cell: no `|`, newline, backtick, HTML tag or link can leave its cell.

use std::fmt::Write as _;

use super::escape::{is_hostile, shown};
use super::groups::{EntryKind, Groups};

/// `s` as the text of one table cell: every ASCII punctuation character backslash-escaped
/// (CommonMark lets any be; `\|` is GitHub's escape for a pipe in a table), control
/// characters, line separators and bidirectional overrides shown as text (`\u{202e}`), so
/// nothing can leave its cell or reorder what the reader sees.
pub(crate) fn escape_cell(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    let push = |c: char, o: &mut String| {
        if c.is_ascii_punctuation() {
            o.push('\\');
        }
        o.push(c);
    };
    for c in s.chars() {
        if is_hostile(c) || c.is_control() {
            let mut t = String::new();
            shown(c, &mut t);
            t.chars().for_each(|c| push(c, &mut o));
        } else {
            push(c, &mut o);
        }
    }
    o
}

fn list(items: &[String], more: usize) -> String {
    let mut s = items.iter().map(|t| escape_cell(t)).collect::<Vec<_>>().join("<br>");
    if more > 0 {
        let _ = write!(s, "<br>and {more} more");
    }
    s
}

/// A Markdown section: a heading with the counts, then a table with one row per distinct crash.
pub fn section(title: &str, groups: &Groups) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {}: {}\n", escape_cell(title), groups.counts());
    let _ = writeln!(out, "| fingerprint | count | signal | faulted in | Python call site | tests | reports |");
    let _ = writeln!(out, "| --- | ---: | --- | --- | --- | --- | --- |");
    for g in &groups.groups {
        let fingerprint = if g.fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
            format!("`{}`", g.fingerprint)
        } else {
            escape_cell(&g.fingerprint)
        };
        let _ = writeln!(
            out,
            "| {fingerprint} | {} | {} | {} | {} | {} | {} |",
            g.count,
            match g.kind {
                EntryKind::Crash => escape_cell(&g.signal),
                EntryKind::Timeout => "test timeout".to_string(),
                EntryKind::Hang => "hang".to_string(),
            },
            g.faulted.as_deref().map(escape_cell).unwrap_or_default(),
            g.python.as_deref().map(escape_cell).unwrap_or_default(),
            list(&g.tests, g.more_tests),
            list(&g.files, g.more_files),
        );
    }
    if groups.dropped > 0 {
        let _ = writeln!(
            out,
            "\n{} more crashes (past {} distinct ones) are not listed.",
            groups.dropped,
            super::groups::MAX_GROUPS
        );
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_be_left() {
        assert_eq!(escape_cell("a|b\nc`d`<i>"), "a\\|b\\\\nc\\`d\\`\\<i\\>");
        assert_eq!(escape_cell("t.py::test[1]"), "t\\.py\\:\\:test\\[1\\]");
        assert_eq!(escape_cell("naïve\u{2028}x\r"), "naïve\\\\u\\{2028\\}x\\\\r");
        assert!(!escape_cell("a\u{202e}b\u{9b}c").chars().any(is_hostile));
    }
}
