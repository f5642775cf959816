//! XML 1.0 (the JUnit file): markup characters as entities, and only characters XML 1.0 allows
//! as such: C0 controls other than tab, LF and CR, U+FFFE and U+FFFF (and, as everywhere, DEL,
//! C1 controls and bidirectional overrides) are shown as text (`\x01`), so the file parses and
//! pytest's suites beside ours stay readable.

use super::{is_hostile, shown};

fn escape(s: &str, attribute: bool) -> String {
    let mut o = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\n' if !attribute => o.push('\n'),
            // As character references they survive a parser's normalization of line ends and
            // attribute whitespace.
            '\n' => o.push_str("&#10;"),
            '\t' => o.push_str("&#9;"),
            '\r' => o.push_str("&#13;"),
            c if is_hostile(c) || c == '\u{fffe}' || c == '\u{ffff}' => shown(c, &mut o),
            c => o.push(c),
        }
    }
    o
}

/// Character data (an element's text).
pub fn text(s: &str) -> String {
    escape(s, false)
}

/// An attribute value, written between double quotes.
pub fn attribute(s: &str) -> String {
    escape(s, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(attribute("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;\\x01");
        assert_eq!(attribute("x\ny\u{fffe}"), "x&#10;y\\u{fffe}");
        assert_eq!(text("x\ny\u{ffff}\x1b"), "x\ny\\u{ffff}\\x1b");
    }
}
