//! `crashcatch dump --subprocesses PID` on real process trees, on every interpreter here (the
//! facts of py-spy's test_subprocesses, test_subprocesses_zombiechild and
//! test_dump_subprocesses_no_duplication): each process of a multiprocessing tree (two children,
//! a grandchild) is dumped once with its own Python function on top; a zombie child and a
//! non-Python child do not break the dump; a descendant that cannot be attached makes the exit
//! status 3.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::interpreters::{all, Interp};
use common::{bin, out_dir, run, skip};
use serde_json::Value;

/// Marks the moment a process reached its function: a file named after its role, holding its
/// pid (and what else the test needs), renamed into place so it is never read half-written.
const MARK: &str = "\
import multiprocessing, os, subprocess, sys, threading, time

def mark(d, name, text=None):
    tmp = os.path.join(d, name + '.tmp')
    f = open(tmp, 'w')
    f.write(text or str(os.getpid()))
    f.close()
    os.rename(tmp, os.path.join(d, name))

# fork everywhere: 3.14 defaults to forkserver, whose server would stand between the parent
# and its children (and execs sys.executable, which sid's loader-run pythons cannot).
CTX = multiprocessing.get_context('fork') if hasattr(multiprocessing, 'get_context') else multiprocessing
";

const TREE: &str = "
def grandchild_waits(d):
    mark(d, 'grandchild')
    time.sleep(1000)

def child_one_waits(d):
    mark(d, 'child_one')
    time.sleep(1000)

def child_two_waits(d):
    CTX.Process(target=grandchild_waits, args=(d,)).start()
    mark(d, 'child_two')
    time.sleep(1000)

def parent_thread_waits():
    time.sleep(1000)

def parent_waits(d):
    mark(d, 'parent')
    time.sleep(1000)

if __name__ == '__main__':
    d = sys.argv[1]
    CTX.Process(target=child_one_waits, args=(d,)).start()
    CTX.Process(target=child_two_waits, args=(d,)).start()
    t = threading.Thread(target=parent_thread_waits)
    t.daemon = True
    t.start()
    parent_waits(d)
";

const ZOMBIE: &str = "
def exits_at_once():
    pass

def parent_waits(d, zombie, native):
    mark(d, 'parent', '%d %d %d' % (os.getpid(), zombie, native))
    time.sleep(1000)

if __name__ == '__main__':
    d = sys.argv[1]
    child = CTX.Process(target=exits_at_once)
    child.start()
    native = subprocess.Popen(['sleep', '1000'])
    parent_waits(d, child.pid, native.pid)
";

/// A Python program started in a process group of its own, killed whole when dropped.
struct Tree {
    root: Child,
    dir: tempfile::TempDir,
}

impl Tree {
    fn start(i: &Interp, body: &str) -> Tree {
        let dir = out_dir();
        let script = dir.path().join("tree.py");
        std::fs::write(&script, format!("{MARK}{body}")).unwrap();
        let mut c = Command::new(&i.python);
        c.arg(&script);
        Tree::spawn(c, dir)
    }

    /// Runs `c` with the tree's marks folder as its last argument, in a process group of its own.
    fn spawn(mut c: Command, dir: tempfile::TempDir) -> Tree {
        let marks = dir.path().join("marks");
        std::fs::create_dir(&marks).unwrap();
        let root = c
            .arg(&marks)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        Tree { root, dir }
    }

    fn pid(&self) -> i32 {
        self.root.id() as i32
    }

