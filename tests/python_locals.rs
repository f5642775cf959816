//! Arguments and locals, Python thread names, waiting threads and the collector's state, on
//! every interpreter here (tests/common/interpreters.rs), from real crashes:
//!
//! - a NULL passed from Python (`ctypes.string_at(None)`): the default report names the
//!   crashed frame's arguments in its header (`parse_header(raw=None, limit=16, ...)`), shows
//!   no string's contents anywhere, and names the threads as `threading` does;
//! - the same crash with `--locals`: every frame's arguments and locals, by value;
//! - hostile locals (a 50 MB string, a list nested 100,000 deep, cycles, a 200,000-item dict,
//!   a list whose size lies, objects whose type pointer lies): the report is still made, every
//!   value bounded, the rest of it intact.

// Tests open, write and print as they need: the doors are crashcatch's own.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::path::Path;

use common::interpreters::{all, Interp};
use common::*;
use serde_json::Value;

const NONE_ARG: &str = r#"import ctypes, sys, threading
started = threading.Event()


def poll():
    started.set()
    threading.Event().wait(600)


t = threading.Thread(target=poll, name="kafka-poller")
t.daemon = True
t.start()
started.wait()


class Parser(object):
    pass


def parse_header(raw, limit, name="hdr", *rest, **kw):
    total = limit * 2
    data = {"a": 1, "b": [1, 2]}
    return ctypes.string_at(raw)


def main():
    p = Parser()
    word = "secret-token"
    return parse_header(None, 16, "x", 1.5, flag=True)


main()
"#;

const HOSTILE: &str = r#"import ctypes, gc, sys
gc.disable()


class Foo(object):
    pass


def hostile():
    huge = "x" * (50 * 1000 * 1000)
    deep = []
    cur = deep
    for _ in range(100000):
        nxt = []
        cur.append(nxt)
        cur = nxt
    cyc = []
    cyc.append(cyc)
    d = {}
    d["self"] = d
    big = dict.fromkeys(range(200000))
    liar = [1, 2, 3]
    ctypes.c_ssize_t.from_address(id(liar) + 16).value = 1 << 60
    garbage = Foo()
    ctypes.c_void_p.from_address(id(garbage) + 8).value = 0xdead0000
    selfish = Foo()
    ctypes.c_void_p.from_address(id(selfish) + 8).value = id(selfish)
    ctypes.string_at(0)


hostile()
"#;

fn run_on(i: &Interp, script: &Path, extra: &[&str]) -> (std::process::Output, Value, String) {
    let mut args: Vec<String> = i.args.clone();
    args.extend(extra.iter().map(|s| s.to_string()));
    let caught = run_caught_in(&args, &[i.python.as_os_str(), script.as_os_str()]);
    let report = caught.report().unwrap_or_else(|| panic!("{}: no report\n{}", i.label, describe(&caught.output)));
    let text = caught.text_files.first().map(|p| std::fs::read_to_string(p).unwrap()).unwrap_or_default();
    (caught.output, report, text)
}

fn crashed_python_frames(r: &Value) -> Vec<&Value> {
    let t = r["threads"].as_array().unwrap().iter().find(|t| t["crashed"] == true).unwrap();
    t["frames"].as_array().unwrap().iter().filter(|f| f["kind"] == "python").collect()
}

fn local<'a>(frame: &'a Value, name: &str) -> Option<&'a Value> {
    frame["locals"].as_array()?.iter().find(|l| l["name"] == name)
}

fn short(f: &str) -> &str {
    f.rsplit('.').next().unwrap_or(f)
}

