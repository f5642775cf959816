//! Real crashes of real packages, pinned to the versions that crash, compared with ground truth
//! taken from the same crash by the tools people trust: gdb's frame #0 (the innermost inlined
//! function counts), the library it is in and the signal's code and address, read from the core
//! crashcatch wrote of that very crash (`--core`), and faulthandler's innermost Python frame,
//! printed by the same run (`PYTHONFAULTHANDLER=1`). `make test-realworld` runs it (`cargo test
//! --test realworld -- --ignored`): it installs the pinned wheels from PyPI into venvs under
//! target/realworld (once), so it is not part of `make test`. Each case prints a line; the last line is `realworld: N passed, M failed`.
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
//!   (`ffi.cast("int *", 8)[0]`: cffi refuses NULL itself, not a pointer near it);
//! - publicly reported segfaults of released packages, each pinned to the version the report
//!   names and run with the report's own reproducer (its address is the case's `report`):
//!   numpy 1.25.0, msgpack 1.2.2 (two), ormsgpack 1.4.1 (at interpreter shutdown, where
//!   faulthandler is silent: the truth is then gdb's stack, with no eval loop in it), pandas
//!   2.3.3 (a stripped library: gdb's frame #0 is `??`; a general protection fault, whose
//!   address gdb computes from the faulting instruction), pyarrow 15.0.2 (C++), regex 2021.8.27
//!   (on CPython 3.9: it has no wheels for 3.11), lxml 4.3.0 (on 3.7: a stack overflow in its
//!   bundled libxml2), grpcio 1.14.1 (on 3.6: C++ with DWARF, in a thread of its own), ujson
//!   5.1.0 (on 3.10: a heap overflow, faulting later in libpython);
//! - a publicly reported CPython crasher on the patch releases before its fix (3.13.0, 3.12.1).

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
    /// The public bug report the case reproduces (none: a crash constructed here).
    report: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        name: "cpython-getitem-overflow",
        python: "3.11.7",
        requirements: &[],
        script: "import sys, operator\nsys.setrecursionlimit(10 ** 8)\n\n\nclass A:\n    def __getitem__(self, i):\n        return operator.getitem(self, i)\n\n\nA()[0]\n",
        pads: &[0, 128, 256, 512, 1024, 1536],
        report: None,
    },
    Case {
        name: "cpython-json-deep",
        python: "3.11.7",
        requirements: &[],
        script: "import json, sys\nsys.setrecursionlimit(10 ** 8)\nx = []\nfor _ in range(10 ** 6):\n    x = [x]\n\n\ndef encode(v):\n    return json.dumps(v)\n\n\nencode(x)\n",
        pads: &[],
        report: None,
    },
    Case {
        name: "cpython-pickle-deep",
        python: "3.11.7",
        requirements: &[],
        script: "import pickle, sys\nsys.setrecursionlimit(10 ** 8)\nx = []\nfor _ in range(10 ** 6):\n    x = [x]\n\n\ndef save(v):\n    return pickle.dumps(v)\n\n\nsave(x)\n",
        pads: &[],
        report: None,
    },
    Case {
        name: "numpy-null-array",
        python: "3.11.7",
        requirements: &["numpy==1.26.4"],
        script: "import ctypes\nimport numpy as np\n\n\ndef total(n):\n    p = ctypes.cast(8, ctypes.POINTER(ctypes.c_double))\n    a = np.ctypeslib.as_array(p, (n,))\n    return a.sum()\n\n\ntotal(1024)\n",
        pads: &[],
        report: None,
    },
    Case {
        name: "cffi-null-read",
        python: "3.11.7",
        requirements: &["cffi==1.15.1", "pycparser==2.21"],
        script: "import cffi\n\nffi = cffi.FFI()\n\n\ndef first(p):\n    return p[0]\n\n\nfirst(ffi.cast(\"int *\", 8))\n",
        pads: &[],
        report: None,
    },
    // Publicly reported segfaults, each with the report's reproducer in a function of its own
    // (so the call site is a named function), on the version the report names.
    Case {
        name: "numpy-array-ufunc-garbage",
        python: "3.11.7",
        requirements: &["numpy==1.25.0"],
        script: r#"import numpy as np


def call(a):
    return a.__array_ufunc__(2.3, 1)


call(np.empty(1))
"#,
        pads: &[],
        report: Some("https://github.com/numpy/numpy/issues/24023"),
    },
    Case {
        name: "msgpack-unpack-after-skip",
        python: "3.11.7",
        requirements: &["msgpack==1.2.2"],
        script: r#"import msgpack


def resume(unpacker):
    return unpacker.unpack()


unpacker = msgpack.Unpacker()
unpacker.feed(b"\x91")
try:
    unpacker.skip()
except msgpack.OutOfData:
    pass
unpacker.feed(b"\x00")
resume(unpacker)
"#,
        pads: &[],
        report: Some("https://github.com/msgpack/msgpack-python/issues/734"),
    },
    Case {
        name: "msgpack-getbuffer-realloc",
        python: "3.11.7",
        requirements: &["msgpack==1.2.2"],
        script: r#"import msgpack

exported = None


class Unsupported:
    pass


def default(obj):
    global exported
    exported = packer.getbuffer()
    return b"A" * (2 * 1024 * 1024)


def load(view):
    return msgpack.unpackb(view)


packer = msgpack.Packer(default=default, autoreset=False)
packer.pack([Unsupported()])
load(exported)
"#,
        pads: &[],
        report: Some("https://github.com/msgpack/msgpack-python/issues/733"),
    },
    Case {
        name: "ormsgpack-packb-str",
        python: "3.11.7",
        requirements: &["ormsgpack==1.4.1"],
        script: r#"import ormsgpack


def pack(v):
    return ormsgpack.packb(v)


pack("hello")
"#,
        pads: &[],
        report: Some("https://github.com/ormsgpack/ormsgpack/issues/223"),
    },
    Case {
        name: "pandas-read-csv-hex",
        python: "3.11.7",
        requirements: &[
            "pandas==2.3.3",
            "numpy==1.26.4",
            "python-dateutil==2.9.0.post0",
            "pytz==2025.2",
            "tzdata==2025.2",
            "six==1.17.0",
        ],
        script: r#"import io
import pandas


def parse(text):
    return pandas.read_csv(io.StringIO(text), header=None)


parse("00000000895e440025563900000000000000000000000000f7b3a602c4540000e0b20300bebd510000000000011001040170010c0000000000")
"#,
        pads: &[],
        report: Some("https://github.com/pandas-dev/pandas/issues/63167"),
    },
    Case {
        name: "pyarrow-cast-sliced-fixed-binary",
        python: "3.11.7",
        requirements: &["pyarrow==15.0.2", "numpy==1.26.4"],
        script: r#"import pyarrow


def widen(arr):
    return arr.slice(1).cast(pyarrow.binary())


widen(pyarrow.array([b"a", b"b", b"c"], pyarrow.binary(1)))
"#,
        pads: &[],
        report: Some("https://github.com/apache/arrow/issues/41306"),
    },
    Case {
        name: "regex-sub-group-reference",
        python: "3.9.18",
        requirements: &["regex==2021.8.27"],
        script: r#"import regex


def rewrite(text):
    pattern = regex.compile(r"\n(Content-[Tt]ype:\s*text/)")
    return pattern.sub("\\n\\g<1>plain;", text)


rewrite("\nContent-Type: multipart/mixed; boundary=Apple-Mail-UUID\n")
"#,
        pads: &[],
        report: Some("https://github.com/mrabarnett/mrab-regex/issues/422"),
    },
    Case {
        name: "lxml-append-entity-subtree",
        python: "3.7.16",
        requirements: &["lxml==4.3.0"],
        script: r#"from lxml import etree


def adopt(parent, child):
    parent.append(child)


parser = etree.XMLParser(resolve_entities=False)
data = etree.XML("""<!DOCTYPE data [
<!ENTITY a "a">
<!ENTITY b "&a;">
]>
<data>&b;</data>
""", parser)
adopt(etree.Element("test"), data)
"#,
        pads: &[],
        report: Some("https://bugs.launchpad.net/lxml/+bug/1814522"),
    },
    Case {
        name: "grpcio-subscribe-after-close",
        python: "3.6.15",
        requirements: &["grpcio==1.14.1", "six==1.17.0"],
        script: r#"import grpc


def watch(channel):
    channel.subscribe(lambda state: None, try_to_connect=True)


channel = grpc.insecure_channel("localhost:1")
channel.close()
watch(channel)
"#,
        pads: &[],
        report: Some("https://github.com/grpc/grpc/issues/16290"),
    },
    Case {
        name: "ujson-huge-indent",
        python: "3.10.13",
        requirements: &["ujson==5.1.0"],
        script: r#"import ujson


def encode(value):
    return ujson.encode(value, indent=65539)


encode({"a": True})
"#,
        pads: &[],
        report: Some("https://github.com/ultrajson/ultrajson/issues/501"),
    },
    Case {
        name: "cpython-ast-fields-deleted",
        python: "3.13.0",
        requirements: &[],
        script: AST_FIELDS_DELETED,
        pads: &[],
        report: Some("https://github.com/python/cpython/issues/126105"),
    },
    Case {
        name: "cpython-ast-fields-deleted-3.12",
        python: "3.12.1",
        requirements: &[],
        script: AST_FIELDS_DELETED,
        pads: &[],
        report: Some("https://github.com/python/cpython/issues/126105"),
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

/// gdb's output for a core of `python`: batch, no init files, frame arguments elided (`(...)`,
/// from before the core is loaded: `-iex`), so a frame line is
/// `#0  [0x… in ]NAME (...)|() [at FILE:LINE|from LIB]` and a C++ signature in NAME is never
/// confused with arguments.
fn gdb(python: &Path, core: &Path, commands: &[&str]) -> String {
    let mut c = Command::new("gdb");
    c.args(["-batch", "-nx", "-iex", "set print frame-arguments presence"]);
    for cmd in commands {
        c.args(["-ex", cmd]);
    }
    c.arg(python).arg(core);
    String::from_utf8_lossy(&run(c).stdout).into_owned()
}

/// A gdb backtrace line's function, the library it names (`from LIB`, only for frames without
/// debug information) and whether gdb named it from debug information (`at FILE:LINE`): `?? ()
/// from lib.so` is ("??", Some("lib.so"), false).
fn gdb_frame(line: &str) -> Option<(String, Option<String>, bool)> {
    let rest = line.split_once(' ')?.1.trim_start();
    let rest = match rest.split_once(" in ") {
        Some((a, f)) if a.starts_with("0x") => f,
        _ => rest,
    };
    let (name, place) = [" (...)", " ()"]
        .iter()
        .filter_map(|args| rest.rfind(args).map(|i| (i, args.len())))
        .max()
        .map(|(i, n)| (&rest[..i], &rest[i + n..]))?;
    let library = place.trim().strip_prefix("from ").map(|l| l.rsplit('/').next().unwrap_or(l).to_string());
    Some((name.trim().to_string(), library, place.trim().starts_with("at ")))
}

/// A demangled C++ name as gdb prints a function it knows from debug information: the qualified
/// source name, without the return type of a template function, the parameter list, its
/// qualifiers and GCC's clone marks (`void ns::f<int>(int) const [clone .isra.0]` is
/// `ns::f<int>`); a C name is left as it is. gdb's `info symbol` still shows the whole name.
fn source_name(name: &str) -> &str {
    let mut s = name.trim_end();
    while let Some(i) = s.rfind(" [clone ").filter(|_| s.ends_with(']')) {
        s = s[..i].trim_end();
    }
    while let Some(rest) = [" const", " volatile", " &&", " &"].iter().find_map(|q| s.strip_suffix(q)) {
        s = rest;
    }
    if !s.ends_with(')') {
        return name;
    }
    // The parameter list's own '(' (the name may hold parentheses: `(anonymous namespace)`,
    // `operator()`, a template argument's cast).
    let mut depth = 0i32;
    let open = s.char_indices().rev().find_map(|(i, c)| {
        depth += match c {
            ')' => 1,
            '(' => -1,
            _ => 0,
        };
        (depth == 0).then_some(i)
    });
    let Some(open) = open.filter(|&i| i > 0) else { return name };
    let s = &s[..open];
    // A template function's demangled name begins with its return type.
    if !s.ends_with('>') {
        return s;
    }
    let mut depth = 0i32;
    let space = s.char_indices().rev().find(|&(_, c)| {
        depth += match c {
            '>' | ')' => 1,
            '<' | '(' => -1,
            _ => 0,
        };
        depth == 0 && c == ' '
    });
    space.map_or(s, |(i, _)| &s[i + 1..])
}

/// What gdb says of a core: frame #0's function (innermost inlined; `??` where no symbol
/// covers it), its library, and the signal's si_code and si_addr.
struct Truth {
    function: String,
    /// gdb named frame #0 from debug information (`at FILE:LINE`).
    from_debug_info: bool,
    /// The whole (demangled) name of the symbol covering the pc (`info symbol`).
    symbol: Option<String>,
    module: String,
    si_code: Option<i64>,
    si_addr: Option<u64>,
}

/// gdb's [`Truth`] of the core, or None when gdb shows no frame #0.
fn gdb_truth(python: &Path, core: &Path) -> Option<Truth> {
    let text = gdb(
        python,
        core,
        &[
            "bt 1",
            "info symbol $pc",
            r#"printf "si_code %d\n", $_siginfo.si_code"#,
            r#"printf "si_addr 0x%lx\n", $_siginfo._sifields._sigfault.si_addr"#,
        ],
    );
    // The last #0: loading the core printed it once already.
    let (function, library, from_debug_info) = gdb_frame(text.lines().rfind(|l| l.starts_with("#0 "))?)?;
    let symbol = text.lines().find_map(|l| l.split_once(" in section ")).map(|(name, _)| {
        let name = name.rsplit_once(" + ").filter(|(_, off)| off.parse::<u64>().is_ok()).map_or(name, |(n, _)| n);
        name.trim().to_string()
    });
    // `info symbol`: "name + off in section .text of /path/lib.so" (no "of" for the executable).
    let module = library
        .or_else(|| {
            let l = text.lines().find(|l| l.contains(" in section "))?;
            l.rsplit_once(" of ").map(|(_, p)| p.rsplit('/').next().unwrap_or(p).to_string())
        })
        .unwrap_or_else(|| executable_name(python));
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
    let si_code = field("si_code ").and_then(|v| v.parse().ok());
    let si_addr = field("si_addr 0x").and_then(|v| u64::from_str_radix(v, 16).ok());
    Some(Truth { function, from_debug_info, symbol, module, si_code, si_addr })
}

/// The address the faulting instruction accessed, from gdb's disassembly of it and the
/// registers: for a general protection fault, where the kernel reports none. The memory operand
/// in AT&T syntax, `disp(%base,%index,scale)`, becomes `disp + $base + $index * scale`.
fn gdb_accessed_address(python: &Path, core: &Path) -> Option<u64> {
    let text = gdb(python, core, &["x/i $pc"]);
    let insn = text.lines().find(|l| l.starts_with("=> "))?;
    let operands = insn.split_once(":\t")?.1.split_once(' ')?.1.trim();
    let open = operands.find('(')?;
    let close = open + operands[open..].find(')')?;
    let disp = operands[..open].rsplit([',', ' ']).next().unwrap_or("").trim();
    let mut expr = vec![if disp.is_empty() { "0".to_string() } else { format!("(long){disp}") }];
    let inner: Vec<&str> = operands[open + 1..close].split(',').map(str::trim).collect();
    if let Some(base) = inner.first().filter(|b| !b.is_empty()) {
        expr.push(format!("(long)${}", base.strip_prefix('%')?));
    }
    if let Some(index) = inner.get(1) {
        let scale = inner.get(2).copied().unwrap_or("1");
        expr.push(format!("(long)${} * {scale}", index.strip_prefix('%')?));
    }
    let out = gdb(python, core, &[&format!(r#"printf "ea 0x%lx\n", {}"#, expr.join(" + "))]);
    let v = out.lines().find_map(|l| l.strip_prefix("ea 0x"))?;
    u64::from_str_radix(v.trim(), 16).ok()
}

/// Outside both halves of x86-64's 48-bit address space.
fn non_canonical(a: u64) -> bool {
    (0x0000_8000_0000_0000..0xffff_8000_0000_0000).contains(&a)
}

/// The file name of the interpreter itself (a venv's `bin/python` is a link to it).
fn executable_name(python: &Path) -> String {
    let real = std::fs::canonicalize(python).unwrap_or_else(|_| python.to_path_buf());
    real.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Where faulthandler prints nothing (it is uninstalled at interpreter shutdown), the truth
/// about Python code comes from gdb's whole stack: whether an eval loop is on it, and whether
/// the interpreter is finalizing (`Py_FinalizeEx` on it). None: the stack is too deep to tell.
fn gdb_python_truth(python: &Path, core: &Path) -> Option<(bool, bool)> {
    let text = gdb(python, core, &["bt 2000"]);
    if text.contains("More stack frames follow") {
        return None;
    }
    let functions: Vec<String> =
        text.lines().filter(|l| l.starts_with('#')).filter_map(gdb_frame).map(|(f, _, _)| f).collect();
    let eval = functions.iter().any(|f| matches!(f.as_str(), "_PyEval_EvalFrameDefault" | "PyEval_EvalFrameEx"));
    let finalizing = functions.iter().any(|f| f == "Py_FinalizeEx" || f == "Py_Finalize");
    Some((eval, finalizing))
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

/// A symbol without the suffix GCC gives a clone (`f.part.0`, `f.cold`, `f.isra.0`,
/// `f.constprop.0`, `f.lto_priv.0`): gdb and crashcatch may each name either, and gdb's `info
/// symbol` may leave the number off (`vectorcall_method.constprop`).
fn base(name: &str) -> &str {
    const CLONES: [&str; 5] = [".part", ".cold", ".isra", ".constprop", ".lto_priv"];
    let cut = CLONES.iter().filter_map(|c| name.find(c)).min();
    cut.map_or(name, |i| &name[..i])
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
    let truth = gdb_truth(python, core).ok_or("gdb gave no frame #0")?;
    let (g_fn, g_mod) = (&truth.function, &truth.module);
    let f = &r["culprit"]["frame"];
    let c_fn = f["inlined"][0]["function"].as_str().or(f["function"].as_str()).unwrap_or("??");
    let c_mod = f["module"].as_str().unwrap_or("").rsplit('/').next().unwrap_or("");
    let mut problems = Vec::new();
    // gdb names a function it has debug information for by its source name: compared in that
    // form, and the whole name (parameters and all) with the symbol's where frame #0 is the
    // symbol's own function, not one inlined into it.
    let c_source = if truth.from_debug_info { source_name(c_fn) } else { c_fn };
    if base(c_source) != base(g_fn) {
        problems.push(format!("function {c_fn}, gdb {g_fn}"));
    }
    let inlined = f["inlined"].as_array().is_some_and(|a| !a.is_empty());
    if let Some(symbol) = truth.symbol.as_deref().filter(|_| !inlined) {
        if base(c_fn) != base(symbol) {
            problems.push(format!("function {c_fn}, gdb's symbol {symbol}"));
        }
    }
    if c_mod != g_mod {
        problems.push(format!("library {c_mod}, gdb {g_mod}"));
    }
    let kind = r["classification"]["kind"].as_str().unwrap_or("");
    let what_fault = match (truth.si_code, truth.si_addr) {
        // A page fault (SEGV_MAPERR, SEGV_ACCERR) in the first 64 KiB: a NULL pointer, or a
        // field of one (a jump there is a NULL function pointer).
        (Some(1 | 2), Some(a)) if a < 65536 => {
            if !matches!(kind, "null_pointer_dereference" | "null_function_pointer") {
                problems.push(format!("classification {kind}, gdb: a page fault at {a:#x}"));
            }
            format!("page fault at {a:#x}")
        }
        // SI_KERNEL: a general protection fault, with no address: the instruction's own.
        (Some(128), _) => match gdb_accessed_address(python, core) {
            Some(a) if non_canonical(a) => {
                if kind != "general_protection" {
                    problems.push(format!("classification {kind}, gdb: a general protection fault at {a:#x}"));
                }
                format!("general protection fault at {a:#x}")
            }
            other => {
                problems.push(format!("gdb: a general protection fault, accessing {other:x?}"));
                String::new()
            }
        },
        (code, a) => {
            if kind.starts_with("null_") {
                problems.push(format!("classification {kind}, gdb: si_code {code:?} at {a:x?}"));
            }
            kind.to_string()
        }
    };
    let site = &r["python_call_site"];
    let what_site = match faulthandler_truth(&String::from_utf8_lossy(&out.stderr)) {
        Some((file, line, func)) => {
            let s_fn = site["function"].as_str().unwrap_or("");
            let same = site["file"] == file.as_str()
                && site["line"].as_u64() == Some(line)
                && s_fn.rsplit('.').next() == Some(func.as_str());
            if !same {
                problems.push(format!("call site {site}, faulthandler {file}:{line} in {func}"));
            }
            s_fn.to_string()
        }
        None => match gdb_python_truth(python, core) {
            Some((false, finalizing)) => {
                if !site.is_null() {
                    problems.push(format!("call site {site}, gdb: no eval loop on the stack"));
                }
                let state = r["python"]["state"].as_str().unwrap_or("");
                if finalizing && state != "finalizing" {
                    problems.push(format!("state {state:?}, gdb: Py_FinalizeEx on the stack"));
                }
                format!("no Python frame ({})", if finalizing { "finalizing" } else { "no eval loop" })
            }
            Some((true, _)) => {
                problems.push("faulthandler printed no frame, and gdb has an eval loop on the stack".into());
                String::new()
            }
            None => {
                problems.push("faulthandler printed no frame, and gdb's stack is too deep to tell".into());
                String::new()
            }
        },
    };
    let ms = r["timings"]["total_ms"].as_f64().unwrap_or(0.0);
    if problems.is_empty() {
        Ok(format!("{g_fn} in {g_mod}, {what_fault}, {what_site} ({ms:.0} ms)"))
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
                    let report = case.report.map(|r| format!(" [{r}]")).unwrap_or_default();
                    lines.push(format!("FAIL {} (pad {pad}): {why}{report}", case.name));
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

/// gdb's form of a function known from debug information, for names like the corpus's.
#[test]
fn source_name_is_gdbs_form_of_a_demangled_name() {
    let cases = [
        ("grpc_channel_stack_last_element(grpc_channel_stack*)", "grpc_channel_stack_last_element"),
        ("grpc_core::ExecCtx::Run(grpc_core::DebugLocation const&, grpc_closure*, grpc_error*)", "grpc_core::ExecCtx::Run"),
        (
            "void arrow::internal::TransferBitmap<(arrow::internal::TransferMode)0>(unsigned char const*, long, long, long, unsigned char*)",
            "arrow::internal::TransferBitmap<(arrow::internal::TransferMode)0>",
        ),
        ("(anonymous namespace)::Parser::parse() const", "(anonymous namespace)::Parser::parse"),
        ("std::function<void ()>::operator()() const", "std::function<void ()>::operator()"),
        ("foo::bar(int) [clone .isra.0] [clone .cold]", "foo::bar"),
        ("PyEval_EvalFrameDefault", "PyEval_EvalFrameDefault"),
        ("xmlSetListDoc.part.0", "xmlSetListDoc.part.0"),
        ("??", "??"),
    ];
    for (name, want) in cases {
        assert_eq!(source_name(name), want, "{name}");
    }
}

/// cpython#126105's reproducer: `ast.AST(...)` after `del ast.AST._fields`.
const AST_FIELDS_DELETED: &str = r#"import ast


def build():
    return ast.AST(arg1=123)


del ast.AST._fields
build()
"#;
