//! asyncio tasks in reports, on every interpreter at hand (pyenv 3.11.7, 3.12.1, 3.13.0 and
//! Debian sid's 3.13, 3.14, 3.15): a deadlocked program (two named tasks waiting for an Event and
//! a Queue under gather()) is dumped and must show every task, its coroutines with their lines,
//! what each awaits and who awaits it; a crash inside a coroutine must name the task.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

fn data(file: &str) -> PathBuf {
    root().join("tests").join("data").join("asyncio").join(file)
}

/// The 1-based line of `tests/data/asyncio/<file>` ending in `<marker>`.
fn marked(file: &str, marker: &str) -> u64 {
    let text = std::fs::read_to_string(data(file)).unwrap();
    let hits: Vec<usize> =
        text.lines().enumerate().filter(|(_, l)| l.trim_end().ends_with(marker)).map(|(i, _)| i + 1).collect();
    assert_eq!(hits.len(), 1, "{marker} in {file}: {hits:?}");
    hits[0] as u64
}

/// (label, command prefix) of every interpreter found; the missing ones are skipped by name.
fn interpreters() -> Vec<(String, Vec<PathBuf>)> {
    let mut out = Vec::new();
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".pyenv"));
    for v in ["3.11.7", "3.12.1", "3.13.0"] {
        let py = pyenv.join("versions").join(v).join("bin/python3");
        if py.exists() {
            out.push((v.to_string(), vec![py]));
        } else {
            skip(&format!("asyncio tasks on {v}"), &format!("{} is missing", py.display()));
        }
    }
    for v in ["3.13", "3.14", "3.15"] {
        let run = root().join(format!("target/sid/run-python{v}"));
        if run.exists() {
            out.push((format!("sid {v}"), vec![run]));
        } else {
            skip(&format!("asyncio tasks on sid {v}"), "target/sid is missing (make sid)");
        }
    }
    out
}

/// Starts `deadlock.py`, waits for its "ready" line, and dumps it (JSON and text).
fn dump_deadlock(cmd: &[PathBuf]) -> (Value, String) {
    let mut child = Command::new(&cmd[0])
        .args(&cmd[1..])
        .arg(data("deadlock.py"))
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "{cmd:?}");
    let pid = child.id().to_string();
    let json = Command::new(bin()).args(["dump", "--format", "json", &pid]).output().unwrap();
    let text = Command::new(bin()).args(["dump", &pid]).output().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(json.status.success(), "{}", String::from_utf8_lossy(&json.stderr));
    let r: Value = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&json.stderr)));
    (r, String::from_utf8_lossy(&text.stdout).into_owned())
}

