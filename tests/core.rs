//! `crashcatch core`: real cores (the kernel's, gdb's gcore, and the one `--core` writes) of
//! the C fixtures and of Python crashes on every interpreter here, read post-mortem; the report
//! must equal the live report of the same crash in its signal, faulting function, library,
//! Python call site and frames. Truncated, corrupt and compressed cores too.
//!
//! Kernel cores need `kernel.core_pattern` to write a file in the working folder (`core`, the
//! default; `core.%p` and the like too): the child raises RLIMIT_CORE itself. When the pattern
//! pipes cores elsewhere (systemd-coredump, apport), the test says so and takes the core with
//! gdb's gcore at the fault instead.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::Value;

/// How a core of a crash is taken here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taker {
    Kernel,
    Gcore,
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(tool)).find(|p| p.is_file())
}

/// The kernel writes `core...` into the crashing process's folder with this core_pattern.
fn taker() -> Option<Taker> {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let pattern = pattern.trim();
    if !pattern.starts_with('|') && !pattern.contains('/') && !pattern.is_empty() {
        return Some(Taker::Kernel);
    }
    if which("gdb").is_none() {
        skip(
            "kernel cores",
            &format!("core_pattern is {pattern:?} (not a file in the working folder) and gdb is missing"),
        );
        return None;
    }
    skip(
        "kernel cores",
        &format!("core_pattern is {pattern:?}: cores are taken with gdb's gcore at the fault instead"),
    );
    Some(Taker::Gcore)
}

/// Runs `cmd` in `dir` until it crashes and returns its core file.
fn core_of(cmd: &[&std::ffi::OsStr], dir: &Path, taker: Taker) -> PathBuf {
    match taker {
        Taker::Kernel => {
            let mut c = Command::new(cmd[0]);
            c.args(&cmd[1..]).current_dir(dir).env_remove("DEBUGINFOD_URLS");
            // SAFETY: setrlimit is async-signal-safe; only the child's own limit changes.
            unsafe {
                c.pre_exec(|| {
                    let lim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
                    if libc::setrlimit(libc::RLIMIT_CORE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let out = run(c);
            assert!(exit_signal(&out.status).is_some(), "{cmd:?} did not die of a signal\n{}", describe(&out));
        }
        Taker::Gcore => {
            let mut c = Command::new("gdb");
            c.args(["-batch", "-nx", "-ex", "run", "-ex"]).arg(format!("gcore {}", dir.join("core").display()));
            c.arg("--args").args(cmd).current_dir(dir);
            run(c);
        }
    }
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("core")))
        .unwrap_or_else(|| panic!("{cmd:?} left no core in {} ({taker:?})", dir.display()))
}

/// `crashcatch core ARGS... CORE` with a JSON report in a fresh folder.
fn core_report(core: &Path, args: &[&str]) -> (Output, Option<Value>) {
    let dir = out_dir();
    let mut c = Command::new(bin());
    c.arg("core").arg("--output-dir").arg(dir.path()).arg("--format").arg("json").args(args).arg(core);
    let out = run(c);
    let json = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap());
    (out, json)
}

fn crashed(r: &Value) -> &Value {
    r["threads"].as_array().unwrap().iter().find(|t| t["crashed"] == true).expect("a crashed thread")
}

fn base(path: &Value) -> String {
    path.as_str().unwrap_or("").rsplit('/').next().unwrap_or("").to_string()
}

/// The crashed thread's frames as (kind, function, module file name).
fn frames(r: &Value) -> Vec<String> {
    crashed(r)["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {}",
                f["kind"].as_str().unwrap_or(""),
                f["function"].as_str().unwrap_or("??"),
                base(&f["module"])
            )
        })
        .collect()
}

/// The parts of a report a core must reproduce.
fn essentials(r: &Value) -> Value {
    serde_json::json!({
        // Addresses move with ASLR: only a NULL fault address is the same in two runs.
        "signal": [r["signal"]["name"], r["signal"]["code_name"], r["signal"]["fault_address"] == "0x0"],
        "culprit": [r["culprit"]["frame"]["function"], base(&r["culprit"]["frame"]["module"])],
        "outside": [r["culprit"]["first_outside_system"]["function"], base(&r["culprit"]["first_outside_system"]["module"])],
        "call_site": [r["python_call_site"]["file"], r["python_call_site"]["line"], r["python_call_site"]["function"]],
        "classification": r["classification"]["kind"],
        "frames": frames(r),
    })
}

fn assert_same(what: &str, live: &Value, post: &Value) {
    assert_eq!(essentials(live), essentials(post), "{what}: the core's report differs from the live one");
}

