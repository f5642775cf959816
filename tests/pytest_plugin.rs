//! The pytest plugin (python/crashcatch): its own tests (python/tests, pytester: real pytest
//! sessions in subprocesses, real crashes) run from the source tree with the test venv's
//! pytest and pytest-xdist, against the binary cargo built. tests/packaging.rs runs them again
//! against the installed wheel.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::process::Command;

use common::*;

#[test]
fn pytest_plugin_tests_pass_from_the_source_tree() {
    let python = venv_python();
    if !python.exists() {
        skip("pytest plugin tests", "target/venv is missing (make venv)");
        return;
    }
    let mut c = Command::new(&python);
    c.args(["-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "--rootdir"])
        .arg(root().join("python"))
        .arg(root().join("python").join("tests"))
        .env("PYTHONPATH", root().join("python"))
        .env("CRASHCATCH_BINARY", bin())
        .env_remove("PYTEST_ADDOPTS")
        .current_dir(root());
    let out = run(c);
    assert!(out.status.success(), "python/tests failed\n{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("skipped"), "no plugin test may be skipped here\n{stdout}");
}
