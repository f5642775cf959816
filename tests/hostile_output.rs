//! The wrapper is never the failure (issue 11, the output half): nothing crashcatch prints can
//! be steered by the target, the JUnit file is written like the reports and never costs
//! pytest's results, and the exit status is always the command's.
//!
//! - Hostile targets: thread names set with prctl(PR_SET_NAME), a Python file name and
//!   qualname set through compile() and a code object, a source line, a C function name (the
//!   symbol renamed with objcopy) in a program under a hostile folder name, PYTEST_CURRENT_TEST
//!   and an environment value, all holding escape sequences, newlines and GitHub workflow
//!   commands. Stderr (with GITHUB_ACTIONS=true), the .txt, .json and JUnit files are read as
//!   a terminal and GitHub's runner would read them.
//! - The JUnit file: a symlink, a FIFO, a non-UTF-8 file, a file over the cap at its name;
//!   pytest's file merged into keeps its mode and suites.
//! - A closed stderr (a pipe with no reader, a hung-up terminal, fd 2 closed) and panics
//!   injected into the capture and the rendering (CRASHCATCH_TEST_PANIC_IN) change neither the
//!   exit status nor the signal, and a report is still written.
//! - A property test feeds random strings into every string field of the model through the
//!   text, JSON, JUnit and GitHub renderers.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::io::FromRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use crashcatch::report::render::escape::terminal;
use serde_json::Value;

const SEGV: i32 = libc::SIGSEGV;

/// The payload every hostile string carries: a screen clear and a title change, a line break
/// followed by a workflow command in both syntaxes, an escaped newline GitHub would decode, a
/// C1 CSI and a right-to-left override.
const PAYLOAD: &str = "\x1b[2J\x1b]0;owned\x07\r\n::error file=setup.py,line=1::injected ##[error]legacy %0A::warning::x \u{9b}31m\u{202e}";

// ---- how a terminal and GitHub's runner read what crashcatch wrote ----

/// Raw control characters (C0 but LF, DEL, C1) and the line/bidi characters, with positions.
fn raw_controls(s: &str) -> Vec<(usize, char)> {
    s.char_indices()
        .filter(|&(_, c)| {
            c != '\n'
                && (c.is_control()
                    || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        })
        .collect()
}

/// A workflow command as GitHub's runner parses it (actions/runner ActionCommand.cs).
#[derive(Debug, Clone, PartialEq)]
struct WorkflowCommand {
    name: String,
    properties: Vec<(String, String)>,
    data: String,
}

/// Every command the runner registers (ActionCommandManager), `stop-commands` included.
const REGISTERED: &[&str] = &[
    "set-env",
    "set-output",
    "save-state",
    "add-mask",
    "add-path",
    "add-matcher",
    "remove-matcher",
    "debug",
    "warning",
    "error",
    "notice",
    "group",
    "endgroup",
    "echo",
    "stop-commands",
];

fn unescape(s: &str, map: &[(&str, &str)]) -> String {
    map.iter().fold(s.to_string(), |acc, (from, to)| acc.replace(from, to))
}

/// `::name k=v,k=v::data`, after leading white space (TryParseV2).
fn parse_v2(line: &str) -> Option<WorkflowCommand> {
    let m = line.trim_start();
    let rest = m.strip_prefix("::")?;
    let end = rest.find("::")?;
    let info = &rest[..end];
    let (name, props) = match info.find(' ') {
        Some(i) => (&info[..i], &info[i + 1..]),
        None => (info, ""),
    };
    if !REGISTERED.contains(&name) {
        return None;
    }
    let properties = props
        .trim()
        .split(',')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let parts: Vec<&str> = p.splitn(2, '=').filter(|x| !x.is_empty()).collect();
            (parts.len() == 2).then(|| {
                let v = unescape(parts[1], &[("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")]);
                (parts[0].to_string(), v)
            })
        })
        .collect();
    let data = unescape(&rest[end + 2..], &[("%0D", "\r"), ("%0A", "\n"), ("%25", "%")]);
    Some(WorkflowCommand { name: name.to_string(), properties, data })
}

/// `##[name k=v;k=v]data` anywhere in the line (TryParse, the legacy syntax).
fn parse_v1(line: &str) -> Option<WorkflowCommand> {
    let at = line.find("##[")?;
    let rb = at + line[at..].find(']')?;
    let info = &line[at + 3..rb];
    let name = info.split(' ').next().unwrap_or("");
    REGISTERED.contains(&name).then(|| WorkflowCommand {
        name: name.to_string(),
        properties: Vec::new(),
        data: line[rb + 1..].to_string(),
    })
}

/// Every workflow command the runner would find in `text` (lines end at LF or CR).
fn workflow_commands(text: &str) -> Vec<WorkflowCommand> {
    text.split(['\n', '\r']).filter_map(|l| parse_v2(l).or_else(|| parse_v1(l))).collect()
}

