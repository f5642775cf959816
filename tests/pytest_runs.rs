//! Real pytest runs under crashcatch (issue "pytest and CI"): the suites in tests/data/pytest/
//! are run with target/venv's pytest, once bare and once under crashcatch. pytest's exit status
//! and its verdicts on the tests around the crash must be the same both times; the report must
//! name the test (`PYTEST_CURRENT_TEST` as pytest sets it), the Python line in the user's code,
//! and the process tree; the JUnit file must parse and carry the crash; the GitHub annotation
//! and the end-of-run summary line must be printed.
//!
//! pytest runs from the repository root with `--rootdir` there, so node ids read
//! `tests/data/pytest/test_crash.py::test_crash`. `tests/data/pytest/pytest.ini` is the config
//! file (it turns the cache provider off, so nothing is written into the tree), and
//! PYTHONDONTWRITEBYTECODE keeps `__pycache__` out of it too.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::*;
use serde_json::Value;
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Running pytest.

fn data_dir() -> PathBuf {
    root().join("tests").join("data").join("pytest")
}

/// A node id as pytest prints it and sets it in PYTEST_CURRENT_TEST (without the phase).
fn node(file: &str, test: &str) -> String {
    format!("tests/data/pytest/{file}::{test}")
}

/// The 1-based line of `tests/data/pytest/<file>` carrying `CRASH-LINE <name>`.
fn crash_line(file: &str, name: &str) -> u32 {
    let path = data_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let marker = format!("CRASH-LINE {name}");
    let hits: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            l.match_indices(&marker)
                .any(|(at, m)| !l[at + m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'))
        })
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(hits.len(), 1, "{marker:?} in {}: lines {hits:?}", path.display());
    hits[0] as u32
}

/// One pytest invocation: its arguments after `python -m pytest`, and extra environment.
struct Pytest {
    args: Vec<OsString>,
    env: Vec<(String, OsString)>,
}

impl Pytest {
    fn new(args: &[&str]) -> Self {
        Pytest { args: os_args(args), env: Vec::new() }
    }

    fn env(mut self, name: &str, value: impl Into<OsString>) -> Self {
        self.env.push((name.to_string(), value.into()));
        self
    }

    /// `python -m pytest --rootdir ROOT -c tests/data/pytest/pytest.ini ARGS...`, with
    /// [`JUNIT_PLACEHOLDER`] in ARGS replaced by `junit`.
    fn argv(&self, junit: Option<&Path>) -> Vec<OsString> {
        let mut v = os_args(&[venv_python().as_os_str()]);
        v.extend(os_args(&["-m", "pytest", "--rootdir"]));
        v.push(root().into_os_string());
        v.push("-c".into());
        v.push(data_dir().join("pytest.ini").into_os_string());
        for a in &self.args {
            if a == JUNIT_PLACEHOLDER {
                v.push(junit.expect("a JUnit path for the placeholder").as_os_str().to_os_string());
            } else {
                v.push(a.clone());
            }
        }
        v
    }

    /// The environment every run gets: nothing from the caller that changes pytest, Python or
    /// crashcatch (a CI runner's GITHUB_ACTIONS included), bytecode not written.
    fn configure(&self, c: &mut Command) {
        c.current_dir(root());
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CRASHCATCH_")
                || name.starts_with("PYTEST_")
                || name.starts_with("GITHUB_")
                || matches!(name.as_ref(), "PYTHONFAULTHANDLER" | "PYTHONPATH" | "PYTHONHOME" | "CI")
            {
                c.env_remove(name.as_ref());
            }
        }
        c.env("PYTHONDONTWRITEBYTECODE", "1");
        for (k, v) in &self.env {
            c.env(k, v);
        }
    }

    fn bare(&self) -> Output {
        self.bare_junit(None)
    }

    fn bare_junit(&self, junit: Option<&Path>) -> Output {
        let argv = self.argv(junit);
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        self.configure(&mut c);
        run(c)
    }

    /// Under `crashcatch --output-dir DIR --junit-xml DIR/junit.xml CC_ARGS... --`.
    fn caught(&self, cc_args: &[&str]) -> Run {
        let dir = out_dir();
        let junit = dir.path().join("junit.xml");
        let mut c = Command::new(bin());
        self.configure(&mut c);
        c.arg("--output-dir").arg(dir.path()).arg("--junit-xml").arg(&junit);
        c.args(cc_args);
        c.arg("--");
        c.args(self.argv(Some(&junit)));
        let output = run(c);
        let mut reports = Vec::new();
        let mut text_files = Vec::new();
        for entry in std::fs::read_dir(dir.path()).expect("reading the output folder").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("crash-") && name.ends_with(".json") {
                let text = std::fs::read_to_string(entry.path()).expect("reading a report");
                let v: Value =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}\n{text}"));
                reports.push(v);
            } else if name.starts_with("crash-") && name.ends_with(".txt") {
                text_files.push(entry.path());
            }
        }
        reports.sort_by_key(|r| r["process"]["pid"].as_i64());
        text_files.sort();
        Run { output, dir, junit, reports, text_files }
    }
}

