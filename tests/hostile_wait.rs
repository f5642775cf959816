//! crashcatch never waits on what the target controls (issue 22): memory that never answers (a
//! userfaultfd region nobody serves, fixtures/uffd_hang.c) at a crash, under `attach`, under
//! `dump` and under `--test-timeout`; a core whose NT_FILE names a FIFO; a FIFO put in place
//! of GITHUB_STEP_SUMMARY. Each run must end within the report's budget plus a second, with
//! the report (or a note saying what was left out), the command's own exit status, and no
//! process left stopped or traced.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The report's default budget, and the slack the issue allows past it.
const BUDGET: Duration = Duration::from_secs(2);
const SLACK: Duration = Duration::from_secs(1);

/// The fixture, or None (with a skip line) where userfaultfd is not allowed here.
fn uffd_fixture() -> Option<PathBuf> {
    let exe = fixture(Variant::Fp, "uffd_hang");
    let probe = Command::new(&exe).arg("probe-only-exits-77-or-crashes").stdin(Stdio::null()).output().unwrap();
    if probe.status.code() == Some(77) {
        skip("hostile_wait userfaultfd", String::from_utf8_lossy(&probe.stderr).trim());
        return None;
    }
    Some(exe)
}

/// Starts `uffd_hang sleep` and waits for its "ready" line.
fn sleeper(exe: &Path) -> Child {
    let mut c = Command::new(exe).arg("sleep").stdin(Stdio::null()).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "uffd_hang sleep ended before it was ready");
    }
    c
}

/// (state letter, tracer pid) of a process, from /proc/PID/status.
fn state(pid: u32) -> Option<(char, i32)> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |k: &str| s.lines().find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()));
    Some((field("State:")?.chars().next()?, field("TracerPid:")?.parse().ok()?))
}

/// The process runs (not stopped, not traced).
fn assert_running_untraced(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let st = state(pid).expect("the target is gone");
        if st.1 == 0 && st.0 != 't' && st.0 != 'T' {
            return;
        }
        assert!(Instant::now() < deadline, "pid {pid} left stopped or traced: {st:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn notes(r: &Value) -> Vec<String> {
    r["notes"].as_array().map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

fn kill(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

#[test]
fn a_crash_whose_memory_never_answers_is_reported_within_the_budget() {
    let Some(exe) = uffd_fixture() else { return };
    let bare = run_bare(&[exe.as_os_str(), "crash".as_ref()]);
    assert_eq!(exit_signal(&bare.status), Some(libc::SIGSEGV));
    let t = Instant::now();
    let caught = run_caught_in(NO_ARGS, &[exe.as_os_str(), "crash".as_ref()]);
    let took = t.elapsed();
    assert!(took < BUDGET + SLACK, "took {took:?}\n{}", describe(&caught.output));
    assert_eq!(status_pair(&caught.output.status), status_pair(&bare.status), "{}", describe(&caught.output));
    let r = caught.report().unwrap_or_else(|| panic!("no report\n{}", describe(&caught.output)));
    assert_eq!(r["signal"]["name"], "SIGSEGV");
    // The report is a real one: the faulting function is named, and a note says what was
    // left out and why.
    assert_eq!(r["culprit"]["frame"]["function"], "cc_uffd_crash", "{r}");
    let n = notes(&r);
    assert!(n.iter().any(|n| n.contains("did not return within") && n.contains("userfaultfd")), "{n:?}");
}

#[test]
fn dump_of_a_process_whose_memory_never_answers_detaches_within_the_budget() {
    let Some(exe) = uffd_fixture() else { return };
    let target = sleeper(&exe);
    let pid = target.id();
    let t = Instant::now();
    let out = run_within(
        {
            let mut c = Command::new(bin());
            c.args(["dump", "--format", "json", &pid.to_string()]);
            c
        },
        BUDGET + SLACK + Duration::from_secs(5),
    );
    let took = t.elapsed();
    assert!(took < BUDGET + SLACK, "dump took {took:?}\n{}", describe(&out));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("did not return within"), "{text}");
    assert_running_untraced(pid);
    kill(target);
}

#[test]
fn attach_reports_a_crash_whose_memory_never_answers() {
    let Some(exe) = uffd_fixture() else { return };
    let target = sleeper(&exe);
    let pid = target.id();
    let dir = out_dir();
    let mut cc = Command::new(bin())
        .args(["attach", "--format", "json", "--output-dir"])
        .arg(dir.path())
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(cc.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("attached to pid") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "crashcatch ended before attaching");
    }
    let t = Instant::now();
    // SAFETY: signalling the test's own child.
    unsafe { libc::kill(pid as i32, libc::SIGSEGV) };
    let status = cc.wait().unwrap();
    let took = t.elapsed();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    assert!(took < BUDGET + SLACK, "attach took {took:?}: {rest}");
    let mut target = target;
    let st = target.wait().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGSEGV), "the target died of its own signal");
    let reports: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(reports.len(), 1, "{rest}");
    let r: Value = serde_json::from_str(&fs::read_to_string(&reports[0]).unwrap()).unwrap();
    assert!(notes(&r).iter().any(|n| n.contains("did not return within")), "{:?}", notes(&r));
    let _ = status;
}

