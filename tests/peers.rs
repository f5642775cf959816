//! The peers' own test expectations, ported: the facts pystack's `tests/integration` and
//! py-spy's integration tests assert about their test programs (stacks of one and many threads,
//! live and from gcore cores, entry frames of inlined calls, column positions, the GIL holder,
//! the collector's state, interpreter shutdown, thread names, idle threads, Unicode names,
//! deep recursion, arguments and locals of every common type, output limits, trashed objects,
//! subinterpreters: their ids, their threads, nested on one thread, live and from a core),
//! asserted on crashcatch's JSON for programs written here in the same shapes, on every
//! interpreter here (tests/common/interpreters.rs). `make test-peers` runs it and prints
//! `peers: N passed, M failed, K skipped`; any failure fails the test.
//!
//! Where crashcatch's semantics differ from a peer's, the fact is kept and the form adapted
//! (say so at the check): reprs use Python's own quotes, a dump's default shows the crashed
//! thread's arguments in safe form (so "no locals without --locals" becomes "no string
//! contents without --locals").

// Tests open, write and print as they need: the doors are crashcatch's own.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::interpreters::{all, Interp, Kind};
use common::*;
use serde_json::Value;

/// One fact: its name and whether it held.
type Facts = Vec<(String, Result<(), String>)>;

/// A check: runs one program on one interpreter and returns the facts it asserts (or why it
/// does not apply there).
type Check = fn(&Interp, &Path) -> Result<Facts, Skip>;

/// Why a check does not apply to an interpreter.
struct Skip(String);

fn fact(name: &str, ok: bool, detail: impl FnOnce() -> String) -> (String, Result<(), String>) {
    (name.to_string(), if ok { Ok(()) } else { Err(detail()) })
}

// ---- running programs --------------------------------------------------------------------

/// A running program, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The 1-based line of `script` that ends in `# @marker`.
fn line_of(script: &str, marker: &str) -> u64 {
    let tag = format!("# @{marker}");
    script.lines().position(|l| l.trim_end().ends_with(&tag)).expect("marker") as u64 + 1
}

/// Starts `python script FIFO` and waits until the program wrote `ready` into the FIFO (a
/// handshake, no sleeping); None (with why) when it did not within the harness's time.
fn start(i: &Interp, dir: &Path, name: &str, script: &str) -> Result<(Running, PathBuf), String> {
    start_spinning(i, dir, name, script, 0)
}

/// [`start`] for a program of which `spinning` threads never sleep.
fn start_spinning(
    i: &Interp,
    dir: &Path,
    name: &str,
    script: &str,
    spinning: usize,
) -> Result<(Running, PathBuf), String> {
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    let fifo = dir.join(format!("{name}.fifo"));
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string naming a new file in our own temporary folder.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let child = Command::new(&i.python)
        .arg(&path)
        .arg(&fifo)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let running = Running(child);
    let (tx, rx) = mpsc::channel();
    let f = fifo.clone();
    std::thread::spawn(move || {
        let mut s = String::new();
        let r = std::fs::File::open(&f).and_then(|mut h| h.read_to_string(&mut s)).map(|_| s);
        let _ = tx.send(r);
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(s)) if s.contains("ready") => {
            wait_asleep(running.0.id(), spinning);
            Ok((running, path))
        }
        Ok(r) => Err(format!("{name}: the program said {r:?}, not ready")),
        Err(_) => {
            // Unblock the reader: open the FIFO for writing ourselves.
            let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
            Err(format!("{name}: not ready within 20 s"))
        }
    }
}

/// Waits (at most 5 s) until no more than `spinning` threads of `pid` are running: 'ready' is
/// written just before the program goes to sleep, and whether a thread waits is one of the facts
/// checked (a program that spins on purpose says how many threads do).
fn wait_asleep(pid: u32, spinning: usize) {
    let state = |tid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()))
    };
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < end {
        let tids: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        if tids.iter().filter(|t| state(t) == Some('R')).count() <= spinning {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `crashcatch dump` of a running program, as JSON.
fn dump(i: &Interp, pid: u32, extra: &[&str]) -> Result<Value, String> {
    dump_with_text(i, pid, extra).map(|(r, _)| r)
}

/// [`dump`], with the text report written beside the JSON.
fn dump_with_text(i: &Interp, pid: u32, extra: &[&str]) -> Result<(Value, String), String> {
    let dir = out_dir();
    let mut c = Command::new(bin());
    c.arg("dump").args(&i.args).args(extra).arg("--output-dir").arg(dir.path()).arg("-q").arg(pid.to_string());
    let out = run(c);
    let r = read_report(dir.path()).ok_or_else(|| format!("no dump report\n{}", describe(&out)))?;
    let text = read_named(dir.path(), "txt").ok_or_else(|| format!("no text report\n{}", describe(&out)))?;
    Ok((r, text))
}

/// gdb's gcore of a running program, read back with `crashcatch core`.
fn gcore(i: &Interp, pid: u32, dir: &Path) -> Result<Value, String> {
    let prefix = dir.join("gcore");
    let out = run({
        let mut c = Command::new("gcore");
        c.arg("-o").arg(&prefix).arg(pid.to_string());
        c
    });
    let core = PathBuf::from(format!("{}.{pid}", prefix.display()));
    if !core.exists() {
        return Err(format!("gcore wrote no core: {}", describe(&out)));
    }
    let reports = out_dir();
    let mut c = Command::new(bin());
    c.arg("core").args(&i.args).arg("--output-dir").arg(reports.path()).arg("-q").arg(&core);
    let out = run(c);
    let _ = std::fs::remove_file(&core);
    read_report(reports.path()).ok_or_else(|| format!("no report from the core\n{}", describe(&out)))
}

fn read_report(dir: &Path) -> Option<Value> {
    serde_json::from_str(&read_named(dir, "json")?).ok()
}

/// The report file in `dir` whose name ends in `.ext`.
fn read_named(dir: &Path, ext: &str) -> Option<String> {
    let p =
        std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == ext))?;
    std::fs::read_to_string(p).ok()
}

// ---- reading reports ---------------------------------------------------------------------

fn py_threads(r: &Value) -> Vec<&Value> {
    r["python"]["interpreters"]
        .as_array()
        .map(|a| a.iter().flat_map(|i| i["threads"].as_array().into_iter().flatten()).collect())
        .unwrap_or_default()
}

fn short(f: &Value) -> String {
    let s = f["function"].as_str().unwrap_or("");
    s.rsplit('.').next().unwrap_or(s).to_string()
}

/// A thread's Python frames, outermost first (as the peers list them).
fn outer_first(t: &Value) -> Vec<&Value> {
    let mut v: Vec<&Value> = t["frames"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    v.reverse();
    v
}

fn functions(t: &Value) -> Vec<String> {
    outer_first(t).iter().map(|f| short(f)).collect()
}

fn lines(t: &Value) -> Vec<u64> {
    outer_first(t).iter().map(|f| f["line"].as_u64().unwrap_or(0)).collect()
}

fn main_thread(r: &Value) -> Option<&Value> {
    py_threads(r).into_iter().find(|t| t["tid"] == r["process"]["pid"])
}

/// The report's thread (native and Python merged) for a kernel tid.
fn report_thread<'a>(r: &'a Value, tid: &Value) -> Option<&'a Value> {
    r["threads"].as_array()?.iter().find(|t| t["tid"] == *tid)
}

