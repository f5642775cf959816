//! The live environment of an executable with a copy relocation for `environ` (Debian's
//! non-PIE /usr/bin/python3.11, on x86_64 as on arm64): libc updates the executable's copy, so
//! PYTEST_CURRENT_TEST set after start-up is read from there, not from libc's stale symbol.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::path::Path;

use common::*;

#[test]
fn pytest_variable_set_late_is_read_through_the_executables_copy() {
    let python = Path::new("/usr/bin/python3.11");
    if !python.exists() {
        skip("environ_copy_reloc", "/usr/bin/python3.11 is not installed");
        return;
    }
    let script =
        "import os, ctypes\nos.environ['PYTEST_CURRENT_TEST'] = 't_env.py::test_late (call)'\nctypes.string_at(0)\n";
    let (out, report) = run_caught(NO_ARGS, &[python.to_str().unwrap(), "-c", script]);
    let report = report.unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    assert_eq!(report["process"]["test"], "t_env.py::test_late (call)", "{}", describe(&out));
}
