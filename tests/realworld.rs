//! Real crashes of real packages, pinned to the versions that crash, compared with ground truth
//! taken from the same crash by the tools people trust: gdb's frame #0 (the innermost inlined
//! function counts) and the library it is in, read from the core crashcatch wrote of that very
//! crash (`--core`), and faulthandler's innermost Python frame from a bare run of the same
//! script. `make test-realworld` runs it (`cargo test --test realworld -- --ignored`): it
//! installs the pinned wheels from PyPI into venvs under target/realworld (once), so it is not
//! part of `make test`. Each case prints a line; the last line is `realworld: N passed, M failed`.
//!
//! The cases (see docs/peers-and-realworld.md):
//! - CPython: a C-level recursion (`__getitem__` through `operator.getitem`) past a raised
//!   recursion limit overflows the stack wherever the guard page falls: in the eval loop, the
//!   slot wrapper, an inlined helper (run over several stack layouts, ASLR off);
//! - CPython: `json.dumps` and `pickle.dumps` of a deeply nested list with a raised recursion
//!   limit overflow the C stack inside `_json` and `_pickle` (the C accelerators recurse);
//! - numpy 1.26.4: an array over a pointer near NULL (`np.ctypeslib.as_array` refuses NULL
//!   itself) read by a ufunc reduction: the fault is in numpy's inner loops;
//! - cffi 1.15.1: reading through a pointer cast from an address near NULL
//!   (`ffi.cast("int *", 8)[0]`: cffi refuses NULL itself, not a pointer near it).

// Tests open, write and print as they need: the doors are crashcatch's own.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

struct Case {
    name: &'static str,
    /// The interpreter (pyenv version) and the pinned requirements (none: the standard library).
    python: &'static str,
    requirements: &'static [&'static str],
    script: &'static str,
    /// Environment padding sizes to run with under `setarch -R` (empty: one plain run).
    pads: &'static [usize],
}

const CASES: &[Case] = &[
    Case {
        name: "cpython-getitem-overflow",
        python: "3.11.7",
        requirements: &[],
        script: "import sys, operator\nsys.setrecursionlimit(10 ** 8)\n\n\nclass A:\n    def __getitem__(self, i):\n        return operator.getitem(self, i)\n\n\nA()[0]\n",
        pads: &[0, 128, 256, 512, 1024, 1536],
    },
    Case {
        name: "cpython-json-deep",
        python: "3.11.7",
        requirements: &[],
        script: "import json, sys\nsys.setrecursionlimit(10 ** 8)\nx = []\nfor _ in range(10 ** 6):\n    x = [x]\n\n\ndef encode(v):\n    return json.dumps(v)\n\n\nencode(x)\n",
        pads: &[],
    },
    Case {
        name: "cpython-pickle-deep",
        python: "3.11.7",
        requirements: &[],
        script: "import pickle, sys\nsys.setrecursionlimit(10 ** 8)\nx = []\nfor _ in range(10 ** 6):\n    x = [x]\n\n\ndef save(v):\n    return pickle.dumps(v)\n\n\nsave(x)\n",
        pads: &[],
    },
    Case {
        name: "numpy-null-array",
        python: "3.11.7",
        requirements: &["numpy==1.26.4"],
        script: "import ctypes\nimport numpy as np\n\n\ndef total(n):\n    p = ctypes.cast(8, ctypes.POINTER(ctypes.c_double))\n    a = np.ctypeslib.as_array(p, (n,))\n    return a.sum()\n\n\ntotal(1024)\n",
        pads: &[],
    },
    Case {
        name: "cffi-null-read",
        python: "3.11.7",
        requirements: &["cffi==1.15.1", "pycparser==2.21"],
        script: "import cffi\n\nffi = cffi.FFI()\n\n\ndef first(p):\n    return p[0]\n\n\nfirst(ffi.cast(\"int *\", 8))\n",
        pads: &[],
    },
];

fn pyenv_python(version: &str) -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_default();
    let mm: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    Path::new(&home).join(format!(".pyenv/versions/{version}/bin/python{mm}"))
}

/// The venv of a case (made once, with its pinned wheels), or why there is none.
fn venv(case: &Case) -> Result<PathBuf, String> {
    let base = pyenv_python(case.python);
    if !base.exists() {
        return Err(format!("{} is missing", base.display()));
    }
    if case.requirements.is_empty() {
        return Ok(base);
    }
    let dir = root().join("target/realworld").join(case.name);
    let python = dir.join("bin/python");
    let stamp = dir.join(".installed");
    if stamp.exists() {
        return Ok(python);
    }
    let out = run({
        let mut c = Command::new(&base);
        c.args(["-m", "venv"]).arg(&dir);
        c
    });
    if !out.status.success() {
        return Err(format!("venv: {}", describe(&out)));
    }
    let out = run_within(
        {
            let mut c = Command::new(&python);
            c.args(["-m", "pip", "install", "-q", "--only-binary", ":all:", "--no-deps"]).args(case.requirements);
            c
        },
        std::time::Duration::from_secs(600),
    );
    if !out.status.success() {
        return Err(format!("pip install {:?}: {}", case.requirements, describe(&out)));
    }
    std::fs::write(&stamp, "").unwrap();
    Ok(python)
}