fn local<'a>(t: &'a Value, function: &str, name: &str) -> Option<&'a Value> {
    let f = t["frames"].as_array()?.iter().find(|f| short(f) == function)?;
    f["locals"].as_array()?.iter().find(|l| l["name"] == name)
}

// ---- the programs (written here, in the shapes of the peers' test programs) --------------

const SINGLE: &str = r#"import sys
import time


def first_func():
    second_func()  # @S1


def second_func():
    third_func()  # @S2


def third_func():
    with open(sys.argv[1], "w") as fifo:
        fifo.write("ready")
    time.sleep(1000)  # @S3


first_func()  # @S0
"#;

const MULTI: &str = r#"import sys
import threading
import time

threads_active = [0]
lock = threading.Lock()


def thread_func_1():
    thread_func_2()  # @T1


def thread_func_2():
    thread_func_3()  # @T2


def thread_func_3():
    with lock:
        threads_active[0] += 1
    time.sleep(1000)  # @T3


def first_func():
    second_func()  # @M1


def second_func():
    third_func()  # @M2


def third_func():
    threads = [threading.Thread(target=thread_func_1) for _ in range(3)]
    for thread in threads:
        thread.daemon = True
        thread.start()
    while threads_active[0] != 3:
        time.sleep(0.01)
    with open(sys.argv[1], "w") as fifo:
        fifo.write("ready")
    time.sleep(1000)  # @M3


first_func()  # @M0
"#;

/// pystack's inline_calls_program: functools.partial puts a C call between spam and foo.
const INLINE: &str = r#"import functools
import sys
import time


def ham():
    spam()


def spam():
    functools.partial(foo)()


def foo():
    bar()


def bar():
    baz()


def baz():
    with open(sys.argv[1], "w") as fifo:
        fifo.write("ready")
    time.sleep(1000)


ham()
"#;

/// pystack's position_information_program: the same statements at the same columns.
const POSITIONS: &str = r#"import sys
import time


class A:
    def __getitem__(self, item):
        return second_func(item) + second_func(item)  # @P2


def first_func(x):
    aaaa = A()
    1 + 2 + aaaa[12] + 3  # @P1


def second_func(x):
    short_arg = x
    loooooooooooooooong_arg = x
    third_func(short_arg, short_arg, 1 + loooooooooooooooong_arg  # @P3
        , short_arg, short_arg, loooooooooooooooong_arg
    )


def third_func(*args):
    with open(sys.argv[1], "w") as fifo:
        fifo.write("ready")
    time.sleep(1000)  # @P4


first_func(1)  # @P0
"#;

/// pystack's gc_freeze_program: a __del__ that waits inside gc.collect(), beside a thread.
const GC: &str = r#"import gc
import sys
import threading
import time


class A:
    def __del__(self):
        with open(sys.argv[1], "w") as fifo:
            fifo.write("ready")
        time.sleep(1000)


t = threading.Thread(target=time.sleep, args=(1000,))
t.daemon = True
t.start()
a = A()
x = []
x.append(a)
x.append(x)
del a
del x
gc.collect()
"#;

/// pystack's shutdown_program: a __del__ that waits during interpreter teardown.
const SHUTDOWN: &str = r#"import sys
import time


class A:
    def __init__(self):
        self.fifo = open(sys.argv[1], "w")

    def __del__(self, time=time):
        self.fifo.write("ready")
        self.fifo.close()
        time.sleep(1000)


x = A()
"#;

/// pystack's no_frames_at_shutdown_program: an atexit handler that is a C function.
const ATEXIT: &str = r#"import atexit
import functools
import sys
import time

atexit.register(functools.partial(time.sleep, 1000))

with open(sys.argv[1], "w") as fifo:
    fifo.write("ready")
"#;

/// py-spy's thread_names.py.
const THREAD_NAMES: &str = r#"import sys
import threading
import time

started = threading.Semaphore(0)


def sleeper():
    started.release()
    time.sleep(10000)


for i in range(10):
    th = threading.Thread(target=sleeper)
    th.name = "CustomThreadName-%s" % i
    th.daemon = True
    th.start()
for i in range(10):
    started.acquire()
with open(sys.argv[1], "w") as fifo:
    fifo.write("ready")
time.sleep(10000)
"#;

/// py-spy's busyloop.py and pystack's *_gil programs: one thread runs, holding the GIL.
const BUSY: &str = r#"import sys
import threading
import time


def sleeper():
    time.sleep(10000)


for _ in range(3):
    t = threading.Thread(target=sleeper)
    t.daemon = True
    t.start()
with open(sys.argv[1], "w") as fifo:
    fifo.write("ready")


def busy():
    x = 0
    while True:
        x += 1  # @B1


busy()
"#;

/// py-spy's cyrillic.py and unicode💩.py.
const UNICODE: &str = "# -*- coding: utf-8 -*-\nimport sys\nimport time\n\n\ndef \u{43a}\u{438}\u{440}\u{438}\u{43b}\u{43b}\u{438}\u{446}\u{430}():\n    with open(sys.argv[1], \"w\") as fifo:\n        fifo.write(\"ready\")\n    time.sleep(1000)  # @U1\n\n\n\u{43a}\u{438}\u{440}\u{438}\u{43b}\u{43b}\u{438}\u{446}\u{430}()  # @U0\n";

/// py-spy's recursive.py: a recursion 20 deep.
const RECURSIVE: &str = r#"import sys
import time


def recurse(n):
    if n == 0:
        with open(sys.argv[1], "w") as fifo:
            fifo.write("ready")
        time.sleep(1000)
        return
    recurse(n - 1)


recurse(20)  # @R0
"#;

/// py-spy's local_vars.py (without its numpy scalars) and pystack's test_local_variables
/// values, as a local of one frame and an argument of the next.
const LOCALS: &str = r#"# -*- coding: utf-8 -*-
import sys
import time


class A(object):
    def __init__(self, x, y):
        self.x = x
        self.y = y


class Plain(object):
    pass


split = A(1, "barbaridad")


def local_variable_lookup(arg1="foo", arg2=None, arg3=True):
    local1 = [-1234, 5678]
    local2 = ("a", "b", "c")
    local3 = 123456789123456789
    local4 = 3.1415
    local5 = {"a": False, "b": (1, 2, 3)}
    local25 = u"\u6d4b\u8bd51" * 500
    local26 = ""
    v_none = None
    v_false = False
    v_small = 1234
    v_big = 1234567890123456
    v_gigantic = 999999999999999999999999
    v_float = 3.14
    v_list = [1, 2, 3, [1, 2, [1]]]
    v_tuple = (1, 2, 3, (1, 2, [1]))
    v_dict = {1: 2, 3: 4, "Hello": 3.14, (1, 2): [3, 4]}
    v_udict = {"a": "b", "c": "d", "e": "f"}
    v_bytes = b"Hello world"
    v_binary = b"\x00\xff\xfe"
    v_split = split.__dict__
    v_dummy = dict((x, x) for x in range(10))
    del v_dummy[0]
    del v_dummy[1]
    del v_dummy[2]
    v_dummy[1] = 42
    v_custom = Plain()
    big_list = list(range(50))
    big_tuple = tuple(range(50))
    big_dict = dict((x, x) for x in range(50))
    big_str = "a" * 100
    rec_list = [1, 2, 3]
    rec_list.append(rec_list)
    rec_dict = {1: 2, 3: 4}
    rec_dict[2] = rec_dict
    second_func(v_none)


