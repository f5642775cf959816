//! The crash fingerprint on real crashes: the same bug gives the same id on every interpreter
//! and after an unrelated edit above the function; another bug another id. (The same crash
//! under pytest -n 2 and serially: python/tests/test_pytest_plugin.py.)
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// pyenv's 3.11 and newer (qualified names in frames; symbols in their extension modules: a
/// distribution's stripped `_ctypes` has no name for `string_at`, see docs/report-schema.md).
fn interpreters() -> Vec<PathBuf> {
    pythons()
        .into_iter()
        .filter(|p| !p.starts_with("/usr/"))
        .filter(|p| {
            let out = Command::new(p).args(["-c", "import sys; print(sys.version_info >= (3, 11))"]).output();
            out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "True")
        })
        .collect()
}

const SCRIPT: &str = "import ctypes, os\n\
class Parser:\n\
\x20   def read(self, ptr):\n\
\x20       return ctypes.string_at(ptr)\n\
def other(ptr):\n\
\x20   return ctypes.string_at(ptr)\n\
def aborts():\n\
\x20   os.abort()\n\
WHICH = os.environ['WHICH']\n\
if WHICH == 'read':\n\
\x20   Parser().read(0)\n\
elif WHICH == 'other':\n\
\x20   other(0)\n\
else:\n\
\x20   aborts()\n";

/// Runs `python project/pkg/crash.py` from the project folder under crashcatch; the report.
fn crash(python: &Path, project: &Path, which: &str) -> Value {
    let reports = out_dir();
    let mut c = Command::new(bin());
    c.arg("--output-dir").arg(reports.path()).args(["--format", "json", "--"]);
    c.arg(python).arg(project.join("pkg").join("crash.py")).current_dir(project).env("WHICH", which);
    let out = run(c);
    let files: Vec<PathBuf> = std::fs::read_dir(reports.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{}", describe(&out));
    serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap()
}

fn fingerprint(report: &Value) -> String {
    let f = report["fingerprint"].as_str().unwrap_or_else(|| panic!("no fingerprint: {report}"));
    assert!(f.len() == 12 && f.bytes().all(|b| b.is_ascii_hexdigit()), "{f}");
    f.to_string()
}

#[test]
fn same_bug_same_fingerprint_across_interpreters_and_edits() {
    let pys = interpreters();
    if pys.len() < 2 {
        skip("fingerprint across interpreters", "fewer than two pyenv interpreters of 3.11 or newer");
        if pys.is_empty() {
            return;
        }
    }
    let project = out_dir();
    std::fs::create_dir(project.path().join("pkg")).unwrap();
    let script = project.path().join("pkg").join("crash.py");
    std::fs::write(&script, SCRIPT).unwrap();

    let first = crash(&pys[0], project.path(), "read");
    let id = fingerprint(&first);
    assert_eq!(first["python_user_frame"]["function"], "Parser.read", "{first}");
    for py in &pys[1..] {
        let r = crash(py, project.path(), "read");
        assert_eq!(fingerprint(&r), id, "{} and {} differ:\n{r}", pys[0].display(), py.display());
    }
    // An unrelated edit above the function moves its lines, not its id.
    std::fs::write(&script, format!("# a comment\n\nimport sys\n\n\n{SCRIPT}")).unwrap();
    let moved = crash(&pys[0], project.path(), "read");
    assert_ne!(moved["python_user_frame"]["line"], first["python_user_frame"]["line"]);
    assert_eq!(fingerprint(&moved), id);
    // The same native crash from another Python function; another crash altogether.
    let other = fingerprint(&crash(&pys[0], project.path(), "other"));
    let aborted = fingerprint(&crash(&pys[0], project.path(), "abort"));
    assert_ne!(other, id);
    assert_ne!(aborted, id);
    assert_ne!(aborted, other);
}

/// A pytest test that crashes in ctypes from a helper; with `WAIT` set it first says READY and
/// waits for a line on stdin (so that crashcatch can attach to the running session).
const TEST_FILE: &str = "import ctypes, os, sys\n\
def helper():\n\
\x20   return ctypes.string_at(0)\n\
def test_f():\n\
\x20   if os.environ.get('WAIT'):\n\
\x20       sys.stdout.write('READY\\n'); sys.stdout.flush()\n\
\x20       sys.stdin.readline()\n\
\x20   helper()\n";

/// The one `*.json` report in `dir`.
fn only_report(dir: &Path, what: &str) -> Value {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{what}: {files:?}");
    serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap()
}

fn core_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "core"))
        .unwrap_or_else(|| panic!("no core in {}", dir.display()))
}

/// `crashcatch core CORE`'s report.
fn post_mortem(core: &Path) -> Value {
    let reports = out_dir();
    let mut c = Command::new(bin());
    c.arg("core").arg("--output-dir").arg(reports.path()).args(["--format", "json"]).arg(core);
    let out = run(c);
    assert!(out.status.success(), "crashcatch core\n{}", describe(&out));
    only_report(reports.path(), "crashcatch core")
}

/// A project with the same test, `test_x.py::test_f`, in tests/unit and tests/integration.
fn pytest_project() -> tempfile::TempDir {
    let project = out_dir();
    for sub in ["unit", "integration"] {
        let d = project.path().join("tests").join(sub);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("test_x.py"), TEST_FILE).unwrap();
    }
    std::fs::write(project.path().join("pytest.ini"), "[pytest]\n").unwrap();
    project
}