/// What no output may contain: raw controls, and any workflow command but crashcatch's own
/// `::error` annotations (`annotations` of them).
fn assert_unsteerable(what: &str, text: &str, annotations: usize) -> Vec<WorkflowCommand> {
    let raw = raw_controls(text);
    assert!(raw.is_empty(), "{what}: raw control characters {:?}\n{text}", &raw[..raw.len().min(8)]);
    let cmds = workflow_commands(text);
    let ours: Vec<WorkflowCommand> = cmds.iter().filter(|c| c.name == "error").cloned().collect();
    assert!(
        cmds.len() == annotations && ours.len() == annotations,
        "{what}: expected {annotations} ::error annotation(s), the runner would find {cmds:#?}\n{text}"
    );
    assert!(!text.contains("##["), "{what}: a legacy workflow command prefix\n{text}");
    ours
}

fn property<'a>(c: &'a WorkflowCommand, key: &str) -> Option<&'a str> {
    c.properties.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The `crashcatch` suite of a JUnit file, parsed by an independent strict XML parser; the
/// number of its testcases and the names of the other suites.
fn junit_suites(path: &Path) -> (usize, Vec<String>) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let doc =
        roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}\n{text}", path.display()));
    let mut ours = None;
    let mut others = Vec::new();
    for s in doc.descendants().filter(|n| n.has_tag_name("testsuite")) {
        match s.attribute("name") {
            Some("crashcatch") => {
                assert!(ours.is_none(), "two crashcatch suites in {}", path.display());
                ours = Some(s.children().filter(|n| n.has_tag_name("testcase")).count());
            }
            other => others.push(other.unwrap_or("").to_string()),
        }
    }
    (ours.unwrap_or_else(|| panic!("no crashcatch suite in {}:\n{text}", path.display())), others)
}

// ---- running crashcatch ----

/// An environment without the caller's CI, pytest or crashcatch settings.
fn clean(c: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let n = name.to_string_lossy();
        if n.starts_with("CRASHCATCH_") || n.starts_with("PYTEST_") || n.starts_with("GITHUB_") || n == "CI" {
            c.env_remove(&name);
        }
    }
}

/// `crashcatch --output-dir DIR --junit-xml DIR/junit.xml ARGS -- CMD`, as GitHub Actions runs it.
fn in_ci(dir: &Path, args: &[&str], cmd: &[&OsStr]) -> Command {
    let mut c = Command::new(bin());
    clean(&mut c);
    c.env("GITHUB_ACTIONS", "true");
    c.arg("--output-dir").arg(dir).arg("--junit-xml").arg(dir.join("junit.xml")).args(args).arg("--").args(cmd);
    c
}

fn report_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("crash-") && n.ends_with(ext)
        })
        .collect();
    v.sort();
    v
}

fn one_report(dir: &Path, out: &std::process::Output) -> (Value, String) {
    let json = report_files(dir, ".json");
    let txt = report_files(dir, ".txt");
    assert!(json.len() == 1 && txt.len() == 1, "expected one report: {json:?} {txt:?}\n{}", describe(out));
    let text = fs::read_to_string(&json[0]).unwrap();
    let raw = raw_controls(&text);
    assert!(raw.is_empty(), "raw controls in the JSON report: {raw:?}");
    assert!(!text.contains("##["), "the JSON report holds a legacy workflow command prefix");
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("the JSON report does not parse: {e}\n{text}"));
    (v, fs::read_to_string(&txt[0]).unwrap())
}

/// Checks one run's stderr, text report and JUnit file; returns the annotation.
fn check_outputs(dir: &Path, out: &std::process::Output) -> (Value, WorkflowCommand) {
    let stderr = String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8");
    let (json, text) = one_report(dir, out);
    let annotation = assert_unsteerable("stderr", &stderr, 1).remove(0);
    assert_unsteerable("the text report", &text, 0);
    let junit_text = fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_unsteerable("the JUnit file", &junit_text, 0);
    assert_eq!(junit_suites(&dir.join("junit.xml")).0, 1);
    (json, annotation)
}

fn python() -> Option<PathBuf> {
    let p = venv_dir().join("bin").join("python");
    if !p.exists() {
        skip("hostile_output python", "target/venv is missing (make venv)");
        return None;
    }
    let out = Command::new(&p).args(["-c", "import sys; print(sys.version_info >= (3, 11))"]).output().ok()?;
    if String::from_utf8_lossy(&out.stdout).trim() != "True" {
        skip("hostile_output python", "the venv's Python is older than 3.11 (no co_qualname)");
        return None;
    }
    Some(p)
}

const PY_SCRIPT: &str = r#"
import ctypes, os, sys, threading
payload, source = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None)
def name(n):
    libc.prctl(15, ctypes.c_char_p(n), 0, 0, 0)  # PR_SET_NAME: 15 bytes
name(b"\x1b[2J\n::error::")
os.environ["PYTEST_CURRENT_TEST"] = "tests/t.py::test_x[" + payload + "] (call)"
os.environ["HOSTILE_VALUE"] = payload
ready = threading.Event()
def other():
    name(b"\x1b]0;t\x07\n##[echo]")
    ready.set()
    threading.Event().wait()