/// A pytest run under crashcatch.
struct Run {
    output: Output,
    dir: TempDir,
    junit: PathBuf,
    reports: Vec<Value>,
    text_files: Vec<PathBuf>,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The one report; fails when there are none or several.
    fn report(&self) -> &Value {
        assert_eq!(
            self.reports.len(),
            1,
            "expected exactly one report in {}, found {}\n{}",
            self.dir.path().display(),
            self.reports.len(),
            describe(&self.output)
        );
        assert_eq!(self.text_files.len(), 1, "expected one text report: {:?}", self.text_files);
        &self.reports[0]
    }
}

/// pytest's verdicts from `-v` output, as `PASSED <node id>` / `FAILED <node id>`, in either
/// layout (`node PASSED [ 33%]` plain, `[gw0] [ 33%] PASSED node` with xdist).
fn verdicts(stdout: &[u8]) -> BTreeSet<String> {
    let text = String::from_utf8_lossy(stdout);
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if !matches!(*w, "PASSED" | "FAILED" | "ERROR" | "SKIPPED") {
                continue;
            }
            let id = words[..i]
                .iter()
                .chain(words[i + 1..].iter())
                .find(|x| x.starts_with("tests/data/pytest/") && x.contains("::"));
            if let Some(id) = id {
                out.insert(format!("{w} {id}"));
            }
        }
    }
    out
}

fn pretty(v: &Value) -> String {
    let s = serde_json::to_string_pretty(v).unwrap_or_default();
    if s.len() > 20_000 {
        format!("{}\n... ({} bytes in all)", &s[..20_000], s.len())
    } else {
        s
    }
}

/// The pid conftest.py wrote for the pytest main process.
fn read_pid(path: &Path) -> i64 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.trim().parse().unwrap_or_else(|e| panic!("{}: {text:?}: {e}", path.display()))
}

fn assert_same_status(bare: &Output, caught: &Run) {
    assert_eq!(
        status_pair(&bare.status),
        status_pair(&caught.output.status),
        "pytest's exit status differs under crashcatch\nbare:\n{}\nunder crashcatch:\n{}",
        describe(bare),
        describe(&caught.output)
    );
}

fn assert_test(report: &Value, id: &str) {
    assert_eq!(
        report["process"]["test"].as_str(),
        Some(format!("{id} (call)").as_str()),
        "process.test\n{}",
        pretty(report)
    );
}

/// The Python line in the user's code: `python_user_frame` when it differs from the innermost
/// frame, else `python_call_site`.
fn assert_user_line(report: &Value, file: &str, function: &str, line: u32) {
    let frame = match &report["python_user_frame"] {
        Value::Null => &report["python_call_site"],
        f => f,
    };
    let path = frame["file"].as_str().unwrap_or_default();
    assert!(
        Path::new(path) == data_dir().join(file),
        "Python frame file {path:?}, expected {}\n{}",
        data_dir().join(file).display(),
        pretty(report)
    );
    assert_eq!(frame["function"].as_str(), Some(function), "{}", pretty(report));
    assert_eq!(frame["line"].as_u64(), Some(line as u64), "{}", pretty(report));
}

fn ancestry_pids(report: &Value) -> Vec<i64> {
    report["process"]["ancestry"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["pid"].as_i64()).collect())
        .unwrap_or_default()
}

fn crashed_thread(report: &Value) -> &Value {
    let threads = report["threads"].as_array().expect("threads[]");
    let crashed: Vec<&Value> = threads.iter().filter(|t| t["crashed"] == true).collect();
    assert_eq!(crashed.len(), 1, "crashed threads\n{}", pretty(report));
    crashed[0]
}

