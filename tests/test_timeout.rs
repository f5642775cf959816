//! `--test-timeout`: a pytest run under xdist where one test sleeps in libc (ctypes calling
//! `sleep`) and another waits on a lock it holds. Both must be reported (kind `hang`, the test
//! named, native frames and Python lines), their workers killed and replaced, the other tests
//! passed, pytest's failure status kept, the JUnit file right, and the run over long before the
//! hung tests would have ended. `dump` leaves a slow test running to its end.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn data_dir() -> PathBuf {
    root().join("tests").join("data").join("hangs")
}

/// The 1-based line of `tests/data/hangs/<file>` carrying `HANG-LINE <name>`.
fn hang_line(file: &str, name: &str) -> u64 {
    let text = std::fs::read_to_string(data_dir().join(file)).unwrap();
    let marker = format!("HANG-LINE {name}");
    let hits: Vec<usize> =
        text.lines().enumerate().filter(|(_, l)| l.trim_end().ends_with(&marker)).map(|(i, _)| i + 1).collect();
    assert_eq!(hits.len(), 1, "{marker} in {file}: {hits:?}");
    hits[0] as u64
}

/// `crashcatch ARGS --output-dir DIR --junit-xml DIR/junit.xml -- python -m pytest PYTEST...`
/// run from the data folder; returns the output, the hang reports and the JUnit text.
fn pytest_under(args: &[&str], pytest: &[&str], dir: &Path) -> (std::process::Output, Vec<Value>, String, Duration) {
    let junit = dir.join("junit.xml");
    let mut c = Command::new(bin());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("CRASHCATCH_") || name.starts_with("PYTEST_") || name == "GITHUB_ACTIONS" {
            c.env_remove(&name);
        }
    }
    c.env("PYTHONDONTWRITEBYTECODE", "1").current_dir(data_dir());
    c.args(args).arg("--output-dir").arg(dir).arg("--junit-xml").arg(&junit).arg("--");
    c.arg(venv_python()).args(["-m", "pytest", "-c", "pytest.ini", "--rootdir", ".", "-q", "--junit-xml"]).arg(&junit);
    c.args(pytest);
    let t0 = Instant::now();
    let out = run(c);
    let took = t0.elapsed();
    let mut reports = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("hang-") && name.ends_with(".json") {
            reports.push(serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap());
        }
    }
    let junit = std::fs::read_to_string(&junit).unwrap_or_default();
    (out, reports, junit, took)
}

fn main_thread(r: &Value) -> &Value {
    r["threads"].as_array().unwrap().iter().find(|t| t["main"] == true).expect("a main thread")
}

fn frames<'a>(t: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    t["frames"].as_array().unwrap().iter().filter(move |f| f["kind"] == kind)
}

