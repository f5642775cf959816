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
