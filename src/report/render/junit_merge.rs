//! Merging crashcatch's crashes into a JUnit file someone else wrote (pytest's), without ever
//! losing what is in it. The file is taken as bytes, must be UTF-8 and well-formed enough to
//! find its root (`<testsuites>`, or a lone `<testsuite>` as old pytest wrote) and its testcases
//! with an XML parser; every change is an insertion at a byte position it found, the rest is
//! kept byte for byte:
//!
//! - a crash whose test has a testcase there (pytest's `classname` and `name`; with
//!   `--junit-prefix`, the classname ending in ours) goes into it: its properties
//!   (`crashcatch.kind`, `crashcatch.fingerprint`, `crashcatch.report`), its summary before the
//!   message of the testcase's `<failure>` or `<error>` (an xdist worker's "crashed while
//!   running") and its report after that element's text; a testcase that has neither gets an
//!   `<error>`, and its suite's `errors` count one more. The test is counted once. A testcase
//!   that already holds a `crashcatch.` property is left alone (the file is merged after every
//!   crash and at the end);
//! - the others (pytest died before writing, or no test was running) are testcases of a
//!   `crashcatch` suite before the root's end tag; an earlier `crashcatch` suite is replaced.
//!
//! Anything else is an error, and the caller writes our suite to a file of its own instead.

use std::ops::Range;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::junit::{suite, Case};

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

/// The document for `cases` when there is no file to merge into.
pub fn alone_cases(cases: &[Case]) -> String {
    alone(&suite(&cases.iter().map(|c| c.testcase.clone()).collect::<Vec<_>>()))
}

/// `existing` with `cases` merged in; an empty (or blank) `existing` gives our suite alone.
pub fn merge(existing: &[u8], cases: &[Case]) -> Result<String, MergeError> {
    let text = std::str::from_utf8(existing).map_err(|e| MergeError::NotUtf8(e.valid_up_to()))?;
    if text.trim().is_empty() {
        return Ok(alone_cases(cases));
    }
    let doc = scan(text)?;
    if !matches!(doc.root_name.as_str(), "testsuites" | "testsuite") {
        return Err(MergeError::NotJunit(doc.root_name));
    }
    let mut edits = Edits::default();
    let mut ours = Vec::new();
    let mut taken = vec![false; doc.testcases.len()];
    for case in cases {
        match doc.find(case) {
            Some(i) if doc.testcases[i].has_ours => {}
            Some(i) if !taken[i] => {
                taken[i] = true;
                inject(&doc, i, case, &mut edits);
            }
            // A second crash of the same test (a rerun): the testcase holds the first.
            Some(_) => {}
            None => ours.push(case.testcase.clone()),
        }
    }
    edits.counted(text);
    let suite = (!ours.is_empty()).then(|| suite(&ours));
    Ok(match doc.root_name.as_str() {
        "testsuite" if doc.root_is_ours => suite.map_or_else(|| alone(""), |s| alone(&s)),
        "testsuite" => {
            let root = edits.apply(text, doc.root.clone());
            match suite {
                Some(s) => {
                    format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites>\n{root}\n{s}</testsuites>\n")
                }
                None => format!("{}{root}{}", &text[..doc.root.start], &text[doc.root.end..]),
            }
        }
        _ => into_testsuites(text, &doc, suite.as_deref(), edits),
    })
}

/// One element's byte ranges.
#[derive(Debug, Clone, Default)]
struct Element {
    /// Its start tag (the whole element when empty).
    start_tag: Range<usize>,
    empty: bool,
    /// Where its end tag begins (non-empty elements).
    end_tag: usize,
}

