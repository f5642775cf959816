//! crashcatch on the C fixtures (fixtures/*.c, built by `make fixtures` in four variants), on a
//! Python interpreter crashing in libc, and on commands it cannot run.
//!
//! Every crash is run twice, bare and under crashcatch: the exit status and stdout must be the
//! same (up to pids and addresses), and the JSON report must name the signal, the faulting
//! function and library, and, where DWARF exists, the fixture's `CRASH-LINE`.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::ffi::OsString;
use std::path::Path;

use common::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Reading the report.

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn must_text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    text(v, pointer).unwrap_or_else(|| panic!("report has no string at {pointer}:\n{}", pretty(v)))
}

fn pretty(v: &Value) -> String {
    let s = serde_json::to_string_pretty(v).unwrap_or_default();
    // Keep failure messages readable: the modules list alone can be long.
    if s.len() > 20_000 {
        format!("{}\n... ({} bytes in all)", &s[..20_000], s.len())
    } else {
        s
    }
}

/// The one thread marked `"crashed": true`.
fn crashed_thread(report: &Value) -> &Value {
    let threads = report["threads"].as_array().unwrap_or_else(|| panic!("no threads[]:\n{}", pretty(report)));
    let crashed: Vec<&Value> = threads.iter().filter(|t| t["crashed"] == Value::Bool(true)).collect();
    assert_eq!(crashed.len(), 1, "expected exactly one crashed thread:\n{}", pretty(report));
    crashed[0]
}

fn frames(thread: &Value) -> &Vec<Value> {
    thread["frames"].as_array().unwrap_or_else(|| panic!("thread has no frames[]: {thread}"))
}

fn function(frame: &Value) -> Option<&str> {
    text(frame, "/function")
}

fn module(frame: &Value) -> Option<&str> {
    text(frame, "/module")
}

fn file_name(path: &str) -> &str {
    Path::new(path).file_name().and_then(|n| n.to_str()).unwrap_or(path)
}

/// The index of the first frame at or after `from` whose function is `name`.
/// The first frame at or after `from` in function `name`, counting the parts GCC splits off a
/// function (`main.cold`, `f.part.0`, `f.isra.0`) as that function.
fn find_function(frames: &[Value], from: usize, name: &str) -> Option<usize> {
    frames
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, f)| function(f).is_some_and(|n| n == name || n.split('.').next() == Some(name)))
        .map(|(i, _)| i)
}