threading.Thread(target=other, daemon=True).start()
ready.wait()
code = compile("def f():\n    import ctypes; ctypes.string_at(0)\n", source, "exec")
ns = {}
exec(code, ns)
f = ns["f"]
f.__code__ = f.__code__.replace(co_qualname="q" + payload, co_name="n" + payload)
f()
"#;

/// A folder under `top` whose name carries the payload.
fn hostile_dir(top: &Path) -> PathBuf {
    let d = top.join(format!("evil{}", PAYLOAD.replace('/', "|")));
    fs::create_dir(&d).unwrap();
    d
}

#[test]
fn python_strings_cannot_steer_any_output() {
    let Some(py) = python() else { return };
    let work = out_dir();
    let src_dir = hostile_dir(work.path());
    // The file the code object names: its line 2 (the crashing line) is a workflow command.
    let source = src_dir.join("mod\x1b[31m\n::error::file.py");
    fs::write(&source, "# hostile\n  ::error file=setup.py::from the source line\n").unwrap();
    let script = work.path().join("crash.py");
    fs::write(&script, PY_SCRIPT).unwrap();
    let reports = out_dir();
    let cmd = [py.as_os_str(), script.as_os_str(), OsStr::new(PAYLOAD), source.as_os_str()];
    let mut c = in_ci(reports.path(), &["--show-env"], &cmd);
    c.env("HOSTILE_VALUE", "x");
    let out = run(c);
    assert_eq!(out.status.signal(), Some(SEGV), "{}", describe(&out));
    let (json, annotation) = check_outputs(reports.path(), &out);

    // The model keeps every raw string: the JSON reads back what the target wrote.
    let test = format!("tests/t.py::test_x[{PAYLOAD}] (call)");
    assert_eq!(json["process"]["test"], test.as_str());
    let user = &json["python_user_frame"];
    assert_eq!(user["file"], source.to_str().unwrap(), "{json:#}");
    assert_eq!(user["function"], format!("q{PAYLOAD}").as_str());
    let names: Vec<&str> = json["threads"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"\x1b[2J\n::error::"), "{names:?}");
    assert!(names.contains(&"\x1b]0;t\x07\n##[echo]"), "{names:?}");
    let env = json["process"]["environment"].as_array().unwrap();
    assert!(env.iter().any(|e| e["name"] == "HOSTILE_VALUE" && e["value"] == PAYLOAD), "{env:?}");

    // GitHub gets one annotation, at the escaped file, titled with the escaped test id.
    assert_eq!(property(&annotation, "file"), Some(terminal::text(source.to_str().unwrap()).as_ref()));
    assert_eq!(property(&annotation, "line"), Some("2"));
    let title = property(&annotation, "title").unwrap();
    // `crash <fingerprint> in <test id>`: the fingerprint is ours (hex), the test id escaped.
    assert!(title.starts_with("crash ") && title.contains(" in tests/t.py::test_x[\\x1b[2J"), "{title}");
    assert!(annotation.data.contains(&*terminal::text(&format!("q{PAYLOAD}"))), "{annotation:?}");
    assert_eq!(annotation.properties.len(), 3, "{annotation:?}");

    // The text report shows the strings escaped, the source line included.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\\x3a:error file=setup.py::from the source line"), "{stderr}");
    assert!(stderr.contains("Thread") && stderr.contains("\"\\x1b[2J\\n::error::\""), "{stderr}");
}

#[test]
fn native_names_cannot_steer_any_output() {
    let work = out_dir();
    let dir = hostile_dir(work.path());
    let src = work.path().join("native.c");
    fs::write(
        &src,
        "#include <stdio.h>\n#include <unistd.h>\n\
         __attribute__((noinline)) void crash_here(volatile int *p) { *p = 1; }\n\
         int main(void) { printf(\"hostile pid %d\\n\", getpid()); fflush(stdout); crash_here(0); return 0; }\n",
    )
    .unwrap();
    let exe = dir.join("prog\x1b[5m\n::error::exe");
    let cc = Command::new("cc").args(["-O0", "-fno-omit-frame-pointer", "-o"]).arg(&exe).arg(&src).status();
    if !cc.is_ok_and(|s| s.success()) {
        skip("native_names_cannot_steer_any_output", "no C compiler (cc)");
        return;
    }
    let symbol = format!("evil{PAYLOAD}").replace('=', "-");
    let mut rename = std::ffi::OsString::from("crash_here=");
    rename.push(&symbol);
    let oc = Command::new("objcopy").arg("--redefine-sym").arg(&rename).arg(&exe).status();
    if !oc.is_ok_and(|s| s.success()) {
        skip("native_names_cannot_steer_any_output", "objcopy could not rename the symbol");
        return;
    }
    let reports = out_dir();
    let out = run(in_ci(reports.path(), &[], &[exe.as_os_str()]));
    assert_eq!(out.status.signal(), Some(SEGV), "{}", describe(&out));
    let (json, _annotation) = check_outputs(reports.path(), &out);
    assert_eq!(json["culprit"]["frame"]["function"], symbol.as_str(), "{:#}", json["culprit"]);
    assert_eq!(json["process"]["exe"], exe.to_str().unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&*terminal::text(&symbol)), "{stderr}");
}

