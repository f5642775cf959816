//! Merging the `crashcatch` suite into a JUnit file someone else wrote (pytest's), without ever
//! losing what is in it: the file is taken as bytes, must be UTF-8 and well-formed enough to
//! find its root (`<testsuites>`, or a lone `<testsuite>` as old pytest wrote) with an XML
//! parser; our suite goes before the root's end tag, byte for byte around it, and an earlier
//! `crashcatch` suite (the file is written after every crash and at the end) is replaced.
//! Anything else is an error, and the caller writes our suite to a file of its own instead.

use std::ops::Range;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Why the JUnit file already at the path cannot be merged into.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    /// Not UTF-8 (at this byte).
    #[error("it is not UTF-8 (at byte {0})")]
    NotUtf8(usize),
    /// It declares another encoding.
    #[error("it declares the encoding {0}")]
    Encoding(String),
    /// Not well-formed XML (why).
    #[error("it is not well-formed XML: {0}")]
    NotXml(String),
    /// An element left open (its name).
    #[error("it is unfinished (no end tag for <{0}>)")]
    Unfinished(String),
    /// Its root is another element (its name).
    #[error("its root is <{0}>, not <testsuites> or <testsuite>")]
    NotJunit(String),
}

/// A JUnit document holding only `suite`.
pub(crate) fn alone(suite: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites>\n{suite}</testsuites>\n")
}