#[test]
fn kernel_cores_of_native_crashes_match_the_live_reports() {
    let Some(taker) = taker() else { return };
    for (variant, name, arg) in [
        (Variant::Fp, "null_deref", None),
        (Variant::Nofp, "abort_assert", Some("assert")),
        (Variant::Splitdebug, "thread_crash", None),
        (Variant::Stripped, "sigfpe", None),
    ] {
        let exe = fixture(variant, name);
        let mut cmd = vec![exe.as_os_str()];
        cmd.extend(arg.map(std::ffi::OsStr::new));
        let (_, live) = run_caught(NO_ARGS, &cmd);
        let live = live.unwrap_or_else(|| panic!("{name}: no live report"));
        let dir = out_dir();
        let core = core_of(&cmd, dir.path(), taker);
        let (out, post) = core_report(&core, &[]);
        let post = post.unwrap_or_else(|| panic!("{name}: no report from the core\n{}", describe(&out)));
        assert!(out.status.success(), "{name}: {}", describe(&out));
        assert_eq!(post["kind"], "crash");
        assert_eq!(post["process"]["exe"], live["process"]["exe"], "{name}");
        assert_eq!(post["process"]["cmdline"], live["process"]["cmdline"], "{name}: argv from the stack");
        assert_eq!(post["classification"], live["classification"], "{name}");
        assert_eq!(
            post["threads"].as_array().unwrap().len(),
            live["threads"].as_array().unwrap().len(),
            "{name}: every thread"
        );
        assert_same(name, &live, &post);
        assert!(post["notes"].to_string().contains("post-mortem"), "{name}: the report says it came from a core");
    }
}

const PY_CRASH: &str = "import ctypes, os, threading\n\
def inner():\n    return ctypes.string_at(0)\n\
def outer():\n    return inner()\n\
os.environ['PYTEST_CURRENT_TEST'] = 'tests/test_core.py::test_it (call)'\n\
outer()\n";

fn sid_314() -> Option<PathBuf> {
    let p = root().join("target/sid/run-python3.14");
    if p.exists() {
        Some(p)
    } else {
        skip("core of sid's python3.14", &format!("{} is missing (make sid)", p.display()));
        None
    }
}

#[test]
fn kernel_cores_of_python_crashes_on_every_interpreter() {
    let Some(taker) = taker() else { return };
    let dir = out_dir();
    let script = dir.path().join("crash.py");
    std::fs::write(&script, PY_CRASH).unwrap();
    let mut pythons = pythons();
    pythons.extend(sid_314());
    assert!(!pythons.is_empty(), "no Python interpreter found");
    for py in pythons {
        let what = py.display().to_string();
        let (_, live) = run_caught(NO_ARGS, &[py.as_os_str(), script.as_os_str()]);
        let Some(live) = live else { panic!("{what}: no live report") };
        let work = out_dir();
        let core = core_of(&[py.as_os_str(), script.as_os_str()], work.path(), taker);
        let (out, post) = core_report(&core, &[]);
        let post = post.unwrap_or_else(|| panic!("{what}: no report from the core\n{}", describe(&out)));
        assert_same(&what, &live, &post);
        assert_eq!(post["python_call_site"]["function"], live["python_call_site"]["function"], "{what}");
        assert_eq!(post["python_user_frame"]["line"], 3, "{what}: {}", post["python_user_frame"]);
        assert_eq!(post["process"]["test"], "tests/test_core.py::test_it (call)", "{what}: the test from memory");
        assert_eq!(post["python"]["version"], live["python"]["version"], "{what}");
        assert_eq!(post["python"]["state"], live["python"]["state"], "{what}");
        // The GIL holder is named by thread id: the core's own crashed thread.
        assert_eq!(post["python"]["gil_holder_tid"], post["crashed_tid"], "{what}");
    }
}

const PY_WAITERS: &str = "import sys, threading, time\n\
ready = threading.Barrier(3)\n\
def waits_in_alpha():\n    ready.wait()\n    time.sleep(600)\n\
def waits_in_beta():\n    ready.wait()\n    threading.Event().wait(600)\n\
def waits_in_main():\n    ready.wait()\n    print('ready', flush=True)\n    time.sleep(600)\n\
threading.Thread(target=waits_in_alpha, daemon=True).start()\n\
threading.Thread(target=waits_in_beta, daemon=True).start()\n\
waits_in_main()\n";