def second_func(the_argument):
    with open(sys.argv[1], "w") as fifo:
        fifo.write("ready")
    time.sleep(100000)


local_variable_lookup()
"#;

/// The subinterpreter programs' module (pystack's subinterpreters_shim, and the bodies its
/// programs run): `enter(call)` runs `call` in a new interpreter on the calling thread, with
/// whichever API this Python has; `park` signals the pipe and sleeps in `nap`; `crew` starts
/// helper threads inside the interpreter it runs in; `descend` nests interpreters on one thread.
const SUBINTERP_KIT: &str = r#"# Interpreters entered from Python on the calling thread, with whichever API this Python has:
# concurrent.interpreters (3.14+), _interpreters (3.13), _xxsubinterpreters (3.11, 3.12).
import importlib
import os
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
API = None
for name in ("concurrent.interpreters", "_interpreters", "_xxsubinterpreters"):
    try:
        API = importlib.import_module(name)
        break
    except ImportError:
        continue


def enter(call):
    source = "import sys\nsys.path.insert(0, %r)\nfrom subinterp_kit import *\n%s\n" % (HERE, call)
    if API.__name__ == "concurrent.interpreters":
        API.create().exec(source)
    elif API.__name__ == "_interpreters":
        API.exec(API.create(), source)
    else:
        API.run_string(API.create(isolated=False), source)


def park(fd):
    os.write(fd, b"x")
    nap()


def nap():
    while True:
        time.sleep(1)  # @NAP


def crew(fd, helpers):
    for _ in range(helpers):
        threading.Thread(target=park, args=(fd,)).start()
    park(fd)


def descend(fd, depth):
    if depth == 0:
        park(fd)
    else:
        enter("descend(%d, %d)" % (fd, depth - 1))


def launch(call, count):
    for _ in range(count):
        threading.Thread(target=enter, args=(call,), daemon=True).start()


def wait_for(fd, signals, fifo):
    got = 0
    while got < signals:
        got += len(os.read(fd, signals - got))
    with open(fifo, "w") as f:
        f.write("ready")
    nap()
"#;

/// pystack's subinterpreters_program: three threads, each in its own subinterpreter.
const SUBINTERP_THREE: &str = r#"import os
import sys

from subinterp_kit import launch, wait_for

r, w = os.pipe()
launch("park(%d)" % w, 3)
wait_for(r, 3, sys.argv[1])
"#;

/// pystack's subinterpreters_with_threads_program: two subinterpreters with two helper threads
/// each, started inside them.
const SUBINTERP_CREWS: &str = r#"import os
import sys

from subinterp_kit import launch, wait_for

r, w = os.pipe()
launch("crew(%d, 2)" % w, 2)
wait_for(r, 6, sys.argv[1])
"#;

/// pystack's subinterpreters_nested_same_thread_program: one thread, main → 1 → 2.
const SUBINTERP_NESTED: &str = r#"import os
import sys

from subinterp_kit import launch, wait_for

r, w = os.pipe()
launch("descend(%d, 1)" % w, 1)
wait_for(r, 1, sys.argv[1])
"#;

/// The three-interpreter program's shape, crashing: a thread the main interpreter started enters
/// a subinterpreter whose own source (line 5, after `enter`'s three) reads address 0 through
/// ctypes.
const SUBINTERP_CRASH: &str = r#"import threading

from subinterp_kit import enter

t = threading.Thread(target=enter, args=("import ctypes\nctypes.string_at(0)",))
t.start()
t.join()
"#;

/// pystack's subinterpreters_two_chains_program: two threads, each main → a → b → c.
const SUBINTERP_CHAINS: &str = r#"import os
import sys

from subinterp_kit import launch, wait_for

r, w = os.pipe()
launch("descend(%d, 2)" % w, 2)
wait_for(r, 2, sys.argv[1])
"#;

// ---- the checks ----------------------------------------------------------------------------

fn single_facts(r: &Value, how: &str) -> Facts {
    let threads = py_threads(r);
    let mut out =
        vec![fact(&format!("{how}: one Python thread"), threads.len() == 1, || format!("{} threads", threads.len()))];
    let Some(t) = threads.first() else { return out };
    let want_fn = ["<module>", "first_func", "second_func", "third_func"];
    out.push(fact(&format!("{how}: functions"), functions(t) == want_fn, || format!("{:?}", functions(t))));
    let want_lines: Vec<u64> = ["S0", "S1", "S2", "S3"].iter().map(|m| line_of(SINGLE, m)).collect();
    out.push(fact(&format!("{how}: lines"), lines(t) == want_lines, || format!("{:?} want {want_lines:?}", lines(t))));
    let file_ok = t["frames"]
        .as_array()
        .is_some_and(|f| f.iter().all(|f| f["file"].as_str().unwrap_or("").ends_with("single.py")));
    out.push(fact(&format!("{how}: file names"), file_ok, || t["frames"].to_string()));
    if let Some(rt) = report_thread(r, &t["tid"]) {
        out.push(fact(&format!("{how}: native stack merged"), rt["merge"]["kind"] == "merged", || {
            rt["merge"].to_string()
        }));
        let natives = rt["frames"]
            .as_array()
            .map_or(0, |f| f.iter().filter(|f| f["kind"] == "native" && f["function"].is_string()).count());
        out.push(fact(&format!("{how}: native frames named"), natives >= 3, || rt["frames"].to_string()));
    }
    out
}

fn check_single(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    let (p, _) = start(i, dir, "single.py", SINGLE).map_err(Skip)?;
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    Ok(single_facts(&r, "live"))
}

fn check_single_core(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    if which("gcore").is_none() {
        return Err(Skip("gdb's gcore is not installed".into()));
    }
    let (p, _) = start(i, dir, "single.py", SINGLE).map_err(Skip)?;
    let r = gcore(i, p.0.id(), dir).map_err(Skip)?;
    Ok(single_facts(&r, "gcore"))
}

fn multi_facts(r: &Value, how: &str) -> Facts {
    let threads = py_threads(r);
    let mut out =
        vec![fact(&format!("{how}: four Python threads"), threads.len() == 4, || format!("{} threads", threads.len()))];
    let Some(main) = main_thread(r) else {
        out.push(fact(&format!("{how}: main thread found"), false, || r["python"].to_string()));
        return out;
    };
    let want: Vec<u64> = ["M0", "M1", "M2", "M3"].iter().map(|m| line_of(MULTI, m)).collect();
    out.push(fact(
        &format!("{how}: main functions"),
        functions(main) == ["<module>", "first_func", "second_func", "third_func"],
        || format!("{:?}", functions(main)),
    ));
    out.push(fact(&format!("{how}: main lines"), lines(main) == want, || format!("{:?} want {want:?}", lines(main))));
    let workers: Vec<&&Value> = threads.iter().filter(|t| t["tid"] != main["tid"]).collect();
    let want_t: Vec<u64> = ["T1", "T2", "T3"].iter().map(|m| line_of(MULTI, m)).collect();
    for (k, t) in workers.iter().enumerate() {
        let f = functions(t);
        let tail: Vec<String> = f.iter().rev().take(3).rev().cloned().collect();
        out.push(fact(
            &format!("{how}: worker {k} functions"),
            tail == ["thread_func_1", "thread_func_2", "thread_func_3"],
            || format!("{f:?}"),
        ));
        let l = lines(t);
        let tail: Vec<u64> = l.iter().rev().take(3).rev().copied().collect();
        out.push(fact(&format!("{how}: worker {k} lines"), tail == want_t, || format!("{l:?} want ...{want_t:?}")));
        if let Some(rt) = report_thread(r, &t["tid"]) {
            out.push(fact(&format!("{how}: worker {k} merged"), rt["merge"]["kind"] == "merged", || {
                rt["merge"].to_string()
            }));
        }
    }
    out
}

