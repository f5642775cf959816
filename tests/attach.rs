//! `crashcatch attach PID` and `crashcatch dump PID`, and `run --hang-timeout`: on real
//! processes, with handshakes over pipes rather than sleeps.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Every interpreter to try: /usr/bin/python3, pyenv's 3.x, pyenv's 2.7 and Debian sid's 3.13,
/// 3.14, 3.15 (`make sid`, run through sid's loader) when present.
fn interpreters() -> Vec<PathBuf> {
    let mut v = pythons();
    for ver in ["3.13", "3.14", "3.15"] {
        let p = root().join(format!("target/sid/run-python{ver}"));
        if p.exists() {
            v.push(p);
        } else {
            skip(&format!("attach on sid python {ver}"), &format!("{} is missing (make sid)", p.display()));
        }
    }
    if let Some(home) = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")))
    {
        if let Ok(d) = std::fs::read_dir(home.join("versions")) {
            for e in d.flatten() {
                let p = e.path().join("bin/python2.7");
                if e.file_name().to_string_lossy().starts_with("2.7") && p.exists() {
                    v.push(p);
                }
            }
        }
    }
    assert!(!v.is_empty(), "no Python interpreter found: the attach tests need at least one");
    v
}

fn proc_state(pid: i32) -> Option<(char, i32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()));
    let state = field("State:")?.chars().next()?;
    let tracer = field("TracerPid:")?.parse().ok()?;
    Some((state, tracer))
}

/// Starts `py script` with stdin and stdout piped (stderr dropped) and returns it with its stdout
/// and the first line it printed (the script's readiness signal).
fn start_target(py: &Path, script: &Path) -> (Child, BufReader<ChildStdout>, String) {
    let mut target = Command::new(py)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(target.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    (target, out, line)
}

/// Starts `crashcatch ARGS` and waits for its "attached to pid" line on stderr.
// The child is handed back to the caller, who waits for it; the lint cannot see that.
#[allow(clippy::zombie_processes)]
fn attach_and_wait(args: &[&str]) -> (Child, BufReader<ChildStderr>, String) {
    let mut cc = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(cc.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if !matches!(err.read_line(&mut line), Ok(n) if n > 0) {
            let status = cc.wait();
            panic!("crashcatch ended before attaching ({status:?}):\n{seen}");
        }
        seen.push_str(&line);
        if line.contains("attached to pid") {
            return (cc, err, seen);
        }
    }
}

/// The script: nested calls, prints READY, waits for a line on stdin, then crashes in ctypes.
const CRASH_SCRIPT: &str = "import ctypes, sys\n\
def inner():\n\
\x20   sys.stdin.readline()\n\
\x20   return ctypes.string_at(0)\n\
def outer():\n\
\x20   return inner()\n\
sys.stdout.write('READY\\n'); sys.stdout.flush()\n\
outer()\n";

fn py_frames(r: &Value) -> Vec<(String, u64)> {
    let t = r["threads"].as_array().unwrap().iter().find(|t| t["crashed"] == true).unwrap();
    let mut v: Vec<&Value> = t["frames"].as_array().unwrap().iter().filter(|f| f["kind"] == "python").collect();
    if v.is_empty() {
        v = t["merge"]["python_frames"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    }
    v.iter().map(|f| (f["function"].as_str().unwrap_or("").to_string(), f["line"].as_u64().unwrap_or(0))).collect()
}

fn crash_function(r: &Value) -> Option<String> {
    r["culprit"]["frame"]["function"].as_str().map(str::to_string)
}

fn write_script(dir: &Path) -> PathBuf {
    let p = dir.join("attach_crash.py");
    std::fs::write(&p, CRASH_SCRIPT).unwrap();
    p
}

#[test]
fn attach_reports_a_crash_as_run_mode_does_on_every_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path());
    let mut covered = Vec::new();
    for py in interpreters() {
        // Run mode, for comparison: the script reads EOF at once and crashes.
        let (run_out, run_report) = run_caught(NO_ARGS, &[py.to_str().unwrap(), script.to_str().unwrap()]);
        let run_report =
            run_report.unwrap_or_else(|| panic!("{}: no report in run mode\n{}", py.display(), describe(&run_out)));

        let (mut target, _out, line) = start_target(&py, &script);
        assert_eq!(line.trim(), "READY");
        let pid = target.id().to_string();
        let reports = out_dir();
        let (mut cc, mut err, mut seen) =
            attach_and_wait(&["attach", "--format", "json", "--output-dir", reports.path().to_str().unwrap(), &pid]);
        target.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let status = target.wait().unwrap();
        let cc_status = cc.wait().unwrap();
        err.read_to_string(&mut seen).unwrap();
        assert_eq!(exit_signal(&status), Some(11), "{}: the target must die of its SIGSEGV\n{seen}", py.display());
        // attach's status says how the process ended: 128 + SIGSEGV.
        assert_eq!(cc_status.code(), Some(128 + 11), "{}: crashcatch attach exit {cc_status:?}\n{seen}", py.display());
        let files: Vec<_> = std::fs::read_dir(reports.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        assert_eq!(files.len(), 1, "{}: one report\n{seen}", py.display());
        let r: Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
        assert_eq!(r["signal"]["name"], "SIGSEGV");
        assert_eq!(
            crash_function(&r),
            crash_function(&run_report),
            "{}: same faulting function as run mode",
            py.display()
        );
        let frames = py_frames(&r);
        assert_eq!(frames, py_frames(&run_report), "{}: same Python frames as run mode\n{seen}", py.display());
        assert!(frames.iter().any(|(f, l)| f == "inner" && *l == 4), "{}: inner at line 4: {frames:?}", py.display());
        assert_eq!(r["python"]["version"], run_report["python"]["version"]);
        covered.push(format!("{} ({})", py.display(), r["python"]["version"].as_str().unwrap_or("?")));
    }
    eprintln!("attach matrix covered: {}", covered.join(", "));
}

/// A C-free counter: prints 0..n, one line every `ms` milliseconds.
fn counter(n: u32, ms: u32) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(format!("i=0; while [ $i -lt {n} ]; do echo $i; i=$((i+1)); sleep {}; done", ms as f64 / 1000.0));
    c
}