/// `python -m pytest -s -p no:cacheprovider tests/SUB/test_x.py` in `project`.
fn pytest_command(python: &Path, project: &Path, sub: &str) -> Command {
    let mut c = Command::new(python);
    c.args(["-m", "pytest", "-s", "-p", "no:cacheprovider", "-p", "no:crashcatch"]);
    c.arg(format!("tests/{sub}/test_x.py")).current_dir(project).env_remove("PYTEST_ADDOPTS");
    c
}

/// The same pytest crash run under crashcatch (with `--core`), read back from that core, and
/// caught by `crashcatch attach`: one fingerprint. pytest's faulthandler re-raises the signal,
/// so the core also shows whether `--core` kept the first fault (SEGV_MAPERR at 0x0 in
/// strlen) rather than the re-raise (SI_TKILL in pthread_kill).
#[test]
fn one_fingerprint_live_attached_and_from_the_core() {
    let python = venv_python();
    let project = pytest_project();
    let reports = out_dir();
    // Live, with --core.
    let mut c = Command::new(bin());
    c.arg("--core").arg("--output-dir").arg(reports.path()).args(["--format", "json", "--"]);
    let pytest = pytest_command(&python, project.path(), "unit");
    c.arg(pytest.get_program()).args(pytest.get_args()).current_dir(project.path()).env_remove("PYTEST_ADDOPTS");
    let out = run(c);
    assert_eq!(exit_signal(&out.status), Some(libc::SIGSEGV), "{}", describe(&out));
    let live = only_report(reports.path(), "live");
    let id = fingerprint(&live);
    assert_eq!(live["process"]["test"], "tests/unit/test_x.py::test_f (call)", "{live}");
    assert_eq!(live["python_user_frame"]["function"], "helper");

    // From its core: the first fault, and the same id.
    let post = post_mortem(&core_file(reports.path()));
    assert_eq!(post["signal"]["code_name"], "SEGV_MAPERR", "the core shows the re-raise: {}", post["signal"]);
    assert_eq!(post["signal"]["fault_address"], "0x0", "{}", post["signal"]);
    assert_eq!(post["culprit"]["frame"]["function"], live["culprit"]["frame"]["function"], "{}", post["culprit"]);
    assert_eq!(fingerprint(&post), id, "live and `crashcatch core` differ:\n{live}\n{post}");

    // Attached to the running session.
    let attached = out_dir();
    let mut target = pytest_command(&python, project.path(), "unit");
    target.env("WAIT", "1").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut target = target.stderr(std::process::Stdio::null()).spawn().unwrap();
    let mut stdout = std::io::BufReader::new(target.stdout.take().unwrap());
    wait_for_line(&mut stdout, "READY");
    let mut cc = Command::new(bin())
        .arg("attach")
        .arg("--output-dir")
        .arg(attached.path())
        .args(["--format", "json"])
        .arg(target.id().to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(cc.stderr.take().unwrap());
    wait_for_line(&mut err, "attached to pid");
    use std::io::Write;
    target.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = target.wait().unwrap();
    let _ = cc.wait();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGSEGV));
    let via_attach = only_report(attached.path(), "attach");
    assert_eq!(fingerprint(&via_attach), id, "live and attach differ:\n{live}\n{via_attach}");

    // The same test name in another folder is another bug.
    let other = out_dir();
    let mut c = Command::new(bin());
    c.arg("--output-dir").arg(other.path()).args(["--format", "json", "--"]);
    let pytest = pytest_command(&python, project.path(), "integration");
    c.arg(pytest.get_program()).args(pytest.get_args()).current_dir(project.path()).env_remove("PYTEST_ADDOPTS");
    run(c);
    let integration = only_report(other.path(), "integration");
    assert_eq!(integration["process"]["test"], "tests/integration/test_x.py::test_f (call)");
    assert_ne!(fingerprint(&integration), id, "tests/unit and tests/integration share an id");
}

/// Without pytest, Python paths are relative to the process's working folder: the same script
/// name in two folders gives two ids, and the core `--core` writes (which records that folder;
/// the process's PWD, inherited from this test, names another) gives the live id.
#[test]
fn working_folder_paths_tell_same_named_files_apart_live_and_from_the_core() {
    let Some(python) = interpreters().into_iter().next() else {
        skip("fingerprint from the working folder", "no pyenv interpreter of 3.11 or newer");
        return;
    };
    let project = out_dir();
    for sub in ["unit", "integration"] {
        std::fs::create_dir_all(project.path().join(sub).join("pkg")).unwrap();
        std::fs::write(project.path().join(sub).join("pkg").join("crash.py"), SCRIPT).unwrap();
    }
    let run_in = |sub: &str| {
        let reports = out_dir();
        let mut c = Command::new(bin());
        c.arg("--core").arg("--output-dir").arg(reports.path()).args(["--format", "json", "--"]);
        c.arg(&python).arg(format!("{sub}/pkg/crash.py")).current_dir(project.path()).env("WHICH", "read");
        c.env("PWD", "/");
        let out = run(c);
        assert!(exit_signal(&out.status).is_some(), "{}", describe(&out));
        let live = only_report(reports.path(), sub);
        let post = post_mortem(&core_file(reports.path()));
        (live, post)
    };
    let (unit, unit_core) = run_in("unit");
    let (integration, _) = run_in("integration");
    assert_ne!(fingerprint(&unit), fingerprint(&integration), "unit/pkg/crash.py and integration/pkg/crash.py");
    assert_eq!(fingerprint(&unit_core), fingerprint(&unit), "live and core differ:\n{unit}\n{unit_core}");
}

fn wait_for_line(r: &mut impl std::io::BufRead, want: &str) {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if !matches!(r.read_line(&mut line), Ok(n) if n > 0) {
            panic!("ended before {want:?}:\n{seen}");
        }
        seen.push_str(&line);
        if line.contains(want) {
            return;
        }
    }
}