#[test]
fn gcore_of_a_multithreaded_python_program() {
    if which("gcore").is_none() {
        skip("gcore of a Python program", "gdb's gcore is not installed");
        return;
    }
    let Some(py) = pythons().into_iter().find(|p| p.to_string_lossy().contains("3.11")).or_else(|| pythons().pop())
    else {
        panic!("no Python interpreter found")
    };
    let dir = out_dir();
    let script = dir.path().join("waiters.py");
    std::fs::write(&script, PY_WAITERS).unwrap();
    let Some(core) = gcore_of_running(Command::new(&py).arg(&script), dir.path()) else { return };
    let (out, post) = core_report(&core, &[]);
    let post = post.unwrap_or_else(|| panic!("no report from the gcore\n{}", describe(&out)));
    assert_eq!(post["kind"], "dump", "a gcore of a live process is a dump, not a crash");
    assert_eq!(post["threads"].as_array().unwrap().len(), 3);
    let text = post["threads"].to_string();
    for f in ["waits_in_alpha", "waits_in_beta", "waits_in_main"] {
        assert!(text.contains(&format!("\"function\":\"{f}\"")), "{f} missing from the merged stacks");
    }
}

/// Every thread of a report from a gcore: its native stack unwound past the first frame (in a
/// module, not a lone address) and merged with its Python frames.
fn assert_native_and_merged(what: &str, post: &Value) {
    for t in post["threads"].as_array().unwrap() {
        let natives: Vec<&Value> = t["frames"].as_array().unwrap().iter().filter(|f| f["kind"] == "native").collect();
        assert!(
            natives.len() >= 3 && natives.iter().all(|f| f["module"].is_string()),
            "{what}: thread {} has no unwound native stack: {}\n{}",
            t["tid"],
            t["unwind_error"],
            t["frames"]
        );
        let python = t["frames"].as_array().unwrap().iter().any(|f| f["kind"] == "python");
        if python || t["merge"]["python_frames"].is_array() {
            assert_eq!(t["merge"]["kind"], "merged", "{what}: thread {}: {}", t["tid"], t["merge"]);
        }
    }
}

/// A program that prints `ready` once its threads are where the test expects them.
fn gcore_of_running(cmd: &mut Command, dir: &Path) -> Option<PathBuf> {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "ready", "{cmd:?}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let prefix = dir.join("gcore");
    let out = run({
        let mut c = Command::new("gcore");
        c.arg("-o").arg(&prefix).arg(child.id().to_string());
        c
    });
    let _ = child.kill();
    let _ = child.wait();
    let core = PathBuf::from(format!("{}.{}", prefix.display(), child.id()));
    if !core.exists() {
        skip("gcore of a running program", &format!("gcore wrote no core (ptrace refused?): {}", describe(&out)));
        return None;
    }
    Some(core)
}

const PY_SLEEPER: &str = "import time\n\
def sleeps_in_main():\n    print('ready', flush=True)\n    time.sleep(600)\n\
sleeps_in_main()\n";

/// gdb's gcore writes no segment for a library's code: the native stacks must still unwind
/// (through the files NT_FILE names) and merge, single- and multi-threaded, on every
/// interpreter (pystack's test_core_analyzer cases).
#[test]
fn gcore_cores_have_native_stacks_merged_on_every_interpreter() {
    if which("gcore").is_none() {
        skip("gcore native stacks", "gdb's gcore is not installed");
        return;
    }
    let dir = out_dir();
    let sleeper = dir.path().join("sleeper.py");
    std::fs::write(&sleeper, PY_SLEEPER).unwrap();
    let waiters = dir.path().join("waiters.py");
    std::fs::write(&waiters, PY_WAITERS).unwrap();
    let pythons = pythons();
    assert!(!pythons.is_empty(), "no Python interpreter found");
    for py in pythons {
        for (script, functions) in
            [(&sleeper, &["sleeps_in_main"][..]), (&waiters, &["waits_in_alpha", "waits_in_beta", "waits_in_main"])]
        {
            let what = format!("{} {}", py.display(), script.file_name().unwrap().to_string_lossy());
            let work = out_dir();
            let Some(core) = gcore_of_running(Command::new(&py).arg(script), work.path()) else { return };
            let (out, post) = core_report(&core, &[]);
            let post = post.unwrap_or_else(|| panic!("{what}: no report\n{}", describe(&out)));
            assert_native_and_merged(&what, &post);
            let text = post["threads"].to_string();
            for f in functions {
                assert!(text.contains(&format!("\"function\":\"{f}\"")), "{what}: {f} missing");
            }
        }
    }
}

