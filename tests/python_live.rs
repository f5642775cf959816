//! Live check of the CPython reader: for every interpreter installed here (pyenv versions and
//! /usr/bin/python3.11), run a script that nests calls in two threads and stops itself with
//! SIGSTOP, then read it through /proc (no ptrace) and compare function names, lines, tids and
//! the GIL holder exactly. Interpreters that are not installed are skipped with a message; the
//! test fails when none is found.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crashcatch::modules::ModuleSet;
use crashcatch::process::live::{cmdline, thread_ids, thread_name, LiveMemory, LiveView};
use crashcatch::process::maps::parse_maps;
use crashcatch::process::{Snapshot, ThreadInfo};
use crashcatch::python::inspect;
use crashcatch::report::model::{InterpreterState, PythonState, PythonThread};

const SCRIPT3: &str = r#"import os, signal, sys, threading, time

ready = threading.Event()


def worker_inner():
    ready.set()
    time.sleep(100000)  # @W1


def worker():
    worker_inner()  # @W2


def fünf(n):
    os.kill(os.getpid(), signal.SIGSTOP)  # @F1


def 日本語():
    return fünf(3)  # @J1


class Outer:
    def method(self):
        return 日本語()  # @M1


def main():
    t = threading.Thread(target=worker, name="worker")
    t.daemon = True
    t.start()
    ready.wait()
    sys.stdout.write("%d\n" % os.getpid())
    sys.stdout.flush()
    Outer().method()  # @N1


main()  # @T1
"#;

/// Python 2 identifiers are ASCII only.
const SCRIPT2: &str = r#"import os, signal, sys, threading, time

ready = threading.Event()


def worker_inner():
    ready.set()
    time.sleep(100000)  # @W1


def worker():
    worker_inner()  # @W2


def fuenf(n):
    os.kill(os.getpid(), signal.SIGSTOP)  # @F1


def nihongo():
    return fuenf(3)  # @J1


class Outer:
    def method(self):
        return nihongo()  # @M1


def main():
    t = threading.Thread(target=worker, name="worker")
    t.daemon = True
    t.start()
    ready.wait()
    sys.stdout.write("%d\n" % os.getpid())
    sys.stdout.flush()
    Outer().method()  # @N1


main()  # @T1
"#;

/// Stops itself from a `__del__` that runs during module teardown, after Py_FinalizeEx has
/// marked the runtime as finalizing, with a daemon thread still asleep.
const SCRIPT_FIN: &str = r#"import os, signal, sys, threading, time

ready = threading.Event()


def worker():
    ready.set()
    time.sleep(100000)  # @W1


class Sentinel:
    def __del__(self, _kill=os.kill, _getpid=os.getpid, _write=os.write, _sig=signal.SIGSTOP):
        _write(1, b"%d\n" % _getpid())
        _kill(_getpid(), _sig)  # @D1


t = threading.Thread(target=worker)
t.daemon = True
t.start()
ready.wait()
# Not a __main__ global: with a daemon thread alive, __main__'s dict is not torn down, sys's is.
sys._sentinel = Sentinel()
"#;

fn line_of(script: &str, marker: &str) -> u32 {
    let tag = format!("# @{marker}");
    script.lines().position(|l| l.trim_end().ends_with(&tag)).expect("marker") as u32 + 1
}

fn source_of(script: &str, marker: &str) -> String {
    script.lines().nth(line_of(script, marker) as usize - 1).unwrap().trim().to_string()
}