fn check_multi(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    let (p, _) = start(i, dir, "multi.py", MULTI).map_err(Skip)?;
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    Ok(multi_facts(&r, "live"))
}

fn check_multi_core(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    if which("gcore").is_none() {
        return Err(Skip("gdb's gcore is not installed".into()));
    }
    if i.kind == Kind::Sid {
        // Started through its own ld.so, its threads' stacks come out of gcore zeroed (gdb's
        // own backtrace of that core stops at frame #1 too): nothing to read.
        return Err(Skip("gcore leaves sid's thread stacks zeroed (gdb cannot unwind them either)".into()));
    }
    let (p, _) = start(i, dir, "multi.py", MULTI).map_err(Skip)?;
    let r = gcore(i, p.0.id(), dir).map_err(Skip)?;
    Ok(multi_facts(&r, "gcore"))
}

fn check_inline(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    let (p, _) = start(i, dir, "inline.py", INLINE).map_err(Skip)?;
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    let t = main_thread(&r).ok_or_else(|| Skip("no main thread".into()))?;
    let f = functions(t);
    let mut out =
        vec![fact("functions", f.ends_with(&[]) && f == ["<module>", "ham", "spam", "foo", "bar", "baz"], || {
            format!("{f:?}")
        })];
    let mut entry: Vec<bool> = t["entry"].as_array().map(|a| a.iter().map(|b| b == true).collect()).unwrap_or_default();
    entry.reverse();
    let want = if i.at_least(3, 11) { vec![true, false, false, true, false, false] } else { vec![true; 6] };
    out.push(fact("entry frames", entry == want, || format!("{entry:?} want {want:?}")));
    Ok(out)
}

/// (line, end line, column, end column).
type Position = (u64, Option<u64>, Option<u64>, Option<u64>);

fn check_positions(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    let (p, _) = start(i, dir, "positions.py", POSITIONS).map_err(Skip)?;
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    let t = main_thread(&r).ok_or_else(|| Skip("no main thread".into()))?;
    let mut out = vec![fact(
        "functions",
        functions(t) == ["<module>", "first_func", "__getitem__", "second_func", "third_func"],
        || format!("{:?}", functions(t)),
    )];
    let got: Vec<Position> = outer_first(t)
        .iter()
        .map(|f| {
            (f["line"].as_u64().unwrap_or(0), f["end_line"].as_u64(), f["column"].as_u64(), f["end_column"].as_u64())
        })
        .collect();
    let l = |m| line_of(POSITIONS, m);
    let want: Vec<Position> = if i.at_least(3, 11) {
        vec![
            (l("P0"), Some(l("P0")), Some(0), Some(13)),
            (l("P1"), Some(l("P1")), Some(12), Some(20)),
            (l("P2"), Some(l("P2")), Some(15), Some(32)),
            (l("P3"), Some(l("P3") + 2), Some(4), Some(5)),
            (l("P4"), Some(l("P4")), Some(4), Some(20)),
        ]
    } else {
        // Before 3.11 there are no columns; 3.7 and older put a call spanning lines on its last.
        let p3 = if i.at_least(3, 8) { l("P3") } else { l("P3") + 1 };
        vec![
            (l("P0"), None, None, None),
            (l("P1"), None, None, None),
            (l("P2"), None, None, None),
            (p3, None, None, None),
            (l("P4"), None, None, None),
        ]
    };
    out.push(fact("positions", got == want, || format!("{got:?}\nwant {want:?}")));
    Ok(out)
}

fn check_gc(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    let (p, _) = start(i, dir, "gc.py", GC).map_err(Skip)?;
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    let threads = py_threads(&r);
    let collecting = &r["python"]["interpreters"][0]["gc_collecting"];
    let (p2, _) = start(i, dir, "single.py", SINGLE).map_err(Skip)?;
    let r2 = dump(i, p2.0.id(), &[]).map_err(Skip)?;
    let idle = &r2["python"]["interpreters"][0]["gc_collecting"];
    Ok(vec![
        fact("two threads while collecting", threads.len() == 2, || format!("{}", threads.len())),
        fact("collecting", *collecting == true, || collecting.to_string()),
        fact("not collecting", *idle == false, || idle.to_string()),
    ])
}

fn check_shutdown(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    let (p, _) = start(i, dir, "shutdown.py", SHUTDOWN).map_err(Skip)?;
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    let state = r["python"]["state"].as_str().unwrap_or("").to_string();
    let (p2, _) = start(i, dir, "single.py", SINGLE).map_err(Skip)?;
    let r2 = dump(i, p2.0.id(), &[]).map_err(Skip)?;
    Ok(vec![
        fact("finalizing at shutdown", state == "finalizing", || state.clone()),
        fact("running otherwise", r2["python"]["state"] == "running", || r2["python"]["state"].to_string()),
    ])
}

fn check_atexit(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    // Not atexit.py: in 2.7 the script would shadow the atexit module it imports.
    let (p, _) = start(i, dir, "exit_handler.py", ATEXIT).map_err(Skip)?;
    // The handler runs after the program said ready: wait until it sleeps in it.
    std::thread::sleep(Duration::from_millis(300));
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    let threads = py_threads(&r);
    let f: Vec<String> = threads.first().map(|t| functions(t)).unwrap_or_default();
    let want: Vec<String> = if i.py2() { vec!["_run_exitfuncs".into()] } else { vec![] };
    Ok(vec![
        fact("one thread", threads.len() == 1, || format!("{}", threads.len())),
        fact("frames at exit", f == want, || format!("{f:?} want {want:?}")),
    ])
}

fn check_thread_names(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    let (p, _) = start(i, dir, "names.py", THREAD_NAMES).map_err(Skip)?;
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    let threads = py_threads(&r);
    let mut names: Vec<String> = threads.iter().filter_map(|t| t["python_name"].as_str().map(str::to_string)).collect();
    names.sort();
    let mut want: Vec<String> = (0..10).map(|n| format!("CustomThreadName-{n}")).collect();
    want.push("MainThread".into());
    want.sort();
    let idle = threads.iter().filter(|t| t["idle"] == true).count();
    Ok(vec![
        fact("eleven threads", threads.len() == 11, || format!("{}", threads.len())),
        fact("thread names", names == want, || format!("{names:?}")),
        fact("sleeping threads are idle", !cfg!(target_arch = "x86_64") || idle == 11, || format!("{idle} idle")),
    ])
}

