//! CPython 3.13, 3.14 and 3.15 from Debian sid (unpacked under target/sid by `make sid`, run
//! through sid's own loader): stripped distro interpreters read through `_Py_DebugOffsets`,
//! without and with the debug files of python3.X-dbg and libc6-dbg (target/sid-dbg, found by
//! build-id under `--debug-dir`). Each part is skipped, visibly, when its files are absent.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

const SCRIPT: &str = "import ctypes, threading, time\n\
class Outer:\n\
\x20   def method(self):\n\
\x20       return inner(2)\n\
def inner(n):\n\
\x20   if n:\n\
\x20       return inner(n - 1)\n\
\x20   return ctypes.string_at(0)\n\
def sleeper():\n\
\x20   ready.set()\n\
\x20   time.sleep(60)\n\
ready = threading.Event()\n\
threading.Thread(target=sleeper, name='sleepy', daemon=True).start()\n\
ready.wait()\n\
Outer().method()\n";

fn sid() -> PathBuf {
    root().join("target/sid")
}

fn debug_root() -> PathBuf {
    root().join("target/sid-dbg/usr/lib/debug")
}

fn python(version: &str) -> Option<PathBuf> {
    let py = sid().join(format!("run-python{version}"));
    if !py.exists() {
        skip(&format!("sid python {version}"), &format!("{} is missing (make sid unpacks it)", py.display()));
        return None;
    }
    Some(py)
}

/// The debug file of `file` under target/sid-dbg, by build-id.
fn debug_file_of(file: &Path) -> Option<PathBuf> {
    let data = std::fs::read(file).ok()?;
    let obj = object::File::parse(&*data).ok()?;
    let id = object::Object::build_id(&obj).ok()??;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let p = debug_root().join(".build-id").join(&hex[..2]).join(format!("{}.debug", &hex[2..]));
    p.is_file().then_some(p)
}

fn crashed(r: &Value) -> &Value {
    r["threads"].as_array().unwrap().iter().find(|t| t["crashed"] == true).unwrap()
}

/// The thread running `sleeper` (3.13 does not name its threads for the OS).
fn sleeper_thread(r: &Value) -> Option<&Value> {
    r["threads"].as_array().unwrap().iter().find(|t| python_frames(t).iter().any(|f| f.1 == "sleeper"))
}

/// The thread's Python frames (merged, or kept beside the native ones): (file name, function, line).
fn python_frames(thread: &Value) -> Vec<(String, String, u64)> {
    let mut v: Vec<&Value> = thread["frames"].as_array().unwrap().iter().filter(|f| f["kind"] == "python").collect();
    if v.is_empty() {
        if let Some(m) = thread["merge"]["python_frames"].as_array() {
            v = m.iter().collect();
        }
    }
    v.iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap_or("").rsplit('/').next().unwrap_or("").to_string();
            (file, f["function"].as_str().unwrap_or("").to_string(), f["line"].as_u64().unwrap_or(0))
        })
        .collect()
}

fn ours(thread: &Value) -> Vec<(String, String, u64)> {
    python_frames(thread).into_iter().filter(|f| f.0 == "nest.py").collect()
}

fn want() -> Vec<(String, String, u64)> {
    [("inner", 8), ("inner", 7), ("inner", 7), ("Outer.method", 4), ("<module>", 15)]
        .iter()
        .map(|(f, l)| ("nest.py".to_string(), f.to_string(), *l))
        .collect()
}

/// Runs the script under crashcatch (JSON report on stderr), with `args` and `env` for crashcatch.
fn caught(py: &Path, script: &Path, args: &[&str], env: &[(&str, &str)]) -> (std::process::Output, Value) {
    let mut c = Command::new(bin());
    c.args(["--format", "json"]).args(args).arg("--").arg(py).arg(script);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = run(c);
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let start = text.find('{').unwrap_or_else(|| panic!("no JSON report\n{}", describe(&out)));
    let report: Value = serde_json::Deserializer::from_str(&text[start..])
        .into_iter()
        .next()
        .and_then(|r| r.ok())
        .unwrap_or_else(|| panic!("no JSON report\n{}", describe(&out)));
    (out, report)
}

/// What must hold with or without debug files: the interpreter, every thread's Python stack,
/// the call site, the GIL holder, the diagnosis.
fn check_python(version: &str, r: &Value, out: &std::process::Output) {
    let d = describe(out);
    assert_eq!(exit_signal(&out.status), Some(11), "{d}");
    let v = r["python"]["version"].as_str().unwrap_or("");
    assert!(v.starts_with(&format!("{version}.")), "version {v:?}\n{d}");
    assert_eq!(r["python"]["state"], "running", "{d}");
    let t = crashed(r);
    assert_eq!(ours(t), want(), "{d}");
    assert_eq!(python_frames(t)[0].1, "string_at", "ctypes' own frame first\n{d}");
    assert_eq!(r["python_user_frame"]["line"], 8, "{d}");
    assert_eq!(r["python_user_frame"]["function"], "inner", "{d}");
    assert_eq!(r["python"]["gil_holder_tid"], t["tid"], "the crashed thread holds the GIL\n{d}");
    assert_eq!(r["classification"]["kind"], "null_pointer_dereference", "{d}");
    assert!(r["diagnosis"].as_str().unwrap_or("").contains("NULL pointer was passed from Python"), "{d}");
    let sleepy = sleeper_thread(r).unwrap_or_else(|| panic!("no thread running sleeper\n{d}"));
    let sf = python_frames(sleepy);
    assert_eq!(sf.first().map(|f| (f.1.as_str(), f.2)), Some(("sleeper", 11)), "{sf:?}\n{d}");
    assert!(sf.iter().any(|f| f.0 == "threading.py" && f.1 == "Thread.run"), "{sf:?}\n{d}");
}