#[test]
fn interrupting_attach_leaves_the_process_running_and_untraced() {
    let mut target = counter(200, 20).stdout(Stdio::piped()).spawn().unwrap();
    let pid = target.id() as i32;
    let (mut cc, mut err, mut seen) = attach_and_wait(&["attach", &pid.to_string()]);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(cc.id() as i32, libc::SIGINT) };
    let st = cc.wait().unwrap();
    err.read_to_string(&mut seen).unwrap();
    assert!(st.success(), "crashcatch attach after SIGINT: {st:?}\n{seen}");
    assert!(seen.contains("detached"), "{seen}");
    let (state, tracer) = proc_state(pid).expect("the target is gone");
    assert_eq!(tracer, 0, "still traced after detach");
    assert!(state == 'S' || state == 'R', "state {state} after detach (must not be stopped)");
    let _ = target.kill();
    let _ = target.wait();
}

#[test]
fn attaching_and_detaching_100_times_changes_nothing() {
    let n = 300;
    let bare = counter(n, 5).output().unwrap();
    let t0 = Instant::now();
    let target = counter(n, 5).stdout(Stdio::piped()).spawn().unwrap();
    let pid = target.id() as i32;
    let mut rounds = 0;
    while rounds < 100 {
        let mut cc =
            Command::new(bin()).args(["attach", "-q", &pid.to_string()]).stderr(Stdio::piped()).spawn().unwrap();
        // Detach as soon as it is attached: SIGTERM right away also covers a signal that
        // arrives before the event loop runs.
        std::thread::sleep(Duration::from_millis(2));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(cc.id() as i32, libc::SIGTERM) };
        let st = cc.wait().unwrap();
        if proc_state(pid).is_none() {
            break; // the counter finished
        }
        // Detached (0), found the counter gone (125, or its exit status 0), or killed by the
        // SIGTERM before its handlers were installed: the kernel then detaches the target
        // itself. All leave it unharmed, which is what the rest of the loop checks.
        assert!(
            st.success() || st.code() == Some(125) || exit_signal(&st) == Some(libc::SIGTERM),
            "attach round {rounds}: {st:?}"
        );
        let (state, tracer) = proc_state(pid).unwrap_or(('S', 0));
        assert!(tracer == 0 || tracer == cc.id() as i32, "round {rounds}: traced by {tracer}");
        assert!(state != 't', "round {rounds}: left in tracing stop");
        rounds += 1;
    }
    let out = target.wait_with_output().unwrap();
    let elapsed = t0.elapsed();
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(out.stdout, bare.stdout, "the counter's output changed after {rounds} attach/detach rounds");
    eprintln!("{rounds} attach/detach rounds; counter ran {:.2}s (bare output identical)", elapsed.as_secs_f64());
    assert!(rounds >= 20, "only {rounds} rounds ran before the counter ended: the test did not exercise attach");
}