fn check_busy(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    let (p, _) = start_spinning(i, dir, "busy.py", BUSY, 1).map_err(Skip)?;
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    let threads = py_threads(&r);
    let main = main_thread(&r).ok_or_else(|| Skip("no main thread".into()))?;
    let holders = threads.iter().filter(|t| t["holds_gil"] == true).count();
    let mut out = vec![
        fact("four threads", threads.len() == 4, || format!("{}", threads.len())),
        fact("one GIL holder", holders <= 1, || format!("{holders} holders")),
        fact("the busy thread is active", main["idle"] != true, || main["idle"].to_string()),
    ];
    let others_idle = threads.iter().filter(|t| t["tid"] != main["tid"]).all(|t| t["idle"] == true);
    out.push(fact("the sleepers are idle", !cfg!(target_arch = "x86_64") || others_idle, || names_idle(&threads)));
    let f = functions(main);
    out.push(fact("busy loop frames", f == ["<module>", "busy"], || format!("{f:?}")));
    Ok(out)
}

fn names_idle(threads: &[&Value]) -> String {
    threads.iter().map(|t| format!("{}:{}", t["tid"], t["idle"])).collect::<Vec<_>>().join(" ")
}

fn check_sleeper_gil(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    let (p, _) = start(i, dir, "single.py", SINGLE).map_err(Skip)?;
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    let t = main_thread(&r).ok_or_else(|| Skip("no main thread".into()))?;
    Ok(vec![
        fact("a sleeper does not hold the GIL", t["holds_gil"] == false, || t["holds_gil"].to_string()),
        fact("a sleeper is idle", !cfg!(target_arch = "x86_64") || t["idle"] == true, || t["idle"].to_string()),
    ])
}

fn check_unicode(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    if i.py2() {
        return Err(Skip("2.7 has no non-ASCII identifiers".into()));
    }
    let (p, _) = start(i, dir, "unicode\u{1f4a9}.py", UNICODE).map_err(Skip)?;
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    let t = main_thread(&r).ok_or_else(|| Skip("no main thread".into()))?;
    let want_fn = "\u{43a}\u{438}\u{440}\u{438}\u{43b}\u{43b}\u{438}\u{446}\u{430}";
    let f = functions(t);
    let l = lines(t);
    let file_ok = t["frames"][0]["file"].as_str().unwrap_or("").ends_with("unicode\u{1f4a9}.py");
    Ok(vec![
        fact("Cyrillic function name", f == ["<module>", want_fn], || format!("{f:?}")),
        fact("lines", l == [line_of(UNICODE, "U0"), line_of(UNICODE, "U1")], || format!("{l:?}")),
        fact("emoji file name", file_ok, || t["frames"][0]["file"].to_string()),
    ])
}

fn check_recursive(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    let (p, _) = start(i, dir, "recursive.py", RECURSIVE).map_err(Skip)?;
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    let t = main_thread(&r).ok_or_else(|| Skip("no main thread".into()))?;
    let f = functions(t);
    Ok(vec![
        fact("22 frames", f.len() == 22, || format!("{}", f.len())),
        fact(
            "module at the top",
            f.first().map(String::as_str) == Some("<module>") && lines(t)[0] == line_of(RECURSIVE, "R0"),
            || format!("{f:?}"),
        ),
    ])
}

/// (local, want): `Some(repr)` compares exactly, `None` only that it is there.
fn locals_facts(t: &Value, i: &Interp) -> Facts {
    let q = |s: &str| format!("'{s}'");
    let mut want: Vec<(&str, Option<String>)> = vec![
        ("arg1", Some(q("foo"))),
        ("arg2", Some("None".into())),
        ("arg3", Some("True".into())),
        ("local1", Some("[-1234, 5678]".into())),
        ("local2", Some("('a', 'b', 'c')".into())),
        ("local3", Some("123456789123456789".into())),
        ("local4", Some("3.1415".into())),
        ("local5", Some("{'a': False, 'b': (1, 2, 3)}".into())),
        ("local26", Some(if i.py2() { "u''".into() } else { "''".into() })),
        ("v_none", Some("None".into())),
        ("v_false", Some("False".into())),
        ("v_small", Some("1234".into())),
        ("v_big", Some("1234567890123456".into())),
        ("v_gigantic", Some("999999999999999999999999".into())),
        ("v_float", Some("3.14".into())),
        ("v_list", Some("[1, 2, 3, [1, 2, [1]]]".into())),
        ("v_tuple", Some("(1, 2, 3, (1, 2, [1]))".into())),
        ("v_dict", Some("{1: 2, 3: 4, 'Hello': 3.14, (1, 2): [3, 4]}".into())),
        ("v_udict", Some("{'a': 'b', 'c': 'd', 'e': 'f'}".into())),
        ("v_bytes", Some(if i.py2() { q("Hello world") } else { "b'Hello world'".into() })),
        ("v_binary", Some(if i.py2() { "'\\x00\\xff\\xfe'".into() } else { "b'\\x00\\xff\\xfe'".into() })),
        ("v_split", Some("{'x': 1, 'y': 'barbaridad'}".into())),
        ("v_dummy", Some("{3: 3, 4: 4, 5: 5, 6: 6, 7: 7, ...}".into())),
        ("v_custom", None),
    ];
    if i.py2() {
        // 2.7's unicode shows its length only; its dicts keep no insertion order.
        want.retain(|(n, _)| !matches!(*n, "local26" | "v_dict" | "v_udict" | "v_split" | "v_dummy" | "local5"));
    }
    let mut out = Vec::new();
    for (name, repr) in want {
        let got = local(t, "local_variable_lookup", name);
        let ok = match (&repr, got) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(w), Some(g)) => g["repr"].as_str() == Some(w.as_str()),
        };
        out.push(fact(&format!("local {name}"), ok, || format!("{:?} want {repr:?}", got.map(|g| g["repr"].clone()))));
    }
    // Kinds: the three arguments are arguments, the rest locals.
    let kinds_ok = ["arg1", "arg2", "arg3"]
        .iter()
        .all(|n| local(t, "local_variable_lookup", n).is_some_and(|l| l["kind"] == "argument"))
        && local(t, "local_variable_lookup", "local1").is_some_and(|l| l["kind"] == "local");
    out.push(fact("argument and local kinds", kinds_ok, String::new));
    let custom = local(t, "local_variable_lookup", "v_custom")
        .map(|l| l["repr"].as_str().unwrap_or("").to_string())
        .unwrap_or_default();
    out.push(fact("a custom object is its type and address", custom.starts_with("<Plain object at 0x"), || {
        custom.clone()
    }));
    if !i.py2() {
        let u = local(t, "local_variable_lookup", "local25")
            .map(|l| l["repr"].as_str().unwrap_or("").to_string())
            .unwrap_or_default();
        out.push(fact(
            "a long CJK string, cut",
            u.starts_with("'\u{6d4b}\u{8bd5}1") && u.ends_with("...") && u.chars().count() <= 160,
            || u.clone(),
        ));
    }
    // Output limits (pystack's test_output_limiting): cut, marked, bounded.
    for n in ["big_list", "big_tuple", "big_dict", "big_str", "rec_list", "rec_dict"] {
        let g = local(t, "local_variable_lookup", n)
            .map(|l| l["repr"].as_str().unwrap_or("").to_string())
            .unwrap_or_default();
        out.push(fact(&format!("{n} limited"), g.contains("...") && g.chars().count() <= 163, || g.clone()));
    }
    let arg = local(t, "second_func", "the_argument").map(|l| l["repr"].clone());
    out.push(fact("the next frame's argument", arg == Some(Value::from("None")), || format!("{arg:?}")));
    out
}

