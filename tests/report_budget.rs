//! The report's time budget (`--report-budget`): past it, frames keep their addresses and
//! modules only, the Python stacks are left out, the report says so, and the signal still acts.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use common::*;
use serde_json::Value;

fn notes(r: &Value) -> Vec<String> {
    r["notes"].as_array().map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

#[test]
fn a_spent_budget_degrades_the_report_and_says_so() {
    let exe = fixture(Variant::Fp, "null_deref");
    let bare = run_bare(&[exe.as_os_str()]);

    let (out, report) = run_caught(&["--report-budget", "0"], &[exe.as_os_str()]);
    assert_eq!(status_pair(&out.status), status_pair(&bare.status), "{}", describe(&out));
    let r = report.unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    let n = notes(&r);
    assert!(n.iter().any(|n| n.contains("native frame(s): left out, the report's 0.0 s budget was spent")), "{n:?}");
    let crashed = r["threads"].as_array().unwrap().iter().find(|t| t["crashed"] == true).unwrap();
    let frames = crashed["frames"].as_array().unwrap();
    assert!(!frames.is_empty());
    assert!(frames.iter().all(|f| f["function"].is_null()), "{frames:?}");
    assert!(frames[0]["module"].as_str().is_some_and(|m| m.ends_with("libccfix.so")), "{frames:?}");

    // With the default budget the same crash is named in full and nothing is left out.
    let (out, report) = run_caught(NO_ARGS, &[exe.as_os_str()]);
    let r = report.unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    assert!(notes(&r).iter().all(|n| !n.contains("budget")), "{:?}", notes(&r));
    assert_eq!(r["culprit"]["frame"]["function"], "cc_fixture_crash_null");
}

#[test]
fn python_stacks_are_left_out_when_the_budget_is_spent() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("crash.py");
    std::fs::write(&script, "import ctypes\nctypes.string_at(0)\n").unwrap();
    let cmd = [py.as_os_str(), script.as_os_str()];
    let bare = run_bare(&cmd);
    let (out, report) = run_caught(&["--report-budget", "0"], &cmd);
    assert_eq!(status_pair(&out.status), status_pair(&bare.status), "{}", describe(&out));
    let r = report.unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    assert!(r["python"].is_null(), "{}", r["python"]);
    assert!(notes(&r).iter().any(|n| n.starts_with("the Python stacks: left out")), "{:?}", notes(&r));
}
