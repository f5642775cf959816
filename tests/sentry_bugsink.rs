//! Crashes and hangs sent to a real tracker: Bugsink (a Sentry-protocol tracker, installed by
//! `make bugsink` into target/bugsink-venv), started on 127.0.0.1 for each test, checking every
//! event strictly against Sentry's event schema. Two runs of one ctypes crash and one abort()
//! give 3 events in 2 issues (Bugsink groups by the event's `fingerprint`); the stored event
//! holds the Python call site, the native functions, the signal, crashcatch's fingerprint and
//! the debug images; a pytest test stopped by `--test-timeout` arrives with level error; and
//! `crashcatch upload` of the same folder twice adds nothing. Without Bugsink, the tests are
//! skipped with a line saying why.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;
mod tracker;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;
use tracker::bugsink::Bugsink;
use tracker::clean_env;

/// A script that crashes in C two ways: a NULL passed to strlen through ctypes, and abort().
const CRASHES: &str = r#"import ctypes
import os
import sys


def inner():
    return ctypes.string_at(0)  # CALL-SITE strlen


def other():
    os.abort()


{"strlen": inner, "abort": other}[sys.argv[1]]()
"#;

fn start() -> Option<Bugsink> {
    match Bugsink::start() {
        Ok(b) => Some(b),
        Err(why) => {
            skip("crash tracker tests with Bugsink", &why);
            None
        }
    }
}

fn script(dir: &Path) -> PathBuf {
    let path = dir.join("crashes.py");
    std::fs::write(&path, CRASHES).unwrap();
    path
}

/// `crashcatch [--sentry-dsn DSN] --output-dir OUT -- python crashes.py WHICH`; the output and the report.
fn crash(dsn: Option<&str>, script: &Path, which: &str, out: &Path) -> (Output, Value) {
    let mut c = Command::new(bin());
    clean_env(&mut c);
    if let Some(dsn) = dsn {
        c.args(["--sentry-dsn", dsn, "--sentry-timeout", "30"]);
    }
    c.arg("--output-dir").arg(out).arg("--").arg(venv_python()).arg(script).arg(which);
    let output = run(c);
    let json = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| panic!("no report\n{}", describe(&output)));
    let report = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    (output, report)
}

fn upload(dsn: &str, dir: &Path) -> Output {
    let mut c = Command::new(bin());
    clean_env(&mut c);
    c.args(["upload", "--sentry-dsn", dsn]).arg(dir);
    run(c)
}

fn no_tracker_line(out: &Output, b: &Bugsink) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("crashcatch: sentry:"), "{}\nBugsink's log:\n{}", describe(out), b.log());
}

fn frames(ev: &Value) -> &Vec<Value> {
    ev["exception"]["values"][0]["stacktrace"]["frames"].as_array().expect("the exception's frames")
}

