//! CPython 3.14, from Debian sid (unpacked under target/sid by `make sid`, run through sid's own
//! loader): a real crash read through `_Py_DebugOffsets`. Skipped, visibly, when it is absent.

mod common;

use common::*;
use serde_json::Value;

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

#[test]
fn python_3_14_crash_is_read_through_debug_offsets() {
    let py = root().join("target/sid/run-python3.14");
    if !py.exists() {
        skip("python 3.14", &format!("{} is missing (make sid unpacks Debian sid's python3.14)", py.display()));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("nest.py");
    std::fs::write(
        &script,
        "import ctypes\n\
         class Outer:\n\
         \x20   def method(self):\n\
         \x20       return inner(2)\n\
         def inner(n):\n\
         \x20   if n:\n\
         \x20       return inner(n - 1)\n\
         \x20   return ctypes.string_at(0)\n\
         Outer().method()\n",
    )
    .unwrap();
    let cmd = [py.to_str().unwrap(), script.to_str().unwrap()];
    let bare = run_bare(&cmd);
    let (out, report) = run_caught(NO_ARGS, &cmd);
    assert_eq!(status_pair(&out.status), status_pair(&bare.status), "{}", describe(&out));
    let r = report.unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    let version = r["python"]["version"].as_str().unwrap_or("");
    assert!(version.starts_with("3.14."), "version {version:?}\n{}", describe(&out));
    let crashed = r["threads"].as_array().unwrap().iter().find(|t| t["crashed"] == true).unwrap();
    let frames = python_frames(crashed);
    let ours: Vec<(String, String, u64)> = frames.into_iter().filter(|f| f.0 == "nest.py").collect();
    assert_eq!(
        ours,
        vec![
            ("nest.py".into(), "inner".into(), 8),
            ("nest.py".into(), "inner".into(), 7),
            ("nest.py".into(), "inner".into(), 7),
            ("nest.py".into(), "Outer.method".into(), 4),
            ("nest.py".into(), "<module>".into(), 9),
        ],
        "{}",
        describe(&out)
    );
    assert_eq!(r["python_user_frame"]["line"], 8, "{}", describe(&out));
    eprintln!("python 3.14 ({version}): crash read, {} frames", crashed["frames"].as_array().unwrap().len());
}