/// The thread's stack is merged, each group of Python frames where the interpreter's own code
/// called it, and nothing else outside the interpreter is taken for its eval loop.
fn merged_into_the_interpreter(version: &str, t: &Value, out: &std::process::Output) {
    let d = describe(out);
    assert_eq!(t["merge"]["kind"], "merged", "{}\n{d}", t["merge"]);
    let frames = t["frames"].as_array().unwrap();
    let exe = format!("python{version}");
    for p in (1..frames.len()).filter(|&i| frames[i]["kind"] == "python" && frames[i - 1]["kind"] != "python") {
        let before = frames[p - 1]["module"].as_str().unwrap_or("");
        assert!(before.ends_with(&exe), "the interpreter called Python frame {p}: {before}\n{d}");
    }
}

fn sid_case(version: &str) {
    let Some(py) = python(version) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("nest.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let bare = run_bare(&[py.as_os_str(), script.as_os_str()]);
    let (out, plain) = caught(&py, &script, &[], &[]);
    assert_eq!(status_pair(&out.status), status_pair(&bare.status), "{}", describe(&out));
    check_python(version, &plain, &out);
    // Stripped: the fault in libc has no name, and neither has the eval loop where it calls out
    // of its `.cold` part; its frames are found by where each call keeps its entry frame on the
    // C stack, so the stacks are merged all the same.
    let f0 = &crashed(&plain)["frames"][0];
    assert!(f0["module"].as_str().unwrap_or("").ends_with("libc.so.6") && f0["function"].is_null(), "{f0}");
    merged_into_the_interpreter(version, crashed(&plain), &out);
    merged_into_the_interpreter(version, sleeper_thread(&plain).unwrap(), &out);

    // With python3.X-dbg and libc6-dbg: merged stacks and named libc functions.
    let exe = sid().join(format!("usr/bin/python{version}"));
    let libc = sid().join("usr/lib/x86_64-linux-gnu/libc.so.6");
    let (Some(py_dbg), Some(libc_dbg)) = (debug_file_of(&exe), debug_file_of(&libc)) else {
        skip(
            &format!("sid python {version} with python{version}-dbg and libc6-dbg"),
            &format!(
                "no debug file for {} or {} under {} (make sid)",
                exe.display(),
                libc.display(),
                debug_root().display()
            ),
        );
        return;
    };
    let (out, dbg) = caught(&py, &script, &["--debug-dir", debug_root().to_str().unwrap()], &[]);
    check_python(version, &dbg, &out);
    let d = describe(&out);
    let t = crashed(&dbg);
    assert_eq!(t["merge"]["kind"], "merged", "{}\n{d}", t["merge"]);
    let f0 = &t["frames"][0];
    assert!(f0["function"].as_str().unwrap_or("").starts_with("__strlen"), "libc function named: {f0}");
    assert!(f0["file"].as_str().unwrap_or("").contains("strlen"), "libc file:line: {f0}");
    merged_into_the_interpreter(version, t, &out);
    merged_into_the_interpreter(version, sleeper_thread(&dbg).unwrap(), &out);
    let listed: Vec<&str> =
        dbg["modules"].as_array().unwrap().iter().filter_map(|m| m["debug_file"].as_str()).collect();
    for f in [&py_dbg, &libc_dbg] {
        assert!(listed.iter().any(|l| Path::new(l) == f.as_path()), "{} not used: {listed:?}", f.display());
    }
    eprintln!("sid python {version}: read without and with debug files");
}

#[test]
fn sid_python_3_13() {
    sid_case("3.13");
}

#[test]
fn sid_python_3_14() {
    sid_case("3.14");
}

#[test]
fn sid_python_3_15() {
    sid_case("3.15");
}

/// A version newer than those tested, simulated on a real 3.15 by telling the reader it was only
/// tested up to 3.14: the stacks are read from the offsets the process publishes and the report
/// says the version is newer than those tested.
#[test]
fn sid_python_3_15_presented_as_untested() {
    let Some(py) = python("3.15") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("nest.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let (out, r) = caught(&py, &script, &[], &[("CRASHCATCH_TEST_PYTHON_TESTED_UP_TO", "3.14")]);
    check_python("3.15", &r, &out);
    let notes = r["python"]["errors"].to_string();
    assert!(notes.contains("newer than the versions this reader was tested with (up to 3.14)"), "{notes}");
    assert!(notes.contains("parsed as 3.15"), "{notes}");
    // The same run, tested up to 3.15: no such note.
    let (_, r) = caught(&py, &script, &[], &[]);
    assert!(!r["python"]["errors"].to_string().contains("newer than"), "{}", r["python"]);
}
