//! Debian's stripped, non-PIE python3.11, with and without its python3.11-dbg debug files
//! (`make py311dbg` unpacks both, of the same version, under target/py311dbg; the debug files
//! are found by build-id under `--debug-dir`). Skipped, visibly, when absent.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use common::*;
use serde_json::Value;

fn crashed(r: &Value) -> &Value {
    r["threads"].as_array().unwrap().iter().find(|t| t["crashed"] == true).unwrap()
}

fn python_frames(t: &Value) -> Vec<(String, u64)> {
    t["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "python")
        .map(|f| (f["function"].as_str().unwrap_or("").to_string(), f["line"].as_u64().unwrap_or(0)))
        .collect()
}

fn native<'a>(t: &'a Value, function: &str) -> Option<&'a Value> {
    t["frames"].as_array().unwrap().iter().find(|f| f["kind"] == "native" && f["function"] == function)
}

#[test]
fn debian_python311_with_and_without_dbg_symbols() {
    let dir = root().join("target/py311dbg");
    let py = dir.join("run-python3.11");
    if !py.exists() {
        skip(
            "python3.11-dbg",
            &format!("{} is missing (make py311dbg unpacks Debian's python3.11 and python3.11-dbg)", py.display()),
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("nest.py");
    std::fs::write(
        &script,
        "import ctypes\ndef inner():\n    return ctypes.string_at(0)\ndef outer():\n    return inner()\nouter()\n",
    )
    .unwrap();
    let cmd = [py.to_str().unwrap(), script.to_str().unwrap()];
    let debug = dir.join("usr/lib/debug");
    let (out_plain, plain) = run_caught(NO_ARGS, &cmd);
    let (out_dbg, dbg) = run_caught(&["--debug-dir", debug.to_str().unwrap()], &cmd);
    let plain = plain.unwrap_or_else(|| panic!("no report\n{}", describe(&out_plain)));
    let dbg = dbg.unwrap_or_else(|| panic!("no report\n{}", describe(&out_dbg)));
    assert_eq!(exit_signal(&out_plain.status), Some(11));
    assert_eq!(exit_signal(&out_dbg.status), Some(11));
    for r in [&plain, &dbg] {
        assert!(r["python"]["version"].as_str().unwrap_or("").starts_with("3.11."), "{r}");
    }
    let (tp, td) = (crashed(&plain), crashed(&dbg));
    // Python frames do not depend on debug files: .dynsym has all the interpreter needs.
    let want = vec![("inner".to_string(), 3), ("outer".to_string(), 5), ("<module>".to_string(), 6)];
    let pp: Vec<_> = python_frames(tp).into_iter().filter(|f| f.0 != "string_at").collect();
    let pd: Vec<_> = python_frames(td).into_iter().filter(|f| f.0 != "string_at").collect();
    assert_eq!(pp, want, "{}", describe(&out_plain));
    assert_eq!(pd, want, "{}", describe(&out_dbg));
    // Without the debug files: exported names only, no lines. With them: file:line and the
    // static functions too.
    let call_plain = native(tp, "_PyObject_MakeTpCall").expect("exported symbol in .dynsym");
    assert!(call_plain["line"].is_null(), "no DWARF without python3.11-dbg: {call_plain}");
    let call_dbg = native(td, "_PyObject_MakeTpCall").expect("symbol with python3.11-dbg");
    assert_eq!(call_dbg["file"].as_str().map(|f| f.ends_with("Objects/call.c")), Some(true), "{call_dbg}");
    assert!(call_dbg["line"].as_u64().is_some(), "{call_dbg}");
    let named = |t: &Value| {
        t["frames"].as_array().unwrap().iter().filter(|f| f["kind"] == "native" && f["function"].is_string()).count()
    };
    assert!(named(td) > named(tp), "more named frames with the debug files ({} vs {})", named(td), named(tp));
    let debug_file = dbg["modules"].as_array().unwrap().iter().find_map(|m| m["debug_file"].as_str()).unwrap_or("");
    assert!(debug_file.contains("/.build-id/"), "the debug file is listed: {debug_file}");
}
