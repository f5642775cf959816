//! crashcatch as PID 1 (issue "PID 1"): run as the first process of a new pid namespace with
//! `unshare --pid --fork --mount-proc`, as a container's entrypoint is. It must reap orphans (no
//! zombies, checked from inside the namespace by the command itself), forward SIGTERM and exit
//! 143 when the command dies of it, pass exit codes through, report crashes, deliver forwarded
//! signals to the command's whole group with `--signal-group`, and read its configuration from
//! CRASHCATCH_* variables. `--subreaper` gives the orphan reaping outside a namespace.
//!
//! When unshare cannot make a pid namespace here (no root, user namespaces disabled), the
//! namespace tests say so on stderr (past the test harness's capture) and pass without running;
//! CRASHCATCH_REQUIRE_UNSHARE=1 turns that into a failure.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Running in a pid namespace.

/// The unshare arguments that work here, or why none do.
fn unshare_prefix() -> &'static Result<Vec<&'static str>, String> {
    static PREFIX: OnceLock<Result<Vec<&'static str>, String>> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let mut why = Vec::new();
        // As root; else in a user namespace of our own (unprivileged user namespaces).
        for extra in [&[][..], &["--map-root-user"][..]] {
            let mut args = vec!["--pid", "--fork", "--mount-proc", "--kill-child"];
            args.extend_from_slice(extra);
            let out = Command::new("unshare").args(&args).args(["sh", "-c", "echo $$"]).stdin(Stdio::null()).output();
            match out {
                Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "1" => {
                    return Ok(args);
                }
                Ok(o) => why.push(format!(
                    "unshare {}: {}{}",
                    args.join(" "),
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Err(e) => why.push(format!("unshare: {e}")),
            }
        }
        Err(why.join("; "))
    })
}

/// True when a pid namespace can be made; otherwise says why on the real stderr (libtest does
/// not capture direct writes) and returns false, or fails under CRASHCATCH_REQUIRE_UNSHARE=1.
fn namespaces_work(test: &str) -> bool {
    match unshare_prefix() {
        Ok(_) => true,
        Err(why) => {
            if std::env::var("CRASHCATCH_REQUIRE_UNSHARE").is_ok_and(|v| v == "1") {
                panic!("{test}: no pid namespace: {why}");
            }
            common::skip(test, &format!("cannot make a pid namespace here ({why})"));
            false
        }
    }
}

/// `unshare --pid --fork --mount-proc --kill-child crashcatch CC_ARGS... -- CMD...`, with the
/// environment cleared of CRASHCATCH_* settings.
fn in_namespace(cc_args: &[&str], cmd: &[&str]) -> Command {
    let prefix = unshare_prefix().as_ref().expect("checked by namespaces_work");
    let mut c = Command::new("unshare");
    c.args(prefix).arg(bin()).args(cc_args).arg("--").args(cmd);
    clean_env(&mut c);
    c
}

fn clean_env(c: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CRASHCATCH_") {
            c.env_remove(&name);
        }
    }
    c.env_remove("GITHUB_ACTIONS");
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------------
// A command that is signalled while it runs.

/// A running command whose stdout lines arrive on a channel.
struct Live {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Live {
    fn start(mut cmd: Command) -> Live {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Live { child, lines, seen: Vec::new(), stderr }
    }