#[test]
fn attach_refusals_say_why() {
    let out = Command::new(bin()).args(["attach", "999999999"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125));
    assert!(err.contains("no such process"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    let mut target = counter(1000, 10).stdout(Stdio::null()).spawn().unwrap();
    let pid = target.id().to_string();
    let (mut first, _err, _) = attach_and_wait(&["attach", &pid]);
    let out = Command::new(bin()).args(["attach", &pid]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("already traced by pid") && err.contains("crashcatch"), "{err}");
    // SAFETY: signalling our own children.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    let _ = first.wait();
    let _ = target.kill();
    let _ = target.wait();
}

const BLOCKED_SCRIPT: &str = "import threading, time, sys, os, select\n\
def sleeper():\n\
\x20   time.sleep(1000)\n\
def reader(r):\n\
\x20   os.read(r, 1)\n\
r, w = os.pipe()\n\
threading.Thread(target=sleeper, daemon=True).start()\n\
threading.Thread(target=reader, args=(r,), daemon=True).start()\n\
sys.stdout.write('READY\\n'); sys.stdout.flush()\n\
sys.stdin.readline()\n";

#[test]
fn dump_shows_every_thread_blocked_in_native_calls_and_detaches() {
    let py = interpreters()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("3.1"))
        .unwrap_or_else(|| interpreters()[0].clone());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("blocked.py");
    std::fs::write(&script, BLOCKED_SCRIPT).unwrap();
    let mut target = Command::new(&py).arg(&script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(target.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // Let both threads reach their blocking calls.
    let pid = target.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0) < 3
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let o = Command::new(bin()).args(["dump", "--format", "json", &pid.to_string()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The stacks are dump's product: on stdout (`crashcatch dump PID > stacks.json`).
    let r: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&o.stderr)));
    assert_eq!(r["kind"], "dump");
    let threads = r["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 3, "{}", String::from_utf8_lossy(&o.stdout));
    let all: Vec<(String, u64)> = threads
        .iter()
        .flat_map(|t| t["frames"].as_array().unwrap().iter().filter(|f| f["kind"] == "python"))
        .map(|f| (f["function"].as_str().unwrap().to_string(), f["line"].as_u64().unwrap_or(0)))
        .collect();
    assert!(all.contains(&("sleeper".into(), 3)), "{all:?}");
    assert!(all.contains(&("reader".into(), 5)), "{all:?}");
    assert!(all.iter().any(|(f, l)| f == "<module>" && *l == 10), "{all:?}");
    let stopped_ms = r["timings"]["total_ms"].as_f64().unwrap();
    eprintln!("dump: the target was stopped for about {stopped_ms:.1} ms ({})", py.display());
    let (state, tracer) = proc_state(pid).unwrap();
    assert_eq!(tracer, 0);
    assert!(state == 'S' || state == 'R', "state {state}");
    target.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(target.wait().unwrap().success());
}

#[test]
fn hang_timeout_dumps_a_hung_pytest_run_and_terminates_it() {
    let venv = venv_dir().join("bin/python");
    if !venv.exists() {
        panic!("{} missing: run make venv", venv.display());
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("test_hang.py"),
        "import time\n\ndef test_ok():\n    pass\n\ndef test_hangs():\n    time.sleep(1000)\n",
    )
    .unwrap();
    let reports = out_dir();
    let o = Command::new(bin())
        .args(["--hang-timeout", "3", "--output-dir", reports.path().to_str().unwrap(), "--"])
        .arg(&venv)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_hang.py"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(exit_signal(&o.status), Some(libc::SIGTERM), "{err}");
    let files: Vec<_> = std::fs::read_dir(reports.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{err}");
    assert!(files[0].file_name().unwrap().to_string_lossy().starts_with("hang-"));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_eq!(r["kind"], "hang");
    assert_eq!(r["process"]["test"], "test_hang.py::test_hangs (call)", "{err}");
    let main = r["threads"].as_array().unwrap().iter().find(|t| t["main"] == true).unwrap();
    assert!(
        main["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "python" && f["function"] == "test_hangs" && f["line"] == 7),
        "{err}"
    );
}

#[test]
fn attach_permission_denied_names_the_owner() {
    if !Path::new("/usr/bin/setpriv").exists() || unsafe { libc::geteuid() } != 0 {
        skip("attach permission test", "needs root and setpriv to run crashcatch as another user");
        return;
    }
    let mut target = counter(1000, 10).stdout(Stdio::null()).spawn().unwrap();
    let o = Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin())
        .args(["attach", &target.id().to_string()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let _ = target.kill();
    let _ = target.wait();
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.contains("permission denied") && err.contains("uid 0") && err.contains("uid 65534"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

/// The parent waits for a line on stdin, then forks a child that crashes; the parent survives.
const FORK_SCRIPT: &str = "import ctypes, os, sys\n\
def child_work():\n\
\x20   ctypes.string_at(0)\n\
sys.stdout.write('READY\\n'); sys.stdout.flush()\n\
sys.stdin.readline()\n\
pid = os.fork()\n\
if pid == 0:\n\
\x20   child_work()\n\
_, status = os.waitpid(pid, 0)\n\
sys.stdout.write('child status %d\\n' % status); sys.stdout.flush()\n";

#[test]
fn attach_follow_forks_reports_a_crash_in_a_later_child() {
    let py = interpreters()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("3.1"))
        .unwrap_or_else(|| interpreters()[0].clone());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fork_crash.py");
    std::fs::write(&script, FORK_SCRIPT).unwrap();
    let (mut target, mut out, mut line) = start_target(&py, &script);
    let pid = target.id().to_string();
    let reports = out_dir();
    let (mut cc, mut err, mut seen) = attach_and_wait(&[
        "attach",
        "--follow-forks",
        "--format",
        "json",
        "--output-dir",
        reports.path().to_str().unwrap(),
        &pid,
    ]);
    target.stdin.take().unwrap().write_all(b"go\n").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("child status {}", libc::SIGSEGV), "the child still dies of its SIGSEGV");
    assert!(target.wait().unwrap().success());
    let st = cc.wait().unwrap();
    err.read_to_string(&mut seen).unwrap();
    assert!(st.success(), "{seen}");
    let files: Vec<_> = std::fs::read_dir(reports.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{seen}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_ne!(r["process"]["pid"].to_string(), pid, "the report is the child's");
    assert_eq!(r["process"]["ancestry"][0]["pid"].to_string(), pid, "{}", r["process"]);
    assert!(py_frames(&r).iter().any(|(f, l)| f == "child_work" && *l == 3), "{:?}", py_frames(&r));
}
