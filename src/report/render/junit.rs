//! JUnit XML (Jenkins, GitLab, most CI): a `crashcatch` test suite with a testcase per crash,
//! merged into the file pytest writes.

use std::fmt::Write as _;

use super::summary::one_line;
use super::text::{Style, Text};
use super::Render;
use crate::report::model::Crash;

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters, even escaped.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

/// pytest's junit naming for a node id: `tests/test_a.py::TestX::test_y[1] (call)` →
/// (`tests.test_a.TestX`, `test_y[1]`, `tests/test_a.py`).
pub fn junit_names(node: &str) -> (String, String, String) {
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

fn testcase(c: &Crash) -> String {
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
    let _ = write!(x, "    <testcase classname=\"{}\" name=\"{}\"", xml_escape(&classname), xml_escape(&name));
    if !file.is_empty() {
        let _ = write!(x, " file=\"{}\"", xml_escape(&file));
    }
    let _ = writeln!(x, " time=\"0\">");
    let _ = writeln!(
        x,
        "      <error type=\"{}\" message=\"{}\">{}</error>",
        if c.test_timeout.is_some() { "timeout" } else { "crash" },
        xml_escape(&one_line(c)),
        xml_escape(&report)
    );
    let _ = writeln!(x, "    </testcase>");
    x
}

/// The `crashcatch` test suite: a testcase per crash.
pub fn suite(crashes: &[Crash]) -> String {
    let mut suite = String::new();
    let _ = writeln!(
        suite,
        "  <testsuite name=\"crashcatch\" tests=\"{n}\" errors=\"{n}\" failures=\"0\" skipped=\"0\">",
        n = crashes.len()
    );
    for c in crashes {
        suite.push_str(&testcase(c));
    }
    suite.push_str("  </testsuite>\n");
    suite
}

/// Merges `suite` into an existing JUnit document: before its closing `</testsuites>`, or with
/// a lone `<testsuite>` root wrapped in `<testsuites>`; an earlier `crashcatch` suite (the file
/// is written again after every crash and at the end) is replaced.
pub fn merge(existing: &str, suite: &str) -> String {
    let mut existing = existing.to_string();
    while let Some(start) = existing.find("<testsuite name=\"crashcatch\"") {
        let Some(len) = existing[start..].find("</testsuite>") else { break };
        let line_start = existing[..start].rfind('\n').map_or(start, |p| p + 1);
        let mut end = start + len + "</testsuite>".len();
        if existing[end..].starts_with('\n') {
            end += 1;
        }
        existing.replace_range(line_start..end, "");
    }
    let body = existing.trim();
    if let Some(pos) = body.rfind("</testsuites>") {
        format!("{}\n{}{}\n", &body[..pos].trim_end(), suite, &body[pos..])
    } else if body.contains("<testsuite") && body.ends_with("</testsuite>") {
        let inner = match body.find("?>") {
            Some(p) if body.starts_with("<?xml") => body[p + 2..].trim(),
            _ => body,
        };
        format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites>\n{inner}\n{suite}</testsuites>\n")
    } else {
        // Absent, empty or unfinished (the run crashed before pytest wrote it): ours alone.
        format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites>\n{suite}</testsuites>\n")
    }
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

    #[test]
    fn junit_merge_is_idempotent_and_keeps_pytest_suites() {
        let pytest = "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites><testsuite name=\"pytest\" tests=\"1\"><testcase classname=\"t\" name=\"ok\"/></testsuite></testsuites>";
        let once = merge(pytest, &suite(&[]));
        let s = merge(&once, &suite(&[]));
        assert_eq!(s.matches("name=\"crashcatch\"").count(), 1, "{s}");
        assert!(s.contains("name=\"pytest\""));
        assert!(s.trim_end().ends_with("</testsuites>"));
    }

    #[test]
    fn escapes() {
        assert_eq!(xml_escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;?");
    }
}