/// Runs `check` on every interpreter, collecting the failures.
fn on_every_interpreter(what: &str, check: impl Fn(&Interp, &Path) -> Result<(), String>) {
    let found = all();
    assert!(!found.interps.is_empty(), "no Python interpreter found");
    for m in &found.missing {
        skip(&format!("{what} on {m}"), "interpreter missing");
    }
    let mut failures = Vec::new();
    for i in &found.interps {
        let dir = out_dir();
        if let Err(e) = check(i, dir.path()) {
            failures.push(format!("== {what} on {}:\n{e}", i.label));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_crashed_frames_arguments_are_in_the_header_and_no_string_leaks() {
    on_every_interpreter("default arguments", |i, dir| {
        let script = dir.join("none_arg.py");
        std::fs::write(&script, NONE_ARG).unwrap();
        let (_, r, text) = run_on(i, &script, &[]);
        let user = &r["python_user_frame"];
        if short(user["function"].as_str().unwrap_or("")) != "parse_header" {
            return Err(format!("user frame {user}"));
        }
        let want = [
            ("raw", "NoneType", "None"),
            ("limit", "int", "16"),
            ("name", "str", "<str, 1 character>"),
            ("rest", "tuple", "<tuple, 1 item>"),
            ("kw", "dict", "<dict, 1 item>"),
        ];
        let got: Vec<(String, String, String, String)> = user["locals"]
            .as_array()
            .ok_or_else(|| format!("no locals in the user frame {user}"))?
            .iter()
            .map(|l| {
                let s = |k: &str| l[k].as_str().unwrap_or("").to_string();
                (s("name"), s("type"), s("repr"), s("kind"))
            })
            .collect();
        let want: Vec<(String, String, String, String)> = want
            .iter()
            .map(|(n, t, v)| {
                // 2.7 names its str `str` and has no `str` of characters: a str is bytes there.
                let (t, v) = match (i.py2(), *n) {
                    (true, "name") => ("str", "<str, 1 byte>"),
                    _ => (*t, *v),
                };
                (n.to_string(), t.to_string(), v.to_string(), "argument".to_string())
            })
            .collect();
        if got != want {
            return Err(format!("arguments {got:?}\nwant {want:?}"));
        }
        if !text.contains("in parse_header(raw=None, limit=16, name=<str, 1 ") {
            return Err(format!("the header does not show the arguments:\n{text}"));
        }
        let json = r.to_string();
        if json.contains("secret-token") || text.contains("secret-token") {
            return Err("a string's contents reached the default report".into());
        }
        // Only the arguments, only of the crashed thread's frames up to the user's.
        for f in crashed_python_frames(&r) {
            if f["locals"].as_array().is_some_and(|l| l.iter().any(|l| l["kind"] != "argument")) {
                return Err(format!("a local beyond the arguments by default: {f}"));
            }
        }
        check_threads(i, &r)
    });
}

/// Thread names as `threading` has them, the poller waiting, the collector idle.
fn check_threads(i: &Interp, r: &Value) -> Result<(), String> {
    let interp = &r["python"]["interpreters"][0];
    if interp["gc_collecting"] != false {
        return Err(format!("gc_collecting {}", interp["gc_collecting"]));
    }
    let threads = interp["threads"].as_array().ok_or("no Python threads")?;
    let by_name = |n: &str| threads.iter().find(|t| t["python_name"] == n);
    let main = by_name("MainThread").ok_or_else(|| format!("no MainThread: {:?}", names(threads)))?;
    let poller = by_name("kafka-poller").ok_or_else(|| format!("no kafka-poller: {:?}", names(threads)))?;
    if main["tid"] != r["crashed_tid"] || main["idle"] != false {
        return Err(format!("MainThread tid {} idle {}", main["tid"], main["idle"]));
    }
    // x86_64 tells a waiting thread by its registers.
    if cfg!(target_arch = "x86_64") && poller["idle"] != true {
        return Err(format!("{}: the poller waits in Event.wait but idle is {}", i.label, poller["idle"]));
    }
    Ok(())
}

fn names(threads: &[Value]) -> Vec<String> {
    threads.iter().map(|t| t["python_name"].to_string()).collect()
}

#[test]
fn with_locals_every_frame_shows_its_variables() {
    on_every_interpreter("--locals", |i, dir| {
        let script = dir.join("none_arg.py");
        std::fs::write(&script, NONE_ARG).unwrap();
        let (_, r, text) = run_on(i, &script, &["--locals"]);
        let frames = crashed_python_frames(&r);
        let by_fn = |n: &str| frames.iter().find(|f| short(f["function"].as_str().unwrap_or("")) == n).copied();
        let ph = by_fn("parse_header").ok_or("no parse_header frame")?;
        let main = by_fn("main").ok_or("no main frame")?;
        let repr = |f: &Value, n: &str| local(f, n).map(|l| l["repr"].as_str().unwrap_or("").to_string());
        let expect = [
            (ph, "raw", "None"),
            (ph, "limit", "16"),
            (ph, "name", "'x'"),
            (ph, "rest", "(1.5,)"),
            (ph, "kw", "{'flag': True}"),
            (ph, "total", "32"),
            (ph, "data", "{'a': 1, 'b': [1, 2]}"),
            (main, "word", "'secret-token'"),
        ];
        for (f, n, want) in expect {
            if repr(f, n).as_deref() != Some(want) {
                return Err(format!("{n} = {:?}, want {want:?}: {}", repr(f, n), f["locals"]));
            }
        }
        let p = local(main, "p").ok_or("no p")?;
        if p["type"] != "Parser" || !p["repr"].as_str().unwrap_or("").starts_with("<Parser object at 0x") {
            return Err(format!("p = {p}"));
        }
        // The sort of each: arguments, then locals.
        if local(ph, "total").map(|l| l["kind"].clone()) != Some("local".into()) {
            return Err(format!("total is not a local: {}", ph["locals"]));
        }
        // Every frame but the module's and ctypes' own has its variables.
        for f in &frames {
            let name = short(f["function"].as_str().unwrap_or(""));
            if name != "<module>" && f["locals"].as_array().map_or(true, |l| l.is_empty()) {
                return Err(format!("{name} has no locals: {f}"));
            }
        }
        if !text.contains("local word = 'secret-token'") {
            return Err(format!("the text does not show the locals:\n{text}"));
        }
        check_threads(i, &r)
    });
}

#[test]
fn hostile_objects_do_not_break_the_report() {
    on_every_interpreter("hostile locals", |i, dir| {
        let script = dir.join("hostile.py");
        std::fs::write(&script, HOSTILE).unwrap();
        let (out, r, text) = run_on(i, &script, &["--locals"]);
        if exit_signal(&out.status) != Some(libc::SIGSEGV) {
            return Err(format!("did not die of SIGSEGV: {}", describe(&out)));
        }
        let frames = crashed_python_frames(&r);
        let f = frames
            .iter()
            .find(|f| short(f["function"].as_str().unwrap_or("")) == "hostile")
            .ok_or_else(|| format!("no hostile frame: {r}"))?;
        let get = |n: &str| local(f, n).cloned().ok_or_else(|| format!("no {n}: {}", f["locals"]));
        let huge = get("huge")?;
        let huge_repr = huge["repr"].as_str().unwrap_or("");
        if huge["length"] != 50_000_000 || !huge_repr.ends_with("...") || huge_repr.len() > 200 {
            return Err(format!("huge = {huge}"));
        }
        for n in ["deep", "cyc"] {
            let v = get(n)?;
            if !v["repr"].as_str().unwrap_or("").contains("[...]") {
                return Err(format!("{n} = {v}"));
            }
        }
        let d = get("d")?;
        if !d["repr"].as_str().unwrap_or("").contains("{...}") {
            return Err(format!("d = {d}"));
        }
        let big = get("big")?;
        if big["length"] != 200_000 || !big["repr"].as_str().unwrap_or("").ends_with(", ...}") {
            return Err(format!("big = {big}"));
        }
        let liar = get("liar")?;
        if !liar["repr"].as_str().unwrap_or("").starts_with("<unreadable") {
            return Err(format!("liar = {liar}"));
        }
        let garbage = get("garbage")?;
        if garbage["type"] != "?" {
            return Err(format!("garbage = {garbage}"));
        }
        get("selfish")?;
        // The rest of the report is whole.
        if r["classification"]["kind"] != "null_pointer_dereference" || !text.contains("hostile") {
            return Err(format!("the report lost its other parts: {}", r["classification"]));
        }
        Ok(())
    });
}
