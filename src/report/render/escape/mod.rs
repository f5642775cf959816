//! Escaping per medium. The model keeps the raw strings read from the target (thread names,
//! file and function names, test ids, environment values): each renderer escapes every one of
//! them where it writes it, with the escaper of its medium, so that nothing a target controls
//! can move a terminal's cursor, start a report line, become a GitHub workflow command, or
//! make an XML file unreadable.

pub(crate) mod github;
pub mod json;
pub mod terminal;
pub mod xml;

/// Characters that are shown escaped in every medium: C0 controls (but the whitespace each
/// medium allows), DEL, C1 controls (U+0080–U+009F, CSI among them), the line and paragraph
/// separators, and the bidirectional overrides and isolates that reorder what a reader sees.
pub fn is_hostile(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `\n`, `\x1b`, `\u{9b}`: how a hostile character is shown as text.
pub(crate) fn shown(c: char, out: &mut String) {
    use std::fmt::Write as _;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// The GitHub runner takes `##[command]` anywhere in a line of a step's output as a (legacy)
/// workflow command: where a target string holds `##[`, its `[` is shown as `\x5b`.
pub(crate) const LEGACY_COMMAND: &str = "##[";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_characters() {
        for c in ['\x1b', '\n', '\r', '\0', '\x7f', '\u{85}', '\u{9b}', '\u{2028}', '\u{202e}', '\u{2067}'] {
            assert!(is_hostile(c), "{c:?}");
        }
        for c in [' ', 'a', 'é', '\u{a0}', '中', '\u{1f600}', '\u{fffd}'] {
            assert!(!is_hostile(c), "{c:?}");
        }
        let mut s = String::new();
        for c in ['\x1b', '\n', '\u{9b}', '\u{202e}'] {
            shown(c, &mut s);
        }
        assert_eq!(s, "\\x1b\\n\\u{9b}\\u{202e}");
    }
}