// ---------------------------------------------------------------------------------------------
// A small XML reader: enough to say that a JUnit file is well-formed and to walk it.

#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn descendants<'a>(&'a self, name: &str, out: &mut Vec<&'a Element>) {
        for c in &self.children {
            if c.name == name {
                out.push(c);
            }
            c.descendants(name, out);
        }
    }

    fn all(&self, name: &str) -> Vec<&Element> {
        let mut v = Vec::new();
        self.descendants(name, &mut v);
        v
    }
}

/// Checks an entity or character reference at the start of `s` (just after `&`); returns its length.
fn xml_reference(s: &str) -> Result<usize, String> {
    let end = s.find(';').ok_or("unterminated reference")?;
    let body = &s[..end];
    let ok = match body {
        "amp" | "lt" | "gt" | "quot" | "apos" => true,
        _ if body.starts_with("#x") => u32::from_str_radix(&body[2..], 16).is_ok(),
        _ if body.starts_with('#') => body[1..].parse::<u32>().is_ok(),
        _ => false,
    };
    if ok {
        Ok(end + 1)
    } else {
        Err(format!("unknown reference &{body};"))
    }
}

/// Character data: no `<`, every `&` a known reference, no control characters XML 1.0 forbids.
fn xml_text(s: &str) -> Result<(), String> {
    let mut i = 0;
    while i < s.len() {
        let c = s[i..].chars().next().unwrap();
        match c {
            '<' => return Err("'<' in text".into()),
            '&' => i += 1 + xml_reference(&s[i + 1..])?,
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {
                return Err(format!("control character {:#x}", c as u32))
            }
            c => i += c.len_utf8(),
        }
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

/// Parses a whole document: an optional declaration, comments, one root element.
fn parse_xml(doc: &str) -> Result<Element, String> {
    let mut rest = doc.trim_start_matches('\u{feff}');
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let err = |rest: &str, msg: &str| {
        let at = doc.len() - rest.len();
        format!("{msg} at byte {at}: {:?}", &rest[..rest.len().min(60)])
    };
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("<?") {
            let end = r.find("?>").ok_or_else(|| err(rest, "unterminated <?"))?;
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix("<!--") {
            let end = r.find("-->").ok_or_else(|| err(rest, "unterminated comment"))?;
            rest = &r[end + 3..];
        } else if let Some(r) = rest.strip_prefix("<![CDATA[") {
            if stack.is_empty() {
                return Err(err(rest, "CDATA outside the root"));
            }
            let end = r.find("]]>").ok_or_else(|| err(rest, "unterminated CDATA"))?;
            rest = &r[end + 3..];
        } else if let Some(r) = rest.strip_prefix("</") {
            let end = r.find('>').ok_or_else(|| err(rest, "unterminated end tag"))?;
            let name = r[..end].trim_end();
            let open = stack.pop().ok_or_else(|| err(rest, "end tag without a start"))?;
            if open.name != name {
                return Err(err(rest, &format!("</{name}> closes <{}>", open.name)));
            }
            rest = &r[end + 1..];
            match stack.last_mut() {
                Some(parent) => parent.children.push(open),
                None if root.is_none() => root = Some(open),
                None => return Err(err(rest, "a second root element")),
            }
        } else if let Some(r) = rest.strip_prefix('<') {
            let name_len = r.find(|c: char| !is_name_char(c)).unwrap_or(r.len());
            if name_len == 0 {
                return Err(err(rest, "bad tag name"));
            }
            let mut el = Element { name: r[..name_len].to_string(), ..Default::default() };
            let mut r = &r[name_len..];
            let closed;
            loop {
                let t = r.trim_start();
                if let Some(t) = t.strip_prefix("/>") {
                    r = t;
                    closed = true;
                    break;
                }
                if let Some(t) = t.strip_prefix('>') {
                    r = t;
                    closed = false;
                    break;
                }
                if t.len() == r.len() {
                    return Err(err(r, "no space before an attribute"));
                }
                let n = t.find(|c: char| !is_name_char(c)).unwrap_or(t.len());
                if n == 0 {
                    return Err(err(t, "bad attribute name"));
                }
                let key = &t[..n];
                let t = t[n..].trim_start().strip_prefix('=').ok_or_else(|| err(t, "attribute without ="))?;
                let t = t.trim_start();
                let q = t.chars().next().filter(|c| *c == '"' || *c == '\'').ok_or_else(|| err(t, "unquoted value"))?;
                let end = t[1..].find(q).ok_or_else(|| err(t, "unterminated value"))?;
                let value = &t[1..1 + end];
                xml_text(value).map_err(|e| err(t, &format!("attribute {key}: {e}")))?;
                if el.attrs.iter().any(|(k, _)| k == key) {
                    return Err(err(t, &format!("attribute {key} twice")));
                }
                el.attrs.push((key.to_string(), value.to_string()));
                r = &t[1 + end + 1..];
            }
            rest = r;
            if closed {
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(err(rest, "a second root element")),
                }
            } else {
                if stack.is_empty() && root.is_some() {
                    return Err(err(rest, "a second root element"));
                }
                stack.push(el);
            }
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            let text = &rest[..end];
            if stack.is_empty() {
                if !text.trim().is_empty() {
                    return Err(err(rest, "text outside the root"));
                }
            } else {
                xml_text(text).map_err(|e| err(rest, &e))?;
            }
            rest = &rest[end..];
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("<{}> is never closed", open.name));
    }
    root.ok_or_else(|| "no root element".to_string())
}

#[test]
fn xml_reader_accepts_and_rejects() {
    let ok = "<?xml version=\"1.0\"?>\n<a x='1' y=\"&lt;&#10;\"><!-- c --><b/><c>t &amp; u</c></a>\n";
    let root = parse_xml(ok).unwrap();
    assert_eq!(root.name, "a");
    assert_eq!(root.attr("y"), Some("&lt;&#10;"));
    assert_eq!(root.all("b").len(), 1);
    for bad in [
        "<a><b></a></b>",
        "<a>",
        "<a x=1/>",
        "<a>x < y</a>",
        "<a>&nbsp;</a>",
        "<a/><b/>",
        "<a x=\"1\" x=\"2\"/>",
        "<a>\u{1}</a>",
        "",
    ] {
        assert!(parse_xml(bad).is_err(), "accepted {bad:?}");
    }
}

/// Reads the JUnit file, checks it is well-formed XML, and that crashcatch's suite has exactly
/// one testcase for the test (classname, name and file as pytest's junit writer spells them)
/// with one `<error>`.
fn junit_crash_case(run: &Run, classname: &str, name: &str) {
    let text = std::fs::read_to_string(&run.junit)
        .unwrap_or_else(|e| panic!("reading {}: {e}\n{}", run.junit.display(), describe(&run.output)));
    let root = parse_xml(&text).unwrap_or_else(|e| panic!("{} is not well-formed: {e}\n{text}", run.junit.display()));
    assert_eq!(root.name, "testsuites", "{text}");
    let suites = root.all("testsuite");
    let ours: Vec<&&Element> = suites.iter().filter(|s| s.attr("name") == Some("crashcatch")).collect();
    assert_eq!(ours.len(), 1, "one crashcatch suite expected\n{text}");
    let cases: Vec<&Element> = ours[0]
        .children
        .iter()
        .filter(|c| c.name == "testcase" && c.attr("classname") == Some(classname) && c.attr("name") == Some(name))
        .collect();
    assert_eq!(cases.len(), 1, "one testcase {classname}.{name} expected\n{text}");
    let case = cases[0];
    let errors = case.all("error");
    assert_eq!(errors.len(), 1, "the testcase has one <error>\n{text}");
    assert!(errors[0].attr("message").is_some_and(|m| m.starts_with("SIGSEGV")), "{text}");
    let file = format!("{}.py", classname.replace('.', "/"));
    assert_eq!(case.attr("file"), Some(file.as_str()), "{text}");
}

/// Reads the JUnit file pytest wrote and crashcatch merged into (an independent XML parser):
/// no `crashcatch` suite, `tests` testcases as pytest wrote them, and the crashed test's own
/// testcase holding crashcatch's properties (kind, the report's fingerprint), its summary
/// before the message and its report after the text of the testcase's error.
fn junit_crash_in_pytests_case(run: &Run, classname: &str, name: &str, tests: usize) {
    let text = std::fs::read_to_string(&run.junit)
        .unwrap_or_else(|e| panic!("reading {}: {e}\n{}", run.junit.display(), describe(&run.output)));
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let suites: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testsuite")).collect();
    assert!(suites.iter().all(|s| s.attribute("name") != Some("crashcatch")), "no crashcatch suite\n{text}");
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), tests, "one testcase per test\n{text}");
    let case = cases
        .iter()
        .find(|c| c.attribute("classname") == Some(classname) && c.attribute("name") == Some(name))
        .unwrap_or_else(|| panic!("no testcase {classname}.{name}\n{text}"));
    let property = |k: &str| {
        case.descendants()
            .find(|p| p.has_tag_name("property") && p.attribute("name") == Some(k))
            .and_then(|p| p.attribute("value"))
    };
    assert_eq!(property("crashcatch.kind"), Some("crash"), "{text}");
    assert_eq!(property("crashcatch.fingerprint"), run.report()["fingerprint"].as_str(), "{text}");
    let errors: Vec<_> = case.children().filter(|c| c.has_tag_name("error") || c.has_tag_name("failure")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    let message = errors[0].attribute("message").unwrap_or("");
    assert!(message.starts_with("SIGSEGV") && message.contains("crashed while running"), "{message}");
    let body = errors[0].text().unwrap_or("");
    assert!(body.contains("crashed while running") && body.contains("was killed by SIGSEGV"), "{body}");
}

