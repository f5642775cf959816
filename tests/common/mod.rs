//! Helpers shared by the integration tests: where the binary, the C fixtures and the test venv
//! are, running a command bare and under crashcatch, and reading the report it wrote.
//!
//! Fixtures are built by `make fixtures` into `target/fixtures/<variant>/` (override the folder
//! with `CRASHCATCH_FIXTURES`); [`fixture`] runs that make once per test process, under a file
//! lock, so it is enough to run `cargo test` alone. The venv is `target/venv`, made by `make venv`.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Once};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

pub mod hostile;
pub mod interpreters;
pub mod tls;

/// Records that a test (or part of one) was skipped, and why: one line appended to
/// `target/test-skips.txt` (or `CRASHCATCH_SKIP_LOG`), which `make test` prints in its summary
/// (cargo's capture would hide an eprintln), and printed here too for `--nocapture` runs.
pub fn skip(what: &str, why: &str) {
    use std::io::Write;
    let line = format!("SKIP {what}: {why}");
    println!("{line}");
    let path = match std::env::var_os("CRASHCATCH_SKIP_LOG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => root().join("target").join("test-skips.txt"),
    };
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(path) {
        // One write, so lines appended by tests running at the same time never interleave.
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// The repository's root folder.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The crashcatch binary cargo built for these tests, or `CRASHCATCH_BIN` when set (to run the
/// tests against another build, such as target/release/crashcatch).
pub fn bin() -> PathBuf {
    match std::env::var_os("CRASHCATCH_BIN") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_crashcatch")),
    }
}

/// How a fixture was built (see scripts/build-fixture.sh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `-g -O1 -fno-omit-frame-pointer`
    Fp,
    /// `-g -O2 -fomit-frame-pointer`
    Nofp,
    /// `-O2`, then stripped: no `.symtab`, no DWARF; exported `.dynsym` names only.
    Stripped,
    /// `-g -O2`, DWARF moved to `<file>.debug` next to the file, found by `.gnu_debuglink`.
    Splitdebug,
}

impl Variant {
    pub const ALL: [Variant; 4] = [Variant::Fp, Variant::Nofp, Variant::Stripped, Variant::Splitdebug];

    /// The folder name under `target/fixtures`.
    pub fn dir(self) -> &'static str {
        match self {
            Variant::Fp => "fp",
            Variant::Nofp => "nofp",
            Variant::Stripped => "stripped",
            Variant::Splitdebug => "splitdebug",
        }
    }

    /// Whether file:line information exists (in the file or its debug file).
    pub fn has_dwarf(self) -> bool {
        self != Variant::Stripped
    }

    /// Whether non-exported functions (`main`, static functions) have names.
    pub fn has_symtab(self) -> bool {
        self != Variant::Stripped
    }
}

/// The folder holding the built fixtures, one sub-folder per variant.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("CRASHCATCH_FIXTURES") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => root().join("target").join("fixtures"),
    }
}

/// Runs `make fixtures` once per test process. A file lock keeps test processes that run at
/// the same time from building into the same files; make itself skips what is up to date.
pub fn ensure_fixtures() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let dir = fixtures_dir();
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let lock_path = dir.join(".build.lock");
        let lock = File::create(&lock_path).unwrap_or_else(|e| panic!("creating {}: {e}", lock_path.display()));
        // SAFETY: flock on a file descriptor we own; the lock goes with the file when it drops.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}: {}", lock_path.display(), std::io::Error::last_os_error());
        let out = Command::new("make")
            .arg("-s")
            .arg(format!("FIXDIR={}", dir.display()))
            .arg("fixtures")
            .current_dir(root())
            .stdin(Stdio::null())
            .output()
            .expect("running `make fixtures` (is make installed?)");
        assert!(
            out.status.success(),
            "`make fixtures` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        drop(lock);
    });
}

/// The path of a built fixture (`null_deref`, `libccfix.so`, ...), building the fixtures first.
pub fn fixture(variant: Variant, name: &str) -> PathBuf {
    ensure_fixtures();
    let path = fixtures_dir().join(variant.dir()).join(name);
    assert!(path.exists(), "fixture {} was not built by `make fixtures`", path.display());
    path
}

/// A fixture's C source, `fixtures/<file>`.
pub fn fixture_src(file: &str) -> PathBuf {
    root().join("fixtures").join(file)
}

