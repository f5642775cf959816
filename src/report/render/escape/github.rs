//! GitHub workflow commands (`::error file=F,title=T::DATA`), escaped as the runner unescapes
//! them: `%`, CR and LF in data; also `:` and `,` in property values. Other control characters
//! are shown as text first ([`super::terminal`]), so an annotation holds no raw control.

use super::terminal;

/// The message of a workflow command.
pub(crate) fn data(s: &str) -> String {
    let t = terminal::text(s);
    let mut o = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '%' => o.push_str("%25"),
            '\r' => o.push_str("%0D"),
            '\n' => o.push_str("%0A"),
            c => o.push(c),
        }
    }
    o
}

/// A property value (`file=`, `title=`).
pub(crate) fn property(s: &str) -> String {
    let d = data(s);
    let mut o = String::with_capacity(d.len());
    for c in d.chars() {
        match c {
            ':' => o.push_str("%3A"),
            ',' => o.push_str("%2C"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_github_specifies() {
        assert_eq!(data("50% a:b,c"), "50%25 a:b,c");
        assert_eq!(property("50% a:b,c"), "50%25 a%3Ab%2Cc");
        // A newline never reaches the runner, not even as %0A: it is shown as text.
        assert_eq!(data("f\n::error file=setup.py::x"), "f\\n::error file=setup.py::x");
        assert_eq!(property("a\r\n"), "a\\r\\n");
    }
}
