//! crashcatch under a hostile target (issue 11, the input and supervisor half): a target that
//! drops to `nobody` and names a root-only file as its source must not get a line of it in
//! its report; source files that are huge, many, or named under thousands of spellings, and
//! frames with 4000-character names, must keep crashcatch's own peak RSS under 100 MB and its
//! report under 2 s; a SIGTERM in the first milliseconds is never lost; Ctrl-C in attach mode
//! is acted on at once; crashcatch killed before the command's exec leaves nothing running;
//! crashcatch is not dumpable; an --output-dir of another user is written into safely.
//!
//! The attacks are tests/data/hostile/attack.py: the command forks, the child attacks and
//! crashes, the parent stays alive until told, so crashcatch's VmHWM can be read from /proc
//! after its report and before it exits.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Peak RSS crashcatch may reach on any input.
const MAX_RSS_KB: u64 = 100 * 1024;
/// Time a report may take (its own `timings.total_ms`).
const MAX_REPORT_MS: f64 = 2000.0;

fn is_root() -> bool {
    // SAFETY: geteuid has no arguments.
    unsafe { libc::geteuid() == 0 }
}

fn python() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/python3");
    p.exists().then_some(p)
}

fn attack_script() -> PathBuf {
    common::root().join("tests/data/hostile/attack.py")
}

/// A folder anyone may enter and read (the attack's files; `nobody` runs the script from it).
fn open_dir() -> tempfile::TempDir {
    let d = tempfile::Builder::new().prefix("crashcatch-hostile-").tempdir().unwrap();
    fs::set_permissions(d.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    d
}

struct Measured {
    report: Value,
    text: String,
    peak_rss_kb: u64,
    status: std::process::ExitStatus,
    stderr: String,
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")?.trim().trim_end_matches("kB").trim().parse().ok())
}

fn reports(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with("crash-") && p.extension().is_some_and(|e| e == ext)
        })
        .collect();
    v.sort();
    v
}

/// Runs attack `mode` under crashcatch; reads crashcatch's VmHWM once both reports are written,
/// then lets the command end.
fn attack(mode: &str, args: &[&str]) -> Option<Measured> {
    let Some(py) = python() else {
        common::skip(&format!("hostile {mode}"), "no /usr/bin/python3");
        return None;
    };
    let work = open_dir();
    let out = common::out_dir();
    let logs = tempfile::tempdir().unwrap();
    let mut c = Command::new(common::bin());
    c.arg("--output-dir").arg(out.path()).args(["--format", "json", "--"]);
    c.arg(&py).arg(attack_script()).arg(mode).arg(work.path()).args(args);
    // Files, not pipes: a full pipe would stop crashcatch (and the test with it).
    c.stdin(Stdio::null())
        .stdout(fs::File::create(logs.path().join("out")).unwrap())
        .stderr(fs::File::create(logs.path().join("err")).unwrap())
        .env_remove("DEBUGINFOD_URLS");
    let mut child = c.spawn().unwrap();
    let start = Instant::now();
    let mut peak = 0;
    while reports(out.path(), "txt").is_empty() {
        assert!(start.elapsed() < common::timeout(), "no report after {:?}", start.elapsed());
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "crashcatch ended ({st}) without a report: {}",
                fs::read_to_string(logs.path().join("err")).unwrap()
            );
        }
        peak = vm_hwm_kb(child.id()).unwrap_or(peak);
        std::thread::sleep(Duration::from_millis(10));
    }
    peak = vm_hwm_kb(child.id()).unwrap_or(peak).max(peak);
    fs::write(work.path().join("done"), "").unwrap();
    let status = wait_within(&mut child, common::timeout()).expect("crashcatch did not end after the report");
    let json = reports(out.path(), "json");
    assert_eq!(json.len(), 1, "{json:?}");
    let report: Value = serde_json::from_str(&fs::read_to_string(&json[0]).unwrap()).unwrap();
    let text = fs::read_to_string(&reports(out.path(), "txt")[0]).unwrap();
    let stderr = fs::read_to_string(logs.path().join("err")).unwrap();
    Some(Measured { report, text, peak_rss_kb: peak, status, stderr })
}

