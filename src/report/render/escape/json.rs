//! JSON: serde_json already escapes C0 controls, quotes and backslashes; what it leaves raw and
//! a terminal or a CI log would act on (DEL, C1 controls, line separators, bidirectional
//! overrides, `##[`) is escaped here as `\uXXXX`. They can only occur inside strings, where
//! the escape reads back as the same character.

use std::fmt::Write as _;

use super::{is_hostile, LEGACY_COMMAND};

/// Escapes what serde_json left raw in a serialized document.
pub fn harden(doc: String) -> String {
    if !doc.chars().any(|c| c != '\n' && is_hostile(c)) && !doc.contains(LEGACY_COMMAND) {
        return doc;
    }
    let mut o = String::with_capacity(doc.len() + 16);
    for c in doc.chars() {
        if c != '\n' && is_hostile(c) {
            let _ = write!(o, "\\u{:04x}", c as u32);
        } else if c == '[' && o.ends_with("##") {
            o.push_str("\\u005b");
        } else {
            o.push(c);
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_the_same() {
        let s = "a\u{9b}b\u{7f}\u{202e} ##[error]\u{2028}";
        let doc = serde_json::to_string(&s).unwrap();
        let hard = harden(doc.clone());
        assert!(!hard.chars().any(|c| is_hostile(c) || c == '['), "{hard}");
        assert_eq!(serde_json::from_str::<String>(&hard).unwrap(), s);
        assert_eq!(harden("{\n  \"a\": [1]\n}".into()), "{\n  \"a\": [1]\n}");
    }
}