    /// Waits until every line of `want` has been printed; kills everything on timeout.
    fn wait_for(&mut self, want: &[&str]) {
        let deadline = Instant::now() + timeout();
        while !want.iter().all(|w| self.seen.iter().any(|l| l == w)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("waited for {want:?}; got only {:?}", self.seen);
                }
            }
        }
    }

    /// Waits for the end; returns the status, every stdout line, and stderr.
    fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + timeout();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("still running after {:?}; stdout {:?}", timeout(), self.seen);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.seen.extend(self.lines.iter());
        let stderr = self.stderr.join().unwrap_or_default();
        (status, self.seen, stderr)
    }

    /// The pid of the child's only child (crashcatch, under unshare).
    fn grandchild(&self) -> i32 {
        let pid = self.child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            let kids: Vec<i32> = text.split_whitespace().filter_map(|s| s.parse().ok()).collect();
            if let [one] = kids.as_slice() {
                return *one;
            }
            assert!(Instant::now() < deadline, "{pid} should have one child, has {kids:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a process this test started (unshare's child, crashcatch).
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill {pid}: {}", std::io::Error::last_os_error());
}

// ---------------------------------------------------------------------------------------------
// Scripts run as the command. They are POSIX sh.

/// Double-forks: the inner shell starts a short sleep in the background and exits at once, so
/// the sleep is orphaned and re-parented to the namespace's init (or the nearest subreaper).
/// Prints the orphan's parent, then waits until the orphan is gone (reaped) or has been a zombie
/// for a second (nobody reaps it), and counts the zombies in the namespace.
const ORPHAN_SCRIPT: &str = r#"
orphan=$(sh -c 'sleep 0.3 >/dev/null 2>&1 & echo $!')
echo "orphan parent $(awk '/^PPid:/ {print $2}' /proc/$orphan/status)"
echo "my parent $PPID"
i=0
state=
while [ $i -lt 200 ]; do
    state=$(sed 's/.*) //' /proc/$orphan/stat 2>/dev/null | cut -d' ' -f1)
    [ -z "$state" ] && break
    [ "$state" = Z ] && [ $i -ge 30 ] && break
    sleep 0.05
    i=$((i + 1))
done
echo "orphan ${state:-gone}"
z=0
for f in /proc/[0-9]*/stat; do
    s=$(sed 's/.*) //' "$f" 2>/dev/null | cut -d' ' -f1)
    [ "$s" = Z ] && z=$((z + 1))
done
echo "zombies $z"
"#;

/// Traps SIGTERM, says so, and dies of it (the trap removed, the signal sent again). The
/// sleep it waits for is not signalled: it goes with the namespace.
const TERM_SCRIPT: &str = r#"
sleep 30 >/dev/null 2>&1 &
trap 'echo "got TERM"; trap - TERM; kill -TERM $$' TERM
echo ready
wait
echo "not signalled"
"#;

/// Two children in the command's process group, each trapping SIGTERM; the parent traps it
/// too, waits for them and exits 143. Every shell kills its own sleep in its trap: a sleep
/// forked just as the group signal went out can miss it, and must not be left behind.
const GROUP_SCRIPT: &str = r#"
for n in 1 2; do
    sh -c "sleep 30 >/dev/null 2>&1 & s=\$!; trap 'echo child $n got TERM; kill \$s 2>/dev/null; exit 0' TERM; echo child $n ready; wait" &
done
sleep 30 >/dev/null 2>&1 &
s=$!
trap 'echo parent got TERM; kill $s 2>/dev/null; wait; exit 143' TERM
echo parent ready
wait
echo "parent not signalled"
"#;

fn lines_of(out: &str) -> Vec<&str> {
    out.lines().map(str::trim).collect()
}

// ---------------------------------------------------------------------------------------------
// The cases.

/// As PID 1, crashcatch reaps the orphan: it is re-parented to pid 1 and, once it has exited,
/// it is gone and no zombie is left. The same script under a PID 1 that does not reap
/// (Python's subprocess.call, which waits for its own child only) leaves the zombie: the check
/// can tell the difference.
#[test]
fn pid1_reaps_orphans() {
    if !namespaces_work("pid1_reaps_orphans") {
        return;
    }
    let out = run(in_namespace(&[], &["sh", "-c", ORPHAN_SCRIPT]));
    let stdout = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let lines = lines_of(&stdout);
    assert!(lines.contains(&"my parent 1"), "crashcatch is PID 1\n{stdout}");
    assert!(lines.contains(&"orphan parent 1"), "the orphan went to PID 1\n{stdout}");
    assert!(lines.contains(&"orphan gone"), "the orphan was reaped\n{stdout}");
    assert!(lines.contains(&"zombies 0"), "no zombies\n{stdout}");

    // The control: a PID 1 that never reaps orphans.
    let prefix = unshare_prefix().as_ref().unwrap();
    let mut c = Command::new("unshare");
    c.args(prefix).args([
        venv_python().as_os_str(),
        "-c".as_ref(),
        "import subprocess, sys; sys.exit(subprocess.call(['sh', '-c', sys.argv[1]]))".as_ref(),
        ORPHAN_SCRIPT.as_ref(),
    ]);
    let control = run(c);
    let stdout = stdout_of(&control);
    let lines = lines_of(&stdout);
    assert!(
        lines.contains(&"orphan Z") && lines.contains(&"zombies 1"),
        "without a reaping PID 1 the orphan should stay a zombie\n{}",
        describe(&control)
    );
}

/// SIGTERM sent to crashcatch (PID 1, from outside the namespace) reaches the command, which
/// dies of it; crashcatch, which as PID 1 cannot die of its own signal, exits 128 + 15.
#[test]
fn pid1_sigterm_reaches_command() {
    if !namespaces_work("pid1_sigterm_reaches_command") {
        return;
    }
    let mut live = Live::start(in_namespace(&[], &["sh", "-c", TERM_SCRIPT]));
    live.wait_for(&["ready"]);
    kill(live.grandchild(), libc::SIGTERM);
    let (status, lines, stderr) = live.finish();
    assert!(lines.iter().any(|l| l == "got TERM"), "{lines:?}\n{stderr}");
    assert!(!lines.iter().any(|l| l == "not signalled"), "{lines:?}");
    assert_eq!(status.code(), Some(143), "{status}: {lines:?}\n{stderr}");
}

/// Exit codes pass through unshare and crashcatch as PID 1.
#[test]
fn pid1_exit_codes_pass_through() {
    if !namespaces_work("pid1_exit_codes_pass_through") {
        return;
    }
    for code in [0, 1, 42] {
        let out = run(in_namespace(&[], &["sh", "-c", &format!("exit {code}")]));
        assert_eq!(out.status.code(), Some(code), "{}", describe(&out));
    }
}

/// A crash inside the namespace is reported; the status is 139 (128 + SIGSEGV, what a shell
/// shows for the bare crash), and the program's stdout is unchanged.
#[test]
fn pid1_crash_is_reported() {
    if !namespaces_work("pid1_crash_is_reported") {
        return;
    }
    let program = fixture(Variant::Fp, "null_deref");
    let bare = run_bare(&[&program]);
    assert_eq!(exit_signal(&bare.status), Some(libc::SIGSEGV));
    let dir = out_dir();
    let dir_arg = dir.path().to_str().unwrap();
    let out = run(in_namespace(&["--output-dir", dir_arg, "--format", "json"], &[program.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(128 + libc::SIGSEGV), "{}", describe(&out));
    assert_eq!(
        normalize_numbers(&stdout_of(&out)),
        normalize_numbers(&stdout_of(&bare)),
        "stdout differs from the bare run"
    );
    let report = one_report(dir.path(), &out);
    assert_eq!(report["signal"]["name"], "SIGSEGV");
    assert_eq!(report["process"]["pid"], 2, "the command is pid 2 in the namespace");
    assert_eq!(report["culprit"]["frame"]["function"], "cc_fixture_crash_null", "{report}");
}

/// The one JSON report in `dir`.
fn one_report(dir: &Path, out: &std::process::Output) -> Value {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("crash-") && n.ends_with(".json")
        })
        .collect();
    assert_eq!(files.len(), 1, "reports {files:?}\n{}", describe(out));
    serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap()
}

/// `--signal-group`: SIGTERM to crashcatch reaches the command and both of its children.
fn signal_group(in_ns: bool) {
    let cmd = ["sh", "-c", GROUP_SCRIPT];
    let c = if in_ns {
        in_namespace(&["--signal-group"], &cmd)
    } else {
        let mut c = Command::new(bin());
        c.arg("--signal-group").arg("--").args(cmd);
        clean_env(&mut c);
        c
    };
    let mut live = Live::start(c);
    live.wait_for(&["parent ready", "child 1 ready", "child 2 ready"]);
    let crashcatch = if in_ns { live.grandchild() } else { live.child.id() as i32 };
    kill(crashcatch, libc::SIGTERM);
    let (status, lines, stderr) = live.finish();
    for who in ["parent", "child 1", "child 2"] {
        assert!(
            lines.iter().any(|l| *l == format!("{who} got TERM")),
            "{who} did not get SIGTERM: {lines:?}\n{stderr}"
        );
    }
    assert_eq!(status.code(), Some(143), "{status}: {lines:?}\n{stderr}");
}

#[test]
fn pid1_signal_group() {
    if namespaces_work("pid1_signal_group") {
        signal_group(true);
    }
}

#[test]
fn signal_group_outside_a_namespace() {
    signal_group(false);
}

/// Configuration from the environment as a container sets it: CRASHCATCH_OUTPUT_DIR,
/// CRASHCATCH_FORMAT=json, CRASHCATCH_QUIET, CRASHCATCH_JUNIT_XML.
#[test]
fn pid1_env_configuration() {
    if !namespaces_work("pid1_env_configuration") {
        return;
    }
    let dir = out_dir();
    let junit = dir.path().join("junit.xml");
    let env = |c: &mut Command| {
        c.env("CRASHCATCH_OUTPUT_DIR", dir.path())
            .env("CRASHCATCH_FORMAT", "json")
            .env("CRASHCATCH_QUIET", "1")
            .env("CRASHCATCH_JUNIT_XML", &junit);
    };
    let program = fixture(Variant::Fp, "null_deref");
    let mut c = in_namespace(&[], &[program.to_str().unwrap()]);
    env(&mut c);
    let out = run(c);
    assert_eq!(out.status.code(), Some(139), "{}", describe(&out));
    let report = one_report(dir.path(), &out);
    // Only the JSON report on stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let on_stderr: Value = serde_json::from_str(stderr.trim())
        .unwrap_or_else(|e| panic!("stderr is not one JSON report ({e}):\n{stderr}"));
    assert_eq!(on_stderr["process"]["pid"], report["process"]["pid"]);
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file");
    assert!(xml.contains("<testsuite name=\"crashcatch\""), "{xml}");
    assert!(xml.contains("<error type=\"crash\""), "{xml}");

    // Quiet, and nothing crashed: nothing on stderr, nothing written.
    let quiet_dir = out_dir();
    let mut c = in_namespace(&[], &["sh", "-c", "echo fine; exit 3"]);
    c.env("CRASHCATCH_OUTPUT_DIR", quiet_dir.path()).env("CRASHCATCH_QUIET", "1");
    let out = run(c);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_eq!(stdout_of(&out), "fine\n");
    assert!(out.stderr.is_empty(), "{}", describe(&out));
    assert_eq!(std::fs::read_dir(quiet_dir.path()).map(|d| d.count()).unwrap_or(0), 0);
}

/// `--subreaper` outside a namespace: the orphan is re-parented to crashcatch (the script's
/// parent), not to the machine's init, and crashcatch reaps it.
#[test]
fn subreaper_reaps_orphan() {
    let mut c = Command::new(bin());
    c.args(["--subreaper", "--", "sh", "-c", ORPHAN_SCRIPT]);
    clean_env(&mut c);
    let out = run(c);
    let stdout = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let lines = lines_of(&stdout);
    let parent = lines.iter().find_map(|l| l.strip_prefix("my parent ")).expect("the script's parent");
    assert!(
        lines.contains(&format!("orphan parent {parent}").as_str()),
        "the orphan went to crashcatch ({parent})\n{stdout}"
    );
    assert!(lines.contains(&"orphan gone"), "the orphan was reaped\n{stdout}");
}