/// A test that sleeps in libc, with a parametrized id that carries the payload (pytest escapes
/// its controls; the workflow commands and `%0A` stay).
const TIMEOUT_TEST: &str = "import ctypes, pytest\n\
PAYLOAD = bytes.fromhex('HEX').decode()\n\
@pytest.mark.parametrize('x', [1], ids=[PAYLOAD])\n\
def test_slow(x):\n\
\x20   ctypes.CDLL(None).sleep(1000)\n";

/// A test past `--test-timeout`, as GitHub's runner reads crashcatch's stderr: one `::error`,
/// titled as a timeout (not a crash), at the test's file relative to GITHUB_WORKSPACE and the
/// line the test was on, its id escaped.
#[test]
fn a_test_timeout_is_a_timeout_annotation_at_the_tests_line() {
    let Some(py) = python() else { return };
    let work = out_dir();
    fs::create_dir(work.path().join("tests")).unwrap();
    let hex: String = PAYLOAD.bytes().map(|b| format!("{b:02x}")).collect();
    fs::write(work.path().join("tests").join("test_slow.py"), TIMEOUT_TEST.replace("HEX", &hex)).unwrap();
    let reports = out_dir();
    let mut c = Command::new(bin());
    clean(&mut c);
    c.env("GITHUB_ACTIONS", "true").env("GITHUB_WORKSPACE", work.path()).env("PYTHONDONTWRITEBYTECODE", "1");
    c.args(["--test-timeout", "1", "--output-dir"]).arg(reports.path()).arg("--").arg(&py);
    c.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_slow.py"]).current_dir(work.path());
    let out = run(c);
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "the test was meant to be killed\n{}", describe(&out));
    let stderr = String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8");
    let annotation = assert_unsteerable("stderr", &stderr, 1).remove(0);
    assert_eq!(property(&annotation, "file"), Some("tests/test_slow.py"), "{annotation:?}");
    assert_eq!(property(&annotation, "line"), Some("5"), "{annotation:?}");
    let title = property(&annotation, "title").unwrap();
    assert!(title.starts_with("timeout in tests/test_slow.py::test_slow["), "{title}");
    assert!(title.contains("::error file=setup.py,line=1::injected"), "the id, unescaped by the runner: {title}");
    assert!(!title.contains("crash"), "{title}");
    assert!(annotation.data.starts_with("test ran longer than 1 s (killed (SIGKILL))"), "{annotation:?}");
    assert_eq!(annotation.properties.len(), 3, "{annotation:?}");
}

// ---- the JUnit file ----

/// `sh -c 'kill -SEGV $$'` under crashcatch with `--junit-xml JUNIT`.
fn crash_with_junit(dir: &Path, junit: &Path) -> std::process::Output {
    let mut c = Command::new(bin());
    clean(&mut c);
    c.arg("--output-dir").arg(dir.join("reports")).arg("--junit-xml").arg(junit);
    c.args(["--", "sh", "-c", "kill -SEGV $$"]);
    let out = run(c);
    assert_eq!(out.status.signal(), Some(SEGV), "{}", describe(&out));
    out
}

const PYTEST_XML: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites><testsuite name=\"pytest\" errors=\"0\" failures=\"0\" skipped=\"0\" tests=\"2\"><testcase classname=\"tests.test_a\" name=\"test_one\" time=\"0.001\" /><testcase classname=\"tests.test_a\" name=\"test_two\" time=\"0.001\" /></testsuite></testsuites>";

/// The file was left alone; the suite is in `<stem>.crashcatch.xml`, and stderr said why.
fn assert_beside(junit: &Path, out: &std::process::Output, why: &str) {
    let beside = junit.with_extension("crashcatch.xml");
    assert_eq!(junit_suites(&beside), (1, vec![]), "{}", describe(out));
    let m = fs::symlink_metadata(&beside).unwrap();
    assert!(m.file_type().is_file());
    assert_eq!(m.mode() & 0o777, 0o600);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("was left as it is")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(why) && lines[0].contains(beside.to_str().unwrap()), "{stderr}");
    let dir = junit.parent().unwrap();
    let tmp: Vec<_> =
        fs::read_dir(dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
}

#[test]
fn junit_symlink_is_never_followed() {
    let dir = out_dir();
    let victim = dir.path().join("victim.xml");
    fs::write(&victim, PYTEST_XML).unwrap();
    let junit = dir.path().join("junit.xml");
    std::os::unix::fs::symlink(&victim, &junit).unwrap();
    let out = crash_with_junit(dir.path(), &junit);
    assert_eq!(fs::read_to_string(&victim).unwrap(), PYTEST_XML, "written through the symlink");
    assert_eq!(fs::read_link(&junit).unwrap(), victim, "the symlink was replaced");
    assert_beside(&junit, &out, "symbolic link");
}

