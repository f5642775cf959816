//! What a Python frame adds under its source line: the caret line under the running expression
//! (3.11+ columns, as tracebacks print it) and its arguments and locals; and the arguments in
//! the header's `python` line (`parse_header(raw=None, limit=16)`).

use std::fmt::Write;

use super::super::escape::terminal::text as esc;
use super::Style;
use crate::report::model::{LocalKind, PythonFrame};

/// Longest argument list shown in the header, in characters.
const MAX_ARGUMENTS: usize = 200;

/// The `^^^^` under the running expression: from `column` to `end_column` when the expression
/// ends on its line (else to the end of it); none when it covers the whole line (as tracebacks
/// do) or the columns do not fit the line read.
pub(super) fn caret(p: &PythonFrame) -> Option<String> {
    let src = p.source.as_deref()?;
    let offset = p.source_offset.unwrap_or(0) as usize;
    let start = (p.column? as usize).checked_sub(offset)?;
    let end = match (p.end_line, p.end_column) {
        (Some(e), Some(c)) if Some(e) == p.line => (c as usize).checked_sub(offset)?,
        _ => src.len(),
    }
    .min(src.len());
    if start >= end || !src.is_char_boundary(start) || !src.is_char_boundary(end) {
        return None;
    }
    if start == 0 && end == src.len() {
        return None;
    }
    // Widths as the escaped text prints them.
    let pad = esc(&src[..start]).chars().count();
    let width = esc(&src[start..end]).chars().count().max(1);
    Some(format!("{}{}", " ".repeat(pad), "^".repeat(width)))
}

/// A frame's arguments and locals, one a line, under its source line.
pub(super) fn write(out: &mut String, p: &PythonFrame, st: &Style) {
    for l in &p.locals {
        let kind = match l.kind {
            LocalKind::Argument => "arg",
            LocalKind::Local => "local",
            LocalKind::Cell => "cell",
        };
        let _ = writeln!(out, "              {} {} = {}", st.dim(&format!("{kind:<5}")), esc(&l.name), esc(&l.repr));
    }
    if let Some(n) = &p.locals_note {
        let _ = writeln!(out, "              {}", st.dim(&format!("(locals: {})", esc(n))));
    }
}

/// `(raw=None, limit=16)`: the frame's arguments as read, raw target text (the caller escapes
/// it); empty when none were read.
pub(super) fn arguments(p: &PythonFrame) -> String {
    let args: Vec<String> =
        p.locals.iter().filter(|l| l.kind == LocalKind::Argument).map(|l| format!("{}={}", l.name, l.repr)).collect();
    if args.is_empty() {
        return String::new();
    }
    let all = args.join(", ");
    match all.char_indices().nth(MAX_ARGUMENTS) {
        Some((i, _)) => format!("({}...)", &all[..i]),
        None => format!("({all})"),
    }
}