/// The 1-based number of the one line of `fixtures/<file>` that contains `marker`
/// (`/* CRASH-LINE */`, or `CRASH-LINE assert` where a file marks several lines).
pub fn crash_line(file: &str, marker: &str) -> u32 {
    let path = fixture_src(file);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let hits: Vec<usize> =
        text.lines().enumerate().filter(|(_, line)| line.contains(marker)).map(|(i, _)| i + 1).collect();
    assert_eq!(hits.len(), 1, "{marker:?} should mark exactly one line of {}, found lines {hits:?}", path.display());
    hits[0] as u32
}

/// The test venv made by `make venv`.
pub fn venv_dir() -> PathBuf {
    root().join("target").join("venv")
}

/// The venv's interpreter, or a panic that says how to make it.
pub fn venv_python() -> PathBuf {
    let python = venv_dir().join("bin").join("python");
    assert!(python.exists(), "{} is missing: run `make venv` (make test does)", python.display());
    python
}

/// Python interpreters to test against: /usr/bin/python3, then every pyenv 3.x, oldest first.
pub fn pythons() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let system = PathBuf::from("/usr/bin/python3");
    if system.exists() {
        found.push(system);
    }
    let pyenv_root = std::env::var_os("PYENV_ROOT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    if let Some(versions) = pyenv_root.map(|r| r.join("versions")) {
        let mut pyenv: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(&versions)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let version: Vec<u32> = name.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
                let python = entry.path().join("bin").join("python3");
                (version.first() == Some(&3) && python.exists()).then_some((version, python))
            })
            .collect();
        pyenv.sort();
        found.extend(pyenv.into_iter().map(|(_, p)| p));
    }
    found
}

/// A fresh, empty folder for reports; removed when dropped.
pub fn out_dir() -> TempDir {
    tempfile::Builder::new().prefix("crashcatch-test-").tempdir().expect("creating a temporary folder")
}

/// How long one command may run before the test kills it and fails
/// (`CRASHCATCH_HARNESS_TIMEOUT` in seconds, 120 by default; not `CRASHCATCH_TEST_TIMEOUT`,
/// which is crashcatch's own `--test-timeout`).
pub fn timeout() -> Duration {
    let secs = std::env::var("CRASHCATCH_HARNESS_TIMEOUT").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    Duration::from_secs(secs)
}

/// Runs `cmd` to the end with stdin closed and returns what it printed. A command still running
/// after [`timeout`] is killed (with what it started under ptrace) and the test fails.
pub fn run(cmd: Command) -> Output {
    run_within(cmd, timeout())
}

/// [`run`] with its own limit: for builds (a release build from scratch on a loaded 2-core
/// machine takes minutes), never for crashcatch's own runs.
pub fn run_within(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // A developer's own DEBUGINFOD_URLS would have crashcatch fetch debug files from the
    // network and change the reports; only tests that set it themselves (tests/debuginfod.rs) get it.
    if !cmd.get_envs().any(|(k, _)| k == "DEBUGINFOD_URLS") {
        cmd.env_remove("DEBUGINFOD_URLS");
    }
    let shown = format!("{cmd:?}");
    let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {shown}: {e}"));
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(result) => result.unwrap_or_else(|e| panic!("waiting for {shown}: {e}")),
        Err(_) => {
            // SAFETY: kill(2) on the pid of the child we spawned and have not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // Something it started may still hold the pipes open: don't wait for ever on them.
            let out = rx.recv_timeout(Duration::from_secs(10)).ok().and_then(|r| r.ok());
            let (stdout, stderr) = out
                .map(|o| {
                    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
                })
                .unwrap_or_default();
            panic!("{shown} still running after {limit:?}; killed it\nstdout:\n{stdout}\nstderr:\n{stderr}");
        }
    }
}

fn command<S: AsRef<OsStr>>(cmd: &[S]) -> Command {
    assert!(!cmd.is_empty(), "empty command");
    let mut c = Command::new(cmd[0].as_ref());
    c.args(cmd[1..].iter().map(|a| a.as_ref()));
    c
}

/// Runs `cmd` without crashcatch.
pub fn run_bare<S: AsRef<OsStr>>(cmd: &[S]) -> Output {
    run(command(cmd))
}

