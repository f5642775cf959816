//! A stack overflow in a recursion through C (`__getitem__` called back through
//! `operator.getitem`) faults wherever the guard page happens to be: in the eval loop's own
//! prologue, in the slot wrapper, in the vectorcall glue, in an inlined helper. The faulting
//! function crashcatch names must be gdb's frame #0 in every case. The stack layout is moved
//! by padding the environment, with ASLR off (`setarch -R`), so that each run faults at a
//! known place; gdb reads the core crashcatch wrote of the very same crash (`--core`), so both
//! look at one fault.

// Tests open, write and print as they need: the doors are crashcatch's own.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

const SCRIPT: &str = "import sys, operator\n\
sys.setrecursionlimit(10 ** 8)\n\
class A:\n    def __getitem__(self, i):\n        return operator.getitem(self, i)\n\
A()[0]\n";

/// Environment padding, in bytes: each value moves the stack's start by that much.
const PADS: &[usize] = &[0, 64, 128, 256, 384, 512, 768, 1024, 1280, 1536, 1792, 2048];

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(tool)).find(|p| p.is_file())
}

/// The function name without compiler clone suffixes (gdb names DWARF's `vectorcall_method`
/// where the symbol is `vectorcall_method.constprop.0`).
fn base(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// The function of gdb's frame #0 (`#0  0x... in f (args) at file:line` or `#0  f (args) ...`).
fn gdb_frame0(python: &Path, core: &Path) -> Option<String> {
    let out = run({
        let mut c = Command::new("gdb");
        c.args(["-batch", "-nx", "-ex", "bt 1"]).arg(python).arg(core);
        c
    });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find(|l| l.starts_with("#0"))?;
    let rest = line.trim_start_matches("#0").trim_start();
    let rest = match rest.split_once(" in ") {
        Some((addr, f)) if addr.starts_with("0x") => f,
        _ => rest,
    };
    Some(rest.split([' ', '(']).next()?.to_string())
}

/// The function crashcatch says faulted: the innermost inlined one when there is one, as gdb.
fn culprit(r: &Value) -> String {
    let f = &r["culprit"]["frame"];
    let name = f["inlined"][0]["function"].as_str().or(f["function"].as_str()).unwrap_or("??");
    base(name).to_string()
}

#[test]
fn the_function_that_overflowed_is_gdbs_frame_zero_in_every_layout() {
    let python = Path::new(&std::env::var("HOME").unwrap_or_default()).join(".pyenv/versions/3.11.7/bin/python3.11");
    if !python.exists() {
        skip("eval-loop overflow layouts", &format!("{} is missing", python.display()));
        return;
    }
    for tool in ["gdb", "setarch"] {
        if which(tool).is_none() {
            skip("eval-loop overflow layouts", &format!("{tool} is not installed"));
            return;
        }
    }
    let dir = out_dir();
    let script = dir.path().join("overflow.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let mut seen = Vec::new();
    for &pad in PADS {
        let reports = out_dir();
        let mut c = Command::new("setarch");
        c.arg("-R").arg(bin()).arg("--core").arg("--output-dir").arg(reports.path()).args(["--format", "json", "--"]);
        c.arg(&python).arg(&script);
        c.env_clear().env("PATH", "/usr/bin:/bin").env("PAD", "x".repeat(pad));
        let out = run(c);
        let files: Vec<PathBuf> = std::fs::read_dir(reports.path()).unwrap().flatten().map(|e| e.path()).collect();
        let json = files.iter().find(|p| p.extension().is_some_and(|e| e == "json"));
        let core = files.iter().find(|p| p.extension().is_some_and(|e| e == "core"));
        let (Some(json), Some(core)) = (json, core) else {
            panic!("pad {pad}: no report or core in {files:?}\n{}", describe(&out))
        };
        let r: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
        assert_eq!(r["classification"]["kind"], "stack_overflow", "pad {pad}: {}", r["classification"]);
        let want = gdb_frame0(&python, core).unwrap_or_else(|| panic!("pad {pad}: gdb gave no frame #0"));
        let got = culprit(&r);
        assert_eq!(got, want, "pad {pad}: crashcatch names {got}, gdb's frame #0 is {want}");
        seen.push(want);
    }
    // The layouts must have put the fault in the eval loop itself at least once, and elsewhere
    // too: otherwise this test did not test what it is for.
    assert!(seen.iter().any(|f| f == "_PyEval_EvalFrameDefault"), "no layout faulted in the eval loop: {seen:?}");
    assert!(seen.iter().any(|f| f != "_PyEval_EvalFrameDefault"), "every layout faulted in the eval loop: {seen:?}");
}