struct Target {
    child: Child,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn interpreters() -> Vec<(String, PathBuf)> {
    let mut v = Vec::new();
    let root = std::env::var("PYENV_ROOT").unwrap_or_else(|_| "/root/.pyenv".into());
    for ver in ["2.7.18", "3.6.15", "3.7.16", "3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"] {
        let mm: String = ver.split('.').take(2).collect::<Vec<_>>().join(".");
        let p = Path::new(&root).join("versions").join(ver).join("bin").join(format!("python{mm}"));
        if p.exists() {
            v.push((format!("pyenv {ver}"), p));
        } else {
            common::skip(&format!("pyenv {ver}"), &format!("{} not found", p.display()));
        }
    }
    let deb = PathBuf::from("/usr/bin/python3.11");
    if deb.exists() {
        v.push(("debian 3.11".into(), deb));
    } else {
        common::skip("/usr/bin/python3.11", "not found");
    }
    v
}

fn wait_stopped(pid: i32) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
        // The state follows the ")" that ends the command name.
        let state = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next()).unwrap_or("");
        if state == "T" {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("pid {pid} never stopped (state {state})"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn snapshot_and_inspect(pid: i32) -> Option<PythonState> {
    let mem = LiveMemory::new(pid);
    let maps = parse_maps(&std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap());
    let threads: Vec<ThreadInfo> = thread_ids(pid)
        .into_iter()
        .map(|tid| ThreadInfo { tid, name: thread_name(pid, tid), regs: None, note: None })
        .collect();
    let snap = Snapshot {
        pid,
        crashed_tid: pid,
        signal: Default::default(),
        exe: std::fs::read_link(format!("/proc/{pid}/exe")).ok().map(|p| p.display().to_string()),
        cmdline: cmdline(pid),
        maps,
        threads,
        memory: &mem,
        view: &LiveView { pid },
        files: crashcatch::process::TargetFiles::live(pid),
    };
    let modules = ModuleSet::from_snapshot(&snap);
    inspect(&snap, &modules, None)
}

fn names(t: &PythonThread) -> Vec<String> {
    t.frames.iter().map(|f| format!("{}:{}", f.function, f.line.map(|l| l.to_string()).unwrap_or("?".into()))).collect()
}

/// Starts `python script`, reads the pid it prints and waits until it has stopped itself.
fn start_stopped(python: &Path, path: &Path) -> Result<(Target, i32), String> {
    let child = Command::new(python)
        .arg(path)
        .env_remove("PYTHONPATH")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
    let mut target = Target { child };
    let mut line = String::new();
    BufReader::new(target.child.stdout.take().unwrap()).read_line(&mut line).map_err(|e| e.to_string())?;
    let pid: i32 = line.trim().parse().map_err(|_| format!("no pid printed: {line:?}"))?;
    assert_eq!(pid as u32, target.child.id());
    wait_stopped(pid)?;
    Ok((target, pid))
}

fn check_one(label: &str, python: &Path, dir: &Path) -> Result<String, String> {
    let py2 = python.file_name().unwrap().to_string_lossy().starts_with("python2");
    let script = if py2 { SCRIPT2 } else { SCRIPT3 };
    let path = dir.join(if py2 { "nest2.py" } else { "nest3.py" });
    std::fs::write(&path, script).unwrap();
    let (_target, pid) = start_stopped(python, &path)?;

    let t0 = Instant::now();
    let st = snapshot_and_inspect(pid).ok_or("inspect found no Python")?;
    let took = t0.elapsed();
    let file = path.display().to_string();
    let (fuenf, nihongo) = if py2 { ("fuenf", "nihongo") } else { ("fünf", "日本語") };
    let qual = |plain: &str, q: &str| -> String {
        let modern = st.version.as_deref().is_some_and(|v| {
            let mut it = v.split('.');
            let (a, b) = (it.next().unwrap_or("0"), it.next().unwrap_or("0"));
            a == "3" && b.parse::<u32>().unwrap_or(0) >= 11
        });
        if modern {
            q.to_string()
        } else {
            plain.to_string()
        }
    };
    let want_main: Vec<String> = vec![
        format!("{fuenf}:{}", line_of(script, "F1")),
        format!("{nihongo}:{}", line_of(script, "J1")),
        format!("{}:{}", qual("method", "Outer.method"), line_of(script, "M1")),
        format!("main:{}", line_of(script, "N1")),
        format!("<module>:{}", line_of(script, "T1")),
    ];
    let ctx = || format!("{label}: state {st:#?}");
    if !st.errors.is_empty() {
        return Err(format!("errors: {:?}\n{}", st.errors, ctx()));
    }
    if st.interpreters.len() != 1 {
        return Err(format!("{} interpreters\n{}", st.interpreters.len(), ctx()));
    }
    let threads = &st.interpreters[0].threads;
    let main = threads
        .iter()
        .find(|t| t.tid == Some(pid))
        .ok_or_else(|| format!("no thread mapped to tid {pid}\n{}", ctx()))?;
    if names(main) != want_main {
        return Err(format!("main thread frames {:?}, want {:?}", names(main), want_main));
    }
    if main.frames.iter().any(|f| f.file != file) {
        return Err(format!("main thread files: {:?}", main.frames.iter().map(|f| &f.file).collect::<Vec<_>>()));
    }
    if main.frames[0].source.as_deref() != Some(source_of(script, "F1").as_str()) {
        return Err(format!("innermost source {:?}", main.frames[0].source));
    }
    let tids = thread_ids(pid);
    let other = *tids.iter().find(|&&t| t != pid).ok_or("no second task")?;
    let worker = threads
        .iter()
        .find(|t| t.tid == Some(other))
        .ok_or_else(|| format!("no thread mapped to tid {other}\n{}", ctx()))?;
    let wn = names(worker);
    let want_w = [format!("worker_inner:{}", line_of(script, "W1")), format!("worker:{}", line_of(script, "W2"))];
    if wn.len() < 3 || wn[..2] != want_w {
        return Err(format!("worker frames {wn:?}, want {want_w:?} first"));
    }
    let last = worker.frames.last().unwrap();
    if !last.function.ends_with("_bootstrap") || !last.file.ends_with("threading.py") {
        return Err(format!("worker's outermost frame {last:?}"));
    }
    // Entry frames: every frame ≤3.10; from 3.11, only where a C eval loop began.
    let modern = !py2 && qual("a", "b") == "b";
    let want_entries: Vec<bool> = if modern { vec![false, false, false, false, true] } else { vec![true; 5] };
    if main.entry != want_entries {
        return Err(format!("main entry flags {:?}, want {want_entries:?}", main.entry));
    }
    if !worker.entry.last().copied().unwrap_or(false) || worker.entry.len() != worker.frames.len() {
        return Err(format!("worker entry flags {:?}", worker.entry));
    }
    if st.gil_holder_tid != Some(pid) || !main.holds_gil || worker.holds_gil {
        return Err(format!(
            "GIL holder {:?}, main holds {}, worker holds {}",
            st.gil_holder_tid, main.holds_gil, worker.holds_gil
        ));
    }
    if st.state != Some(InterpreterState::Running) {
        return Err(format!("state {:?}", st.state));
    }
    if main.frames.iter().chain(worker.frames.iter()).any(|f| f.stale) {
        return Err("frames marked stale while running".into());
    }
    drop(_target);
    // 2.7 keeps no finalizing thread state: its finalization is told from `initialized`.
    let fin = check_finalizing(python, dir)?;
    Ok(format!(
        "{} from {} ({} threads, {} ms); {fin}",
        st.version.as_deref().unwrap_or("?"),
        st.module.as_deref().unwrap_or("?"),
        threads.len(),
        took.as_millis()
    ))
}

fn check_finalizing(python: &Path, dir: &Path) -> Result<String, String> {
    let path = dir.join("fin.py");
    std::fs::write(&path, SCRIPT_FIN).unwrap();
    let (_target, pid) = start_stopped(python, &path)?;
    let st = snapshot_and_inspect(pid).ok_or("inspect found no Python during finalization")?;
    let ctx = || format!("finalizing: state {st:#?}");
    if st.state != Some(InterpreterState::Finalizing) || st.finalizing_tid != Some(pid) {
        return Err(format!("state {:?}, finalizing tid {:?}\n{}", st.state, st.finalizing_tid, ctx()));
    }
    let threads = &st.interpreters.first().ok_or_else(ctx)?.threads;
    let main = threads.iter().find(|t| t.tid == Some(pid)).ok_or_else(ctx)?;
    let f = main.frames.first().ok_or_else(ctx)?;
    if !f.function.ends_with("__del__") || f.line != Some(line_of(SCRIPT_FIN, "D1")) || f.stale {
        return Err(format!("finalizing thread's innermost frame {f:?}"));
    }
    let others: Vec<_> = threads.iter().filter(|t| t.tid != Some(pid)).collect();
    if others.iter().any(|t| t.frames.iter().any(|f| !f.stale)) {
        return Err(format!("non-finalizing threads' frames not stale\n{}", ctx()));
    }
    Ok(format!("finalizing ok ({} other thread state(s) listed, stale)", others.len()))
}

#[test]
fn live_interpreters() {
    if unsafe { libc::geteuid() } != 0 {
        common::skip("live_interpreters", "reading /proc/PID/mem of a stopped child needs root here");
        return;
    }
    let found = interpreters();
    assert!(!found.is_empty(), "no Python interpreter found: the live test covers nothing");
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    println!("live matrix:");
    for (label, py) in &found {
        match check_one(label, py, dir.path()) {
            Ok(what) => println!("  PASS {label:<14} {what}"),
            Err(e) => {
                println!("  FAIL {label:<14} {}", e.lines().next().unwrap_or(""));
                failures.push(format!("{label}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