#[test]
fn junit_fifo_does_not_hang() {
    let dir = out_dir();
    let junit = dir.path().join("junit.xml");
    let c = std::ffi::CString::new(junit.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // crashcatch before this test blocked in open() for ever, the crashed child stopped: the
    // run fails after common::timeout().
    let out = crash_with_junit(dir.path(), &junit);
    assert!(fs::symlink_metadata(&junit).unwrap().file_type().is_fifo());
    assert_beside(&junit, &out, "FIFO");
}

#[test]
fn junit_not_utf8_keeps_pytests_suites() {
    let dir = out_dir();
    let junit = dir.path().join("junit.xml");
    // One byte that is not UTF-8, in a test's name.
    let mut bytes = PYTEST_XML.as_bytes().to_vec();
    let at = PYTEST_XML.find("test_two").unwrap() + 5;
    bytes.insert(at, 0xff);
    fs::write(&junit, &bytes).unwrap();
    let out = crash_with_junit(dir.path(), &junit);
    assert_eq!(fs::read(&junit).unwrap(), bytes, "pytest's file was changed");
    assert_beside(&junit, &out, "not UTF-8");
}

#[test]
fn junit_over_the_cap_is_left_alone() {
    let dir = out_dir();
    let junit = dir.path().join("junit.xml");
    let f = fs::File::create(&junit).unwrap();
    f.set_len(65 << 20).unwrap(); // sparse
    drop(f);
    let out = crash_with_junit(dir.path(), &junit);
    assert_eq!(fs::metadata(&junit).unwrap().len(), 65 << 20);
    assert_beside(&junit, &out, "larger than 64 MiB");
}

#[test]
fn junit_merge_keeps_mode_and_pytests_suites() {
    let dir = out_dir();
    let junit = dir.path().join("junit.xml");
    fs::write(&junit, PYTEST_XML).unwrap();
    fs::set_permissions(&junit, fs::Permissions::from_mode(0o644)).unwrap();
    let out = crash_with_junit(dir.path(), &junit);
    assert_eq!(junit_suites(&junit), (1, vec!["pytest".to_string()]), "{}", describe(&out));
    let text = fs::read_to_string(&junit).unwrap();
    assert!(text.starts_with(&PYTEST_XML[..PYTEST_XML.len() - "</testsuites>".len()]), "{text}");
    assert_eq!(fs::metadata(&junit).unwrap().mode() & 0o777, 0o644);
    assert!(!junit.with_extension("crashcatch.xml").exists());
    // pytest's file unfinished (killed while writing it): left as it is too.
    let cut = PYTEST_XML.strip_suffix("</testsuite></testsuites>").unwrap();
    fs::write(&junit, cut).unwrap();
    let out = crash_with_junit(dir.path(), &junit);
    assert_eq!(fs::read_to_string(&junit).unwrap(), cut);
    assert_beside(&junit, &out, "unfinished");
}

// ---- a closed stderr ----

/// Runs `c` with `stderr` as its standard error; its status, or a failure after 60 s.
fn status_with_stderr(mut c: Command, stderr: Stdio) -> ExitStatus {
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
    let mut child = c.spawn().unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(s) => s.unwrap(),
        Err(_) => {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("still running after 60 s: {c:?}");
        }
    }
}

/// The write end of a pipe whose read end is closed: writes fail with EPIPE.
fn broken_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) into an array of two ints; the read end is closed at once.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        libc::close(fds[0]);
        Stdio::from(fs::File::from_raw_fd(fds[1]))
    }
}

/// A terminal whose other side is gone: writes fail with EIO.
fn hung_up_terminal() -> Stdio {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty(3) into two ints; the master is closed at once.
    unsafe {
        let rc = libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null());
        assert_eq!(rc, 0);
        libc::close(master);
        Stdio::from(fs::File::from_raw_fd(slave))
    }
}

/// Crashes and exits under crashcatch with every output on, bare and under crashcatch, with
/// stderr from `stderr()`: the same status each time, and the report on disk.
fn same_status_without_stderr(stderr: fn() -> Stdio, what: &str) {
    let scripts = [
        "kill -SEGV $$",
        // A child crashes; the command exits 3 (the summary line is written at the end).
        "sh -c 'kill -SEGV $$'; exit 3",
        "exit 7",
    ];
    for script in scripts {
        let mut bare = Command::new("sh");
        bare.args(["-c", script]);
        let expected = status_with_stderr(bare, stderr());
        let dir = out_dir();
        for format in ["text", "json"] {
            let c = in_ci(dir.path(), &["--format", format], &[OsStr::new("sh"), OsStr::new("-c"), OsStr::new(script)]);
            let got = status_with_stderr(c, stderr());
            assert_eq!(
                (got.code(), got.signal()),
                (expected.code(), expected.signal()),
                "{what}, {script:?}, --format {format}: crashcatch {got:?}, bare {expected:?}"
            );
        }
        let reports = report_files(dir.path(), ".json");
        let crashes = if script == "exit 7" { 0 } else { 2 };
        assert_eq!(reports.len(), crashes, "{what}, {script:?}: {reports:?}");
        for r in reports {
            serde_json::from_str::<Value>(&fs::read_to_string(&r).unwrap()).unwrap();
        }
    }
}