/// What gdb says of the core: frame #0's function (innermost inlined) and its library.
fn gdb_truth(python: &Path, core: &Path) -> Option<(String, String)> {
    let out = run({
        let mut c = Command::new("gdb");
        c.args(["-batch", "-nx", "-ex", "bt 1", "-ex", "info symbol $pc"]).arg(python).arg(core);
        c
    });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find(|l| l.starts_with("#0"))?;
    let rest = line.trim_start_matches("#0").trim_start();
    let rest = match rest.split_once(" in ") {
        Some((a, f)) if a.starts_with("0x") => f,
        _ => rest,
    };
    let function = rest.split([' ', '(']).next()?.to_string();
    // `info symbol`: "name + off in section .text of /path/lib.so" (no "of" for the executable).
    let module = text
        .lines()
        .find(|l| l.contains(" in section "))
        .map(|l| l.rsplit(" of ").next().unwrap_or("").rsplit('/').next().unwrap_or("").to_string())
        .filter(|m| !m.contains("section"))
        .unwrap_or_else(|| python.file_name().unwrap().to_string_lossy().into_owned());
    Some((function, module))
}

/// faulthandler's innermost frame of the crashing thread, from the run's stderr (the same
/// crash: PYTHONFAULTHANDLER is set for it): (file, line, function).
fn faulthandler_truth(stderr: &str) -> Option<(String, u64, String)> {
    let mut lines = stderr.lines().skip_while(|l| !l.starts_with("Current thread ") && !l.starts_with("Fatal Python"));
    let l = lines.find(|l| l.trim_start().starts_with("File \""))?;
    let rest = l.trim_start().strip_prefix("File \"")?;
    let (file, rest) = rest.rsplit_once("\", line ")?;
    let (line, func) = rest.split_once(" in ")?;
    Some((file.to_string(), line.trim().parse().ok()?, func.trim().to_string()))
}

fn base(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// One run of a case: crashcatch's report and core, compared with gdb and faulthandler.
fn one_run(python: &Path, script: &Path, pad: usize) -> Result<String, String> {
    let reports = out_dir();
    let mut c = Command::new("setarch");
    c.arg("-R").arg(bin()).args(["--core", "--format", "json", "-q", "--output-dir"]).arg(reports.path()).arg("--");
    c.arg(python).arg(script);
    // faulthandler in the very run: its traceback is of the same crash (a second, bare run
    // would have another stack layout, and overflow elsewhere).
    c.env_clear().env("PATH", "/usr/bin:/bin").env("PAD", "x".repeat(pad)).env("PYTHONFAULTHANDLER", "1");
    let out = run(c);
    let files: Vec<PathBuf> = std::fs::read_dir(reports.path()).unwrap().flatten().map(|e| e.path()).collect();
    let json = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .ok_or_else(|| format!("no report: {}", describe(&out)))?;
    let core = files.iter().find(|p| p.extension().is_some_and(|e| e == "core")).ok_or("no core")?;
    let r: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let (g_fn, g_mod) = gdb_truth(python, core).ok_or("gdb gave no frame #0")?;
    let f = &r["culprit"]["frame"];
    let c_fn = f["inlined"][0]["function"].as_str().or(f["function"].as_str()).unwrap_or("??");
    let c_mod = f["module"].as_str().unwrap_or("").rsplit('/').next().unwrap_or("");
    let mut problems = Vec::new();
    if base(c_fn) != base(&g_fn) {
        problems.push(format!("function {c_fn}, gdb {g_fn}"));
    }
    if c_mod != g_mod {
        problems.push(format!("library {c_mod}, gdb {g_mod}"));
    }
    match faulthandler_truth(&String::from_utf8_lossy(&out.stderr)) {
        Some((file, line, func)) => {
            let site = &r["python_call_site"];
            let s_fn = site["function"].as_str().unwrap_or("");
            let same = site["file"] == file.as_str()
                && site["line"].as_u64() == Some(line)
                && s_fn.rsplit('.').next() == Some(func.as_str());
            if !same {
                problems.push(format!("call site {site}, faulthandler {file}:{line} in {func}"));
            }
        }
        None => problems.push("faulthandler printed no frame".into()),
    }
    let ms = r["timings"]["total_ms"].as_f64().unwrap_or(0.0);
    if problems.is_empty() {
        Ok(format!("{g_fn} in {g_mod}, {} ({ms:.0} ms)", r["python_call_site"]["function"].as_str().unwrap_or("")))
    } else {
        Err(problems.join("; "))
    }
}

#[test]
#[ignore = "installs pinned wheels from PyPI: make test-realworld"]
fn real_crashes_of_real_packages_match_gdb_and_faulthandler() {
    for tool in ["gdb", "setarch"] {
        if !Path::new("/usr/bin").join(tool).exists() {
            skip("realworld", &format!("{tool} is not installed"));
            return;
        }
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut lines = Vec::new();
    for case in CASES {
        let python = match venv(case) {
            Ok(p) => p,
            Err(why) => {
                skipped += 1;
                lines.push(format!("SKIP {}: {why}", case.name));
                skip(&format!("realworld {}", case.name), &why);
                continue;
            }
        };
        let dir = out_dir();
        let script = dir.path().join(format!("{}.py", case.name.replace('-', "_")));
        std::fs::write(&script, case.script).unwrap();
        let pads: &[usize] = if case.pads.is_empty() { &[0] } else { case.pads };
        for &pad in pads {
            match one_run(&python, &script, pad) {
                Ok(what) => {
                    passed += 1;
                    lines.push(format!("PASS {} (pad {pad}): {what}", case.name));
                }
                Err(why) => {
                    failed += 1;
                    lines.push(format!("FAIL {} (pad {pad}): {why}", case.name));
                }
            }
        }
    }
    for l in &lines {
        println!("{l}");
    }
    println!("realworld: {passed} passed, {failed} failed, {skipped} skipped");
    assert_eq!(failed, 0, "{}", lines.join("\n"));
}