/// A testcase of the existing file.
#[derive(Debug, Clone, Default)]
struct Testcase {
    classname: String,
    name: String,
    element: Element,
    properties: Option<Element>,
    /// Its `<failure>` or `<error>` (the name), and where its `message` value starts.
    outcome: Option<(Element, &'static str, Option<usize>)>,
    /// It already holds a `crashcatch.` property.
    has_ours: bool,
    /// Where the value of its suite's `errors` attribute is (and of the root's, when the root
    /// is `<testsuites errors="...">`).
    errors: Vec<Range<usize>>,
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
    testcases: Vec<Testcase>,
}

impl Doc {
    /// pytest's testcase for the test of `case`: the one with its classname and name, else the
    /// only one whose classname ends in `.` and ours (pytest's `--junit-prefix`).
    fn find(&self, case: &Case) -> Option<usize> {
        let (classname, name) = case.names.as_ref()?;
        let named = || self.testcases.iter().enumerate().filter(|(_, t)| t.name == *name);
        if let Some((i, _)) = named().find(|(_, t)| t.classname == *classname) {
            return Some(i);
        }
        let mut prefixed =
            named().filter(|(_, t)| t.classname.strip_suffix(classname.as_str()).is_some_and(|p| p.ends_with('.')));
        match (prefixed.next(), prefixed.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }
}

fn is_ours(e: &BytesStart<'_>) -> bool {
    e.name().as_ref() == b"testsuite"
        && e.try_get_attribute("name").ok().flatten().is_some_and(|a| a.value.as_ref() == b"crashcatch")
}

/// An attribute's value, unescaped, and the byte range of its raw value in `text` (the reader
/// borrows from `text`; a value that does not is not used).
fn attribute(text: &str, e: &BytesStart<'_>, key: &str) -> Option<(String, Range<usize>)> {
    let a = e.try_get_attribute(key).ok().flatten()?;
    let value = a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok()?.into_owned();
    let raw: &[u8] = a.value.as_ref();
    let start = (raw.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let range = start..start + raw.len();
    (text.as_bytes().get(range.clone()) == Some(raw)).then_some((value, range))
}

/// What is open while scanning: the element names down to here, the suites' `errors` values.
#[derive(Default)]
struct Open {
    names: Vec<Vec<u8>>,
    /// Per open element: the range of its `errors` value when it is a suite (or the root).
    errors: Vec<Option<Range<usize>>>,
    /// The testcase being read (an index into `Doc::testcases`), and its depth.
    testcase: Option<(usize, usize)>,
    /// The depth of an open `crashcatch` suite.
    ours_depth: Option<usize>,
}

fn scan(text: &str) -> Result<Doc, MergeError> {
    let mut r = Reader::from_str(text);
    r.config_mut().check_end_names = true;
    let mut doc: Option<Doc> = None;
    let mut open = Open::default();
    let mut open_ours: Option<usize> = None;
    let mut closed = false;
    let not_xml = |e: &dyn std::fmt::Display, at: u64| MergeError::NotXml(format!("{e} (at byte {at})"));
    loop {
        let before = r.buffer_position() as usize;
        let ev = r.read_event().map_err(|e| not_xml(&e, r.error_position()))?;
        let after = r.buffer_position() as usize;
        let depth = open.names.len();
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
                    testcases: Vec::new(),
                });
                if empty {
                    closed = true;
                } else {
                    open.names.push(e.name().as_ref().to_vec());
                    open.errors.push(attribute(text, &e, "errors").map(|(_, r)| r));
                    if is_ours(&e) {
                        open.ours_depth = Some(1);
                    }
                }
            }
            Event::Start(e) => {
                if depth == 1 && is_ours(&e) {
                    open_ours = Some(before);
                }
                if let Some(d) = doc.as_mut() {
                    element(text, d, &mut open, &e, before..after, false);
                }
                open.names.push(e.name().as_ref().to_vec());
                let suite = matches!(e.name().as_ref(), b"testsuite" | b"testsuites");
                open.errors.push(if suite { attribute(text, &e, "errors").map(|(_, r)| r) } else { None });
                if is_ours(&e) && open.ours_depth.is_none() {
                    open.ours_depth = Some(depth + 1);
                }
            }
            Event::Empty(e) => {
                if let Some(d) = doc.as_mut() {
                    if depth == 1 && is_ours(&e) {
                        d.ours.push(before..after);
                    }
                    element(text, d, &mut open, &e, before..after, true);
                }
            }
            Event::End(_) => {
                if let Some(d) = doc.as_mut() {
                    if let Some((i, at)) = open.testcase {
                        let t = &mut d.testcases[i];
                        match open.names.last().map(Vec::as_slice) {
                            Some(b"testcase") if at == depth => {
                                t.element.end_tag = before;
                                open.testcase = None;
                            }
                            Some(b"properties") if at + 1 == depth => {
                                if let Some(p) = t.properties.as_mut() {
                                    p.end_tag = before;
                                }
                            }
                            Some(b"failure" | b"error") if at + 1 == depth => {
                                if let Some((o, _, _)) = t.outcome.as_mut() {
                                    o.end_tag = before;
                                }
                            }
                            _ => {}
                        }
                    }
                }
                open.names.pop();
                open.errors.pop();
                let depth = open.names.len();
                if open.ours_depth.is_some_and(|d| d > depth) {
                    open.ours_depth = None;
                }
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

/// Notes a testcase, or what matters inside the one being read: its properties (ours among
/// them) and its failure or error.
fn element(text: &str, d: &mut Doc, open: &mut Open, e: &BytesStart<'_>, tag: Range<usize>, empty: bool) {
    let depth = open.names.len();
    let el = Element { start_tag: tag, empty, end_tag: 0 };
    match (e.name().as_ref(), open.testcase) {
        (b"testcase", None) if open.ours_depth.is_none() => {
            let (Some((classname, _)), Some((name, _))) = (attribute(text, e, "classname"), attribute(text, e, "name"))
            else {
                return;
            };
            // The suites it is in, innermost first: their `errors` counts.
            let errors = open.errors.iter().rev().flatten().cloned().collect();
            d.testcases.push(Testcase { classname, name, element: el, errors, ..Default::default() });
            if !empty {
                open.testcase = Some((d.testcases.len() - 1, depth + 1));
            }
        }
        (b"properties", Some((i, at))) if at == depth => d.testcases[i].properties = Some(el),
        (b"property", Some((i, at)))
            if at + 1 == depth && attribute(text, e, "name").is_some_and(|(n, _)| n.starts_with("crashcatch.")) =>
        {
            d.testcases[i].has_ours = true;
        }
        (name @ (b"failure" | b"error"), Some((i, at))) if at == depth && d.testcases[i].outcome.is_none() => {
            let message = attribute(text, e, "message").map(|(_, r)| r.start);
            let name = if name == b"failure" { "failure" } else { "error" };
            d.testcases[i].outcome = Some((el, name, message));
        }
        _ => {}
    }
}

/// Insertions into the existing text, at byte positions (or replacing a range), and errors
/// to add to the suites' counts (by where their value is).
#[derive(Default)]
struct Edits {
    at: Vec<(Range<usize>, String)>,
    counts: std::collections::BTreeMap<usize, (Range<usize>, u64)>,
}

impl Edits {
    fn insert(&mut self, at: usize, s: String) {
        self.at.push((at..at, s));
    }

    fn replace(&mut self, range: Range<usize>, s: String) {
        self.at.push((range, s));
    }

    /// The counts as replacements of their values (a value that is not a number stays).
    fn counted(&mut self, text: &str) {
        for (_, (r, add)) in std::mem::take(&mut self.counts) {
            if let Ok(n) = text[r.clone()].trim().parse::<u64>() {
                self.replace(r, n.saturating_add(add).to_string());
            }
        }
    }

    /// `text[within]` with the edits that fall inside it applied.
    fn apply(&self, text: &str, within: Range<usize>) -> String {
        let mut edits: Vec<&(Range<usize>, String)> =
            self.at.iter().filter(|(r, _)| r.start >= within.start && r.end <= within.end).collect();
        edits.sort_by_key(|(r, _)| (r.start, r.end));
        let mut out = String::with_capacity(within.len() + edits.iter().map(|(_, s)| s.len()).sum::<usize>());
        let mut at = within.start;
        for (r, s) in edits {
            if r.start < at {
                continue;
            }
            out.push_str(&text[at..r.start]);
            out.push_str(s);
            at = r.end;
        }
        out.push_str(&text[at..within.end]);
        out
    }
}

/// Puts `case` into testcase `i`.
fn inject(doc: &Doc, i: usize, case: &Case, edits: &mut Edits) {
    let t = &doc.testcases[i];
    let tc = &t.element;
    if tc.empty {
        // `<testcase .../>` → `<testcase ...>PROPERTIES ERROR</testcase>`.
        let close = tc.start_tag.end - 2;
        edits.replace(
            close..tc.start_tag.end,
            format!("><properties>{}</properties>{}</testcase>", case.properties, case.error),
        );
        count_error(t, edits);
        return;
    }
    match &t.properties {
        Some(p) if p.empty => {
            let close = p.start_tag.end - 2;
            edits.replace(close..p.start_tag.end, format!(">{}</properties>", case.properties));
        }
        Some(p) => edits.insert(p.end_tag, case.properties.clone()),
        None => edits.insert(tc.start_tag.end, format!("<properties>{}</properties>", case.properties)),
    }
    match &t.outcome {
        Some((o, name, message)) => {
            match message {
                Some(m) => edits.insert(*m, format!("{}; ", case.message)),
                None => edits.insert(o.start_tag.start + 1 + name.len(), format!(" message=\"{}\"", case.message)),
            }
            if o.empty {
                let close = o.start_tag.end - 2;
                edits.replace(close..o.start_tag.end, format!(">{}</{name}>", case.text));
            } else {
                edits.insert(o.end_tag, case.text.clone());
            }
        }
        None => {
            // After the properties (there are now), before system-out and system-err.
            let at = match &t.properties {
                Some(p) if p.empty => p.start_tag.end,
                Some(p) => p.end_tag + "</properties>".len(),
                None => tc.start_tag.end,
            };
            edits.insert(at, case.error.clone());
            count_error(t, edits);
        }
    }
}

/// One more error in the counts (`errors="N"`) of the suites testcase `t` is in.
fn count_error(t: &Testcase, edits: &mut Edits) {
    for r in &t.errors {
        edits.counts.entry(r.start).or_insert((r.clone(), 0)).1 += 1;
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

fn into_testsuites(text: &str, doc: &Doc, suite: Option<&str>, mut edits: Edits) -> String {
    for r in doc.ours.iter().map(|r| whole_lines(text, r)) {
        edits.replace(r, String::new());
    }
    let Some(suite) = suite else {
        return edits.apply(text, 0..text.len());
    };
    if doc.root_is_empty {
        // `<testsuites/>`: opened and closed around our suite.
        let tag = &text[doc.root.start..doc.root.end];
        let open = tag.trim_end_matches('>').trim_end_matches('/').trim_end();
        edits.replace(doc.root.clone(), format!("{open}>\n{suite}</testsuites>"));
        return edits.apply(text, 0..text.len());
    }
    let before_end = edits.apply(text, 0..doc.root_end_tag.start);
    let mut out = before_end;
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

    const PYTEST: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites><testsuite name=\"pytest\" tests=\"1\"><testcase classname=\"t\" name=\"ok\"/></testsuite></testsuites>";

    /// pytest -n 2's file after a worker crashed in test_crash (pytest 8, xdist 3).
    const XDIST: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites name=\"pytest tests\"><testsuite name=\"pytest\" errors=\"1\" failures=\"0\" skipped=\"0\" tests=\"3\" time=\"0.779\"><testcase classname=\"test_native\" name=\"test_ok\" time=\"0.000\" /><testcase classname=\"test_native\" name=\"test_crash\" time=\"0.000\"><error message=\"failed on setup with &quot;worker 'gw1' crashed while running 'test_native.py::test_crash'&quot;\">worker 'gw1' crashed while running 'test_native.py::test_crash'</error></testcase><testcase classname=\"test_native\" name=\"test_after\" time=\"0.000\" /></testsuite></testsuites>";

    fn case(test: Option<(&str, &str)>, tag: &str) -> Case {
        Case {
            names: test.map(|(c, n)| (c.to_string(), n.to_string())),
            testcase: format!("    <testcase classname=\"crashcatch\" name=\"{tag}\"/>\n"),
            properties: format!("<property name=\"crashcatch.fingerprint\" value=\"{tag}\"/>"),
            message: format!("SIGSEGV {tag}"),
            text: format!("\n\ncrashcatch:\nreport {tag} &lt;"),
            error: format!("<error type=\"crash\" message=\"SIGSEGV {tag}\">report {tag}</error>"),
        }
    }

    fn parse(doc: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(doc).unwrap_or_else(|e| panic!("{e}\n{doc}"))
    }

    #[test]
    fn junit_merge_is_idempotent_and_keeps_pytest_suites() {
        let c = case(None, "x");
        let once = merge(PYTEST.as_bytes(), std::slice::from_ref(&c)).unwrap();
        let s = merge(once.as_bytes(), std::slice::from_ref(&c)).unwrap();
        assert_eq!(s, once);
        assert_eq!(s.matches("<testsuite name=\"crashcatch\"").count(), 1, "{s}");
        assert!(s.starts_with(&PYTEST[..PYTEST.len() - "</testsuites>".len()]), "{s}");
        assert!(s.trim_end().ends_with("</testsuites>"));
        let third = merge(s.as_bytes(), &[c.clone(), case(None, "y")]).unwrap();
        assert_eq!(third.matches("<testsuite name=\"crashcatch\"").count(), 1, "{third}");
        assert!(third.contains("name=\"y\"/>"), "{third}");
        // Nothing of ours left to add: an earlier suite of ours goes, pytest's file is as it was.
        assert_eq!(merge(third.as_bytes(), &[]).unwrap().replace(">\n</testsuites>", "></testsuites>"), PYTEST);
    }

    #[test]
    fn lone_testsuite_and_empty_roots() {
        let c = [case(None, "x")];
        let lone =
            "<?xml version=\"1.0\"?>\n<testsuite name=\"pytest\"><testcase name=\"a\" classname=\"t\"/></testsuite>\n";
        let m = merge(lone.as_bytes(), &c).unwrap();
        assert!(m.contains("<testsuites>\n<testsuite name=\"pytest\"><testcase name=\"a\" classname=\"t\"/></testsuite>\n  <testsuite name=\"crashcatch\""), "{m}");
        assert_eq!(merge(m.as_bytes(), &c).unwrap(), m);
        let ours = suite(&[c[0].testcase.clone()]);
        let m = merge(b"<testsuites />", &c).unwrap();
        assert_eq!(m, format!("<testsuites>\n{ours}</testsuites>"));
        assert_eq!(merge(b" \n", &c).unwrap(), alone(&ours));
        assert_eq!(merge(alone("OLD").as_bytes(), &c).unwrap().matches("OLD").count(), 1);
        // A lone testsuite whose testcase is the crashed test's: merged in place, no wrapping.
        let m = merge(lone.as_bytes(), &[case(Some(("t", "a")), "x")]).unwrap();
        assert!(
            m.starts_with(
                "<?xml version=\"1.0\"?>\n<testsuite name=\"pytest\"><testcase name=\"a\" classname=\"t\"><properties>"
            ),
            "{m}"
        );
        parse(&m);
    }

    #[test]
    fn a_crash_goes_into_its_tests_own_testcase_once() {
        let c = case(Some(("test_native", "test_crash")), "fp1");
        let m = merge(XDIST.as_bytes(), std::slice::from_ref(&c)).unwrap();
        let doc = parse(&m);
        // No suite of ours: the test is counted once, by pytest.
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("testsuite")).count(), 1, "{m}");
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("testcase")).count(), 3, "{m}");
        let crashed = doc.descendants().find(|n| n.attribute("name") == Some("test_crash")).unwrap();
        let props: Vec<_> = crashed.descendants().filter(|n| n.has_tag_name("property")).collect();
        assert_eq!(props.len(), 1);
        assert_eq!(props[0].attribute("value"), Some("fp1"));
        let error = crashed.children().find(|n| n.has_tag_name("error")).unwrap();
        assert_eq!(
            error.attribute("message"),
            Some(
                "SIGSEGV fp1; failed on setup with \"worker 'gw1' crashed while running 'test_native.py::test_crash'\""
            )
        );
        assert_eq!(
            error.text(),
            Some("worker 'gw1' crashed while running 'test_native.py::test_crash'\n\ncrashcatch:\nreport fp1 <")
        );
        // The counts stay: the testcase had its error already.
        assert!(m.contains("errors=\"1\" failures=\"0\" skipped=\"0\" tests=\"3\""), "{m}");
        // Merged again (after the next crash, at the end): unchanged.
        assert_eq!(merge(m.as_bytes(), &[c.clone(), c]).unwrap(), m);
    }