fn check_locals(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    let (p, _) = start(i, dir, "locals.py", LOCALS).map_err(Skip)?;
    let r = dump(i, p.0.id(), &["--locals"]).map_err(Skip)?;
    let t = main_thread(&r).ok_or_else(|| Skip("no main thread".into()))?;
    let mut out = locals_facts(t, i);
    // Without --locals (pystack's test_locals_not_resolved, adapted): no variable beyond the
    // arguments, and no string's contents.
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    let json = r.to_string();
    let t = main_thread(&r).ok_or_else(|| Skip("no main thread".into()))?;
    out.push(fact("no locals without --locals", local(t, "local_variable_lookup", "local1").is_none(), || {
        t.to_string()
    }));
    out.push(fact(
        "no string contents without --locals",
        !json.contains("barbaridad") && !json.contains("'foo'"),
        String::new,
    ));
    Ok(out)
}

// ---- subinterpreters (pystack's test_subinterpreters) --------------------------------------

/// pystack runs its subinterpreter tests from 3.11 (`_xxsubinterpreters`); before, there is no
/// API to start one from Python: not applicable, so no facts and no skip.
fn subinterpreters_apply(i: &Interp) -> bool {
    i.at_least(3, 11)
}

/// Starts a subinterpreter program beside its kit.
fn start_subinterp(i: &Interp, dir: &Path, name: &str, script: &str) -> Result<(Running, PathBuf), Skip> {
    std::fs::write(dir.join("subinterp_kit.py"), SUBINTERP_KIT).unwrap();
    start(i, dir, name, script).map_err(Skip)
}