// ---------------------------------------------------------------------------------------------
// The cases.

const CRASH_FILE: &str = "tests/data/pytest/test_crash.py";

/// The plain run: pytest itself dies of SIGSEGV in test_crash, after test_before passed.
/// Faulthandler is on (pytest's default): its output still reaches stderr and there is exactly
/// one report. Text format, so the end-of-run summary line is printed.
#[test]
fn plain_run() {
    let p = Pytest::new(&["-v", CRASH_FILE]);
    let bare = p.bare();
    assert_eq!(
        exit_signal(&bare.status),
        Some(libc::SIGSEGV),
        "bare pytest should die of SIGSEGV\n{}",
        describe(&bare)
    );
    let run = p.caught(&[]);
    assert_same_status(&bare, &run);

    // pytest's own verdicts: test_before passed both times; test_after never ran.
    let expected: BTreeSet<String> = [format!("PASSED {}", node("test_crash.py", "test_before"))].into();
    assert_eq!(verdicts(&bare.stdout), expected, "{}", describe(&bare));
    assert_eq!(verdicts(&run.output.stdout), expected, "{}", describe(&run.output));

    let report = run.report();
    assert_eq!(report["signal"]["name"], "SIGSEGV");
    assert_test(report, &node("test_crash.py", "test_crash"));
    assert_user_line(report, "test_crash.py", "_read_null", crash_line("test_crash.py", "helper"));
    assert!(ancestry_pids(report).is_empty(), "pytest is the command itself: no ancestry\n{}", pretty(report));

    let stderr = run.stderr();
    assert!(stderr.contains("Fatal Python error: Segmentation fault"), "faulthandler's output is missing\n{stderr}");
    assert_eq!(stderr.matches("was killed by SIGSEGV").count(), 1, "one text report on stderr\n{stderr}");

    // The summary line: the last line of stderr.
    let pid = report["process"]["pid"].as_i64().unwrap();
    let summary = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let want = format!(
        "crashcatch: 1 crash: pid {pid} SIGSEGV ({} (call)); reports: {}",
        node("test_crash.py", "test_crash"),
        run.text_files[0].display()
    );
    assert_eq!(summary, want, "summary line\n{stderr}");

    // pytest never got to write a JUnit file: crashcatch's alone.
    junit_crash_case(&run, "tests.data.pytest.test_crash", "test_crash");
}