/// The C fixtures taken with gcore at the fault (under gdb), single- and multi-threaded: the
/// same report as the live one.
#[test]
fn gcore_cores_of_native_crashes_match_the_live_reports() {
    if which("gdb").is_none() {
        skip("gcore of native crashes", "gdb is not installed");
        return;
    }
    for (variant, name) in [(Variant::Fp, "null_deref"), (Variant::Splitdebug, "thread_crash")] {
        let exe = fixture(variant, name);
        let cmd = vec![exe.as_os_str()];
        let (_, live) = run_caught(NO_ARGS, &cmd);
        let live = live.unwrap_or_else(|| panic!("{name}: no live report"));
        let dir = out_dir();
        let core = core_of(&cmd, dir.path(), Taker::Gcore);
        let (out, post) = core_report(&core, &[]);
        let post = post.unwrap_or_else(|| panic!("{name}: no report from the gcore\n{}", describe(&out)));
        assert_same(&format!("{name} (gcore)"), &live, &post);
        for t in post["threads"].as_array().unwrap() {
            assert!(t["unwind_error"].is_null() || t["frames"].as_array().unwrap().len() > 2, "{name}: {t}");
        }
    }
}

/// A kernel core of the null_deref fixture, for the damage tests.
fn native_core(dir: &Path) -> Option<PathBuf> {
    let taker = taker()?;
    let exe = fixture(Variant::Fp, "null_deref");
    Some(core_of(&[exe.as_os_str()], dir, taker))
}

fn assert_no_panic(what: &str, out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{what}: crashcatch panicked\n{err}");
    assert!(out.status.code().is_some(), "{what}: crashcatch died of a signal\n{err}");
}

#[test]
fn truncated_and_corrupt_cores_give_clear_errors() {
    let dir = out_dir();
    let Some(core) = native_core(dir.path()) else { return };
    let bytes = std::fs::read(&core).unwrap();
    let write = |name: &str, data: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    // Cut in the middle of its memory: a report, saying what is missing.
    let half = write("half", &bytes[..bytes.len() / 2]);
    let (out, post) = core_report(&half, &[]);
    assert_no_panic("half", &out);
    let post = post.unwrap_or_else(|| panic!("a half core still gives a report\n{}", describe(&out)));
    assert!(post["notes"].to_string().contains("truncated"), "{}", post["notes"]);
    assert_eq!(post["signal"]["name"], "SIGSEGV");
    // Cut inside the header, the program headers, the notes.
    for cut in [10usize, 100, 0x300] {
        let p = write(&format!("cut{cut}"), &bytes[..cut.min(bytes.len())]);
        let (out, post) = core_report(&p, &[]);
        assert_no_panic(&format!("cut at {cut}"), &out);
        assert_eq!(out.status.code(), Some(1), "cut at {cut}: {}", describe(&out));
        assert!(post.is_none());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("crashcatch: ") && err.contains("cut"), "cut at {cut}: {err}");
    }
    // Not a core at all; an ELF program instead of its core.
    let text = write("text", b"hello, this is not a core\n");
    let (out, _) = core_report(&text, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an ELF core file"), "{}", describe(&out));
    let (out, _) = core_report(&fixture(Variant::Fp, "null_deref"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a core dump"), "{}", describe(&out));
    // Hostile headers: a program header table far past the end, a huge note.
    let mut far = bytes.clone();
    far[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    let (out, _) = core_report(&write("far", &far), &[]);
    assert_no_panic("far", &out);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    // Random bytes over the notes and the first segments: a report or an error, never a panic.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..8 {
        let mut bad = bytes.clone();
        for _ in 0..64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = 64 + (seed as usize % (bad.len().min(0x4000) - 64));
            bad[at] = (seed >> 32) as u8;
        }
        let (out, _) = core_report(&write(&format!("bad{round}"), &bad), &[]);
        assert_no_panic(&format!("random bytes, round {round}"), &out);
    }
}

#[test]
fn compressed_cores_are_read_directly() {
    let dir = out_dir();
    let Some(core) = native_core(dir.path()) else { return };
    let (_, plain) = core_report(&core, &[]);
    let plain = plain.expect("a report from the plain core");
    for (tool, args, ext) in [("zstd", &["-q", "-k", "-f"][..], "zst"), ("gzip", &["-k", "-f"][..], "gz")] {
        if which(tool).is_none() {
            skip(&format!("{tool}-compressed core"), &format!("{tool} is not installed"));
            continue;
        }
        let out = run({
            let mut c = Command::new(tool);
            c.args(args).arg(&core);
            c
        });
        assert!(out.status.success(), "{}", describe(&out));
        let packed = PathBuf::from(format!("{}.{ext}", core.display()));
        let (out, post) = core_report(&packed, &[]);
        let post = post.unwrap_or_else(|| panic!("{tool}: no report\n{}", describe(&out)));
        assert_same(tool, &plain, &post);
        assert!(post["notes"].to_string().contains(&format!("{tool}-compressed")), "{}", post["notes"]);
    }
}

#[test]
fn run_mode_writes_a_core_that_reads_back_and_opens_in_gdb() {
    let exe = fixture(Variant::Fp, "null_deref");
    let caught = run_caught_in(&["--core"], &[&exe]);
    let live = caught.report().expect("a live report");
    let core =
        caught.files().into_iter().find(|p| p.extension().is_some_and(|e| e == "core")).unwrap_or_else(|| {
            panic!("no core next to the report: {:?}\n{}", caught.files(), describe(&caught.output))
        });
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&core).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let (out, post) = core_report(&core, &[]);
    let post = post.unwrap_or_else(|| panic!("no report from the written core\n{}", describe(&out)));
    assert_same("--core", &live, &post);
    if which("gdb").is_some() {
        let out = run({
            let mut c = Command::new("gdb");
            c.args(["-batch", "-nx", "-ex", "bt"]).arg(&exe).arg(&core);
            c
        });
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("cc_fixture_crash_null"), "gdb's backtrace of the written core:\n{}", describe(&out));
        assert!(text.contains("SIGSEGV"), "gdb names the signal:\n{text}");
    } else {
        skip("--core read by gdb", "gdb is not installed");
    }
    // A budget too small for everything (a Python process's heap is more than 1 MB): the
    // stacks are kept, the rest is counted out.
    let dir = out_dir();
    let script = dir.path().join("crash.py");
    std::fs::write(&script, PY_CRASH).unwrap();
    let py = pythons().pop().expect("a Python interpreter");
    let (_, live) = run_caught(NO_ARGS, &[py.as_os_str(), script.as_os_str()]);
    let live = live.expect("a live report of the Python crash");
    let caught = run_caught_in(&["--core", "--core-max-mb", "1"], &[py.as_os_str(), script.as_os_str()]);
    let err = String::from_utf8_lossy(&caught.output.stderr);
    assert!(err.contains("core file written") && err.contains("left out"), "{err}");
    let core = caught.files().into_iter().find(|p| p.extension().is_some_and(|e| e == "core")).unwrap();
    assert!(std::fs::metadata(&core).unwrap().len() <= (1 << 20) + (256 << 10), "bounded by --core-max-mb");
    let (out, post) = core_report(&core, &[]);
    let post = post.unwrap_or_else(|| panic!("no report from the bounded core\n{}", describe(&out)));
    assert_eq!(essentials(&post)["culprit"], essentials(&live)["culprit"]);
}