#[test]
fn hung_tests_under_xdist_are_reported_killed_and_the_run_goes_on() {
    let dir = out_dir();
    let (out, reports, junit, took) = pytest_under(&["--test-timeout", "2"], &["-n", "2", "test_hangs.py"], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    // pytest's own verdict and status: the two hung tests failed (their worker crashed), the
    // three others passed, exit status 1.
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(stdout.contains("2 failed, 3 passed"), "{all}");
    assert!(took < Duration::from_secs(90), "the run took {took:?}: the hung tests were not stopped\n{all}");
    assert_eq!(reports.len(), 2, "{all}");

    let cases = [
        ("test_sleeps_in_libc", hang_line("test_hangs.py", "libc"), &["sleep", "nanosleep", "clock_nanosleep"][..]),
        ("test_waits_on_lock", hang_line("test_hangs.py", "lock"), &["PyThread_acquire_lock_timed"][..]),
    ];
    for (test, line, native) in cases {
        let id = format!("test_hangs.py::{test} (call)");
        let r = reports
            .iter()
            .find(|r| r["process"]["test"] == id.as_str())
            .unwrap_or_else(|| panic!("no report names {id}\n{all}"));
        assert_eq!(r["kind"], "hang");
        assert_eq!(r["test_timeout"]["test"], id.as_str());
        assert_eq!(r["test_timeout"]["action"], "kill");
        assert_eq!(r["test_timeout"]["limit_s"], 2.0);
        assert!(r["test_timeout"]["elapsed_s"].as_f64().unwrap() >= 2.0);
        assert!(r["python"]["state"] == "running", "{r}");
        let main = main_thread(r);
        assert!(
            frames(main, "python").any(|f| f["function"] == test && f["line"] == line),
            "{test}: no Python frame at line {line}: {main}"
        );
        let names: Vec<&str> = frames(main, "native").filter_map(|f| f["function"].as_str()).collect();
        assert!(native.iter().any(|n| names.contains(n)), "{test}: none of {native:?} in {names:?}");
        // Its text report is on disk too, headed by what happened.
        let txt = r["files"].as_array().unwrap().iter().find(|f| f.as_str().unwrap().ends_with(".txt")).unwrap();
        let text = std::fs::read_to_string(txt.as_str().unwrap()).unwrap();
        assert!(text.lines().next().unwrap().contains("past --test-timeout; killed (SIGKILL)"), "{text}");
        assert!(
            text.contains(&format!("main thread at {}:{line} in {test}", data_dir().join("test_hangs.py").display())),
            "{text}"
        );
    }
    // The JUnit file: pytest's own suite, each hung test in pytest's own testcase for it (the
    // worker's "crashed while running" error) with crashcatch's timeout in it: 5 testcases for
    // 5 tests, no crashcatch suite.
    let doc = roxmltree::Document::parse(&junit).unwrap_or_else(|e| panic!("{e}\n{junit}"));
    assert!(!junit.contains("<testsuite name=\"crashcatch\""), "{junit}");
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 5, "{junit}");
    for test in ["test_sleeps_in_libc", "test_waits_on_lock"] {
        let case =
            cases.iter().find(|c| c.attribute("name") == Some(test)).unwrap_or_else(|| panic!("{test}\n{junit}"));
        let kind = case.descendants().find(|p| p.attribute("name") == Some("crashcatch.kind"));
        assert_eq!(kind.and_then(|k| k.attribute("value")), Some("timeout"), "{junit}");
        let error = case.children().find(|c| c.has_tag_name("error") || c.has_tag_name("failure")).unwrap();
        assert!(error.attribute("message").unwrap_or("").starts_with("test ran longer than 2 s"), "{junit}");
        assert!(error.text().unwrap_or("").contains("past --test-timeout"), "{junit}");
    }
    for ok in ["test_ok_1", "test_ok_2", "test_ok_3"] {
        let case = cases.iter().find(|c| c.attribute("name") == Some(ok)).unwrap_or_else(|| panic!("{ok}\n{junit}"));
        assert_eq!(case.children().filter(|c| c.is_element()).count(), 0, "{ok} passed\n{junit}");
    }
    // The end-of-run line counts them.
    assert!(stderr.contains("crashcatch: 2 test timeouts:"), "{all}");
}

#[test]
fn dump_action_reports_a_slow_test_and_leaves_it_to_pass() {
    let dir = out_dir();
    let (out, reports, _junit, _) = pytest_under(
        &["--test-timeout", "1", "--test-timeout-action", "dump", "--format", "json"],
        &["test_slow.py"],
        dir.path(),
    );
    let all = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 passed"), "{all}");
    assert_eq!(reports.len(), 1, "one report for the one slow test, not one per second nor for the child: {all}");
    let r = &reports[0];
    assert_eq!(r["test_timeout"]["action"], "dump");
    assert_eq!(r["process"]["test"], "test_slow.py::test_slow_but_fine (call)");
    let line = hang_line("test_slow.py", "slow");
    assert!(frames(main_thread(r), "python").any(|f| f["function"] == "test_slow_but_fine" && f["line"] == line));
}

#[test]
fn bad_limits_are_usage_errors() {
    for bad in ["0", "-1", "soon"] {
        let o = Command::new(bin()).args(["--test-timeout", bad, "--", "true"]).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "--test-timeout {bad}: {}", String::from_utf8_lossy(&o.stderr));
    }
}