/// Faulthandler off: still exactly one report, and no faulthandler output.
#[test]
fn without_faulthandler() {
    let p = Pytest::new(&["-v", "-p", "no:faulthandler", CRASH_FILE]);
    let bare = p.bare();
    let run = p.caught(&["--format", "json"]);
    assert_same_status(&bare, &run);
    assert_eq!(exit_signal(&run.output.status), Some(libc::SIGSEGV), "{}", describe(&run.output));
    assert_eq!(verdicts(&bare.stdout), verdicts(&run.output.stdout));
    let report = run.report();
    assert_test(report, &node("test_crash.py", "test_crash"));
    assert_user_line(report, "test_crash.py", "_read_null", crash_line("test_crash.py", "helper"));
    let stderr = run.stderr();
    assert!(!stderr.contains("Fatal Python error"), "faulthandler was meant to be off\n{stderr}");
    // --format json: stderr is the JSON report and nothing else from crashcatch.
    let first: Value = serde_json::Deserializer::from_str(&stderr)
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("stderr does not start with the JSON report\n{stderr}"));
    assert_eq!(first["process"]["pid"], report["process"]["pid"]);
}

/// `-n 2`: the crash is in an xdist worker. pytest replaces the worker, reports the crashed test
/// as failed and the others as passed, and exits 1, as it does bare. The report's ancestry leads
/// to the pytest main process; pytest's JUnit file and crashcatch's testcase share one file.
#[test]
fn xdist_worker_crash() {
    let pids = out_dir();
    let pidfile = pids.path().join("pytest.pid");
    let p = Pytest::new(&["-v", "-n", "2", "--junitxml", JUNIT_PLACEHOLDER, CRASH_FILE])
        .env("CRASHCATCH_TEST_PIDFILE", pidfile.as_os_str());
    let bare_junit = pids.path().join("bare.xml");
    let bare = p.bare_junit(Some(&bare_junit));
    assert_eq!(bare.status.code(), Some(1), "bare pytest -n 2 should exit 1\n{}", describe(&bare));
    // Under crashcatch, pytest writes its JUnit file where crashcatch merges its own suite.
    let run = p.caught(&["--format", "json"]);
    assert_same_status(&bare, &run);

    let expected: BTreeSet<String> = [
        format!("PASSED {}", node("test_crash.py", "test_before")),
        format!("PASSED {}", node("test_crash.py", "test_after")),
        format!("FAILED {}", node("test_crash.py", "test_crash")),
    ]
    .into();
    assert_eq!(verdicts(&bare.stdout), expected, "{}", describe(&bare));
    assert_eq!(verdicts(&run.output.stdout), expected, "{}", describe(&run.output));

    let report = run.report();
    assert_test(report, &node("test_crash.py", "test_crash"));
    assert_user_line(report, "test_crash.py", "_read_null", crash_line("test_crash.py", "helper"));
    let main_pid = read_pid(&pidfile);
    assert_ne!(report["process"]["pid"].as_i64(), Some(main_pid), "the crash is in a worker");
    assert_eq!(ancestry_pids(report), vec![main_pid], "worker → pytest main\n{}", pretty(report));
    let main_cmd = report["process"]["ancestry"][0]["cmdline"].as_array().cloned().unwrap_or_default();
    assert!(main_cmd.iter().any(|a| a == "-n"), "the ancestor is pytest's main process: {main_cmd:?}");
    assert!(report["process"]["environment"]
        .as_array()
        .is_some_and(|e| e.iter().any(|v| v["name"] == "PYTEST_XDIST_WORKER")));

    // One file: pytest's suite with its verdicts, the crash in pytest's own testcase for the
    // test (the worker's "crashed while running" error): counted once.
    junit_crash_in_pytests_case(&run, "tests.data.pytest.test_crash", "test_crash", 3);
    let text = std::fs::read_to_string(&run.junit).unwrap();
    let root = parse_xml(&text).unwrap();
    let pytest_cases: Vec<&Element> = root
        .all("testsuite")
        .into_iter()
        .filter(|s| s.attr("name") == Some("pytest"))
        .flat_map(|s| s.all("testcase"))
        .collect();
    for passed in ["test_before", "test_after"] {
        let c = pytest_cases
            .iter()
            .find(|c| c.attr("name") == Some(passed))
            .unwrap_or_else(|| panic!("pytest's testcase {passed} is missing\n{text}"));
        assert!(c.children.iter().all(|x| x.name != "failure" && x.name != "error"), "{passed} passed\n{text}");
    }
    let bare_text = std::fs::read_to_string(&bare_junit).unwrap();
    let bare_root = parse_xml(&bare_text).unwrap();
    assert_eq!(
        bare_root.all("testcase").len(),
        pytest_cases.len(),
        "pytest's own testcases are kept as they were\nbare:\n{bare_text}\nunder crashcatch:\n{text}"
    );
}

