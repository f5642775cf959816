//! JUnit XML (Jenkins, GitLab, most CI): each crash or test timeout put into the testcase pytest
//! wrote for its test ([`super::junit_merge`]: its report, fingerprint and summary, so the file
//! counts the test once), or, when pytest's file has no such testcase (pytest died, or no test
//! was running), a testcase of its own in a `crashcatch` test suite.

use std::fmt::Write as _;

use super::escape::xml;
use super::summary::one_line;
use super::text::{Style, Text};
use super::Render;
use crate::report::model::Crash;

/// pytest's junit naming for a node id (its `mangle_test_address`: the parameters after the
/// first `[` are kept whole): `tests/test_a.py::TestX::test_y[1] (call)` → (`tests.test_a.TestX`,
/// `test_y[1]`, `tests/test_a.py`).
pub fn junit_names(node: &str) -> (String, String, String) {
    let node = node.rsplit_once(" (").map_or(node, |(n, _)| n);
    let (path, params) = match node.find('[') {
        Some(i) => (&node[..i], &node[i..]),
        None => (node, ""),
    };
    let mut parts: Vec<&str> = path.split("::").collect();
    let name = if parts.len() > 1 { parts.pop().unwrap_or("") } else { "" };
    let file = parts.first().copied().unwrap_or("");
    let module = file.strip_suffix(".py").unwrap_or(file).replace('/', ".");
    let mut classname = module;
    for c in parts.iter().skip(1) {
        classname.push('.');
        classname.push_str(c);
    }
    (classname, format!("{name}{params}"), file.to_string())
}

/// One crash or test timeout, rendered for both places it can go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// pytest's classname and name of the test that was running (raw), when one was.
    pub names: Option<(String, String)>,
    /// Its own testcase, for the `crashcatch` suite.
    pub testcase: String,
    /// What goes into pytest's testcase for the test: `<property>` elements,
    pub properties: String,
    /// the one-line summary (escaped for an attribute) put before its failure's message,
    pub message: String,
    /// the report (escaped text) added to its failure's text,
    pub text: String,
    /// and an `<error>` element for a testcase that has no failure or error of its own.
    pub error: String,
}

/// The `<property>` lines of a crash: `crashcatch.kind`, its fingerprint and its text report.
fn properties(c: &Crash, indent: &str) -> String {
    let mut x = String::new();
    let kind = if c.test_timeout.is_some() { "timeout" } else { "crash" };
    let _ = writeln!(x, "{indent}<property name=\"crashcatch.kind\" value=\"{kind}\"/>");
    if let Some(f) = &c.fingerprint {
        let _ = writeln!(x, "{indent}<property name=\"crashcatch.fingerprint\" value=\"{}\"/>", xml::attribute(f));
    }
    if let Some(txt) = c.files.iter().find(|f| f.ends_with(".txt")) {
        let _ = writeln!(x, "{indent}<property name=\"crashcatch.report\" value=\"{}\"/>", xml::attribute(txt));
    }
    x
}

/// The crash for both places it can go.
pub fn case(c: &Crash) -> Case {
    let report = Text { style: Style::plain() }.render(c);
    let kind = if c.test_timeout.is_some() { "timeout" } else { "crash" };
    let message = xml::attribute(&one_line(c));
    let error = format!("<error type=\"{kind}\" message=\"{message}\">{}</error>", xml::text(&report));
    Case {
        names: c.process.test.as_deref().map(|t| {
            let (classname, name, _) = junit_names(t);
            (classname, name)
        }),
        testcase: testcase(c),
        properties: properties(c, ""),
        message,
        text: xml::text(&format!("\n\ncrashcatch:\n{report}")),
        error,
    }
}

/// The testcase of one crash, for the `crashcatch` suite.
pub fn testcase(c: &Crash) -> String {
    let (classname, name, file) = match &c.process.test {
        Some(t) => junit_names(t),
        None => (
            "crashcatch".to_string(),
            format!("pid {} ({})", c.process.pid, c.process.cmdline.join(" ")),
            String::new(),
        ),
    };
    let report = Text { style: Style::plain() }.render(c);
    let mut x = String::new();
    let _ = write!(x, "    <testcase classname=\"{}\" name=\"{}\"", xml::attribute(&classname), xml::attribute(&name));
    if !file.is_empty() {
        let _ = write!(x, " file=\"{}\"", xml::attribute(&file));
    }
    let _ = writeln!(x, " time=\"0\">");
    let _ = writeln!(x, "      <properties>");
    x.push_str(&properties(c, "        "));
    let _ = writeln!(x, "      </properties>");
    let _ = writeln!(
        x,
        "      <error type=\"{}\" message=\"{}\">{}</error>",
        if c.test_timeout.is_some() { "timeout" } else { "crash" },
        xml::attribute(&one_line(c)),
        xml::text(&report)
    );
    let _ = writeln!(x, "    </testcase>");
    x
}

/// The `crashcatch` test suite, of testcases made by [`testcase`].
pub fn suite(cases: &[String]) -> String {
    let mut suite = String::new();
    let _ = writeln!(
        suite,
        "  <testsuite name=\"crashcatch\" tests=\"{n}\" errors=\"{n}\" failures=\"0\" skipped=\"0\">",
        n = cases.len()
    );
    for c in cases {
        suite.push_str(c);
    }
    suite.push_str("  </testsuite>\n");
    suite
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytest_names() {
        assert_eq!(
            junit_names("tests/test_a.py::TestX::test_y[1] (call)"),
            ("tests.test_a.TestX".into(), "test_y[1]".into(), "tests/test_a.py".into())
        );
        assert_eq!(junit_names("t.py::test_z (setup)"), ("t".into(), "test_z".into(), "t.py".into()));
        // Parameters stay whole, as pytest keeps them.
        assert_eq!(
            junit_names("a/t.py::test_p[x::y/z.py] (call)"),
            ("a.t".into(), "test_p[x::y/z.py]".into(), "a/t.py".into())
        );
    }
}
