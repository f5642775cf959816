//! Sentry's own ingestion accepts the events: every event crashcatch sends, for a crash (ctypes
//! NULL into strlen), a whole-run hang (`--hang-timeout`) and a test timeout
//! (`--test-timeout`), on every interpreter here (pyenv 2.7 and 3.x, the system's python3.11,
//! Debian sid's 3.13–3.15 when `make sid` unpacked them), is captured by a fake tracker and put
//! through `sentry_relay.processing.StoreNormalizer().normalize_event` (the `sentry-relay`
//! package, Sentry's Relay as a Python library, installed by `make bugsink`), which lists in
//! `errors` what Sentry would drop. None may have any. A known-bad event is normalized first,
//! to show that the check can fail.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;
mod tracker;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use common::*;
use serde_json::Value;
use tracker::{clean_env, Behaviour, Envelope, Fake};

fn relay_python() -> Option<PathBuf> {
    let venv = root().join("target").join("bugsink-venv");
    venv.join(".stamp").exists().then(|| venv.join("bin").join("python"))
}

/// Every interpreter here, with the crashcatch arguments it needs: (label, python, args).
fn interpreters() -> Vec<(String, PathBuf, Vec<String>)> {
    let mut out = Vec::new();
    let pyenv = std::env::var_os("PYENV_ROOT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    if let Some(versions) = pyenv.map(|p| p.join("versions")) {
        let mut found: Vec<(Vec<u32>, String)> = std::fs::read_dir(versions)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let v: Vec<u32> = n.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
                Some((v, e.path().join("bin").join("python").display().to_string()))
            })
            .collect();
        found.sort();
        for (v, p) in found {
            let label = format!("pyenv {}", v.iter().map(u32::to_string).collect::<Vec<_>>().join("."));
            out.push((label, PathBuf::from(p), vec![]));
        }
    }
    if std::path::Path::new("/usr/bin/python3.11").exists() {
        out.push(("system 3.11".into(), "/usr/bin/python3.11".into(), vec![]));
    }
    let debug = root().join("target/sid-dbg/usr/lib/debug");
    for v in ["3.13", "3.14", "3.15"] {
        let p = root().join(format!("target/sid/run-python{v}"));
        if p.exists() && debug.join(".build-id").is_dir() {
            out.push((format!("sid {v}"), p, vec!["--debug-dir".into(), debug.display().to_string()]));
        } else {
            skip(&format!("relay normalization on sid {v}"), "not unpacked (make sid)");
        }
    }
    out
}

/// The three kinds of report, each as (kind, crashcatch arguments, Python code).
const KINDS: &[(&str, &[&str], &str)] = &[
    ("crash", &[], "import ctypes\ndef inner():\n    ctypes.string_at(0)\ninner()\n"),
    ("hang", &["--hang-timeout", "1", "--hang-action", "term"], "import time\ntime.sleep(60)\n"),
    (
        "timeout",
        &["--test-timeout", "1"],
        "import os, time\nos.environ['PYTEST_CURRENT_TEST'] = 't.py::test_sleeps (call)'\ntime.sleep(60)\n",
    ),
];

/// Runs one kind on one interpreter under crashcatch with a fake tracker; the event it sent.
fn event_of(python: &PathBuf, args: &[String], kind: &[&str], code: &str) -> Result<Value, String> {
    let fake = Fake::start(Behaviour::Accept);
    let dir = out_dir();
    let mut c = Command::new(bin());
    clean_env(&mut c);
    c.args(["--sentry-dsn", &fake.dsn(), "--sentry-timeout", "30", "--output-dir"]).arg(dir.path());
    c.args(args).args(kind).arg("--").arg(python).args([OsString::from("-c"), code.into()]);
    let out = run(c);
    let requests = fake.requests();
    match requests.as_slice() {
        [one] => Ok(Envelope::parse(&one.body).event()),
        other => Err(format!("{} requests\n{}", other.len(), describe(&out))),
    }
}

/// Normalizes every event with Relay; per event, its `errors` (empty when Sentry keeps all).
fn normalize(python: &PathBuf, events: &[Value]) -> Vec<Value> {
    let dir = out_dir();
    let input = dir.path().join("events.json");
    std::fs::write(&input, serde_json::to_vec(events).unwrap()).unwrap();
    let script = r#"
import json, sys
from sentry_relay.processing import StoreNormalizer
normalizer = StoreNormalizer()
out = []
for event in json.load(open(sys.argv[1])):
    normalized = normalizer.normalize_event(event)
    out.append({"errors": normalized.get("errors") or [],
                "type": normalized["exception"]["values"][0]["type"],
                "fingerprint": normalized.get("fingerprint"),
                "level": normalized.get("level")})
print(json.dumps(out))
"#;
    let out = Command::new(python).arg("-c").arg(script).arg(&input).output().expect("running relay's python");
    assert!(out.status.success(), "normalizing failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("the normalizer's output")
}

#[test]
fn relay_finds_no_error_in_crash_hang_and_timeout_events_on_every_interpreter() {
    let Some(relay) = relay_python() else {
        skip("relay normalization of events", "target/bugsink-venv is not installed (make bugsink)");
        return;
    };
    // The harness can fail: an event with a release Sentry refuses has an error.
    let bad = serde_json::json!({"event_id": "0123456789abcdef0123456789abcdef", "release": "a/b",
        "exception": {"values": [{"type": "X", "value": "y"}]}});
    let checked = normalize(&relay, &[bad]);
    assert!(!checked[0]["errors"].as_array().unwrap().is_empty(), "relay reported no error for a bad release");

    let interps = interpreters();
    assert!(interps.len() >= 2, "no interpreters to test: {interps:?}");
    let mut labels = Vec::new();
    let mut events = Vec::new();
    let mut failures = Vec::new();
    for (label, python, args) in &interps {
        // The three kinds of one interpreter run side by side.
        let results: Vec<(String, Result<Value, String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = KINDS
                .iter()
                .map(|(kind, flags, code)| (kind, s.spawn(move || event_of(python, args, flags, code))))
                .collect();
            handles.into_iter().map(|(k, h)| (k.to_string(), h.join().unwrap())).collect()
        });
        for (kind, r) in results {
            match r {
                Ok(ev) => {
                    labels.push(format!("{label} {kind}"));
                    events.push(ev);
                }
                Err(why) => failures.push(format!("{label} {kind}: no event: {why}")),
            }
        }
    }
    let normalized = normalize(&relay, &events);
    for ((label, ev), n) in labels.iter().zip(&events).zip(&normalized) {
        let errors = n["errors"].as_array().unwrap();
        if !errors.is_empty() {
            failures.push(format!("{label}: relay errors {errors:?}"));
        }
        let kind = label.rsplit(' ').next().unwrap();
        let (want_type, want_level) = match kind {
            "crash" => ("SIGSEGV", "fatal"),
            "hang" => ("Hang", "error"),
            _ => ("TestTimeout", "error"),
        };
        if n["type"] != want_type || n["level"] != want_level || n["fingerprint"] != ev["fingerprint"] {
            failures.push(format!("{label}: normalized to {n}"));
        }
        if kind == "crash" {
            let frames = ev["exception"]["values"][0]["stacktrace"]["frames"].as_array().cloned().unwrap_or_default();
            if !frames.iter().any(|f| f["platform"] == "python" && f["function"] == "inner") {
                failures.push(format!("{label}: no Python frame of inner in the crash event"));
            }
        }
    }
    assert!(failures.is_empty(), "{} events checked; failures:\n{}", events.len(), failures.join("\n"));
    println!("relay accepted {} events: {}", events.len(), labels.join(", "));
}