/// Stands for the run's own JUnit path in pytest's arguments (see [`Pytest::argv`]).
const JUNIT_PLACEHOLDER: &str = "@JUNIT@";

/// GITHUB_ACTIONS=true: one `::error` workflow command, pointing at the user's line (relative
/// to GITHUB_WORKSPACE) and titled with the crash's fingerprint and the test.
#[test]
fn github_annotation() {
    let p =
        Pytest::new(&["-q", CRASH_FILE]).env("GITHUB_ACTIONS", "true").env("GITHUB_WORKSPACE", root().into_os_string());
    let run = p.caught(&["--format", "json"]);
    assert_eq!(exit_signal(&run.output.status), Some(libc::SIGSEGV), "{}", describe(&run.output));
    let report = run.report();
    let fingerprint = report["fingerprint"].as_str().unwrap_or_else(|| panic!("no fingerprint: {report}"));
    let stderr = run.stderr();
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("::error")).collect();
    let line = crash_line("test_crash.py", "helper");
    let want = format!(
        "::error file=tests/data/pytest/test_crash.py,line={line},title=crash {fingerprint} in tests/data/pytest/test_crash.py%3A%3Atest_crash::SIGSEGV"
    );
    assert_eq!(lines.len(), 1, "one annotation\n{stderr}");
    assert!(lines[0].starts_with(&want), "annotation\n  got  {}\n  want {want}...", lines[0]);
    assert!(
        lines[0].contains(&format!("Python tests/data/pytest/test_crash.py:{line} in _read_null")),
        "the message names the user's line: {}",
        lines[0]
    );
    assert!(lines[0].ends_with(&format!("; fingerprint {fingerprint}")), "{}", lines[0]);
}