#[test]
fn a_file_that_no_longer_matches_the_core_is_named() {
    let Some(taker) = taker() else { return };
    // A copy of the fixture's library, crashed with, then replaced by another build.
    let dir = out_dir();
    let lib_dir = dir.path().join("lib");
    std::fs::create_dir(&lib_dir).unwrap();
    let lib = lib_dir.join("libccfix.so");
    std::fs::copy(fixture(Variant::Fp, "libccfix.so"), &lib).unwrap();
    let exe = fixture(Variant::Fp, "null_deref");
    let work = out_dir();
    let core = {
        let mut cmd = vec![exe.as_os_str().to_owned()];
        cmd.insert(0, "env".into());
        cmd.insert(1, format!("LD_LIBRARY_PATH={}", lib_dir.display()).into());
        let env = which("env").unwrap();
        cmd[0] = env.into_os_string();
        core_of(&cmd.iter().map(|c| c.as_os_str()).collect::<Vec<_>>(), work.path(), taker)
    };
    std::fs::copy(fixture(Variant::Nofp, "libccfix.so"), &lib).unwrap();
    let (out, post) = core_report(&core, &[]);
    let post = post.unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    let notes = post["notes"].to_string();
    assert!(notes.contains("no longer matches the core"), "{notes}");
    // The library is not read for symbols: the fault is not named from the wrong file.
    assert_ne!(post["culprit"]["frame"]["function"], "cc_fixture_crash_null");
    // Under --sysroot, a folder holding the right file wins.
    let root = out_dir();
    let target = root.path().join(lib.strip_prefix("/").unwrap());
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(fixture(Variant::Fp, "libccfix.so"), &target).unwrap();
    let (out, post) = core_report(&core, &["--sysroot", root.path().to_str().unwrap()]);
    let post = post.unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    assert_eq!(post["culprit"]["frame"]["function"], "cc_fixture_crash_null", "{}", post["notes"]);
}