fn interpreters(r: &Value) -> Vec<&Value> {
    r["python"]["interpreters"].as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

fn interp_id(i: &Value) -> i64 {
    i["id"].as_i64().unwrap_or(-1)
}

fn threads_of(i: &Value) -> Vec<&Value> {
    i["threads"].as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

/// Every thread state of kernel thread `tid`, with its interpreter's id.
fn states_of(r: &Value, tid: &Value) -> Vec<(i64, Value)> {
    interpreters(r)
        .into_iter()
        .flat_map(|i| threads_of(i).into_iter().filter(|t| t["tid"] == *tid).map(move |t| (interp_id(i), t.clone())))
        .collect()
}

/// The ids are distinct, 0 among them, and the main interpreter (0) holds the main thread.
fn id_facts(r: &Value, how: &str, count: usize) -> Facts {
    let mut ids: Vec<i64> = interpreters(r).iter().map(|i| interp_id(i)).collect();
    ids.sort();
    let distinct = ids.windows(2).all(|w| w[0] != w[1]);
    let main_in = |i: &&Value| threads_of(i).iter().any(|t| t["tid"] == r["process"]["pid"]);
    let main_id = interpreters(r).into_iter().find(main_in).map(interp_id);
    vec![
        fact(
            &format!("{how}: {count} interpreters, distinct ids, 0 among them"),
            ids.len() == count && distinct && ids.contains(&0),
            || format!("{ids:?}"),
        ),
        fact(&format!("{how}: the main thread is in interpreter 0"), main_id == Some(0), || format!("{main_id:?}")),
    ]
}

/// The report's thread `tid` is merged, and its Python frames are those of `states` (its
/// thread states, innermost interpreter first) one after the other, with a native frame (the
/// C call that entered the next interpreter) between each two.
fn stacked_facts(r: &Value, how: &str, tid: &Value, states: &[&Value]) -> Facts {
    let Some(rt) = report_thread(r, tid) else {
        return vec![fact(&format!("{how}: thread {tid} in the report"), false, String::new)];
    };
    let want: Vec<String> =
        states.iter().flat_map(|t| t["frames"].as_array().into_iter().flatten().map(short)).collect();
    let frames: Vec<&Value> = rt["frames"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    let got: Vec<String> = frames.iter().filter(|f| f["kind"] == "python").map(|f| short(f)).collect();
    // Where each state's frames end in the merged stack, and whether a native frame follows.
    let mut ends: Vec<usize> = states
        .iter()
        .scan(0, |n, t| {
            *n += t["frames"].as_array().map_or(0, Vec::len);
            Some(*n)
        })
        .collect();
    ends.pop();
    let (mut seen, mut gap_ok) = (0usize, true);
    for (k, f) in frames.iter().enumerate() {
        if f["kind"] == "python" {
            seen += 1;
            if ends.contains(&seen) {
                gap_ok &= frames.get(k + 1).is_some_and(|n| n["kind"] == "native");
            }
        }
    }
    vec![
        fact(
            &format!("{how}: thread of {} interpreters merged", states.len()),
            rt["merge"]["kind"] == "merged",
            || rt["merge"].to_string(),
        ),
        fact(&format!("{how}: interpreters stacked innermost first"), got == want, || {
            format!("{got:?}\nwant {want:?}")
        }),
        fact(&format!("{how}: a native frame between interpreters"), gap_ok, || format!("{got:?}")),
    ]
}

fn subinterp_three_facts(r: &Value, how: &str, merge: bool) -> Facts {
    let mut out = id_facts(r, how, 4);
    let all = interpreters(r);
    let Some(main) = all.iter().find(|i| interp_id(i) == 0) else { return out };
    let main_threads = threads_of(main);
    out.push(fact(&format!("{how}: four threads in the main interpreter"), main_threads.len() == 4, || {
        format!("{}", main_threads.len())
    }));
    let nap = line_of(SUBINTERP_KIT, "NAP");
    let mut entered = Vec::new();
    for sub in all.iter().filter(|i| interp_id(i) != 0) {
        let id = interp_id(sub);
        let ts = threads_of(sub);
        out.push(fact(&format!("{how}: interpreter {id} has one thread"), ts.len() == 1, || format!("{}", ts.len())));
        let Some(t) = ts.first() else { continue };
        let f = functions(t);
        out.push(fact(&format!("{how}: interpreter {id}'s frames"), f == ["<module>", "park", "nap"], || {
            format!("{f:?}")
        }));
        let l = lines(t);
        out.push(fact(&format!("{how}: interpreter {id} sleeps in nap"), l.last() == Some(&nap), || format!("{l:?}")));
        // It runs on a thread the main interpreter started, in `enter`.
        let launcher = main_threads.iter().find(|m| m["tid"] == t["tid"]);
        let lf = launcher.map(|m| functions(m)).unwrap_or_default();
        out.push(fact(
            &format!("{how}: interpreter {id} entered from the main interpreter"),
            lf.contains(&"enter".to_string()),
            || format!("{lf:?}"),
        ));
        entered.push(t["tid"].clone());
        if let (true, Some(m)) = (merge, launcher) {
            out.extend(stacked_facts(r, &format!("{how}: interpreter {id}"), &t["tid"], &[t, m]));
        }
    }
    entered.sort_by_key(|t| t.as_i64());
    entered.dedup();
    out.push(fact(&format!("{how}: each subinterpreter on its own thread"), entered.len() == 3, || {
        format!("{entered:?}")
    }));
    if let Some(m) = main_thread(r) {
        let f = functions(m);
        out.push(fact(&format!("{how}: main thread's frames"), f == ["<module>", "wait_for", "nap"], || {
            format!("{f:?}")
        }));
    }
    out
}

fn check_subinterp_three(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    if !subinterpreters_apply(i) {
        return Ok(vec![]);
    }
    let (p, _) = start_subinterp(i, dir, "three.py", SUBINTERP_THREE)?;
    let (r, text) = dump_with_text(i, p.0.id(), &[]).map_err(Skip)?;
    let mut out = subinterp_three_facts(&r, "live", true);
    out.extend(interpreter_title_facts(&r, &text));
    Ok(out)
}

/// pystack's "In the main interpreter" / "In interpreter N" headers: the text report's title of
/// each thread names the interpreters it is in (`interpreters 0, 2`), the main thread's
/// `interpreter 0`.
fn interpreter_title_facts(r: &Value, text: &str) -> Facts {
    let title = |tid: &Value| {
        let head = format!("Thread {tid} ");
        text.lines().find(|l| l.starts_with(&head)).unwrap_or("").to_string()
    };
    let mut out = Vec::new();
    let main = title(&r["process"]["pid"]);
    out.push(fact("text: the main thread in interpreter 0", main.contains("interpreter 0)"), || main.clone()));
    for sub in interpreters(r).into_iter().filter(|i| interp_id(i) != 0) {
        let id = interp_id(sub);
        for t in threads_of(sub) {
            let line = title(&t["tid"]);
            out.push(fact(
                &format!("text: interpreter {id}'s thread"),
                line.contains(&format!("interpreters 0, {id})")),
                || line.clone(),
            ));
        }
    }
    out
}

fn check_subinterp_core(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    if !subinterpreters_apply(i) {
        return Ok(vec![]);
    }
    if which("gcore").is_none() {
        return Err(Skip("gdb's gcore is not installed".into()));
    }
    let (p, _) = start_subinterp(i, dir, "three.py", SUBINTERP_THREE)?;
    let r = gcore(i, p.0.id(), dir).map_err(Skip)?;
    // sid's thread stacks come out of gcore zeroed (see check_multi_core): the Python facts
    // hold, the native stacks to merge with are not there.
    Ok(subinterp_three_facts(&r, "gcore", i.kind != Kind::Sid))
}

fn check_subinterp_crews(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    if !subinterpreters_apply(i) {
        return Ok(vec![]);
    }
    let (p, _) = start_subinterp(i, dir, "crews.py", SUBINTERP_CREWS)?;
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    let mut out = id_facts(&r, "live", 3);
    let all = interpreters(&r);
    let main_tids: Vec<Value> =
        all.iter().filter(|i| interp_id(i) == 0).flat_map(|i| threads_of(i)).map(|t| t["tid"].clone()).collect();
    out.push(fact("three threads in the main interpreter", main_tids.len() == 3, || format!("{main_tids:?}")));
    let mut helpers = Vec::new();
    for sub in all.iter().filter(|i| interp_id(i) != 0) {
        let id = interp_id(sub);
        let ts = threads_of(sub);
        out.push(fact(&format!("interpreter {id} has three threads"), ts.len() == 3, || format!("{}", ts.len())));
        let (own, entered): (Vec<&&Value>, Vec<&&Value>) = ts.iter().partition(|t| !main_tids.contains(&t["tid"]));
        out.push(fact(
            &format!("interpreter {id}: one thread entered it, two started in it"),
            entered.len() == 1 && own.len() == 2,
            || format!("{} entered, {} own", entered.len(), own.len()),
        ));
        for t in &entered {
            let f = functions(t);
            out.push(fact(
                &format!("interpreter {id}'s entering thread"),
                f == ["<module>", "crew", "park", "nap"],
                || format!("{f:?}"),
            ));
        }
        for t in &own {
            let f = functions(t);
            out.push(fact(
                &format!("interpreter {id}'s helper thread"),
                f.ends_with(&["run".into(), "park".into(), "nap".into()]),
                || format!("{f:?}"),
            ));
            helpers.push(t["tid"].clone());
        }
    }
    let n = helpers.len();
    helpers.sort_by_key(|t| t.as_i64());
    helpers.dedup();
    out.push(fact("four helper threads, each in one interpreter", n == 4 && helpers.len() == 4, || {
        format!("{helpers:?}")
    }));
    let unmerged: Vec<String> = r["threads"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["merge"]["kind"] != "merged")
        .map(|t| format!("{}: {}", t["tid"], t["merge"]))
        .collect();
    out.push(fact("every thread merged", unmerged.is_empty(), || unmerged.join("; ")));
    Ok(out)
}

/// [`check_subinterp_three`]'s facts where a subinterpreter crashes under `crashcatch run`
/// (pystack only looks at live processes and cores): the program still dies of its SIGSEGV, the
/// crashed thread is in both interpreters, its stack merged through both, and the user's line
/// is the subinterpreter's.
fn check_subinterp_crash(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    if !subinterpreters_apply(i) {
        return Ok(vec![]);
    }
    std::fs::write(dir.join("subinterp_kit.py"), SUBINTERP_KIT).unwrap();
    let script = dir.join("crash.py");
    std::fs::write(&script, SUBINTERP_CRASH).unwrap();
    let reports = out_dir();
    let mut c = Command::new(bin());
    c.arg("run").args(&i.args).arg("--output-dir").arg(reports.path()).arg("-q").arg("--").arg(&i.python).arg(&script);
    c.current_dir(dir).stdin(Stdio::null());
    let out = run(c);
    let r = read_report(reports.path()).ok_or_else(|| Skip(format!("no crash report\n{}", describe(&out))))?;
    let signal = std::os::unix::process::ExitStatusExt::signal(&out.status);
    let crashed = &r["crashed_tid"];
    let states = states_of(&r, crashed);
    let mut ids: Vec<i64> = states.iter().map(|(id, _)| *id).collect();
    ids.sort();
    let mut out_facts = vec![
        fact("crash: the program dies of its SIGSEGV", signal == Some(libc::SIGSEGV), || format!("{:?}", out.status)),
        fact("crash: a thread the main interpreter started", *crashed != r["process"]["pid"], || crashed.to_string()),
        fact("crash: the crashed thread is in interpreters 0 and 1", ids == [0, 1], || format!("{ids:?}")),
    ];
    // The user's line is the subinterpreter's source: `<string>`, from 3.14 `<script>`.
    let user = &r["python_user_frame"];
    let file = if i.at_least(3, 14) { "<script>" } else { "<string>" };
    out_facts.push(fact(
        "crash: the user's line is in the subinterpreter",
        user["file"] == file && short(user) == "<module>" && user["line"] == 5,
        || user.to_string(),
    ));
    // The text report's title: the name the main interpreter gave the thread (the
    // subinterpreter calls it its MainThread), and both interpreters.
    let text = read_named(reports.path(), "txt").unwrap_or_default();
    let head = format!("Thread {crashed} ");
    let title = text.lines().find(|l| l.starts_with(&head)).unwrap_or("").to_string();
    out_facts.push(fact(
        "crash: text title",
        title.contains("[Thread-1 (enter)]") && title.contains("interpreters 0, 1)"),
        || title.clone(),
    ));
    let mut by_depth = states;
    by_depth.sort_by_key(|(id, _)| -id);
    if let [(_, sub), (_, main)] = by_depth.as_slice() {
        let f = functions(sub);
        out_facts.push(fact("crash: the subinterpreter's frames", f == ["<module>", "string_at"], || format!("{f:?}")));
        out_facts.extend(stacked_facts(&r, "crash", crashed, &[sub, main]));
    }
    Ok(out_facts)
}

/// The thread states of each non-main thread that entered subinterpreters, innermost (the
/// newest interpreter: each level creates the next) first.
fn chains(r: &Value) -> Vec<(Value, Vec<(i64, Value)>)> {
    let pid = &r["process"]["pid"];
    let mut tids: Vec<Value> = py_threads(r).iter().map(|t| t["tid"].clone()).filter(|t| t != pid).collect();
    tids.sort_by_key(|t| t.as_i64());
    tids.dedup();
    tids.into_iter()
        .map(|tid| {
            let mut states = states_of(r, &tid);
            states.sort_by_key(|(id, _)| -id);
            (tid, states)
        })
        .collect()
}

/// One chain of `depth` subinterpreters on one thread: one thread state in each, the innermost
/// parked, the others in `enter`, and the stack merged through all of them.
fn chain_facts(r: &Value, how: &str, states: &[(i64, Value)], depth: usize) -> Facts {
    let ids: Vec<i64> = states.iter().map(|(id, _)| *id).collect();
    let mut out = vec![fact(
        &format!("{how}: in {} interpreters, the main one outermost", depth + 1),
        ids.len() == depth + 1 && ids.last() == Some(&0),
        || format!("{ids:?}"),
    )];
    if ids.len() != depth + 1 {
        return out;
    }
    let f = functions(&states[0].1);
    out.push(fact(&format!("{how}: innermost frames"), f == ["<module>", "descend", "park", "nap"], || {
        format!("{f:?}")
    }));
    for (id, t) in &states[1..depth] {
        let f = functions(t);
        let ok = f.starts_with(&["<module>".into(), "descend".into(), "enter".into()]) && f.len() <= 4;
        out.push(fact(&format!("{how}: interpreter {id} entered the next"), ok, || format!("{f:?}")));
    }
    let outer = functions(&states[depth].1);
    out.push(fact(
        &format!("{how}: the main interpreter's thread entered the first"),
        outer.contains(&"enter".to_string()),
        || format!("{outer:?}"),
    ));
    let stack: Vec<&Value> = states.iter().map(|(_, t)| t).collect();
    out.extend(stacked_facts(r, how, &states[0].1["tid"], &stack));
    out
}

fn check_subinterp_nested(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    if !subinterpreters_apply(i) {
        return Ok(vec![]);
    }
    let (p, _) = start_subinterp(i, dir, "nested.py", SUBINTERP_NESTED)?;
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    let mut out = id_facts(&r, "live", 3);
    let c = chains(&r);
    out.push(fact("one thread besides the main one", c.len() == 1, || format!("{}", c.len())));
    for (tid, states) in &c {
        out.extend(chain_facts(&r, &format!("thread {tid}"), states, 2));
    }
    Ok(out)
}

fn check_subinterp_chains(i: &Interp, dir: &Path) -> Result<Facts, Skip> {
    if !subinterpreters_apply(i) {
        return Ok(vec![]);
    }
    let (p, _) = start_subinterp(i, dir, "chains.py", SUBINTERP_CHAINS)?;
    let r = dump(i, p.0.id(), &[]).map_err(Skip)?;
    let mut out = id_facts(&r, "live", 7);
    let c = chains(&r);
    out.push(fact("two threads besides the main one", c.len() == 2, || format!("{}", c.len())));
    for (k, (_, states)) in c.iter().enumerate() {
        out.extend(chain_facts(&r, &format!("chain {k}"), states, 3));
    }
    Ok(out)
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(tool)).find(|p| p.is_file())
}

const CHECKS: &[(&str, &str, Check)] = &[
    ("pystack test_single_thread_stack", "gather_stacks", check_single),
    ("pystack test_core_analyzer single thread (gcore)", "core_analyzer", check_single_core),
    ("pystack test_multiple_thread_stack", "gather_stacks", check_multi),
    ("pystack test_core_analyzer multiple threads (gcore)", "core_analyzer", check_multi_core),
    ("pystack test_inlined_python_calls", "gather_stacks", check_inline),
    ("pystack test_position_information", "gather_stacks", check_positions),
    ("pystack test_gc_status", "gc", check_gc),
    ("pystack test_detection_of_interpreter_shutdown", "process", check_shutdown),
    ("pystack test_no_frames_at_shutdown", "gather_stacks", check_atexit),
    ("pystack test_gil_status / py-spy test_busy_loop", "gil", check_busy),
    ("pystack test_gil_status single thread / py-spy test_long_sleep", "gil", check_sleeper_gil),
    ("py-spy test_thread_names", "integration", check_thread_names),
    ("py-spy test_unicode / test_cyrillic", "integration", check_unicode),
    ("py-spy test_recursive", "integration", check_recursive),
    ("py-spy test_local_vars / pystack test_local_variables", "locals", check_locals),
    ("pystack test_subinterpreters (three interpreters)", "subinterpreters", check_subinterp_three),
    ("pystack test_subinterpreters_for_core (gcore)", "subinterpreters", check_subinterp_core),
    ("pystack test_subinterpreters_many_threads", "subinterpreters", check_subinterp_crews),
    ("pystack test_subinterpreters_nested_same_thread", "subinterpreters", check_subinterp_nested),
    ("pystack test_subinterpreters_two_threads_three_per_thread", "subinterpreters", check_subinterp_chains),
    ("pystack test_subinterpreters, crashing (crashcatch run)", "subinterpreters", check_subinterp_crash),
];

#[test]
fn the_peers_expectations_hold_on_every_interpreter() {
    let found = all();
    assert!(!found.interps.is_empty(), "no Python interpreter found");
    let only = std::env::var("CRASHCATCH_PEERS_ONLY").ok();
    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    let mut lines = Vec::new();
    for m in &found.missing {
        skip("peers on a missing interpreter", m);
    }
    for (name, _, check) in CHECKS {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        for i in &found.interps {
            let dir = tempfile::Builder::new().prefix("crashcatch-peers-").tempdir().unwrap();
            match check(i, dir.path()) {
                Err(Skip(why)) => {
                    skipped += 1;
                    lines.push(format!("  SKIP {name} on {}: {why}", i.label));
                    skip(&format!("peers: {name} on {}", i.label), &why);
                }
                Ok(facts) => {
                    for (f, r) in facts {
                        match r {
                            Ok(()) => passed += 1,
                            Err(e) => {
                                failed += 1;
                                lines.push(format!("  FAIL {name} on {}: {f}: {e}", i.label));
                            }
                        }
                    }
                }
            }
        }
    }
    let lines: Vec<String> = lines
        .into_iter()
        .map(|l| if l.chars().count() > 400 { l.chars().take(400).collect::<String>() + "..." } else { l })
        .collect();
    for l in &lines {
        println!("{l}");
    }
    println!("peers: {passed} passed, {failed} failed, {skipped} skipped");
    assert_eq!(failed, 0, "{}", lines.join("\n"));
}