#[test]
fn crashes_and_a_hang_reach_bugsink_grouped_by_fingerprint() {
    let Some(b) = start() else { return };
    let work = out_dir();
    let script = script(work.path());
    let (d1, d2, d3) = (out_dir(), out_dir(), out_dir());

    let (out1, r1) = crash(Some(&b.dsn), &script, "strlen", d1.path());
    assert_eq!(exit_signal(&out1.status), Some(libc::SIGSEGV), "{}", describe(&out1));
    no_tracker_line(&out1, &b);
    let (out2, r2) = crash(Some(&b.dsn), &script, "strlen", d2.path());
    no_tracker_line(&out2, &b);
    let (out3, r3) = crash(Some(&b.dsn), &script, "abort", d3.path());
    assert_eq!(exit_signal(&out3.status), Some(libc::SIGABRT), "{}", describe(&out3));
    no_tracker_line(&out3, &b);
    assert_eq!(r1["fingerprint"], r2["fingerprint"]);
    assert_ne!(r1["fingerprint"], r3["fingerprint"]);

    let events = b.events();
    assert_eq!(events.len(), 3, "three crashes, three events\nBugsink's log:\n{}", b.log());
    assert_eq!(b.issue_count(), 2, "two distinct crashes, two issues");
    assert_eq!(events[0]["issue"], events[1]["issue"], "the same crash twice is one issue");
    assert_ne!(events[0]["issue"], events[2]["issue"]);
    assert!(events.iter().all(|e| e["level"] == "fatal"));

    // What Bugsink stored of the first crash.
    let ev = &events[0]["data"];
    assert_eq!(ev["fingerprint"], serde_json::json!([r1["fingerprint"]]));
    assert_eq!(ev["tags"]["fingerprint"], r1["fingerprint"]);
    let exc = &ev["exception"]["values"][0];
    assert_eq!(exc["type"], "SIGSEGV");
    assert_eq!(exc["mechanism"]["meta"]["signal"]["number"], 11);
    assert_eq!(ev["tags"]["signal"], "SIGSEGV");
    assert_eq!(ev["tags"]["python.version"], r1["python"]["version"]);
    assert_eq!(ev["contexts"]["runtime"]["name"], "CPython");
    // The Python call site, as a Python frame of the stack.
    let line = CRASHES.lines().position(|l| l.contains("CALL-SITE strlen")).unwrap() as u64 + 1;
    let fr = frames(ev);
    let site = fr
        .iter()
        .find(|f| f["platform"] == "python" && f["function"] == "inner")
        .unwrap_or_else(|| panic!("no Python frame of inner in {fr:?}"));
    assert_eq!(site["lineno"], line);
    assert_eq!(site["abs_path"], script.display().to_string());
    assert_eq!(site["in_app"], true);
    assert_eq!(site["context_line"], "return ctypes.string_at(0)  # CALL-SITE strlen");
    // The native functions: the faulting frame last, and ctypes' string_at that called it.
    let culprit = &r1["culprit"];
    assert_eq!(fr.last().unwrap()["instruction_addr"], culprit["frame"]["address"]);
    let caller = culprit["first_outside_system"]["function"].as_str().expect("the caller outside libc is named");
    assert!(fr.iter().any(|f| f["function"] == caller && f["instruction_addr"].is_string()), "no {caller} in {fr:?}");
    // The debug images, libc's among them, with the report's build-ids.
    let libc_module = r1["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"].as_str().unwrap().contains("libc.so"))
        .expect("libc in the report");
    let images = ev["debug_meta"]["images"].as_array().unwrap();
    let libc_image = images.iter().find(|i| i["code_file"] == libc_module["path"]).expect("libc's image");
    assert_eq!(libc_image["code_id"], libc_module["build_id"]);
    assert_eq!(libc_image["image_addr"], libc_module["base"]);
    assert!(images.len() >= 5, "{} images", images.len());

    // A hang: a pytest test asleep in libc, stopped by --test-timeout.
    let hangs = root().join("tests").join("data").join("hangs");
    let d4 = out_dir();
    let mut c = Command::new(bin());
    clean_env(&mut c);
    c.env("PYTHONDONTWRITEBYTECODE", "1").current_dir(&hangs);
    c.args(["--sentry-dsn", &b.dsn, "--sentry-timeout", "30", "--test-timeout", "1", "--output-dir"]).arg(d4.path());
    c.arg("--").arg(venv_python()).args([
        "-m",
        "pytest",
        "-c",
        "pytest.ini",
        "--rootdir",
        ".",
        "-q",
        "-p",
        "no:cacheprovider",
    ]);
    c.args(["test_hangs.py", "-k", "test_sleeps_in_libc"]);
    let out4 = run(c);
    no_tracker_line(&out4, &b);
    let events = b.events();
    assert_eq!(events.len(), 4, "{}\nBugsink's log:\n{}", describe(&out4), b.log());
    assert_eq!(b.issue_count(), 3);
    let hang = &events[3];
    assert_eq!(hang["level"], "error");
    let ev = &hang["data"];
    assert_eq!(ev["exception"]["values"][0]["type"], "TestTimeout");
    assert_eq!(ev["fingerprint"], serde_json::json!(["crashcatch-timeout", "test_hangs.py::test_sleeps_in_libc"]));
    assert_eq!(ev["tags"]["test"], "test_hangs.py::test_sleeps_in_libc");
    assert_eq!(ev["transaction"], "test_hangs.py::test_sleeps_in_libc");
    assert!(
        frames(ev).iter().any(|f| f["platform"] == "python" && f["function"] == "test_sleeps_in_libc"),
        "{:?}",
        frames(ev)
    );
}

#[test]
fn upload_of_the_same_folder_twice_adds_nothing() {
    let Some(b) = start() else { return };
    let work = out_dir();
    let script = script(work.path());
    // Two crashes whose reports are collected, as CI artifacts are, then uploaded.
    let artifacts = out_dir();
    crash(None, &script, "strlen", artifacts.path());
    crash(None, &script, "abort", artifacts.path());
    for round in 0..2 {
        let up = upload(&b.dsn, artifacts.path());
        assert_eq!(up.status.code(), Some(0), "round {round}: {}\nBugsink's log:\n{}", describe(&up), b.log());
        assert!(String::from_utf8_lossy(&up.stderr).contains("sent 2 events"), "{}", describe(&up));
        assert_eq!(b.events().len(), 2, "round {round}: the same reports are the same events");
        assert_eq!(b.issue_count(), 2);
    }
    // A crash sent live, then uploaded with the others: still one event for it.
    let live = out_dir();
    let (out, _) = crash(Some(&b.dsn), &script, "strlen", live.path());
    no_tracker_line(&out, &b);
    assert_eq!(b.events().len(), 3);
    let up = upload(&b.dsn, live.path());
    assert_eq!(up.status.code(), Some(0), "{}", describe(&up));
    let events = b.events();
    assert_eq!(events.len(), 3, "uploading what was sent live adds nothing");
    assert_eq!(b.issue_count(), 2, "the live crash joins the issue of the uploaded one");
}