    /// The text of each mark once all of `names` are there, or what was missing after 60 s.
    fn wait_for(&self, names: &[&str]) -> Result<HashMap<String, String>, String> {
        let marks = self.dir.path().join("marks");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got: HashMap<String, String> = names
                .iter()
                .filter_map(|n| Some((n.to_string(), std::fs::read_to_string(marks.join(n)).ok()?)))
                .collect();
            if got.len() == names.len() {
                // Let each process go from writing its mark to its sleep.
                std::thread::sleep(Duration::from_millis(300));
                return Ok(got);
            }
            if Instant::now() > deadline {
                return Err(format!("after 60 s only {:?} of {names:?} had started", got.keys().collect::<Vec<_>>()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // SAFETY: killpg on the process group this test made for its own child.
        unsafe { libc::killpg(self.pid(), libc::SIGKILL) };
        let _ = self.root.wait();
    }
}

fn dump(i: &Interp, pid: i32, extra: &[&str]) -> Output {
    let mut c = Command::new(bin());
    c.args(["dump", "--subprocesses"]).args(&i.args).args(extra).arg(pid.to_string());
    run(c)
}

fn said(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The JSON lines of `dump --subprocesses --format json`, by pid; each pid once.
fn lines_by_pid(o: &Output) -> Result<HashMap<i64, Value>, String> {
    let mut by_pid = HashMap::new();
    for l in String::from_utf8_lossy(&o.stdout).lines() {
        let v: Value = serde_json::from_str(l).map_err(|e| format!("a line is not JSON ({e}): {l}"))?;
        let pid = v["pid"].as_i64().ok_or("a line without pid")?;
        if by_pid.insert(pid, v).is_some() {
            return Err(format!("pid {pid} is in two lines"));
        }
    }
    Ok(by_pid)
}

/// The innermost Python function of each thread of a report.
fn top_functions(report: &Value) -> Vec<String> {
    let threads = report["threads"].as_array().map(Vec::as_slice).unwrap_or_default();
    threads
        .iter()
        .filter_map(|t| t["frames"].as_array()?.iter().find(|f| f["kind"] == "python"))
        .filter_map(|f| f["function"].as_str().map(str::to_string))
        .collect()
}

/// Checks that `pid` has a line, was dumped, names `parent`, and that `function` is the
/// innermost Python frame of one of its threads.
fn check_dumped(lines: &HashMap<i64, Value>, pid: i32, parent: i32, function: &str) -> Result<(), String> {
    let l = lines.get(&(pid as i64)).ok_or(format!("no line for pid {pid} ({function})"))?;
    if l["outcome"] != "dumped" || l["parent"] != parent {
        return Err(format!(
            "pid {pid} ({function}): outcome {} parent {} (want dumped, {parent})",
            l["outcome"], l["parent"]
        ));
    }
    let tops = top_functions(&l["report"]);
    if !tops.iter().any(|f| f == function) {
        return Err(format!("pid {pid}: {function} is not the innermost Python frame of any thread: {tops:?}"));
    }
    Ok(())
}

/// The files `--output-dir` holds for pid `pid`.
fn files_of(dir: &Path, pid: i32) -> Vec<PathBuf> {
    let prefix = format!("dump-{pid}-");
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    v.retain(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix)));
    v
}

fn check_tree(i: &Interp) -> Result<(), String> {
    let tree = Tree::start(i, TREE);
    let marks = tree.wait_for(&["parent", "child_one", "child_two", "grandchild"])?;
    let pid = |n: &str| marks[n].trim().parse::<i32>().unwrap();
    let (root, one, two, grand) = (pid("parent"), pid("child_one"), pid("child_two"), pid("grandchild"));
    if root != tree.pid() {
        return Err(format!("the parent's mark says pid {root}, not {}", tree.pid()));
    }
    // The root's parent is this test.
    let me = std::process::id() as i32;
    let reports = out_dir();
    let o = dump(i, root, &["--format", "json", "--output-dir", reports.path().to_str().unwrap()]);
    let ctx = || said(&o);
    if o.status.code() != Some(0) {
        return Err(format!("the exit status is not 0\n{}", ctx()));
    }
    let lines = lines_by_pid(&o).map_err(|e| format!("{e}\n{}", ctx()))?;
    let checks = [
        check_dumped(&lines, root, me, "parent_waits"),
        check_dumped(&lines, root, me, "parent_thread_waits"),
        check_dumped(&lines, one, root, "child_one_waits"),
        check_dumped(&lines, two, root, "child_two_waits"),
        check_dumped(&lines, grand, two, "grandchild_waits"),
    ];
    let errors: Vec<String> = checks.into_iter().filter_map(Result::err).collect();
    if !errors.is_empty() {
        return Err(format!("{}\n{}", errors.join("\n"), ctx()));
    }
    if lines[&(grand as i64)]["depth"] != 2 || lines[&(root as i64)]["depth"] != 0 {
        return Err(format!("depths are wrong\n{}", ctx()));
    }
    // The first line is the process asked for.
    let first: Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    if first["pid"] != root {
        return Err(format!("the first line is not pid {root}\n{}", ctx()));
    }
    for p in [root, one, two, grand] {
        if files_of(reports.path(), p).len() != 2 {
            return Err(format!(
                "--output-dir has not one .json and one .txt for pid {p}: {:?}",
                files_of(reports.path(), p)
            ));
        }
    }
    check_tree_text(i, root, &[(root, me), (one, root), (two, root), (grand, two)])
}

/// The text form: a header per process, once each (py-spy's no-duplication fact: the parent
/// has two threads), above a report naming the process.
fn check_tree_text(i: &Interp, root: i32, procs: &[(i32, i32)]) -> Result<(), String> {
    let o = dump(i, root, &[]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    if o.status.code() != Some(0) {
        return Err(format!("text: the exit status is not 0\n{}", said(&o)));
    }
    for &(pid, parent) in procs {
        let start = format!("==> pid {pid} (parent ");
        let headers: Vec<&str> = text.lines().filter(|l| l.starts_with(&start)).collect();
        if headers != [format!("==> pid {pid} (parent {parent}) <==")] {
            return Err(format!(
                "text: the header of pid {pid} is not there once with its parent: {headers:?}\n{}",
                said(&o)
            ));
        }
        let section = text.split(&start).nth(1).unwrap_or("");
        if !section.lines().nth(1).is_some_and(|l| l.contains(&format!("(pid {pid}), every thread's stack"))) {
            return Err(format!("text: the header of pid {pid} is not followed by its report\n{}", said(&o)));
        }
    }
    if !String::from_utf8_lossy(&o.stderr).contains(&format!("{0} of {0} processes dumped", procs.len())) {
        return Err(format!("text: no tally on stderr\n{}", said(&o)));
    }
    Ok(())
}

fn check_zombie(i: &Interp) -> Result<(), String> {
    let tree = Tree::start(i, ZOMBIE);
    let marks = tree.wait_for(&["parent"])?;
    let pids: Vec<i32> = marks["parent"].split_whitespace().filter_map(|p| p.parse().ok()).collect();
    let [root, zombie, native] = pids[..] else { return Err(format!("mark: {:?}", marks["parent"])) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while proc_state(zombie) != Some('Z') {
        if Instant::now() > deadline {
            return Err(format!("pid {zombie} did not become a zombie: state {:?}", proc_state(zombie)));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = dump(i, root, &["--format", "json"]);
    let ctx = || said(&o);
    if o.status.code() != Some(0) {
        return Err(format!("the exit status is not 0\n{}", ctx()));
    }
    let lines = lines_by_pid(&o).map_err(|e| format!("{e}\n{}", ctx()))?;
    check_dumped(&lines, root, std::process::id() as i32, "parent_waits").map_err(|e| format!("{e}\n{}", ctx()))?;
    let z = lines.get(&(zombie as i64)).ok_or(format!("the zombie {zombie} is not mentioned\n{}", ctx()))?;
    if z["outcome"] != "zombie"
        || !z["reason"].as_str().is_some_and(|r| r.contains("zombie"))
        || z.get("report").is_some()
    {
        return Err(format!("the zombie's line: {z}"));
    }
    // The non-Python child: its native stack, no interpreter.
    let n = lines.get(&(native as i64)).ok_or(format!("the sleep child {native} is not mentioned\n{}", ctx()))?;
    let frames: Vec<&str> = n["report"]["threads"][0]["frames"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["function"].as_str()).collect())
        .unwrap_or_default();
    if n["outcome"] != "dumped"
        || n["report"].get("python").is_some()
        || !frames.iter().any(|f| f.contains("nanosleep"))
    {
        return Err(format!("the sleep child's line: outcome {}, frames {frames:?}", n["outcome"]));
    }
    let t = dump(i, root, &[]);
    let text = String::from_utf8_lossy(&t.stdout);
    let zombie_said = format!("==> pid {zombie} (parent {root}) <==\nnot dumped: a zombie");
    if t.status.code() != Some(0) || !text.contains(&zombie_said) {
        return Err(format!("text: the zombie is not said under its header\n{}", said(&t)));
    }
    if !String::from_utf8_lossy(&t.stderr).contains("2 of 3 processes dumped, 1 zombie") {
        return Err(format!("text: the tally does not count the zombie\n{}", said(&t)));
    }
    Ok(())
}

fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().next()?.chars().next()
}

/// Runs `check` on every interpreter, collecting the failures; missing ones are skipped
/// visibly.
fn on_every_interpreter(what: &str, check: impl Fn(&Interp) -> Result<(), String>) {
    let found = all();
    assert!(!found.interps.is_empty(), "no Python interpreter found");
    for m in &found.missing {
        skip(&format!("{what} on {m}"), "interpreter missing");
    }
    let failures: Vec<String> = found
        .interps
        .iter()
        .filter_map(|i| check(i).err().map(|e| format!("== {what} on {}:\n{e}", i.label)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_process_of_a_multiprocessing_tree_is_dumped_once_in_its_own_function() {
    on_every_interpreter("dump --subprocesses", check_tree);
}

#[test]
fn a_zombie_child_and_a_native_child_do_not_break_the_dump() {
    on_every_interpreter("dump --subprocesses with a zombie", check_zombie);
}

#[test]
fn a_descendant_that_cannot_be_attached_makes_the_status_3_and_the_rest_is_dumped() {
    let Some(i) = all().interps.iter().find(|i| i.at_least(3, 8)) else {
        skip("dump --subprocesses with a traced child", "no Python 3.8+ found");
        return;
    };
    let tree = Tree::start(i, TREE);
    let marks = tree.wait_for(&["parent", "child_one", "child_two", "grandchild"]).unwrap();
    let one: i32 = marks["child_one"].trim().parse().unwrap();
    // Another tracer holds child_one: crashcatch attach, waiting for a crash.
    let mut holder = Command::new(bin())
        .args(["attach", "-q", &one.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while tracer_of(one) != Some(holder.id() as i32) {
        assert!(Instant::now() < deadline, "crashcatch attach did not attach to {one}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = dump(i, tree.pid(), &["--format", "json"]);
    // SAFETY: SIGINT to the attach we started: it detaches.
    unsafe { libc::kill(holder.id() as i32, libc::SIGINT) };
    let _ = holder.wait();
    assert_eq!(o.status.code(), Some(3), "{}", said(&o));
    let lines = lines_by_pid(&o).unwrap();
    let l = &lines[&(one as i64)];
    assert_eq!(l["outcome"], "failed", "{l}");
    assert!(l["reason"].as_str().unwrap().contains("already traced by pid"), "{l}");
    let dumped = lines.values().filter(|l| l["outcome"] == "dumped").count();
    assert_eq!(dumped, 3, "{}", said(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("3 of 4 processes dumped, 1 failed"), "{}", said(&o));
}

#[test]
fn a_pid_that_is_not_there_is_refused_like_dump_refuses_it() {
    // A pid just freed: a child that was reaped.
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["dump", "--subprocesses", &pid.to_string()]);
    let o = run(cmd);
    assert_eq!(o.status.code(), Some(125), "{}", said(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("no such process: {pid}")), "{}", said(&o));
    assert!(o.stdout.is_empty());
}

fn tracer_of(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("TracerPid:")).and_then(|v| v.trim().parse().ok())
}

/// A shell running `script` with the marks folder as $1, in a process group of its own (killed
/// when dropped).
fn shell_tree(script: &str) -> Tree {
    let mut c = Command::new("sh");
    c.args(["-c", script, "sh"]);
    Tree::spawn(c, out_dir())
}

#[test]
fn a_tree_of_more_than_256_processes_is_cut_and_says_so() {
    let tree = shell_tree("for i in $(seq 300); do sleep 1000 & done; touch \"$1/parent\"; wait");
    tree.wait_for(&["parent"]).unwrap();
    let mut c = Command::new(bin());
    c.args(["dump", "--subprocesses", "--format", "json", &tree.pid().to_string()]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = lines_by_pid(&o).unwrap();
    assert_eq!(lines.len(), 256);
    assert!(lines.values().all(|l| l["outcome"] == "dumped"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("pid {} has more than 256 processes", tree.pid())), "{err}");
}

/// The userfaultfd fixture (tests/hostile_wait.rs): a process whose memory never answers.
fn uffd_fixture() -> Option<PathBuf> {
    let exe = common::fixture(common::Variant::Fp, "uffd_hang");
    let probe = Command::new(&exe).arg("probe-only-exits-77-or-crashes").stdin(Stdio::null()).output().unwrap();
    if probe.status.code() == Some(77) {
        skip("dump --subprocesses with a userfaultfd child", String::from_utf8_lossy(&probe.stderr).trim());
        return None;
    }
    Some(exe)
}

#[test]
fn a_child_whose_memory_never_answers_costs_one_budget_and_the_others_are_dumped() {
    let Some(exe) = uffd_fixture() else { return };
    // uffd_hang prints "ready" once its region is set; sleep after it, so both are there.
    let script =
        format!("'{}' sleep | (read l; touch \"$1/parent\"; cat >/dev/null) & sleep 1000 & wait", exe.display());
    let tree = shell_tree(&script);
    tree.wait_for(&["parent"]).unwrap();
    let t = Instant::now();
    let mut c = Command::new(bin());
    c.args(["dump", "--subprocesses", "--format", "json", &tree.pid().to_string()]);
    let o = common::run_within(c, Duration::from_secs(30));
    let took = t.elapsed();
    // The report's budget (2 s) for the stuck one, a second of slack, the rest quick.
    assert!(took < Duration::from_secs(4), "took {took:?}\n{}", said(&o));
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let lines = lines_by_pid(&o).unwrap();
    let uffd: Vec<&Value> = lines
        .values()
        .filter(|l| l["report"]["process"]["cmdline"][0].as_str().is_some_and(|c| c.ends_with("uffd_hang")))
        .collect();
    assert_eq!(uffd.len(), 1, "{}", said(&o));
    assert!(uffd[0].to_string().contains("did not return within"), "{}", uffd[0]);
    let sleeps = lines.values().filter(|l| l["report"]["process"]["cmdline"][0] == "sleep").count();
    assert_eq!(sleeps, 1, "{}", said(&o));
    // Nothing is left traced or stopped.
    for &pid in lines.keys() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(status.contains("TracerPid:\t0"), "pid {pid} is still traced");
        assert!(!status.contains("State:\tt") && !status.contains("State:\tT"), "pid {pid} is left stopped");
    }
}

#[test]
fn crashcatch_leaves_itself_out_of_the_tree_it_dumps() {
    // `crashcatch dump --subprocesses $$` from a shell: crashcatch is the shell's child (not the
    // last command, so the shell cannot exec it in its own place).
    let mut c = Command::new("sh");
    c.args(["-c", &format!("'{}' dump --subprocesses --format json $$; exit $?", bin().display())]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let lines = lines_by_pid(&o).unwrap();
    assert_eq!(lines.len(), 1, "{}", said(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 of 1 processes dumped"), "{}", said(&o));
}