/// `existing` with `suite` merged in; an empty (or blank) `existing` gives `suite` alone.
pub fn merge(existing: &[u8], suite: &str) -> Result<String, MergeError> {
    let text = std::str::from_utf8(existing).map_err(|e| MergeError::NotUtf8(e.valid_up_to()))?;
    if text.trim().is_empty() {
        return Ok(alone(suite));
    }
    let doc = scan(text)?;
    match doc.root_name.as_str() {
        "testsuites" => Ok(into_testsuites(text, &doc, suite)),
        "testsuite" if doc.root_is_ours => Ok(alone(suite)),
        "testsuite" => {
            let root = &text[doc.root.start..doc.root.end];
            Ok(format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites>\n{root}\n{suite}</testsuites>\n"))
        }
        other => Err(MergeError::NotJunit(other.to_string())),
    }
}

/// Where things are in the existing document (byte ranges of `text`).
struct Doc {
    root_name: String,
    /// The whole root element.
    root: Range<usize>,
    /// Its end tag (`</testsuites>`); empty at the end of `<testsuites/>`.
    root_end_tag: Range<usize>,
    root_is_empty: bool,
    root_is_ours: bool,
    /// Earlier `crashcatch` suites, children of the root.
    ours: Vec<Range<usize>>,
}

fn is_ours(e: &BytesStart<'_>) -> bool {
    e.name().as_ref() == b"testsuite"
        && e.try_get_attribute("name").ok().flatten().is_some_and(|a| a.value.as_ref() == b"crashcatch")
}

fn scan(text: &str) -> Result<Doc, MergeError> {
    let mut r = Reader::from_str(text);
    r.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut doc: Option<Doc> = None;
    let mut open_ours: Option<usize> = None;
    let mut closed = false;
    let not_xml = |e: &dyn std::fmt::Display, at: u64| MergeError::NotXml(format!("{e} (at byte {at})"));
    loop {
        let before = r.buffer_position() as usize;
        let ev = r.read_event().map_err(|e| not_xml(&e, r.error_position()))?;
        let after = r.buffer_position() as usize;
        let at_top = depth == 0;
        if at_top && closed && !matches!(ev, Event::Eof | Event::Comment(_) | Event::PI(_) | Event::Text(_)) {
            return Err(not_xml(&"content after the root element", before as u64));
        }
        match ev {
            Event::Eof => break,
            Event::Decl(d) if at_top && doc.is_none() => {
                if let Some(enc) = d.encoding() {
                    let enc = enc.map_err(|e| not_xml(&e, before as u64))?;
                    let enc = String::from_utf8_lossy(&enc).to_ascii_lowercase();
                    if !matches!(enc.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
                        return Err(MergeError::Encoding(enc));
                    }
                }
            }
            Event::Start(e) | Event::Empty(e) if at_top => {
                let empty = after > 1 && text.as_bytes()[..after].ends_with(b"/>");
                doc = Some(Doc {
                    root_name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    root: before..after,
                    root_end_tag: after..after,
                    root_is_empty: empty,
                    root_is_ours: is_ours(&e),
                    ours: Vec::new(),
                });
                if empty {
                    closed = true;
                } else {
                    depth = 1;
                }
            }
            Event::Start(e) => {
                if depth == 1 && is_ours(&e) {
                    open_ours = Some(before);
                }
                depth += 1;
            }
            Event::Empty(e) => {
                if let (1, Some(d)) = (depth, doc.as_mut()) {
                    if is_ours(&e) {
                        d.ours.push(before..after);
                    }
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if let Some(d) = doc.as_mut() {
                    if depth == 1 {
                        if let Some(s) = open_ours.take() {
                            d.ours.push(s..after);
                        }
                    } else if depth == 0 {
                        d.root.end = after;
                        d.root_end_tag = before..after;
                        closed = true;
                    }
                }
            }
            Event::Text(t) if at_top && !t.iter().all(u8::is_ascii_whitespace) => {
                return Err(not_xml(&"text outside the root element", before as u64));
            }
            Event::CData(_) | Event::GeneralRef(_) | Event::DocType(_) if at_top && doc.is_some() => {
                return Err(not_xml(&"content outside the root element", before as u64));
            }
            _ => {}
        }
    }
    match doc {
        None => Err(not_xml(&"no root element", 0)),
        Some(d) if !closed => Err(MergeError::Unfinished(d.root_name)),
        Some(d) => Ok(d),
    }
}

/// `range` grown over the indentation before it (when only that is on its line) and the
/// newline after it, so that removing it leaves no blank line.
fn whole_lines(text: &str, range: &Range<usize>) -> Range<usize> {
    let b = text.as_bytes();
    let mut start = range.start;
    while start > 0 && matches!(b[start - 1], b' ' | b'\t') {
        start -= 1;
    }
    if start > 0 && b[start - 1] != b'\n' {
        start = range.start;
    }
    let end = if b.get(range.end) == Some(&b'\n') { range.end + 1 } else { range.end };
    start..end
}

fn into_testsuites(text: &str, doc: &Doc, suite: &str) -> String {
    let mut out = String::with_capacity(text.len() + suite.len() + 2);
    let mut at = 0;
    for r in doc.ours.iter().map(|r| whole_lines(text, r)) {
        if r.start >= at {
            out.push_str(&text[at..r.start]);
            at = r.end;
        }
    }
    if doc.root_is_empty {
        // `<testsuites/>`: opened and closed around our suite.
        let tag = &text[doc.root.start..doc.root.end];
        let open = tag.trim_end_matches('>').trim_end_matches('/').trim_end();
        out.push_str(&text[at..doc.root.start]);
        out.push_str(open);
        out.push_str(">\n");
        out.push_str(suite);
        out.push_str("</testsuites>");
        out.push_str(&text[doc.root.end..]);
        return out;
    }
    out.push_str(&text[at..doc.root_end_tag.start]);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(suite);
    out.push_str(&text[doc.root_end_tag.start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::render::junit::suite;

    const PYTEST: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites><testsuite name=\"pytest\" tests=\"1\"><testcase classname=\"t\" name=\"ok\"/></testsuite></testsuites>";

    #[test]
    fn junit_merge_is_idempotent_and_keeps_pytest_suites() {
        let once = merge(PYTEST.as_bytes(), &suite(&[])).unwrap();
        let s = merge(once.as_bytes(), &suite(&[])).unwrap();
        assert_eq!(s, once);
        assert_eq!(s.matches("name=\"crashcatch\"").count(), 1, "{s}");
        assert!(s.starts_with(&PYTEST[..PYTEST.len() - "</testsuites>".len()]), "{s}");
        assert!(s.trim_end().ends_with("</testsuites>"));
        let third = merge(s.as_bytes(), &suite(&["    <testcase name=\"x\"/>\n".into()])).unwrap();
        assert_eq!(third.matches("name=\"crashcatch\"").count(), 1, "{third}");
        assert!(third.contains("<testcase name=\"x\"/>"), "{third}");
    }

    #[test]
    fn lone_testsuite_and_empty_roots() {
        let lone = "<?xml version=\"1.0\"?>\n<testsuite name=\"pytest\"><testcase name=\"a\"/></testsuite>\n";
        let m = merge(lone.as_bytes(), &suite(&[])).unwrap();
        assert!(m.contains("<testsuites>\n<testsuite name=\"pytest\"><testcase name=\"a\"/></testsuite>\n  <testsuite name=\"crashcatch\""), "{m}");
        assert_eq!(merge(m.as_bytes(), &suite(&[])).unwrap(), m);
        let m = merge(b"<testsuites />", &suite(&[])).unwrap();
        assert_eq!(m, format!("<testsuites>\n{}</testsuites>", suite(&[])));
        assert_eq!(merge(b" \n", "S").unwrap(), alone("S"));
        assert_eq!(merge(alone("OLD").as_bytes(), &suite(&[])).unwrap().matches("OLD").count(), 1);
    }

    #[test]
    fn what_cannot_be_merged() {
        assert_eq!(merge(b"<testsuites>\xff</testsuites>", "S"), Err(MergeError::NotUtf8(12)));
        assert_eq!(merge(b"<testsuites><testsuite>", "S"), Err(MergeError::Unfinished("testsuites".into())));
        assert!(matches!(merge(b"<testsuites></testsuite>", "S"), Err(MergeError::NotXml(_))));
        assert!(matches!(merge(b"<html></html>", "S"), Err(MergeError::NotJunit(_))));
        assert!(matches!(merge(b"<testsuites/><testsuites/>", "S"), Err(MergeError::NotXml(_))));
        assert!(matches!(merge(b"hello", "S"), Err(MergeError::NotXml(_))));
        assert!(matches!(
            merge(b"<?xml version=\"1.0\" encoding=\"latin-1\"?><testsuites/>", "S"),
            Err(MergeError::Encoding(_))
        ));
    }
}