fn wait_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn notes(r: &Value) -> Vec<String> {
    r["notes"].as_array().map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// What every attack must leave: a report of the SIGSEGV, made in time, within the memory
/// budget, and the command ending as it would have (the parent exits 0).
fn assert_bounded(m: &Measured, what: &str) {
    assert_eq!(m.report["signal"]["name"], "SIGSEGV", "{what}: {}", m.stderr);
    assert_eq!(m.status.code(), Some(0), "{what}: the command's own status: {}", m.stderr);
    let total = m.report["timings"]["total_ms"].as_f64().unwrap();
    assert!(total < MAX_REPORT_MS, "{what}: the report took {total} ms ({})", m.report["timings"]);
    assert!(m.peak_rss_kb > 0 && m.peak_rss_kb <= MAX_RSS_KB, "{what}: crashcatch's peak RSS {} kB", m.peak_rss_kb);
    println!("{what}: peak RSS {} kB, report {total} ms ({})", m.peak_rss_kb, m.report["timings"]);
}

#[test]
fn a_target_running_as_nobody_gets_no_line_of_a_root_only_file() {
    if !is_root() {
        common::skip("hostile disclosure", "needs root (crashcatch as root, the target dropping to nobody)");
        return;
    }
    let secrets = open_dir();
    let secret = secrets.path().join("shadow");
    fs::write(&secret, "SECRET-LINE-d41d8cd98f00b204\n").unwrap();
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let public = secrets.path().join("public.py");
    fs::write(&public, "# first\nPUBLIC_LINE = 'shown'\n").unwrap();
    fs::set_permissions(&public, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let Some(m) = attack("disclose", &[secret.to_str().unwrap(), public.to_str().unwrap()]) else { return };
    let json = serde_json::to_string(&m.report).unwrap();
    assert!(!json.contains("SECRET-LINE") && !m.text.contains("SECRET-LINE"), "a root-only line leaked:\n{}", m.text);
    assert!(!m.stderr.contains("SECRET-LINE"), "a root-only line leaked on stderr");
    // The file is named in the report (the frame is real), only its text is not shown.
    assert!(json.contains("/shadow"), "{}", m.text);
    // The control: a file nobody may read is shown, so source lines do work as nobody.
    assert!(json.contains("PUBLIC_LINE = 'shown'"), "{}", m.text);
    assert_bounded(&m, "disclose");
}

#[test]
fn an_8_mib_source_named_under_many_spellings_by_21_threads() {
    let Some(m) = attack("bigsrc", &["20"]) else { return };
    assert!(notes(&m.report).iter().any(|n| n.contains("past the first 1024 KiB")), "{:?}", notes(&m.report));
    assert!(m.text.contains("x = 1  # yyy"), "lines inside the first MiB are shown:\n{}", m.text);
    assert_bounded(&m, "bigsrc");
}

#[test]
fn three_hundred_source_files() {
    let Some(m) = attack("manyfiles", &["60"]) else { return };
    assert!(notes(&m.report).iter().any(|n| n.contains("more than 256 distinct")), "{:?}", notes(&m.report));
    assert_bounded(&m, "manyfiles");
}

#[test]
fn forty_threads_2000_frames_deep_with_4000_character_file_names() {
    let Some(m) = attack("longnames", &["40", "2000"]) else { return };
    assert!(notes(&m.report).iter().any(|n| n.contains("cut to 120 characters")), "{:?}", notes(&m.report));
    assert_bounded(&m, "longnames");
}

/// SIGTERM at 0-5 ms after start: the command must end by it (143) every time.
#[test]
fn sigterm_in_the_first_milliseconds_is_never_lost() {
    let mut lost = Vec::new();
    for i in 0..100u64 {
        let mut child = Command::new(common::bin())
            .args(["-q", "--", "sleep", "5"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros((i * 7919) % 5000));
        // SAFETY: kill on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let st = wait_within(&mut child, Duration::from_secs(4));
        if st.and_then(|s| s.signal()) != Some(libc::SIGTERM) {
            lost.push((i, st));
        }
    }
    assert!(lost.is_empty(), "SIGTERM lost in {} of 100 runs: {lost:?}", lost.len());
}

/// crashcatch SIGKILLed at 0-3 ms: the command must not be left running untraced.
#[test]
fn crashcatch_killed_at_start_leaves_nothing_running() {
    for i in 0..40u64 {
        let tag = format!("{}.{:04}", 30 + i, std::process::id() % 10000);
        let mut child = Command::new(common::bin())
            .args(["-q", "--", "sleep", &tag])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros((i * 7919) % 3000));
        child.kill().unwrap();
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let alive = running_with_arg(&tag);
            if alive.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                for p in &alive {
                    // SAFETY: killing the leftover we found, so the machine is clean.
                    unsafe { libc::kill(*p, libc::SIGKILL) };
                }
                panic!("run {i}: `sleep {tag}` still running after crashcatch was killed: {alive:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn running_with_arg(arg: &str) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            !stat.contains(") Z ") && cmd.split(|&b| b == 0).any(|a| a == arg.as_bytes())
        })
        .collect()
}

/// Ctrl-C (SIGINT) at any moment after attaching: crashcatch detaches and leaves at once.
#[test]
fn ctrl_c_in_attach_mode_is_acted_on_at_once() {
    let mut target = Command::new("sleep").arg("300").spawn().unwrap();
    let mut slow = Vec::new();
    for i in 0..30u64 {
        let mut cc = Command::new(common::bin())
            .args(["attach", &target.id().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for "attached", then Ctrl-C a little later (0-2 ms): the handler is in place.
        let mut err = cc.stderr.take().unwrap();
        let mut buf = [0u8; 256];
        let _ = std::io::Read::read(&mut err, &mut buf);
        std::thread::sleep(Duration::from_micros((i * 7919) % 2000));
        let sent = Instant::now();
        // SAFETY: kill on our own child.
        unsafe { libc::kill(cc.id() as i32, libc::SIGINT) };
        match wait_within(&mut cc, Duration::from_secs(5)) {
            Some(st) if sent.elapsed() < Duration::from_secs(1) && st.code() == Some(0) => {}
            other => slow.push((i, other, sent.elapsed())),
        }
        assert!(target.try_wait().unwrap().is_none(), "the attached process died");
    }
    target.kill().unwrap();
    target.wait().unwrap();
    assert!(slow.is_empty(), "Ctrl-C not acted on at once: {slow:?}");
}

/// crashcatch marks itself non-dumpable: its /proc files belong to root even when it runs as
/// another user (so that user's other processes cannot read its memory or ptrace it).
#[test]
fn crashcatch_is_not_dumpable() {
    if !is_root() {
        common::skip("hostile non-dumpable", "needs root (to run crashcatch as nobody)");
        return;
    }
    let bin = common::bin();
    if !bin.ancestors().skip(1).all(|d| d.metadata().map(|m| m.mode() & 0o001 != 0).unwrap_or(false)) {
        common::skip("hostile non-dumpable", "the crashcatch binary is not reachable by nobody");
        return;
    }
    let mut cc = Command::new(&bin)
        .args(["-q", "--", "sleep", "30"])
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = cc.id();
    // Until the command runs (non-dumpable is set once it is seized).
    let start = Instant::now();
    let mut owner = None;
    while start.elapsed() < Duration::from_secs(5) {
        let kids = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(k) = kids.split_whitespace().next() {
            if fs::read_to_string(format!("/proc/{k}/comm")).unwrap_or_default().trim() == "sleep" {
                std::thread::sleep(Duration::from_millis(50));
                owner = fs::metadata(format!("/proc/{pid}/environ")).ok().map(|m| m.uid());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = cc.kill();
    let out = cc.wait_with_output().unwrap();
    let owner = owner.unwrap_or_else(|| panic!("the command never ran: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(owner, 0, "crashcatch (uid 65534) is dumpable: its /proc files belong to uid {owner}");
}

/// An existing --output-dir owned by another user (issue 23 replaced the refusal): the reports
/// are written into it safely (O_EXCL, no link followed, mode 0600); inside folders only root
/// can change, they are given to the folder's owner (the Docker bind mount's case); in a
/// folder others can change, they stay root's. The command ends as it would have.
#[test]
fn an_output_dir_of_another_user_is_written_safely() {
    if !is_root() {
        common::skip("hostile output dir", "needs root (to give the folder to another user)");
        return;
    }
    common::ensure_fixtures();
    use std::os::unix::fs::MetadataExt;
    let top = tempfile::tempdir().unwrap(); // root's, 0700
    let theirs = top.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    // A folder of nobody's inside it, reached through nobody's folder: not a designation.
    let nested = theirs.join("reports");
    fs::create_dir(&nested).unwrap();
    std::os::unix::fs::chown(&nested, Some(65534), Some(65534)).unwrap();
    for (dir, owner) in [(&theirs, 65534), (&nested, 0)] {
        let mut c = Command::new(common::bin());
        c.arg("--output-dir").arg(dir).arg("--").arg(common::fixture(common::Variant::Fp, "null_deref"));
        let out = common::run(c);
        assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{}", common::describe(&out));
        let json = reports(dir, "json");
        assert_eq!(json.len(), 1, "{}", common::describe(&out));
        let m = fs::symlink_metadata(&json[0]).unwrap();
        assert!(m.file_type().is_file());
        assert_eq!((m.uid(), m.mode() & 0o777), (owner, 0o600), "{}", json[0].display());
    }
}
