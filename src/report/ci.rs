//! Where CI shows crashes: a JUnit XML testcase per crash (Jenkins, GitLab), GitHub Actions
//! annotations, and the end-of-run summary line.

use std::fmt::Write as _;
use std::path::Path;

use super::model::{Crash, PythonFrame};

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

/// One line for a crash: `SIGSEGV in crash_here (libfoo.so): NULL pointer dereference`.
pub fn summary(c: &Crash) -> String {
    let mut s = c.signal.name.clone();
    if let Some(cu) = &c.culprit {
        let _ = write!(s, " in {}", super::text::describe_native(&cu.frame));
        if let Some(o) = &cu.first_outside_system {
            let _ = write!(s, ", called from {}", super::text::describe_native(o));
        }
    }
    if let Some(cl) = &c.classification {
        let _ = write!(s, ": {}", cl.summary);
    }
    if let Some(p) = python_site(c) {
        let _ = write!(s, "; Python {}:{} in {}", p.file, p.line.unwrap_or(0), p.function);
    }
    s
}

/// The Python line to point at: the user's own frame when the innermost one is in the standard
/// library or an installed package (ctypes' `string_at`), else the innermost.
fn python_site(c: &Crash) -> Option<&PythonFrame> {
    c.python_user_frame.as_ref().or(c.python_call_site.as_ref())
}

/// `path` relative to `base` when it lies under it.
fn relative_to<'a>(path: &'a str, base: Option<&Path>) -> &'a str {
    base.and_then(|b| Path::new(path).strip_prefix(b).ok())
        .and_then(|r| r.to_str())
        .filter(|r| !r.is_empty())
        .unwrap_or(path)
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
    let report = super::text::render(c, super::text::Style::plain());
    let mut x = String::new();
    let _ = write!(x, "    <testcase classname=\"{}\" name=\"{}\"", xml_escape(&classname), xml_escape(&name));
    if !file.is_empty() {
        let _ = write!(x, " file=\"{}\"", xml_escape(&file));
    }
    let _ = writeln!(x, " time=\"0\">");
    let _ = writeln!(
        x,
        "      <error type=\"crash\" message=\"{}\">{}</error>",
        xml_escape(&summary(c)),
        xml_escape(&report)
    );
    let _ = writeln!(x, "    </testcase>");
    x
}

/// Writes the crashes as a `crashcatch` test suite into `path`, merging into an existing JUnit
/// file (the suite is added before its closing `</testsuites>`; a lone `<testsuite>` root is
/// wrapped in `<testsuites>`).
pub fn write_junit(path: &Path, crashes: &[Crash]) -> std::io::Result<()> {
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
    let mut existing = std::fs::read_to_string(path).unwrap_or_default();
    // Written again after every crash and at the end: replace our own earlier suite.
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
    let out = if let Some(pos) = body.rfind("</testsuites>") {
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
    };
    let tmp = path.with_extension("xml.crashcatch-tmp");
    std::fs::write(&tmp, out)?;
    std::fs::rename(&tmp, path)
}

/// A GitHub Actions workflow command pointing at the user's Python line (see [`summary`]).
/// GitHub places annotations by paths relative to the checkout: paths under `workspace`
/// (GITHUB_WORKSPACE) are made relative to it, in the location and in the message.
pub fn github_annotation(c: &Crash, workspace: Option<&Path>) -> String {
    let mut msg = summary(c);
    if let Some(p) = python_site(c) {
        let rel = relative_to(&p.file, workspace);
        if rel != p.file {
            msg = msg.replace(&format!("; Python {}:", p.file), &format!("; Python {rel}:"));
        }
    }
    let msg = msg.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let title = match &c.process.test {
        Some(t) => format!("crash in {}", t.rsplit_once(" (").map_or(t.as_str(), |x| x.0)),
        None => format!("crash in pid {}", c.process.pid),
    };
    let title = title.replace('%', "%25").replace(',', "%2C").replace(':', "%3A").replace('\n', " ");
    let loc = match python_site(c) {
        Some(p) if p.line.is_some() && !p.file.starts_with('<') => {
            let file = relative_to(&p.file, workspace);
            format!("file={},line={},", file.replace(',', "%2C").replace(':', "%3A"), p.line.unwrap_or(1))
        }
        _ => String::new(),
    };
    format!("::error {loc}title={title}::{msg}")
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
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.xml");
        std::fs::write(&p, "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites><testsuite name=\"pytest\" tests=\"1\"><testcase classname=\"t\" name=\"ok\"/></testsuite></testsuites>").unwrap();
        write_junit(&p, &[]).unwrap();
        write_junit(&p, &[]).unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        assert_eq!(s.matches("name=\"crashcatch\"").count(), 1, "{s}");
        assert!(s.contains("name=\"pytest\""));
        assert!(s.trim_end().ends_with("</testsuites>"));
    }

    fn crash_in_ctypes() -> Crash {
        let frame = |file: &str, function: &str, line| PythonFrame {
            file: file.into(),
            function: function.into(),
            line: Some(line),
            source: None,
            stale: false,
        };
        Crash {
            schema_version: crate::report::model::SCHEMA_VERSION,
            kind: "crash".into(),
            tool: Default::default(),
            time: String::new(),
            process: crate::report::model::ProcessInfo {
                pid: 7,
                test: Some("tests/test_a.py::test_b (call)".into()),
                ..Default::default()
            },
            signal: crate::report::model::SignalReport { number: 11, name: "SIGSEGV".into(), ..Default::default() },
            classification: None,
            culprit: None,
            python_call_site: Some(frame("/usr/lib/python3.11/ctypes/__init__.py", "string_at", 519)),
            python_user_frame: Some(frame("/ws/repo/tests/test_a.py", "helper", 11)),
            diagnosis: None,
            crashed_tid: 7,
            also_faulting: vec![],
            threads: vec![],
            python: None,
            modules: vec![],
            notes: vec![],
            timings: Default::default(),
            files: vec![],
        }
    }

    #[test]
    fn annotation_points_at_the_users_line() {
        let c = crash_in_ctypes();
        assert_eq!(
            github_annotation(&c, Some(Path::new("/ws/repo"))),
            "::error file=tests/test_a.py,line=11,title=crash in tests/test_a.py%3A%3Atest_b::SIGSEGV; Python tests/test_a.py:11 in helper"
        );
        // Outside the workspace (or without one): the full path, escaped.
        assert!(github_annotation(&c, Some(Path::new("/elsewhere")))
            .starts_with("::error file=/ws/repo/tests/test_a.py,line=11,"));
        assert!(github_annotation(&c, None).starts_with("::error file=/ws/repo/tests/test_a.py,line=11,"));
        // No user frame: the innermost frame.
        let mut c = c;
        c.python_user_frame = None;
        assert!(
            github_annotation(&c, None).starts_with("::error file=/usr/lib/python3.11/ctypes/__init__.py,line=519,")
        );
        assert_eq!(summary(&c), "SIGSEGV; Python /usr/lib/python3.11/ctypes/__init__.py:519 in string_at");
    }

    #[test]
    fn escapes() {
        assert_eq!(xml_escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;?");
    }
}