    #[test]
    fn a_passed_testcase_gets_an_error_and_its_suite_counts_it() {
        let m = merge(
            XDIST.as_bytes(),
            &[case(Some(("test_native", "test_ok")), "a"), case(Some(("test_native", "test_after")), "b")],
        )
        .unwrap();
        let doc = parse(&m);
        for name in ["test_ok", "test_after"] {
            let t = doc.descendants().find(|n| n.attribute("name") == Some(name)).unwrap();
            let kids: Vec<&str> = t.children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
            assert_eq!(kids, ["properties", "error"], "{m}");
        }
        assert!(m.contains("errors=\"3\" failures=\"0\""), "{m}");
        // With properties of its own (record_property) and an empty <failure/>.
        let own = "<testsuites><testsuite name=\"pytest\" errors=\"0\" failures=\"1\"><testcase classname=\"pfx.tests.t\" name=\"test_p[a::b]\"><properties><property name=\"k\" value=\"v\"/></properties><failure/></testcase></testsuite></testsuites>";
        let m = merge(own.as_bytes(), &[case(Some(("tests.t", "test_p[a::b]")), "c")]).unwrap();
        let doc = parse(&m);
        let props: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("property")).collect();
        assert_eq!(props.len(), 2, "{m}");
        let failure = doc.descendants().find(|n| n.has_tag_name("failure")).unwrap();
        assert_eq!(failure.attribute("message"), Some("SIGSEGV c"));
        assert!(failure.text().unwrap().contains("report c <"), "{m}");
        assert!(m.contains("errors=\"0\" failures=\"1\""), "{m}");
        // A test of another name or module is not it.
        for other in [("tests.t", "test_q"), ("other.t", "test_p[a::b]"), ("s.t", "test_p[a::b]")] {
            let m = merge(own.as_bytes(), &[case(Some(other), "d")]).unwrap();
            assert!(m.contains("<testsuite name=\"crashcatch\""), "{other:?}: {m}");
        }
    }

    #[test]
    fn what_cannot_be_merged() {
        let c = [case(None, "x")];
        assert_eq!(merge(b"<testsuites>\xff</testsuites>", &c), Err(MergeError::NotUtf8(12)));
        assert_eq!(merge(b"<testsuites><testsuite>", &c), Err(MergeError::Unfinished("testsuites".into())));
        assert!(matches!(merge(b"<testsuites></testsuite>", &c), Err(MergeError::NotXml(_))));
        assert!(matches!(merge(b"<html></html>", &c), Err(MergeError::NotJunit(_))));
        assert!(matches!(merge(b"<testsuites/><testsuites/>", &c), Err(MergeError::NotXml(_))));
        assert!(matches!(merge(b"hello", &c), Err(MergeError::NotXml(_))));
        assert!(matches!(
            merge(b"<?xml version=\"1.0\" encoding=\"latin-1\"?><testsuites/>", &c),
            Err(MergeError::Encoding(_))
        ));
    }
}
