//! Report files are written safely: a created output folder is 0700 and files 0600; a symlink
//! planted at a report's exact name (or its temporary name) is never followed; a full disk or an
//! unwritable folder costs one line on stderr and the program still dies of its signal; and
//! environment values stay out of the reports unless --show-env.
//!
//! The crashing program is `sh -c '... kill -SEGV $$'`: the shell's pid is the report's pid.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;

const SEGV: i32 = libc::SIGSEGV;

fn crashcatch(args: &[&str], dir: &Path, script: &str) -> Command {
    let mut c = Command::new(bin());
    c.arg("--output-dir").arg(dir).args(args).arg("--").args(["sh", "-c", script]);
    c
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// `crash-PID-YYYYMMDDTHHMMSS` for a Unix time, in UTC (the report's time is UTC).
fn stem(pid: u32, unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("crash-{pid}-{y:04}{m:02}{d:02}T{:02}{:02}{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[test]
fn stem_is_utc_civil_time() {
    assert_eq!(stem(7, 0), "crash-7-19700101T000000");
    assert_eq!(stem(7, 1_795_710_252), "crash-7-20261126T162412");
}

#[test]
fn created_folder_is_0700_and_files_are_0600() {
    let top = out_dir();
    let dir = top.path().join("new").join("reports");
    let out = run(crashcatch(&["-q"], &dir, "kill -SEGV $$"));
    assert_eq!(out.status.signal(), Some(SEGV), "{}", describe(&out));
    let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "output folder mode {mode:o}");
    let files = names(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        let m = fs::symlink_metadata(dir.join(f)).unwrap();
        assert!(m.file_type().is_file(), "{f} is not a regular file");
        assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f} mode {:o}", m.permissions().mode() & 0o777);
    }
}

/// Symlinks at every name the report could take in the next minute (and at the temporary names
/// next to them): none is followed, nothing is written outside the folder, and the report
/// still lands, under a free name.
#[test]
fn planted_symlinks_are_never_followed() {
    let top = out_dir();
    let dir = top.path().join("reports");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let victim = top.path().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    let dangling = top.path().join("would-be-created");

    let mut child = crashcatch(&["-q", "--format", "json"], &dir, "echo $$; read x; kill -SEGV $$")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cc_pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let pid: u32 = line.trim().parse().unwrap_or_else(|_| panic!("no pid: {line:?}"));

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut planted = 0;
    for t in now - 1..now + 60 {
        let base = stem(pid, t);
        for (i, ext) in ["json", "txt"].iter().enumerate() {
            // The exact names: alternate between an existing file and a dangling target.
            let target = if (t + i as i64) % 2 == 0 { &victim } else { &dangling };
            std::os::unix::fs::symlink(target, dir.join(format!("{base}.{ext}"))).unwrap();
            // The temporary names of the first free candidates (`-1`, `-2`).
            for n in 1..=2 {
                let tmp = format!(".{base}-{n}.{ext}.{cc_pid}.tmp");
                std::os::unix::fs::symlink(target, dir.join(tmp)).unwrap();
            }
            planted += 3;
        }
    }
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.signal(), Some(SEGV), "status {status:?}; stderr: {err}");

    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n", "written through a symlink");
    assert!(!dangling.exists(), "a dangling symlink was followed: {} exists", dangling.display());
    let all = names(&dir);
    let links = all.iter().filter(|n| fs::symlink_metadata(dir.join(n)).unwrap().file_type().is_symlink()).count();
    assert_eq!(links, planted, "a planted symlink was removed or replaced: {all:?}");
    let reports: Vec<&String> = all
        .iter()
        .filter(|n| n.ends_with(".json") && fs::symlink_metadata(dir.join(n)).unwrap().file_type().is_file())
        .collect();
    assert_eq!(reports.len(), 1, "expected one JSON report under a free name: {all:?}\nstderr: {err}");
    let m = fs::metadata(dir.join(reports[0])).unwrap();
    assert_eq!(m.mode() & 0o777, 0o600);
    assert!(
        !all.iter().any(|n| n.ends_with(".tmp") && fs::symlink_metadata(dir.join(n)).unwrap().file_type().is_file()),
        "a temporary file was left behind: {all:?}"
    );
}

