//! XML 1.0 (the JUnit file): markup characters as entities, and only characters XML 1.0 allows
//! as such: C0 controls other than tab, LF and CR, U+FFFE and U+FFFF (and, as everywhere, DEL,
//! C1 controls and bidirectional overrides) are shown as text (`\x01`), so the file parses and
//! pytest's suites beside ours stay readable. Tab, CR and (in attributes) LF are shown as text
//! too: no raw control character is written but the report's own line ends.

use super::{is_hostile, shown};

fn escape(s: &str, keep_newlines: bool) -> String {
    let mut o = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\n' if keep_newlines => o.push('\n'),
            // `##[` (a legacy GitHub workflow command, should the file be printed in a CI log)
            // as a character reference: the value parses back the same.
            '[' if o.ends_with("##") => o.push_str("&#91;"),
            c if is_hostile(c) || c == '\u{fffe}' || c == '\u{ffff}' => shown(c, &mut o),
            c => o.push(c),
        }
    }
    o
}

/// Character data (an element's text), lines kept.
pub fn text(s: &str) -> String {
    escape(s, true)
}

/// An attribute value, written between double quotes: one line, a newline shown as `\n`.
pub fn attribute(s: &str) -> String {
    escape(s, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(attribute("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;\\x01");
        assert_eq!(attribute("x\ny\u{fffe}\t"), "x\\ny\\u{fffe}\\t");
        assert_eq!(text("x\ny\u{ffff}\x1b"), "x\ny\\u{ffff}\\x1b");
        assert_eq!(attribute("a ##[error]"), "a ##&#91;error]");
    }
}
