//! JUnit XML (Jenkins, GitLab, most CI): a `crashcatch` test suite with a testcase per crash,
//! merged into the file pytest writes ([`super::junit_merge`]).

use std::fmt::Write as _;

use super::escape::xml;
use super::summary::one_line;
use super::text::{Style, Text};
use super::Render;
use crate::report::model::Crash;

/// pytest's junit naming for a node id: `tests/test_a.py::TestX::test_y[1] (call)` →
/// (`tests.test_a.TestX`, `test_y[1]`, `tests/test_a.py`).
pub(crate) fn junit_names(node: &str) -> (String, String, String) {
    let node = node.rsplit_once(" (").map_or(node, |(n, _)| n);
    let mut parts: Vec<&str> = node.split("::").collect();
    let name = if parts.len() > 1 { parts.pop().unwrap_or("") } else { "" };
    let file = parts.first().copied().unwrap_or("");
    let module = file.strip_suffix(".py").unwrap_or(file).replace('/', ".");
    let mut classname = module;
    for c in parts.iter().skip(1) {
        classname.push('.');
        classname.push_str(c);
    }
    (classname, name.to_string(), file.to_string())
}

/// The testcase of one crash.
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
    if let Some(f) = &c.fingerprint {
        let _ = writeln!(x, "      <properties>");
        let _ = writeln!(x, "        <property name=\"crashcatch.fingerprint\" value=\"{}\"/>", xml::attribute(f));
        let _ = writeln!(x, "      </properties>");
    }
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
    }
}