/// One run under crashcatch and the report files it left.
pub struct Caught {
    pub output: Output,
    /// The `--output-dir`; kept until this value drops.
    pub dir: TempDir,
    /// Every `crash-*.json` in `dir`, sorted.
    pub json_files: Vec<PathBuf>,
    /// Every `crash-*.txt` in `dir`, sorted.
    pub text_files: Vec<PathBuf>,
}

impl Caught {
    /// The one JSON report, parsed; None when there is none. Panics when there are several.
    pub fn report(&self) -> Option<Value> {
        match self.json_files.as_slice() {
            [] => None,
            [one] => Some(read_json(one)),
            many => panic!("expected at most one JSON report, found {many:?}\n{}", describe(&self.output)),
        }
    }

    /// Every file crashcatch left in the output folder.
    pub fn files(&self) -> Vec<PathBuf> {
        list(self.dir.path(), |_| true)
    }
}

fn list(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .filter(|e| keep(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}\n{text}", path.display()))
}

/// Runs `crashcatch --output-dir DIR --format json ARGS... -- CMD...` and collects the reports.
pub fn run_caught_in<A: AsRef<OsStr>, S: AsRef<OsStr>>(args: &[A], cmd: &[S]) -> Caught {
    let dir = out_dir();
    let mut c = Command::new(bin());
    c.arg("--output-dir").arg(dir.path()).arg("--format").arg("json");
    c.args(args.iter().map(|a| a.as_ref()));
    c.arg("--");
    c.args(cmd.iter().map(|a| a.as_ref()));
    let output = run(c);
    let is_report = |ext: &'static str| move |name: &str| name.starts_with("crash-") && name.ends_with(ext);
    let json_files = list(dir.path(), is_report(".json"));
    let text_files = list(dir.path(), is_report(".txt"));
    Caught { output, dir, json_files, text_files }
}

/// Runs `cmd` under crashcatch (see [`run_caught_in`]) and returns its output with the single
/// JSON report, if one was written.
pub fn run_caught<A: AsRef<OsStr>, S: AsRef<OsStr>>(args: &[A], cmd: &[S]) -> (Output, Option<Value>) {
    let caught = run_caught_in(args, cmd);
    let report = caught.report();
    (caught.output, report)
}

/// No extra crashcatch arguments, for `run_caught(NO_ARGS, ...)`.
pub const NO_ARGS: &[&str] = &[];

/// The signal that killed the process, if one did.
pub fn exit_signal(status: &ExitStatus) -> Option<i32> {
    status.signal()
}

/// An exit status as a comparable pair: (exit code, killing signal); the core-dump bit is left out.
pub fn status_pair(status: &ExitStatus) -> (Option<i32>, Option<i32>) {
    (status.code(), status.signal())
}

/// The name of a signal number (`SIGSEGV`), for messages.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGABRT => "SIGABRT",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGSYS => "SIGSYS",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// Stdout with every number (decimal or 0x-hex) replaced by `#`, so that runs which differ only
/// in pids, tids and addresses compare equal.
pub fn normalize_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let hex = bytes[i] == b'0' && bytes.get(i + 1).is_some_and(|&b| b == b'x' || b == b'X');
            i += if hex { 2 } else { 1 };
            while i < bytes.len() && (if hex { bytes[i].is_ascii_hexdigit() } else { bytes[i].is_ascii_digit() }) {
                i += 1;
            }
            out.push('#');
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The number after `key` (`"pid"`, `"tid"`) on the first stdout line that has `key <number>`,
/// e.g. the fixtures' `fixture <name> pid <pid>` line.
pub fn printed_number(stdout: &[u8], key: &str) -> Option<i64> {
    let text = String::from_utf8_lossy(stdout);
    text.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.windows(2).find(|w| w[0] == key).and_then(|w| w[1].parse().ok())
    })
}

/// The hex address after `key` on the first stdout line that has one (`sigbus address 0x...`).
pub fn printed_address(stdout: &[u8], key: &str) -> Option<u64> {
    let text = String::from_utf8_lossy(stdout);
    text.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.windows(2).find(|w| w[0] == key).and_then(|w| parse_hex(w[1]))
    })
}

/// `"0x1f"` → 31.
pub fn parse_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

/// A run's status, stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `OsString`s from anything path- or string-like, for building commands.
pub fn os_args<S: AsRef<OsStr>>(parts: &[S]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_os_string()).collect()
}