fn summary(frames: &[Value]) -> String {
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            format!(
                "  #{i:<3} {:<32} {:<40} {}:{} [{}]",
                function(f).unwrap_or("?"),
                module(f).map(file_name).unwrap_or("?"),
                text(f, "/file").map(file_name).unwrap_or("-"),
                f["line"].as_u64().map(|l| l.to_string()).unwrap_or_default(),
                text(f, "/trust").unwrap_or("?"),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Shape checks that hold for every frame of every thread.
fn check_frame_shapes(report: &Value) {
    for thread in report["threads"].as_array().into_iter().flatten() {
        for (i, f) in frames(thread).iter().enumerate() {
            let kind = must_text(f, "/kind");
            assert!(kind == "native" || kind == "python", "frame {i}: kind {kind:?}");
            if kind == "native" {
                let address = must_text(f, "/address");
                assert!(parse_hex(address).is_some(), "frame {i}: address {address:?} is not 0x-hex");
                let trust = must_text(f, "/trust");
                assert!(
                    ["context", "cfi", "frame_pointer", "scan", "signal"].contains(&trust),
                    "frame {i}: trust {trust:?}"
                );
                if let Some(offset) = text(f, "/module_offset") {
                    assert!(parse_hex(offset).is_some(), "frame {i}: module_offset {offset:?}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One crash, bare and caught.

/// What a fixture crash should look like.
struct Expect<'a> {
    variant: Variant,
    program: &'a str,
    args: &'a [&'a str],
    signal: i32,
    signal_name: &'a str,
    /// `signal.code_name`; None: not checked here.
    code_name: Option<&'a str>,
    /// `classification.kind`; None: not checked here.
    classification: Option<&'a str>,
}

struct Crash {
    report: Value,
    caught: Caught,
    pid: i64,
}

impl Crash {
    fn thread(&self) -> &Value {
        crashed_thread(&self.report)
    }
    fn frames(&self) -> &Vec<Value> {
        frames(self.thread())
    }
    fn context(&self) -> String {
        format!("crashed thread:\n{}\n{}", summary(self.frames()), describe(&self.caught.output))
    }
}

/// Runs the fixture bare and under crashcatch, checks what every crash must show, and returns the
/// report for the fixture's own checks.
fn crash(e: &Expect) -> Crash {
    let exe = fixture(e.variant, e.program);
    let mut cmd: Vec<OsString> = vec![exe.clone().into()];
    cmd.extend(e.args.iter().map(OsString::from));

    let bare = run_bare(&cmd);
    assert_eq!(
        exit_signal(&bare.status),
        Some(e.signal),
        "bare {} should die of {}\n{}",
        e.program,
        e.signal_name,
        describe(&bare)
    );

    let caught = run_caught_in(NO_ARGS, &cmd);
    let out = &caught.output;
    assert_eq!(
        status_pair(&out.status),
        status_pair(&bare.status),
        "crashcatch should exit as the bare run did ({})\n{}",
        bare.status,
        describe(out)
    );
    assert_eq!(
        normalize_numbers(&String::from_utf8_lossy(&out.stdout)),
        normalize_numbers(&String::from_utf8_lossy(&bare.stdout)),
        "stdout under crashcatch differs from the bare run\nbare:\n{}\ncaught:\n{}",
        String::from_utf8_lossy(&bare.stdout),
        describe(out)
    );
    assert_eq!(caught.json_files.len(), 1, "expected one JSON report, found {:?}\n{}", caught.files(), describe(out));
    assert_eq!(caught.text_files.len(), 1, "expected one text report, found {:?}", caught.files());
    let report = caught.report().expect("one JSON report");

    // The JSON is exactly the crate's typed model.
    if let Err(err) = serde_json::from_value::<crashcatch::report::model::Crash>(report.clone()) {
        panic!("the report does not match report::model::Crash: {err}\n{}", pretty(&report));
    }

    let pid = printed_number(&out.stdout, "pid").expect("the fixture prints its pid");
    assert_eq!(report["process"]["pid"].as_i64(), Some(pid), "process.pid\n{}", pretty(&report));
    assert_eq!(must_text(&report, "/signal/name"), e.signal_name, "signal.name");
    assert_eq!(report["signal"]["number"].as_i64(), Some(e.signal as i64), "signal.number");
    if let Some(code) = e.code_name {
        assert_eq!(text(&report, "/signal/code_name"), Some(code), "signal.code_name\n{}", pretty(&report["signal"]));
    }
    if let Some(kind) = e.classification {
        assert_eq!(
            text(&report, "/classification/kind"),
            Some(kind),
            "classification\n{}",
            pretty(&report["classification"])
        );
    }
    check_frame_shapes(&report);

    let threads = report["threads"].as_array().expect("threads[]");
    let thread = crashed_thread(&report);
    assert_eq!(thread["tid"], report["crashed_tid"], "the crashed thread's tid is crashed_tid");
    assert_eq!(threads[0]["crashed"], Value::Bool(true), "the crashed thread comes first");
    let fs = frames(thread);
    assert!(!fs.is_empty(), "the crashed thread has no frames\n{}", pretty(&report));
    assert_eq!(text(&fs[0], "/kind"), Some("native"), "frame 0 is native");
    assert_eq!(text(&fs[0], "/trust"), Some("context"), "frame 0 comes from the thread's registers");

    Crash { report, caught, pid }
}

/// Frame `i` is `name` in the fixture's own executable (named only where a symbol table exists),
/// at `CRASH-LINE`-marked line `marker` of `src` where DWARF exists.
fn check_fixture_frame(c: &Crash, e: &Expect, i: usize, name: &str, src: &str, marker: &str) {
    let f = &c.frames()[i];
    let want_module = format!("/{}/{}", e.variant.dir(), e.program);
    assert!(
        module(f).is_some_and(|m| m.ends_with(&want_module)),
        "frame {i} should be in the fixture executable (*{want_module})\n{}",
        c.context()
    );
    check_named_frame(c, e, i, name, src, marker, false);
}

/// Frame `i` is function `name`, at line `marker` of `src` where DWARF exists. An exported
/// function keeps its name when stripped (.dynsym); others must then have none.
fn check_named_frame(c: &Crash, e: &Expect, i: usize, name: &str, src: &str, marker: &str, exported: bool) {
    let f = &c.frames()[i];
    if e.variant.has_symtab() || exported {
        assert_eq!(function(f), Some(name), "frame {i} function\n{}", c.context());
    } else {
        assert_eq!(function(f), None, "a stripped, unexported function has no name (frame {i})\n{}", c.context());
    }
    if e.variant.has_dwarf() {
        let want_file = file_name(src);
        assert!(
            text(f, "/file").is_some_and(|p| file_name(p) == want_file),
            "frame {i} file should be {want_file}\n{}",
            c.context()
        );
        assert_eq!(f["line"].as_u64(), Some(crash_line(src, marker) as u64), "frame {i} line\n{}", c.context());
    } else {
        assert_eq!(f["line"].as_u64(), None, "no DWARF, so no line (frame {i})\n{}", c.context());
    }
}

/// `main` appears below frame `after` (in variants where it has a name); otherwise some frame
/// below is still in the fixture executable.
fn check_main_below(c: &Crash, e: &Expect, after: usize) {
    let fs = c.frames();
    if e.variant.has_symtab() {
        assert!(
            find_function(fs, after + 1, "main").is_some(),
            "main should appear below frame {after}\n{}",
            c.context()
        );
    } else {
        let want_module = format!("/{}/{}", e.variant.dir(), e.program);
        assert!(
            fs.iter().skip(after + 1).any(|f| module(f).is_some_and(|m| m.ends_with(&want_module))),
            "a caller in {want_module} should appear below frame {after}\n{}",
            c.context()
        );
    }
}

fn check_culprit_is_frame0(c: &Crash) {
    let culprit = &c.report["culprit"]["frame"];
    assert_eq!(
        text(culprit, "/address"),
        text(&c.frames()[0], "/address"),
        "culprit.frame is frame 0\n{}",
        pretty(&c.report["culprit"])
    );
    assert_eq!(function(culprit), function(&c.frames()[0]), "culprit.frame.function");
}

macro_rules! per_variant {
    ($fixture:ident) => {
        mod $fixture {
            use super::*;
            #[test]
            fn fp() {
                super::$fixture(Variant::Fp)
            }
            #[test]
            fn nofp() {
                super::$fixture(Variant::Nofp)
            }
            #[test]
            fn stripped() {
                super::$fixture(Variant::Stripped)
            }
            #[test]
            fn splitdebug() {
                super::$fixture(Variant::Splitdebug)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// The fixtures.

fn null_deref(variant: Variant) {
    let e = Expect {
        variant,
        program: "null_deref",
        args: &[],
        signal: libc::SIGSEGV,
        signal_name: "SIGSEGV",
        code_name: Some("SEGV_MAPERR"),
        classification: Some("null_pointer_dereference"),
    };
    let c = crash(&e);
    assert_eq!(text(&c.report, "/signal/fault_address"), Some("0x0"), "fault_address");
    assert_eq!(c.report["crashed_tid"].as_i64(), Some(c.pid), "single-threaded: crashed_tid is the pid");
    assert_eq!(c.thread()["main"], Value::Bool(true), "the crashed thread is the main thread");

    let f0 = &c.frames()[0];
    assert!(
        module(f0).is_some_and(|m| m.ends_with(&format!("/{}/libccfix.so", variant.dir()))),
        "frame 0 should be in this variant's libccfix.so\n{}",
        c.context()
    );
    check_named_frame(&c, &e, 0, "cc_fixture_crash_null", "ccfix.c", "/* CRASH-LINE */", true);
    check_culprit_is_frame0(&c);
    assert_eq!(text(&c.report, "/culprit/frame/function"), Some("cc_fixture_crash_null"));

    if variant.has_symtab() {
        let job =
            find_function(c.frames(), 1, "run_job").unwrap_or_else(|| panic!("run_job calls it\n{}", c.context()));
        check_main_below(&c, &e, job);
    } else {
        check_main_below(&c, &e, 0);
    }
}
per_variant!(null_deref);

fn abort_called(variant: Variant) {
    let e = Expect {
        variant,
        program: "abort_assert",
        args: &["abort"],
        signal: libc::SIGABRT,
        signal_name: "SIGABRT",
        code_name: Some("SI_TKILL"),
        classification: Some("abort"),
    };
    let c = crash(&e);
    check_abort_stack(&c, &e, "do_abort", "CRASH-LINE abort");
}
per_variant!(abort_called);

fn assert_failed(variant: Variant) {
    let e = Expect {
        variant,
        program: "abort_assert",
        args: &["assert"],
        signal: libc::SIGABRT,
        signal_name: "SIGABRT",
        code_name: Some("SI_TKILL"),
        classification: Some("assertion_failed"),
    };
    let c = crash(&e);
    let message = text(&c.report, "/classification/message").unwrap_or_default();
    assert!(
        message.contains("config value must be 42"),
        "classification.message should carry the assertion text, got {message:?}"
    );
    let stderr = String::from_utf8_lossy(&c.caught.output.stderr);
    assert!(stderr.contains("Assertion"), "the program's own assertion message still reaches stderr\n{stderr}");
    check_abort_stack(&c, &e, "check_config", "CRASH-LINE assert");
}
per_variant!(assert_failed);

/// abort() raises SIGABRT inside libc: frame 0 is libc, abort is on the stack, and the fixture's
/// function that called it is the culprit's first frame outside the system libraries.
fn check_abort_stack(c: &Crash, e: &Expect, caller: &str, marker: &str) {
    let fs = c.frames();
    assert!(
        module(&fs[0]).is_some_and(|m| file_name(m).starts_with("libc.so")),
        "abort stops in libc\n{}",
        c.context()
    );
    let abort_at = fs
        .iter()
        .position(|f| function(f).is_some_and(|n| n.contains("abort")))
        .unwrap_or_else(|| panic!("abort() should be on the stack\n{}", c.context()));
    let want_module = format!("/{}/{}", e.variant.dir(), e.program);
    let at = fs
        .iter()
        .enumerate()
        .skip(abort_at + 1)
        .find(|(_, f)| module(f).is_some_and(|m| m.ends_with(&want_module)))
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("a frame of the fixture should call abort\n{}", c.context()));
    check_fixture_frame(c, e, at, caller, "abort_assert.c", marker);
    check_main_below(c, e, at);

    check_culprit_is_frame0(c);
    let outside = &c.report["culprit"]["first_outside_system"];
    assert_eq!(
        text(outside, "/address"),
        text(&fs[at], "/address"),
        "culprit.first_outside_system\n{}",
        pretty(&c.report["culprit"])
    );
}

fn sigbus(variant: Variant) {
    let e = Expect {
        variant,
        program: "sigbus",
        args: &[],
        signal: libc::SIGBUS,
        signal_name: "SIGBUS",
        code_name: Some("BUS_ADRERR"),
        classification: Some("bus_error"),
    };
    let c = crash(&e);
    let touched =
        printed_address(&c.caught.output.stdout, "address").expect("the fixture prints the address it touches");
    assert_eq!(
        text(&c.report, "/signal/fault_address").and_then(parse_hex),
        Some(touched),
        "fault_address is the page past EOF"
    );
    check_fixture_frame(&c, &e, 0, "touch_past_eof", "sigbus.c", "/* CRASH-LINE */");
    check_culprit_is_frame0(&c);
    check_main_below(&c, &e, 0);
}
per_variant!(sigbus);

fn sigfpe(variant: Variant) {
    let e = Expect {
        variant,
        program: "sigfpe",
        args: &[],
        signal: libc::SIGFPE,
        signal_name: "SIGFPE",
        code_name: Some("FPE_INTDIV"),
        classification: Some("division_by_zero"),
    };
    let c = crash(&e);
    // For SIGFPE the kernel reports the faulting instruction as the address.
    assert_eq!(
        text(&c.report, "/signal/fault_address"),
        text(&c.frames()[0], "/address"),
        "fault_address is frame 0's pc\n{}",
        c.context()
    );
    check_fixture_frame(&c, &e, 0, "divide", "sigfpe.c", "/* CRASH-LINE */");
    check_culprit_is_frame0(&c);
    check_main_below(&c, &e, 0);
}
per_variant!(sigfpe);

fn sigill(variant: Variant) {
    let e = Expect {
        variant,
        program: "sigill",
        args: &[],
        signal: libc::SIGILL,
        signal_name: "SIGILL",
        code_name: Some("ILL_ILLOPN"),
        classification: Some("trap"),
    };
    let c = crash(&e);
    assert_eq!(
        text(&c.report, "/signal/fault_address"),
        text(&c.frames()[0], "/address"),
        "fault_address is the trapping instruction\n{}",
        c.context()
    );
    check_fixture_frame(&c, &e, 0, "trap_here", "sigill.c", "/* CRASH-LINE */");
    check_culprit_is_frame0(&c);
    check_main_below(&c, &e, 0);
}
per_variant!(sigill);

/// seccomp traps the system call inside libc's syscall(): frame 0 is libc, and the fixture's
/// function is the culprit's first frame outside the system libraries.
fn sigsys(variant: Variant) {
    let e = Expect {
        variant,
        program: "sigsys",
        args: &[],
        signal: libc::SIGSYS,
        signal_name: "SIGSYS",
        code_name: Some("SYS_SECCOMP"),
        classification: Some("seccomp"),
    };
    let c = crash(&e);
    let summary = text(&c.report, "/classification/summary").unwrap_or_default();
    assert!(summary.contains(&format!("system call {}", libc::SYS_getppid)), "{summary}");
    let fs = c.frames();
    assert!(
        module(&fs[0]).is_some_and(|m| file_name(m).starts_with("libc.so")),
        "the trapped syscall is in libc\n{}",
        c.context()
    );
    let at = find_function(fs, 1, "forbidden_call")
        .or_else(|| (!e.variant.has_symtab()).then_some(1))
        .unwrap_or_else(|| panic!("forbidden_call should be on the stack\n{}", c.context()));
    if e.variant.has_symtab() {
        check_fixture_frame(&c, &e, at, "forbidden_call", "sigsys.c", "/* CRASH-LINE */");
        assert_eq!(
            text(&c.report["culprit"]["first_outside_system"], "/function"),
            Some("forbidden_call"),
            "culprit.first_outside_system\n{}",
            pretty(&c.report["culprit"])
        );
    }
    check_main_below(&c, &e, at);
}
per_variant!(sigsys);

/// Most frames a report may list for one thread without saying it left some out.
const MAX_UNELIDED_FRAMES: usize = 1024;

fn recursion(variant: Variant) {
    let e = Expect {
        variant,
        program: "recursion",
        args: &[],
        signal: libc::SIGSEGV,
        signal_name: "SIGSEGV",
        code_name: None,
        classification: Some("stack_overflow"),
    };
    // Reaching here means crashcatch finished within the timeout despite ~30,000 frames.
    let c = crash(&e);
    let code = text(&c.report, "/signal/code_name");
    assert!(matches!(code, Some("SEGV_MAPERR" | "SEGV_ACCERR")), "signal.code_name {code:?}");
    let thread = c.thread();
    let n = frames(thread).len();
    assert!(
        !thread["elided"].is_null() || n <= MAX_UNELIDED_FRAMES,
        "{n} frames and no `elided`: a deep stack must be cut short"
    );
    if let Some(elided) = thread.get("elided").filter(|v| !v.is_null()) {
        assert!(elided["count"].as_u64().is_some_and(|n| n > 0), "elided.count: {elided}");
        assert!(elided["at"].as_u64().is_some_and(|at| (at as usize) < n), "elided.at within frames: {elided}");
    }
    let f0 = &c.frames()[0];
    assert!(
        module(f0).is_some_and(|m| m.ends_with(&format!("/{}/recursion", variant.dir()))),
        "the overflow happens in the fixture\n{}",
        c.context()
    );
    if variant.has_symtab() {
        assert_eq!(function(f0), Some("recurse"), "frame 0\n{}", c.context());
        assert_eq!(function(&c.frames()[1]), Some("recurse"), "frame 1\n{}", c.context());
    }
}
per_variant!(recursion);

fn thread_crash(variant: Variant) {
    let e = Expect {
        variant,
        program: "thread_crash",
        args: &[],
        signal: libc::SIGSEGV,
        signal_name: "SIGSEGV",
        code_name: Some("SEGV_MAPERR"),
        classification: Some("null_pointer_dereference"),
    };
    let c = crash(&e);
    assert_eq!(text(&c.report, "/signal/fault_address"), Some("0x0"), "fault_address");
    let worker = printed_number(&c.caught.output.stdout, "tid").expect("the worker prints its tid");
    assert_ne!(worker, c.pid);
    assert_eq!(c.report["crashed_tid"].as_i64(), Some(worker), "crashed_tid is the worker's");
    let thread = c.thread();
    assert_eq!(text(thread, "/name"), Some("worker"), "the crashed thread's name");
    assert_eq!(thread["main"], Value::Bool(false), "the worker is not the main thread");

    check_fixture_frame(&c, &e, 0, "worker_crash", "thread_crash.c", "/* CRASH-LINE */");
    check_culprit_is_frame0(&c);
    if variant.has_symtab() {
        assert!(find_function(c.frames(), 1, "worker_main").is_some(), "worker_main calls it\n{}", c.context());
    }

    let threads = c.report["threads"].as_array().unwrap();
    let main = threads
        .iter()
        .find(|t| t["main"] == Value::Bool(true))
        .unwrap_or_else(|| panic!("the main thread is in the report\n{}", pretty(&c.report)));
    assert_eq!(main["tid"].as_i64(), Some(c.pid), "the main thread's tid is the pid");
    assert_eq!(main["crashed"], Value::Bool(false));
    if variant.has_symtab() {
        assert!(
            find_function(frames(main), 0, "main").is_some(),
            "the main thread (waiting in pthread_join) shows main\n{}",
            summary(frames(main))
        );
    }
}
per_variant!(thread_crash);

fn handled_recover(variant: Variant) {
    let exe = fixture(variant, "handled_recover");
    let bare = run_bare(&[&exe]);
    assert!(bare.status.success(), "bare run\n{}", describe(&bare));
    let caught = run_caught_in(NO_ARGS, &[&exe]);
    let out = &caught.output;
    assert_eq!(out.status.code(), Some(0), "a handled fault is no crash: exit 0\n{}", describe(out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("recovered"), "stdout\n{}", describe(out));
    assert_eq!(normalize_numbers(&stdout), normalize_numbers(&String::from_utf8_lossy(&bare.stdout)));
    assert!(caught.files().is_empty(), "no report for a handled fault, found {:?}", caught.files());
}
per_variant!(handled_recover);

fn handled_reraise(variant: Variant) {
    let e = Expect {
        variant,
        program: "handled_reraise",
        args: &[],
        signal: libc::SIGSEGV,
        signal_name: "SIGSEGV",
        code_name: None,
        // Whether the report describes the first fault or the re-raise is the supervisor's
        // choice; either way it is one report of a SIGSEGV with fault_here on the stack.
        classification: None,
    };
    // crash() checks there is exactly one report and the exit status.
    let c = crash(&e);
    let stderr = String::from_utf8_lossy(&c.caught.output.stderr);
    assert!(stderr.contains("handled_reraise: caught SIGSEGV"), "the handler still runs\n{stderr}");
    if variant.has_symtab() {
        assert!(
            find_function(c.frames(), 0, "fault_here").is_some(),
            "the faulting function is on the crashed stack\n{}",
            c.context()
        );
    }
}
per_variant!(handled_reraise);

// ---------------------------------------------------------------------------------------------
// A Python interpreter crashing in libc.

#[test]
fn python_ctypes_string_at_null() {
    let pythons = pythons();
    assert!(!pythons.is_empty(), "no Python interpreter found");
    let mut failures = Vec::new();
    for python in &pythons {
        if let Err(why) = std::panic::catch_unwind(|| python_strlen_null(python)) {
            let why = why
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| why.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {why}", python.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} interpreters failed:\n{}",
        failures.len(),
        pythons.len(),
        failures.join("\n\n")
    );
}

/// Runs `python -c script` bare and under crashcatch: both die of SIGSEGV with the same status,
/// and crashcatch writes a report (returned with crashcatch's output).
fn python_segfault(python: &Path, script: &str) -> (serde_json::Value, std::process::Output) {
    let cmd: Vec<OsString> = vec![python.into(), "-c".into(), script.into()];
    let bare = run_bare(&cmd);
    assert_eq!(exit_signal(&bare.status), Some(libc::SIGSEGV), "bare run\n{}", describe(&bare));
    let caught = run_caught_in(NO_ARGS, &cmd);
    let out = &caught.output;
    assert_eq!(status_pair(&out.status), status_pair(&bare.status), "exit status\n{}", describe(out));
    let report = caught.report().unwrap_or_else(|| panic!("no report\n{}", describe(out)));
    (report, caught.output)
}

fn python_strlen_null(python: &Path) {
    let (report, out) = python_segfault(python, "import ctypes; ctypes.string_at(0)");
    let out = &out;
    assert_eq!(text(&report, "/signal/name"), Some("SIGSEGV"));
    let fs = frames(crashed_thread(&report));
    let context = format!("crashed thread:\n{}\n{}", summary(fs), describe(out));
    assert!(module(&fs[0]).is_some_and(|m| file_name(m).starts_with("libc.so")), "frame 0 is in libc\n{context}");
    assert!(function(&fs[0]).is_some_and(|f| f.contains("strlen")), "frame 0 is strlen\n{context}");
    assert!(fs.iter().any(|f| module(f).is_some_and(|m| m.contains("_ctypes"))), "_ctypes called it\n{context}");
}

/// A read through a non-canonical pointer (pandas issue 63167's pattern: a table indexed far past
/// its end) is a general protection fault: SIGSEGV with SI_KERNEL and no address (si_addr 0),
/// which must not be called a NULL pointer dereference.
#[test]
fn python_non_canonical_read_is_a_general_protection_fault() {
    if !cfg!(target_arch = "x86_64") {
        skip("non-canonical read", "x86-64's non-canonical hole is an ordinary address elsewhere");
        return;
    }
    let python = venv_python();
    let (report, _) = python_segfault(&python, "import ctypes; ctypes.string_at(0x800000000000, 8)");
    assert_eq!(text(&report, "/signal/code_name"), Some("SI_KERNEL"), "{}", pretty(&report["signal"]));
    assert_eq!(
        text(&report, "/classification/kind"),
        Some("general_protection"),
        "{}",
        pretty(&report["classification"])
    );
}

// ---------------------------------------------------------------------------------------------
// Commands crashcatch cannot run.

fn stderr_lines(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

#[test]
fn missing_command_exits_127() {
    let caught = run_caught_in(NO_ARGS, &["/nonexistent/cmd"]);
    let out = &caught.output;
    assert_eq!(out.status.code(), Some(127), "{}", describe(out));
    let lines = stderr_lines(out);
    assert_eq!(lines.len(), 1, "one line on stderr\n{}", describe(out));
    assert!(lines[0].contains("/nonexistent/cmd"), "it names the command: {:?}", lines[0]);
    assert!(caught.files().is_empty(), "no report: {:?}", caught.files());
}

#[test]
fn non_executable_command_exits_126() {
    let dir = out_dir();
    let script = dir.path().join("not-executable");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let caught = run_caught_in(NO_ARGS, &[&script]);
    let out = &caught.output;
    assert_eq!(out.status.code(), Some(126), "{}", describe(out));
    let lines = stderr_lines(out);
    assert_eq!(lines.len(), 1, "one line on stderr\n{}", describe(out));
    assert!(caught.files().is_empty(), "no report: {:?}", caught.files());
}

#[test]
fn no_command_exits_2() {
    let out = run(std::process::Command::new(bin()));
    assert_eq!(out.status.code(), Some(2), "usage error\n{}", describe(&out));
    assert!(!out.stderr.is_empty(), "it says why on stderr");
}

// ---------------------------------------------------------------------------------------------
// The fixtures themselves, without crashcatch: these hold whatever state the supervisor is in.

/// Every fixture, bare, in every variant: the hello line first, then the expected end.
#[test]
fn fixtures_behave_bare() {
    let cases: &[(&str, &[&str], Option<i32>)] = &[
        ("null_deref", &[], Some(libc::SIGSEGV)),
        ("abort_assert", &["abort"], Some(libc::SIGABRT)),
        ("abort_assert", &["assert"], Some(libc::SIGABRT)),
        ("sigbus", &[], Some(libc::SIGBUS)),
        ("sigfpe", &[], Some(libc::SIGFPE)),
        ("recursion", &[], Some(libc::SIGSEGV)),
        ("thread_crash", &[], Some(libc::SIGSEGV)),
        ("handled_recover", &[], None),
        ("handled_reraise", &[], Some(libc::SIGSEGV)),
    ];
    for variant in Variant::ALL {
        for (program, args, signal) in cases {
            let mut cmd: Vec<OsString> = vec![fixture(variant, program).into()];
            cmd.extend(args.iter().map(OsString::from));
            let out = run_bare(&cmd);
            let what = format!("{}/{program} {args:?}", variant.dir());
            let first = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_string();
            let pid = printed_number(&out.stdout, "pid");
            assert_eq!(
                first,
                format!("fixture {program} pid {}", pid.unwrap_or(-1)),
                "{what}: first line\n{}",
                describe(&out)
            );
            match signal {
                Some(sig) => assert_eq!(
                    exit_signal(&out.status),
                    Some(*sig),
                    "{what} should die of {}\n{}",
                    signal_name(*sig),
                    describe(&out)
                ),
                None => {
                    assert_eq!(out.status.code(), Some(0), "{what}\n{}", describe(&out));
                    assert!(String::from_utf8_lossy(&out.stdout).contains("recovered"), "{what}\n{}", describe(&out));
                }
            }
        }
    }
}

/// The variants differ in what the files hold: symbol tables, DWARF, debug links.
#[test]
fn fixture_variants_are_built_as_described() {
    use object::{Object, ObjectSymbol};
    let parse = |path: &Path| std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    for variant in Variant::ALL {
        for name in ["null_deref", "libccfix.so", "sigfpe"] {
            let path = fixture(variant, name);
            let data = parse(&path);
            let file = object::File::parse(&*data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let what = path.display();
            let has_symtab = file.section_by_name(".symtab").is_some();
            let has_dwarf = file.section_by_name(".debug_info").is_some();
            let link = file.gnu_debuglink().unwrap_or_else(|e| panic!("{what}: {e}"));
            match variant {
                Variant::Fp | Variant::Nofp => {
                    assert!(has_symtab && has_dwarf, "{what}: symbols and DWARF");
                    assert!(link.is_none(), "{what}: no debug link");
                }
                Variant::Stripped => {
                    assert!(!has_symtab && !has_dwarf, "{what}: no .symtab, no DWARF");
                    assert!(link.is_none(), "{what}: no debug link");
                }
                Variant::Splitdebug => {
                    assert!(has_symtab && !has_dwarf, "{what}: symbols but no DWARF of its own");
                    let (link, _crc) = link.unwrap_or_else(|| panic!("{what}: a .gnu_debuglink"));
                    let link = String::from_utf8_lossy(link).into_owned();
                    assert_eq!(link, format!("{name}.debug"), "{what}: the link names the file beside it");
                    let debug = parse(&path.with_file_name(&link));
                    let debug = object::File::parse(&*debug).unwrap_or_else(|e| panic!("{link}: {e}"));
                    assert!(debug.section_by_name(".debug_info").is_some(), "{link} holds the DWARF");
                }
            }
            if name == "libccfix.so" {
                assert!(
                    file.dynamic_symbols().any(|s| s.name() == Ok("cc_fixture_crash_null")),
                    "{what}: cc_fixture_crash_null is exported"
                );
            }
        }
    }
}