/// A test whose multiprocessing child crashes; the test (and pytest) pass.
fn mp_child(method: &str) {
    let test = format!("test_mp_child_crash[{method}]");
    let id = node("test_children.py", &test);
    let pids = out_dir();
    let pidfile = pids.path().join("pytest.pid");
    let p = Pytest::new(&["-v", &id]).env("CRASHCATCH_TEST_PIDFILE", pidfile.as_os_str());
    let bare = p.bare();
    assert_eq!(bare.status.code(), Some(0), "{}", describe(&bare));
    let run = p.caught(&["--format", "json"]);
    assert_same_status(&bare, &run);
    assert_eq!(verdicts(&run.output.stdout), [format!("PASSED {id}")].into(), "{}", describe(&run.output));

    let report = run.report();
    let main_pid = read_pid(&pidfile);
    assert_ne!(report["process"]["pid"].as_i64(), Some(main_pid), "the child crashed, not pytest");
    assert_test(report, &id);
    assert_user_line(report, "crashers.py", "read_null", crash_line("crashers.py", "read_null"));
    let ancestry = ancestry_pids(report);
    assert_eq!(ancestry.last(), Some(&main_pid), "ancestry ends at pytest\n{}", pretty(report));
    // fork and spawn: pytest's own child; forkserver: the server's child.
    let want_len = if method == "forkserver" { 2 } else { 1 };
    assert_eq!(ancestry.len(), want_len, "ancestry\n{}", pretty(report));
    junit_crash_case(&run, "tests.data.pytest.test_children", &test);
}

#[test]
fn mp_child_fork() {
    mp_child("fork");
}

#[test]
fn mp_child_spawn() {
    mp_child("spawn");
}

#[test]
fn mp_child_forkserver() {
    mp_child("forkserver");
}

/// pytest → python middle.py → python crashers.py, which crashes: the grandchild is followed,
/// names the test (inherited in its environment), and its ancestry is the whole chain.
#[test]
fn subprocess_grandchild() {
    let id = node("test_children.py", "test_subprocess_grandchild_crash");
    let pids = out_dir();
    let pidfile = pids.path().join("pytest.pid");
    let p = Pytest::new(&["-v", &id]).env("CRASHCATCH_TEST_PIDFILE", pidfile.as_os_str());
    let bare = p.bare();
    assert_eq!(bare.status.code(), Some(0), "{}", describe(&bare));
    let run = p.caught(&["--format", "json"]);
    assert_same_status(&bare, &run);
    assert_eq!(verdicts(&run.output.stdout), [format!("PASSED {id}")].into(), "{}", describe(&run.output));

    let report = run.report();
    assert_test(report, &id);
    let cmd: Vec<String> = serde_json::from_value(report["process"]["cmdline"].clone()).unwrap();
    assert!(cmd.last().is_some_and(|a| a.ends_with("crashers.py")), "{cmd:?}");
    assert_user_line(report, "crashers.py", "read_null", crash_line("crashers.py", "read_null"));
    let ancestry = report["process"]["ancestry"].as_array().cloned().unwrap_or_default();
    assert_eq!(ancestry.len(), 2, "crashers.py → middle.py → pytest\n{}", pretty(report));
    assert!(
        ancestry[0]["cmdline"]
            .as_array()
            .is_some_and(|c| c.last().and_then(Value::as_str).is_some_and(|a| a.ends_with("middle.py"))),
        "{}",
        pretty(report)
    );
    assert_eq!(ancestry[1]["pid"].as_i64(), Some(read_pid(&pidfile)));
}