/// Lines crashcatch printed about failing to write a report.
fn write_errors(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("crashcatch:") && l.contains("could not write")).collect()
}

/// Lines crashcatch printed about a report folder it cannot use.
fn setup_errors(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("crashcatch: --output-dir")).collect()
}

#[test]
fn unwritable_folder_is_said_at_start_and_at_the_end_and_the_program_still_dies() {
    let top = out_dir();
    // A regular file where a folder should be: no one, not even root, can create under it.
    let blocker = top.path().join("not-a-folder");
    fs::write(&blocker, "").unwrap();
    for dir in [blocker.join("reports"), blocker.clone()] {
        let out = run(crashcatch(&["--format", "json"], &dir, "kill -SEGV $$"));
        assert_eq!(out.status.signal(), Some(SEGV), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        // One line at start, before anything ran (a clean run would show it too), and the same
        // line again at the end of the run, where its last lines are read.
        let lines = setup_errors(&stderr);
        assert_eq!(lines.len(), 2, "expected the line at start and at the end:\n{stderr}");
        assert!(write_errors(&stderr).is_empty(), "no line per report besides:\n{stderr}");
        assert_eq!(lines[0], lines[1]);
        assert!(stderr.starts_with(lines[0]), "said first:\n{stderr}");
        // The report itself still goes to stderr.
        assert!(stderr.contains("\"SIGSEGV\""), "no report on stderr:\n{stderr}");
    }
    assert_eq!(fs::read(&blocker).unwrap(), b"");
}

struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A 16 KiB tmpfs: the JSON report does not fit. Needs root (mount); says so and passes
/// vacuously where mount is refused.
#[test]
fn full_disk_costs_one_line_and_the_program_still_dies() {
    let top = out_dir();
    let mnt = top.path().join("tiny");
    fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k,mode=0700", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        skip("report_files full_disk", "`mount -t tmpfs` is not allowed here");
        return;
    }
    let _guard = Tmpfs(mnt.clone());
    // Fill it up but for a few bytes.
    let _ = fs::write(mnt.join("filler"), vec![0u8; 12 * 1024]);
    let out = run(crashcatch(&["--format", "json"], &mnt, "kill -SEGV $$"));
    assert_eq!(out.status.signal(), Some(SEGV), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errs = write_errors(&stderr);
    assert_eq!(errs.len(), 1, "expected one line about the report:\n{stderr}");
    assert!(errs[0].contains("No space left"), "{}", errs[0]);
    let left: Vec<String> = names(&mnt).into_iter().filter(|n| n != "filler").collect();
    assert!(left.is_empty(), "partial files left on the full disk: {left:?}");
}

const SECRET: &str = "s3cr3t-t0ken-5f1e9a";

fn run_with_secret(args: &[&str]) -> (String, String, String) {
    let dir = out_dir();
    let mut c = crashcatch(args, dir.path(), "kill -SEGV $$");
    c.env("SECRET_TOKEN", SECRET).env("PYTHONHASHSEED", "7");
    let out = run(c);
    assert_eq!(out.status.signal(), Some(SEGV), "{}", describe(&out));
    let files = names(dir.path());
    let read = |ext: &str| {
        let f = files.iter().find(|n| n.ends_with(ext)).unwrap_or_else(|| panic!("no {ext} report: {files:?}"));
        fs::read_to_string(dir.path().join(f)).unwrap()
    };
    (read(".json"), read(".txt"), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn environment_values_stay_out_of_reports_by_default() {
    for format in ["text", "json"] {
        let (json, txt, stderr) = run_with_secret(&["--format", format]);
        for (what, text) in [("JSON report", &json), ("text report", &txt), ("stderr", &stderr)] {
            assert!(!text.contains(SECRET), "the secret is in the {what} (--format {format})");
            assert!(!text.contains("SECRET_TOKEN"), "the secret's name is in the {what} (--format {format})");
        }
        // The allow-list still works: the environment is read at all.
        assert!(json.contains("PYTHONHASHSEED"), "allow-listed variable missing from the JSON report");
    }
}

#[test]
fn show_env_puts_every_value_in_the_reports() {
    let (json, _txt, _stderr) = run_with_secret(&["--format", "json", "--show-env"]);
    assert!(json.contains(SECRET), "--show-env: the value is missing from the JSON report");
}
