//! Terminal text (stderr, the .txt report, `attach` and `dump` on an operator's terminal): a
//! target string is shown with its control characters escaped (`\x1b`, `\n`), so it cannot
//! send escape sequences or start a line of its own, nor (in a CI log) a workflow command.

use std::borrow::Cow;

use super::{is_hostile, shown, LEGACY_COMMAND};

/// `s` with every hostile character shown escaped and `##[` defused; borrowed when `s` is
/// benign, which it nearly always is.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hostile) && !s.contains(LEGACY_COMMAND) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_hostile(c) {
            shown(c, &mut out);
        } else if c == '[' && out.ends_with("##") {
            out.push_str("\\x5b");
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A target string that begins a line (after our indentation): [`text`], and a leading `::`
/// (the GitHub runner takes a line that starts with `::` after spaces as a workflow command) is
/// shown as `\x3a:`.
pub(crate) fn line_start(s: &str) -> Cow<'_, str> {
    let t = text(s);
    let lead = t.len() - t.trim_start().len();
    if t[lead..].starts_with("::") {
        let mut o = String::with_capacity(t.len() + 3);
        o.push_str(&t[..lead]);
        o.push_str("\\x3a");
        o.push_str(&t[lead + 1..]);
        return Cow::Owned(o);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benign_strings_are_unchanged() {
        for s in ["tests/test_a.py::test_b[x-1] (call)", "päth/中文.py", "a\\nb", "#[derive]", ""] {
            assert!(matches!(text(s), Cow::Borrowed(_)), "{s}");
            assert_eq!(line_start(s), s);
        }
    }

    #[test]
    fn escapes_and_lines() {
        assert_eq!(text("a\x1b[2Jb\nc"), "a\\x1b[2Jb\\nc");
        assert_eq!(text("x\u{9b}31m\u{202e}"), "x\\u{9b}31m\\u{202e}");
        assert_eq!(text("run ##[error]x ##[y"), "run ##\\x5berror]x ##\\x5by");
        assert_eq!(line_start("  ::error::x"), "  \\x3a:error::x");
        assert_eq!(line_start("a ::error::x"), "a ::error::x");
    }
}