#[test]
fn test_timeout_polls_never_block_the_run() {
    let Some(exe) = uffd_fixture() else { return };
    let script = format!("'{}' sleep >/dev/null 2>&1 & echo $! > pid; sleep 4; echo done", exe.display());
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let mut c = Command::new(bin());
    c.args(["--test-timeout", "600", "--", "sh", "-c", &script]).current_dir(dir.path());
    let out = run_within(c, Duration::from_secs(30));
    let took = t.elapsed();
    let pid: i32 = fs::read_to_string(dir.path().join("pid")).unwrap().trim().parse().unwrap();
    // SAFETY: the sleeper the script left behind.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(String::from_utf8_lossy(&out.stdout).contains("done"), "{}", describe(&out));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(took < Duration::from_secs(4) + SLACK + SLACK, "took {took:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("the memory of pid {pid} did not answer")), "{stderr}");
}

/// A FIFO in place of the job summary: the run ends with the command's status, one line says
/// why nothing was written there.
#[test]
fn a_fifo_as_the_job_summary_never_blocks_the_end_of_the_run() {
    let exe = fixture(Variant::Fp, "null_deref");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("summary");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut cmd = Command::new(bin());
    cmd.arg("--").arg(&exe).env("GITHUB_ACTIONS", "true").env("GITHUB_STEP_SUMMARY", &fifo);
    let t = Instant::now();
    let out = run_within(cmd, Duration::from_secs(20));
    assert!(t.elapsed() < BUDGET + SLACK, "{:?}", t.elapsed());
    assert_eq!(exit_signal(&out.status), Some(libc::SIGSEGV), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("summary"), "{stderr}");
}

/// A core whose NT_FILE names a FIFO (the same path length, padded with `/`): `crashcatch
/// core` reads the core without ever opening the FIFO for reading.
#[test]
fn a_core_naming_a_fifo_never_blocks_crashcatch_core() {
    let exe = fixture(Variant::Fp, "null_deref");
    let lib = fs::canonicalize(exe.with_file_name("libccfix.so")).unwrap();
    let dir = out_dir();
    let mut c = Command::new(bin());
    c.arg("--core").arg("--output-dir").arg(dir.path()).arg("--").arg(&exe);
    let out = run(c);
    let core = fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "core"))
        .unwrap_or_else(|| panic!("no core written\n{}", describe(&out)));
    let mut bytes = fs::read(&core).unwrap();
    let fifo_dir = tempfile::Builder::new().prefix("f").tempdir_in("/tmp").unwrap();
    let name = lib.to_str().unwrap();
    let base = fifo_dir.path().to_str().unwrap();
    assert!(base.len() + 2 <= name.len(), "{base} is longer than {name}");
    let fifo = format!("{base}{}f", "/".repeat(name.len() - base.len() - 1));
    let c = std::ffi::CString::new(fifo.as_str()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut replaced = 0;
    let mut i = 0;
    while let Some(at) = bytes[i..].windows(name.len()).position(|w| w == name.as_bytes()) {
        let at = i + at;
        bytes[at..at + name.len()].copy_from_slice(fifo.as_bytes());
        replaced += 1;
        i = at + name.len();
    }
    assert!(replaced > 0, "the core does not name {name}");
    let patched = dir.path().join("patched.core");
    fs::write(&patched, &bytes).unwrap();
    let mut c = Command::new(bin());
    c.args(["core", "--format", "json"]).arg(&patched);
    let t = Instant::now();
    let out = run_within(c, Duration::from_secs(20));
    assert!(t.elapsed() < BUDGET + SLACK, "{:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", describe(&out)));
    assert_eq!(r["signal"]["name"], "SIGSEGV");
}