#[test]
fn closed_stderr_pipe_keeps_the_status() {
    same_status_without_stderr(broken_pipe, "stderr a pipe with no reader");
}

#[test]
fn hung_up_terminal_keeps_the_status() {
    same_status_without_stderr(hung_up_terminal, "stderr a hung-up terminal");
}

#[test]
fn closed_fd_2_keeps_the_status() {
    fn closed() -> Stdio {
        Stdio::null()
    }
    // fd 2 closed before exec (Stdio cannot say "closed").
    let dir = out_dir();
    let mut c = in_ci(dir.path(), &[], &[OsStr::new("sh"), OsStr::new("-c"), OsStr::new("kill -SEGV $$")]);
    // SAFETY: close(2) between fork and exec, async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, || {
            libc::close(2);
            Ok(())
        });
    }
    let got = status_with_stderr(c, closed());
    assert_eq!(got.signal(), Some(SEGV), "{got:?}");
    for r in report_files(dir.path(), ".json") {
        serde_json::from_str::<Value>(&fs::read_to_string(&r).unwrap()).unwrap();
    }
    assert_eq!(report_files(dir.path(), ".json").len(), 1);
}

// ---- panics ----

/// With a panic injected into `stage`, two crashing children and an exit status: the status
/// is the command's, each crash still has a report, which says what failed.
fn panic_in(stage: &str) {
    let dir = out_dir();
    let script = "sh -c 'kill -SEGV $$'; sh -c 'kill -SEGV $$'; exit 3";
    let mut c = in_ci(dir.path(), &[], &[OsStr::new("sh"), OsStr::new("-c"), OsStr::new(script)]);
    c.env("CRASHCATCH_TEST_PANIC_IN", stage);
    let out = run(c);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let reports = report_files(dir.path(), ".json");
    assert_eq!(reports.len(), 2, "{reports:?}\n{}", describe(&out));
    let note = format!("crashcatch failed while making this report: injected panic (CRASHCATCH_TEST_PANIC_IN={stage})");
    for r in &reports {
        let v: Value = serde_json::from_str(&fs::read_to_string(r).unwrap()).unwrap();
        assert_eq!(v["signal"]["name"], "SIGSEGV");
        assert!(v["process"]["pid"].as_i64().unwrap() > 0);
        assert!(v["notes"].as_array().unwrap().iter().any(|n| n == note.as_str()), "{v:#}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let internal: Vec<&str> =
        stderr.lines().filter(|l| l.starts_with("crashcatch: internal error: injected panic")).collect();
    assert!(!internal.is_empty(), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE") && !stderr.contains("stack backtrace"), "{stderr}");
    // Each crash is on stderr and in the JUnit file all the same.
    assert_eq!(stderr.matches(&note).count(), 2, "{stderr}");
    assert_eq!(junit_suites(&dir.path().join("junit.xml")).0, 2);

    // The signal itself is still delivered.
    let dir = out_dir();
    let mut c = in_ci(dir.path(), &[], &[OsStr::new("sh"), OsStr::new("-c"), OsStr::new("kill -SEGV $$")]);
    c.env("CRASHCATCH_TEST_PANIC_IN", stage);
    let out = run(c);
    assert_eq!(out.status.signal(), Some(SEGV), "{}", describe(&out));
    assert_eq!(report_files(dir.path(), ".json").len(), 1);
}

#[test]
fn panic_in_capture_keeps_status_and_report() {
    panic_in("capture");
}

#[test]
fn panic_in_render_keeps_status_and_report() {
    panic_in("render");
}

// ---- the renderers, fuzzed ----

mod fuzz {
    use super::*;
    use crashcatch::report::model::*;
    use crashcatch::report::render::escape::xml;
    use crashcatch::report::render::junit::{case, junit_names};
    use crashcatch::report::render::junit_merge::merge;
    use crashcatch::report::render::{GithubAnnotation, Json, Render, Style, Text};
    use proptest::prelude::*;

    /// Strings of random characters, biased towards what breaks outputs.
    fn hostile() -> impl Strategy<Value = String> {
        common::hostile::hostile_string(8)
    }

    fn opt() -> impl Strategy<Value = Option<String>> {
        prop::option::of(hostile())
    }

    fn native() -> impl Strategy<Value = NativeFrame> {
        (opt(), opt(), opt(), hostile(), opt()).prop_map(|(module, function, file, inl, inl_file)| NativeFrame {
            address: Hex(0x401000),
            module: module.map(|m| format!("/{m}")),
            module_offset: Some(Hex(0x1000)),
            function,
            function_offset: Some(Hex(4)),
            file,
            line: Some(3),
            inlined: vec![InlinedFrame { function: inl, file: inl_file, line: Some(9) }],
            trust: Trust::Cfi,
            sp: None,
        })
    }

    fn python_frame() -> impl Strategy<Value = PythonFrame> {
        (hostile(), hostile(), opt(), hostile()).prop_map(|(file, function, source, value)| PythonFrame {
            file: format!("/{file}"),
            function,
            line: Some(8),
            column: Some(4),
            end_line: Some(8),
            end_column: Some(9),
            locals: vec![Local {
                name: value.clone(),
                kind: LocalKind::Argument,
                type_name: value.clone(),
                repr: value,
                length: Some(3),
            }],
            locals_note: source.clone(),
            source,
            ..Default::default()
        })
    }

    prop_compose! {
        fn crash()(
            strings in prop::collection::vec(hostile(), 16),
            options in prop::collection::vec(opt(), 6),
            n1 in native(), n2 in native(), p1 in python_frame(), p2 in python_frame(),
        ) -> Crash {
            let s = |i: usize| strings[i].clone();
            let thread = |name: Option<String>, crashed: bool| Thread {
                tid: if crashed { 7 } else { 8 },
                name,
                crashed,
                main: crashed,
                holds_gil: !crashed,
                frames: vec![Frame::Native(n1.clone()), Frame::Python(p1.clone()), Frame::Native(n2.clone())],
                elided: None,
                merge: Some(MergeInfo { kind: MergeKind::SideBySide, reason: Some(s(0)), python_frames: vec![p2.clone()] }),
                unwind_error: Some(s(1)),
                unwind_error_kind: Some(UnwindErrorKind::NoCfi),
                registers: None,
            };
            Crash {
                schema_version: SCHEMA_VERSION,
                kind: CrashKind::Crash,
                tool: Tool::default(),
                time: s(2),
                process: ProcessInfo {
                    pid: 7,
                    exe: options[0].clone(),
                    cmdline: vec![s(3), s(4)],
                    test: options[1].clone(),
                    ancestry: vec![Ancestor { pid: 1, cmdline: vec![s(5)] }],
                    environment: vec![EnvVar { name: s(6), value: s(7) }],
                },
                signal: SignalReport {
                    number: 11,
                    name: s(8),
                    code: 1,
                    code_name: options[2].clone(),
                    description: s(9),
                    fault_address: Some(Hex(0)),
                    sender_pid: None,
                    terminated_by: options[3].clone(),
                },
                classification: Some(Classification {
                    kind: ClassificationKind::NullPointerDereference,
                    summary: s(10),
                    message: options[4].clone(),
                }),
                culprit: Some(Culprit {
                    frame: n1.clone(),
                    first_outside_system: Some(n2.clone()),
                    suspect: Some(Suspect { owner: s(12), frame: n2.clone() }),
                }),
                python_call_site: Some(p2.clone()),
                python_user_frame: Some(p1.clone()),
                diagnosis: options[5].clone(),
                // Ours (hex) in real reports, but read back from files by `summarize`: fuzzed too.
                fingerprint: Some(s(13)),
                crashed_tid: 7,
                test_timeout: Some(TestTimeout { test: s(7), limit_s: 1.0, elapsed_s: 2.0, action: TimeoutAction::Kill }),
                also_faulting: vec![FaultingThread { tid: 8, signal: s(11), fault_address: None }],
                threads: vec![thread(Some(s(12)), true), thread(Some(s(13)), false)],
                python: Some(PythonState {
                    version: Some(s(14)),
                    module: Some(s(15)),
                    state: Some(InterpreterState::Finalizing),
                    finalizing_tid: Some(8),
                    gil_holder_tid: Some(8),
                    interpreters: vec![],
                    errors: vec![s(0)],
                    asyncio: Some(AsyncioState {
                        source: "gc".into(),
                        tasks: vec![
                            AsyncioTask {
                                id: Hex(1),
                                name: s(1),
                                running: true,
                                thread: Some(7),
                                coroutines: vec![CoroutineFrame { function: s(2), file: s(3), line: Some(4), kind: CoroutineKind::Generator }],
                                ..Default::default()
                            },
                            AsyncioTask {
                                id: Hex(2),
                                name: s(5),
                                awaits: Some(Awaited { kind: AwaitedKind::Future, description: s(6), task: None }),
                                awaited_by: vec![Hex(1)],
                                ..Default::default()
                            },
                        ],
                        notes: vec![s(8)],
                    }),
                }),
                modules: vec![ModuleInfo { path: s(3), base: Hex(0), end: Hex(1), build_id: None, debug_file: None }],
                notes: vec![s(4), s(5)],
                timings: Timings::default(),
                files: vec![s(6)],
            }
        }
    }

    /// Our own colour codes, the only escape sequences a coloured report may hold.
    fn without_our_colours(s: &str) -> String {
        ["\x1b[1m", "\x1b[1;31m", "\x1b[2m", "\x1b[0m"].iter().fold(s.to_string(), |a, c| a.replace(c, ""))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn renderers_hold_no_raw_control_and_parse(c in crash()) {
            for color in [false, true] {
                let text = Text { style: Style { color } }.render(&c);
                let text = if color { without_our_colours(&text) } else { text };
                assert_unsteerable("text", &text, 0);
            }

            let json = Json.render(&c);
            assert_unsteerable("json", &json, 0);
            let back: Crash = serde_json::from_str(&json).expect("the JSON report parses");
            prop_assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&c).unwrap());

            // Into a pytest file without the crash's test: a crashcatch suite of its own.
            let crash_case = case(&c);
            let doc = merge(PYTEST_XML.as_bytes(), &[crash_case.clone(), crash_case.clone()]).expect("merges");
            assert_unsteerable("junit", &doc, 0);
            let parsed = roxmltree::Document::parse(&doc).map_err(|e| TestCaseError::fail(format!("{e}\n{doc}")))?;
            let suites: Vec<_> = parsed.descendants().filter(|n| n.has_tag_name("testsuite")).collect();
            prop_assert_eq!(suites.len(), 2);
            prop_assert_eq!(suites[0].attribute("name"), Some("pytest"));
            prop_assert_eq!(suites[1].children().filter(|n| n.has_tag_name("testcase")).count(), 2);
            // Merging again changes nothing.
            prop_assert_eq!(merge(doc.as_bytes(), &[case(&c), case(&c)]).unwrap(), doc.clone());
            // Into the testcase pytest wrote for the crash's (hostile) test: once, in place.
            if let Some(test) = &c.process.test {
                let (classname, name, _) = junit_names(test);
                let own = format!(
                    "<testsuites><testsuite name=\"pytest\" errors=\"1\" tests=\"1\"><testcase classname=\"{}\" name=\"{}\"><error message=\"worker crashed\">worker crashed</error></testcase></testsuite></testsuites>",
                    xml::attribute(&classname),
                    xml::attribute(&name)
                );
                // Names XML cannot hold (controls, shown as text) cannot be in pytest's file.
                let written = roxmltree::Document::parse(&own).unwrap();
                let tc = written.descendants().find(|n| n.has_tag_name("testcase")).unwrap();
                if tc.attribute("classname") != Some(classname.as_str()) || tc.attribute("name") != Some(name.as_str()) {
                    return Ok(());
                }
                let doc = merge(own.as_bytes(), &[crash_case.clone(), crash_case]).expect("merges");
                assert_unsteerable("junit (in place)", &doc, 0);
                let parsed = roxmltree::Document::parse(&doc).map_err(|e| TestCaseError::fail(format!("{e}\n{doc}")))?;
                prop_assert_eq!(parsed.descendants().filter(|n| n.has_tag_name("testsuite")).count(), 1, "{}", doc);
                prop_assert_eq!(parsed.descendants().filter(|n| n.has_tag_name("testcase")).count(), 1);
                let kinds = parsed.descendants().filter(|n| n.attribute("name") == Some("crashcatch.kind")).count();
                prop_assert_eq!(kinds, 1, "{}", doc);
                prop_assert_eq!(merge(doc.as_bytes(), &[case(&c)]).unwrap(), doc.clone());
            }

            // The grouped outputs (the job summary, `summarize` in its three formats) and a
            // line on stderr naming a file.
            let mut groups = crashcatch::report::render::groups::Groups::default();
            groups.add(&c, &c.files, Some(Path::new("/ws")));
            groups.add(&c, std::slice::from_ref(&c.time), None);
            assert_unsteerable("summarize text", &groups.text(), 0);
            let md = crashcatch::report::render::markdown::section("crashcatch", &groups);
            assert_unsteerable("markdown", &md, 0);
            let opts = pulldown_cmark::Options::ENABLE_TABLES;
            let rows = pulldown_cmark::Parser::new_ext(&md, opts)
                .filter(|e| matches!(e, pulldown_cmark::Event::Start(pulldown_cmark::Tag::TableRow)))
                .count();
            let cells = pulldown_cmark::Parser::new_ext(&md, opts)
                .filter(|e| matches!(e, pulldown_cmark::Event::Start(pulldown_cmark::Tag::TableCell)))
                .count();
            prop_assert_eq!(cells, 7 * (rows + 1), "every row keeps its 7 cells\n{}", md);
            let doc = crashcatch::report::render::escape::json::harden(serde_json::to_string_pretty(&groups).unwrap());
            assert_unsteerable("summarize json", &doc, 0);
            prop_assert!(serde_json::from_str::<Value>(&doc).is_ok());
            assert_unsteerable("stderr", &crashcatch::report::output::console::line(&format!("skipped {}: x", c.process.cmdline.join(" "))), 0);

            let gh = GithubAnnotation { workspace: Some("/ws".into()) }.render(&c);
            prop_assert_eq!(gh.matches('\n').count(), 1);
            let cmd = assert_unsteerable("github", &gh, 1).remove(0);
            let title = property(&cmd, "title").unwrap_or("");
            let kind = if c.test_timeout.is_some() { "timeout in" } else { "crash " };
            prop_assert!(title.starts_with(kind) && title.contains(" in"), "{}", title);
            prop_assert!(cmd.properties.iter().all(|(k, _)| matches!(k.as_str(), "file" | "line" | "title")), "{:?}", cmd);
        }
    }
}