/// tests/data/pytest/late_callback.c, built once into cargo's temporary folder for tests.
fn late_callback_lib() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("liblate_callback.so");
        let src = data_dir().join("late_callback.c");
        let built = Command::new("gcc")
            .args(["-shared", "-fPIC", "-O0", "-g", "-fno-omit-frame-pointer", "-Wall", "-o"])
            .arg(&out)
            .arg(&src)
            .arg("-lpthread")
            .output()
            .expect("running gcc");
        assert!(built.status.success(), "gcc {}:\n{}", src.display(), describe(&built));
        out
    })
    .clone()
}

/// All tests pass; then, after Py_FinalizeEx, a native thread calls PyGILState_Ensure and the
/// process dies of SIGSEGV at exit.
///
/// pytest removes PYTEST_CURRENT_TEST after every test, so at exit there is no test to name:
/// `process.test` is accepted when absent (and must be the last test if present). What is
/// required instead: one report, the interpreter known to be finalized (or a diagnosis that says
/// so), and the native thread's own stack with the library's function and line.
#[test]
fn crash_at_interpreter_exit() {
    let lib = late_callback_lib();
    let file = "tests/data/pytest/test_at_exit.py";
    let p = Pytest::new(&["-v", file]).env("CRASHCATCH_TEST_LATE_LIB", lib.as_os_str());
    let bare = p.bare();
    assert_eq!(exit_signal(&bare.status), Some(libc::SIGSEGV), "{}", describe(&bare));
    let run = p.caught(&["--format", "json"]);
    assert_same_status(&bare, &run);
    let expected: BTreeSet<String> = ["test_first", "test_second", "test_last_starts_native_thread"]
        .iter()
        .map(|t| format!("PASSED {}", node("test_at_exit.py", t)))
        .collect();
    assert_eq!(verdicts(&bare.stdout), expected, "{}", describe(&bare));
    assert_eq!(verdicts(&run.output.stdout), expected, "{}", describe(&run.output));
    assert!(run.stdout().contains("3 passed"), "{}", describe(&run.output));

    let report = run.report();
    match report["process"]["test"].as_str() {
        None => {}
        Some(t) => assert!(t.starts_with(&node("test_at_exit.py", "test_last_starts_native_thread")), "{t}"),
    }
    let state = report["python"]["state"].as_str().unwrap_or_default();
    let diagnosis = report["diagnosis"].as_str().unwrap_or_default();
    assert!(
        matches!(state, "finalizing" | "finalized") || diagnosis.contains("finalized"),
        "python.state {state:?}, diagnosis {diagnosis:?}\n{}",
        pretty(report)
    );

    let thread = crashed_thread(report);
    assert_eq!(thread["name"].as_str(), Some("late-callback"), "{}", pretty(report));
    assert_eq!(thread["main"], false);
    let natives: Vec<&Value> = thread["frames"].as_array().unwrap().iter().filter(|f| f["kind"] == "native").collect();
    let names: Vec<&str> = natives.iter().filter_map(|f| f["function"].as_str()).collect();
    let ensure = names.iter().position(|n| *n == "PyGILState_Ensure");
    let ours = natives.iter().position(|f| f["function"] == "late_callback_thread");
    assert!(
        matches!((ensure, ours), (Some(e), Some(o)) if e < o),
        "PyGILState_Ensure called from late_callback_thread: {names:?}"
    );
    let ours = natives[ours.unwrap()];
    assert!(ours["module"].as_str().is_some_and(|m| Path::new(m) == lib), "{ours}");
    assert!(ours["file"].as_str().is_some_and(|f| f.ends_with("late_callback.c")), "{ours}");
    assert_eq!(ours["line"].as_u64(), Some(crash_line("late_callback.c", "late") as u64), "{ours}");
    assert!(
        !thread["frames"].as_array().unwrap().iter().any(|f| f["kind"] == "python"),
        "the native thread has no Python frames"
    );
}