fn chain(t: &Value) -> Vec<(String, String, u64)> {
    t["coroutines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["function"].as_str().unwrap().to_string(),
                c["file"].as_str().unwrap().to_string(),
                c["line"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn a_deadlocked_program_is_dumped_with_every_task() {
    let script = data("deadlock.py").display().to_string();
    let (gather, event, queue) = (
        marked("deadlock.py", "AWAIT-LINE gather"),
        marked("deadlock.py", "AWAIT-LINE event"),
        marked("deadlock.py", "AWAIT-LINE queue"),
    );
    let mut checked = Vec::new();
    for (label, cmd) in interpreters() {
        let (r, text) = dump_deadlock(&cmd);
        let a = &r["python"]["asyncio"];
        let tasks = a["tasks"].as_array().unwrap_or_else(|| panic!("{label}: no asyncio section\n{r:#}"));
        assert_eq!(tasks.len(), 3, "{label}: {a:#}");
        let by_name =
            |n: &str| tasks.iter().find(|t| t["name"] == n).unwrap_or_else(|| panic!("{label}: no task {n}: {a:#}"));
        let main = by_name("Task-1");
        let (ev, qu) = (by_name("event-waiter"), by_name("queue-reader"));
        assert_eq!(chain(main), vec![("main".into(), script.clone(), gather)], "{label}");
        assert_eq!(main["awaits"]["description"], "gather()'s _GatheringFuture", "{label}");
        let c = chain(ev);
        assert_eq!(c[0], ("wait_for_event".into(), script.clone(), event), "{label}");
        assert_eq!(c.len(), 2, "{label}: {c:?}");
        assert!(c[1].0 == "Event.wait" && c[1].1.ends_with("asyncio/locks.py") && c[1].2 > 0, "{label}: {c:?}");
        assert_eq!(ev["awaits"]["description"], "a Future in Event.wait", "{label}");
        let c = chain(qu);
        assert_eq!(c[0], ("read_queue".into(), script.clone(), queue), "{label}");
        assert!(c.len() == 2 && c[1].0 == "Queue.get" && c[1].1.ends_with("asyncio/queues.py"), "{label}: {c:?}");
        assert_eq!(qu["awaits"]["description"], "a Future in Queue.get", "{label}");
        for t in [ev, qu] {
            assert_eq!(t["awaited_by"], serde_json::json!([main["id"]]), "{label}: {t:#}");
            assert_eq!(t["state"], "pending");
            assert_eq!(t["running"], false);
        }
        assert!(main.get("awaited_by").is_none(), "{label}");
        // The text report draws the tree: both tasks under the main one.
        let tree: Vec<&str> =
            text.lines().skip_while(|l| !l.starts_with("asyncio tasks (3 pending)")).take(11).collect();
        assert!(tree.len() == 11 && tree[1] == "  └── Task-1 (pending)", "{label}:\n{text}");
        assert!(tree.contains(&"      ├── event-waiter (pending)"), "{label}:\n{text}");
        assert!(tree.contains(&"      └── queue-reader (pending)"), "{label}:\n{text}");
        assert!(tree.contains(&format!("      │     wait_for_event at {script}:{event}").as_str()), "{label}:\n{text}");
        checked.push(label);
    }
    assert!(!checked.is_empty(), "no interpreter to test");
    println!("deadlock dumped on {checked:?}");
}

#[test]
fn a_crash_inside_a_coroutine_names_its_task() {
    let line = marked("crash_in_task.py", "CRASH-LINE task");
    let mut checked = Vec::new();
    for (label, cmd) in interpreters() {
        let mut argv: Vec<PathBuf> = cmd.clone();
        argv.push(data("crash_in_task.py"));
        let caught = run_caught_in(NO_ARGS, &argv);
        let r = caught.report().unwrap_or_else(|| panic!("{label}: no report\n{}", describe(&caught.output)));
        let crashed = r["crashed_tid"].as_i64().unwrap();
        let tasks = r["python"]["asyncio"]["tasks"].as_array().unwrap_or_else(|| panic!("{label}: {r:#}"));
        let crasher = tasks.iter().find(|t| t["name"] == "crasher").unwrap_or_else(|| panic!("{label}: {tasks:?}"));
        assert_eq!(crasher["running"], true, "{label}");
        assert_eq!(crasher["thread"].as_i64(), Some(crashed), "{label}");
        assert_eq!(crasher["coroutines"][0]["function"], "crash_now");
        assert_eq!(crasher["coroutines"][0]["line"].as_u64(), Some(line), "{label}");
        let main = tasks.iter().find(|t| t["name"] == "Task-1").unwrap();
        assert_eq!(main["awaits"]["task"], crasher["id"], "{label}");
        assert_eq!(crasher["awaited_by"], serde_json::json!([main["id"]]), "{label}");
        let text = std::fs::read_to_string(&caught.text_files[0]).unwrap();
        assert!(text.contains("  task         asyncio task 'crasher' was running on this thread"), "{label}:\n{text}");
        assert!(text.contains("running asyncio task 'crasher')"), "{label}:\n{text}");
        checked.push(label);
    }
    assert!(!checked.is_empty(), "no interpreter to test");
    println!("crash in a coroutine on {checked:?}");
}

#[test]
fn a_program_without_asyncio_has_no_asyncio_section() {
    let py = venv_python();
    let (out, r) = run_caught(NO_ARGS, &[py.as_os_str(), "-c".as_ref(), "import ctypes; ctypes.string_at(0)".as_ref()]);
    let r = r.unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    assert!(r["python"].is_object());
    assert!(r["python"].get("asyncio").is_none(), "{:#}", r["python"]);
}
