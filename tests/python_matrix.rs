//! The Python crash matrix: real crashes of real interpreters under crashcatch, one test per
//! kind of crash, each run on every interpreter installed here (pyenv 2.7 and 3.6–3.13 under
//! `$PYENV_ROOT/versions`, the system's /usr/bin/python3.11, and Debian sid's 3.13, 3.14 and 3.15
//! from `make sid` with their -dbg debug files). Interpreters that are missing are skipped with a
//! message; a test fails when none is found.
//!
//! The crashes come from ctypes and from `fixtures/pyext/ccext.c`, a C extension built for each
//! interpreter into `target/pyext/<version>/` by `fixtures/pyext/build.sh` (once per test
//! process). Ground truth is the interpreter itself: the same script is run bare with
//! `-X faulthandler`, and the Python frames crashcatch reports for the crashed thread must be
//! the ones faulthandler printed (file, line, function). Python 2.7 has no faulthandler: its
//! frames are checked against the line numbers marked in the script (`# @A1`).
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::*;
use serde_json::Value;

/// The pyenv versions the matrix expects; any other version found is tested too.
const PYENV_VERSIONS: &[&str] =
    &["2.7.18", "3.6.15", "3.7.16", "3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"];
const SYSTEM_PYTHON: &str = "/usr/bin/python3.11";
/// Debian sid's interpreters (`make sid`), stripped: run with the debug files of their
/// python3.X-dbg and of libc6-dbg, which give the eval loop's symbol the merge needs.
const SID_PYTHONS: &[&str] = &["3.13", "3.14", "3.15"];
const SID_DEBUG: &str = "target/sid-dbg/usr/lib/debug";

struct Interp {
    /// `pyenv 3.11.7`, `system 3.11.2`.
    label: String,
    python: PathBuf,
    version: (u32, u32, u32),
    /// The folder holding the built ccext module, or why it could not be built.
    ext_dir: Result<PathBuf, String>,
    /// Extra crashcatch arguments (the sid interpreters' `--debug-dir`).
    args: Vec<String>,
    kind: Kind,
}

impl Interp {
    fn py2(&self) -> bool {
        self.version.0 == 2
    }

    fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.version.0, self.version.1) >= (major, minor)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Pyenv,
    System,
    Sid,
}

struct Found {
    interps: Vec<Interp>,
    skipped: Vec<String>,
}

fn version_of(python: &Path) -> Result<(u32, u32, u32), String> {
    let out = Command::new(python)
        .args(["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
        .output()
        .map_err(|e| format!("running {}: {e}", python.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u32> = text.trim().split('.').filter_map(|p| p.parse().ok()).collect();
    match v.as_slice() {
        [a, b, c] => Ok((*a, *b, *c)),
        _ => Err(format!("{} printed no version: {}", python.display(), describe(&out))),
    }
}

/// Builds ccext for one interpreter into `target/pyext/<tag>/`.
fn build_ext(python: &Path, tag: &str) -> Result<PathBuf, String> {
    let dir = root().join("target").join("pyext").join(tag);
    let out = Command::new(root().join("fixtures/pyext/build.sh"))
        .arg(python)
        .arg(&dir)
        .output()
        .map_err(|e| format!("running fixtures/pyext/build.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!("building ccext failed: {}", describe(&out)));
    }
    Ok(dir)
}

/// Every interpreter found, each with its ccext built: done once per test process.
fn found() -> &'static Found {
    static FOUND: OnceLock<Found> = OnceLock::new();
    FOUND.get_or_init(|| {
        let mut candidates: Vec<(String, PathBuf, Kind)> = Vec::new();
        let mut skipped = Vec::new();
        let pyenv_root = std::env::var_os("PYENV_ROOT")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root/.pyenv"));
        let versions = pyenv_root.join("versions");
        let mut names: Vec<String> = PYENV_VERSIONS.iter().map(|s| s.to_string()).collect();
        for e in fs::read_dir(&versions).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.split('.').all(|p| p.parse::<u32>().is_ok()) && !names.contains(&n) {
                names.push(n);
            }
        }
        for ver in names {
            let mm: String = ver.split('.').take(2).collect::<Vec<_>>().join(".");
            let p = versions.join(&ver).join("bin").join(format!("python{mm}"));
            if p.exists() {
                candidates.push((ver, p, Kind::Pyenv));
            } else {
                skipped.push(format!("pyenv {ver}: {} not found", p.display()));
            }
        }
        if Path::new(SYSTEM_PYTHON).exists() {
            candidates.push((String::new(), PathBuf::from(SYSTEM_PYTHON), Kind::System));
        } else {
            skipped.push(format!("{SYSTEM_PYTHON}: not found"));
        }
        for v in SID_PYTHONS {
            let p = root().join(format!("target/sid/run-python{v}"));
            if !p.exists() {
                skipped.push(format!("sid {v}: {} not found (make sid)", p.display()));
            } else if !root().join(SID_DEBUG).join(".build-id").is_dir() {
                skipped.push(format!("sid {v}: no debug files under {SID_DEBUG} (make sid)"));
            } else {
                candidates.push((v.to_string(), p, Kind::Sid));
            }
        }
        let mut interps = Vec::new();
        for (_, python, kind) in candidates {
            let version = match version_of(&python) {
                Ok(v) => v,
                Err(e) => {
                    skipped.push(e);
                    continue;
                }
            };
            let v = format!("{}.{}.{}", version.0, version.1, version.2);
            let (label, tag) = match kind {
                Kind::System => (format!("system {v}"), format!("system-{v}")),
                Kind::Sid => (format!("sid {v}"), format!("sid-{v}")),
                Kind::Pyenv => (format!("pyenv {v}"), v),
            };
            let args = match kind {
                Kind::Sid => vec!["--debug-dir".to_string(), root().join(SID_DEBUG).display().to_string()],
                _ => vec![],
            };
            let ext_dir = build_ext(&python, &tag);
            interps.push(Interp { label, python, version, ext_dir, args, kind });
        }
        interps.sort_by_key(|i| (i.version, i.label.clone()));
        Found { interps, skipped }
    })
}

/// What a case returns when it does not apply to an interpreter (the interpreter itself does not
/// crash that way), followed by why: listed as SKIP, and in make test's summary.
const NOT_APPLICABLE: &str = "not applicable: ";

/// Runs `case` on every interpreter, prints the matrix it covered and fails on any failure.
fn matrix(case: &str, run: impl Fn(&Interp, &Path, &Path) -> Result<String, String>) {
    let f = found();
    assert!(!f.interps.is_empty(), "no Python interpreter found: the matrix covers nothing ({:?})", f.skipped);
    let mut failures = Vec::new();
    let mut lines = vec![format!("{case}:")];
    for s in &f.skipped {
        lines.push(format!("  SKIP {s}"));
        common::skip(&format!("{case} on {s}"), "interpreter skipped");
    }
    for i in &f.interps {
        let result = match &i.ext_dir {
            Err(e) => Err(e.clone()),
            Ok(ext) => {
                let dir = tempfile::Builder::new().prefix("crashcatch-pymatrix-").tempdir().unwrap();
                run(i, ext, dir.path())
            }
        };
        match result {
            Ok(what) if what.starts_with(NOT_APPLICABLE) => {
                let why = what.trim_start_matches(NOT_APPLICABLE);
                lines.push(format!("  SKIP {:<15} {why}", i.label));
                common::skip(&format!("{case} on {}", i.label), why);
            }
            Ok(what) => lines.push(format!("  PASS {:<15} {what}", i.label)),
            Err(e) => {
                lines.push(format!("  FAIL {:<15} {}", i.label, e.lines().next().unwrap_or("")));
                failures.push(format!("== {case} on {} ({}):\n{e}", i.label, i.python.display()));
            }
        }
    }
    // One print, so that tests running at the same time do not interleave their tables.
    println!("{}", lines.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---- scripts ------------------------------------------------------------------------------

/// Writes `body` to `dir/name` after two lines that put the ccext build on sys.path.
fn write_script(dir: &Path, name: &str, ext: &Path, body: &str) -> (PathBuf, String) {
    let text = format!("import sys\nsys.path.insert(0, {:?})\n{body}", ext.display().to_string());
    let path = dir.join(name);
    fs::write(&path, &text).unwrap();
    (path, text)
}

/// The 1-based line of `script` that ends in `# @marker`.
fn line_of(script: &str, marker: &str) -> u32 {
    let tag = format!("# @{marker}");
    let hits: Vec<usize> =
        script.lines().enumerate().filter(|(_, l)| l.trim_end().ends_with(&tag)).map(|(i, _)| i + 1).collect();
    assert_eq!(hits.len(), 1, "marker {tag} should mark one line of the script");
    hits[0] as u32
}

const CASE_CTYPES: &str = r#"import ctypes


def inner():
    return ctypes.string_at(0)  # @A1


def middle():
    return inner()  # @A2


def outer():
    return middle()  # @A3


outer()  # @A4
"#;

const CASE_EXT: &str = r#"import ccext


class Job:
    def run(self):
        ccext.crash_null()  # @B1


def middle():
    Job().run()  # @B2


def outer():
    middle()  # @B3


outer()  # @B4
"#;

const CASE_CALLBACK: &str = r#"import ccext


def crash():
    ccext.crash_null()  # @C1


def via_c():
    return ccext.call_cb(crash)  # @C2


def outer():
    return via_c()  # @C3


outer()  # @C4
"#;

const CASE_NATIVE_THREAD: &str = r#"import ccext


def wait_for_worker():
    ccext.crash_in_native_thread()  # @N1


def main():
    wait_for_worker()  # @N2


main()  # @N3
"#;

const CASE_PY_THREAD: &str = r#"import threading
import ccext


def crash_in_thread():
    ccext.crash_null()  # @D1


def work():
    crash_in_thread()  # @D2


t = threading.Thread(target=work, name="pyworker")
t.start()  # @DS
t.join()  # @D3
"#;

const CASE_LATE: &str = r#"import ccext


def callback():
    print("the late callback ran")


ccext.start_late_callback(callback)
sys.exit(0)  # @L1
"#;

/// Up to 3.10 every Python call is a C call of the eval loop: plain recursion overflows.
const CASE_RECURSION_PLAIN: &str = r#"sys.setrecursionlimit(10 ** 6)


def down(n):
    return down(n + 1) + 1  # @R1


down(0)
"#;

/// From 3.11 Python-to-Python calls use no C stack (and 3.12+ bound C recursion), so the
/// recursion goes through C with a large frame: 64 KiB per level overflows 8 MiB in ~128.
const CASE_RECURSION_C: &str = r#"import ccext
sys.setrecursionlimit(10 ** 6)


def down(n):
    return ccext.call_cb_big(lambda: down(n + 1))  # @R1


down(0)
"#;

// ---- reading results ----------------------------------------------------------------------

/// (file, line, function) of a Python frame; the function is its last dotted component, as
/// faulthandler prints co_name and crashcatch co_qualname from 3.11 on.
type PyFrame = (String, Option<u32>, String);

fn short_function(f: &str) -> String {
    f.rsplit('.').next().unwrap_or(f).to_string()
}

/// The crashing thread's frames from faulthandler's output (`Current thread 0x... (most recent
/// call first):` then `  File "...", line N in func` lines).
fn faulthandler_frames(stderr: &str) -> Result<Vec<PyFrame>, String> {
    let mut lines = stderr.lines();
    lines
        .by_ref()
        .find(|l| l.starts_with("Current thread ") || l.starts_with("Stack (most recent call first)"))
        .ok_or_else(|| format!("no faulthandler traceback in the bare run's stderr:\n{stderr}"))?;
    let mut out = Vec::new();
    for l in lines {
        let Some(rest) = l.strip_prefix("  File \"") else { break };
        let parsed = rest.rsplit_once("\", line ").and_then(|(file, rest)| {
            let (line, func) = rest.split_once(" in ")?;
            Some((file.to_string(), Some(line.trim().parse().ok()?), short_function(func.trim())))
        });
        out.push(parsed.ok_or_else(|| format!("unexpected faulthandler line {l:?}"))?);
    }
    if out.is_empty() {
        return Err(format!("faulthandler printed no frame for the crashing thread:\n{stderr}"));
    }
    Ok(out)
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn frames(thread: &Value) -> &[Value] {
    thread["frames"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn is_python(f: &Value) -> bool {
    s(f, "kind") == Some("python")
}

fn merge_kind(thread: &Value) -> Option<&str> {
    thread.get("merge").and_then(|m| s(m, "kind"))
}

/// A thread's Python frames: from its merged frames, or `merge.python_frames` when unmerged.
fn python_frames(thread: &Value) -> Vec<PyFrame> {
    let mut v: Vec<&Value> = frames(thread).iter().filter(|f| is_python(f)).collect();
    if v.is_empty() {
        v = thread["merge"]["python_frames"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    }
    v.into_iter()
        .map(|f| {
            (
                s(f, "file").unwrap_or("").to_string(),
                f["line"].as_u64().map(|l| l as u32),
                short_function(s(f, "function").unwrap_or("")),
            )
        })
        .collect()
}

fn has_python_frames(thread: &Value) -> bool {
    !python_frames(thread).is_empty()
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn module_of(f: &Value) -> &str {
    s(f, "module").map(basename).unwrap_or("?")
}

fn show_frame(f: &Value) -> String {
    if is_python(f) {
        format!("py {}:{} in {}", s(f, "file").unwrap_or("?"), f["line"], s(f, "function").unwrap_or("?"))
    } else {
        format!("{} in {}", s(f, "function").unwrap_or("??"), module_of(f))
    }
}

/// One run under crashcatch, with its report.
struct Run {
    output: Output,
    report: Value,
    text: String,
}

impl Run {
    fn crashed(&self) -> &Value {
        self.report["threads"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["crashed"] == true))
            .expect("a crashed thread")
    }

    fn main_thread(&self) -> Option<&Value> {
        self.report["threads"].as_array().and_then(|t| t.iter().find(|t| t["main"] == true))
    }

    fn diagnosis(&self) -> &str {
        s(&self.report, "diagnosis").unwrap_or("")
    }

    fn classification(&self) -> &str {
        self.report.get("classification").and_then(|c| s(c, "kind")).unwrap_or("")
    }

    /// `msg` with the text report and crashcatch's status, for failures (its stderr is the
    /// JSON report again: only its start is shown).
    fn fail(&self, msg: impl std::fmt::Display) -> String {
        let stderr = String::from_utf8_lossy(&self.output.stderr);
        let cut = stderr.char_indices().nth(1500).map_or(stderr.len(), |(i, _)| i);
        format!(
            "{msg}\n--- text report:\n{}\n--- crashcatch {}\n--- its stderr, {} bytes:\n{}",
            self.text,
            self.output.status,
            stderr.len(),
            &stderr[..cut]
        )
    }
}

fn caught(i: &Interp, script: &Path) -> Result<Run, String> {
    let c = run_caught_in(&i.args, &[i.python.as_os_str(), script.as_os_str()]);
    let report = match c.json_files.as_slice() {
        [one] => {
            serde_json::from_str(&fs::read_to_string(one).unwrap()).map_err(|e| format!("{}: {e}", one.display()))?
        }
        other => return Err(format!("expected one JSON report, found {other:?}\n{}", describe(&c.output))),
    };
    let text = match c.text_files.as_slice() {
        [one] => fs::read_to_string(one).unwrap(),
        other => return Err(format!("expected one text report, found {other:?}\n{}", describe(&c.output))),
    };
    Ok(Run { output: c.output, report, text })
}

/// The bare run, with faulthandler where the interpreter has it.
fn bare(i: &Interp, script: &Path, faulthandler: bool) -> Output {
    let mut cmd: Vec<&std::ffi::OsStr> = vec![i.python.as_os_str()];
    if faulthandler && !i.py2() {
        cmd.extend([std::ffi::OsStr::new("-X"), std::ffi::OsStr::new("faulthandler")]);
    }
    cmd.push(script.as_os_str());
    run_bare(&cmd)
}

fn same_status(bare: &Output, run: &Run) -> Result<(), String> {
    if exit_signal(&bare.status).is_none() {
        return Err(format!("the bare run did not die of a signal: {}", describe(bare)));
    }
    if status_pair(&bare.status) != status_pair(&run.output.status) {
        return Err(run.fail(format!("exit status {} under crashcatch, {} bare", run.output.status, bare.status)));
    }
    Ok(())
}

/// The crashed thread's Python frames must be `want` (faulthandler's, or the script's markers).
fn same_python_frames(run: &Run, want: &[PyFrame]) -> Result<(), String> {
    let got = python_frames(run.crashed());
    if got != want {
        return Err(run.fail(format!("crashed thread's Python frames\n  got  {got:?}\n  want {want:?}")));
    }
    Ok(())
}

/// A frame Python 2.7 should show, where faulthandler is not there to say.
enum Expect {
    /// The script's line marked `# @marker`, in `function`.
    Marker(&'static str, &'static str),
    /// A standard library frame: the file ends in `suffix`, the line is the one holding `source`.
    Stdlib { suffix: &'static str, function: &'static str, source: &'static str },
}

/// The ground truth for the crashed thread's Python stack: faulthandler's, or for 2.7 the
/// frames `expected` (innermost first), lines from the script's markers and the library's source.
fn ground_truth(
    i: &Interp,
    bare: &Output,
    run: &Run,
    script: &Path,
    text: &str,
    expected: &[Expect],
) -> Result<Vec<PyFrame>, String> {
    if !i.py2() {
        return faulthandler_frames(&String::from_utf8_lossy(&bare.stderr));
    }
    let file = script.display().to_string();
    let got = python_frames(run.crashed());
    let mut out = Vec::new();
    for (k, e) in expected.iter().enumerate() {
        out.push(match e {
            Expect::Marker(m, f) => (file.clone(), Some(line_of(text, m)), f.to_string()),
            Expect::Stdlib { suffix, function, source } => {
                // The library file is the one the interpreter loaded: take its path from the
                // report, but its line from the file itself.
                let path = got.get(k).map(|g| g.0.clone()).filter(|p| p.ends_with(suffix));
                let path = path.ok_or_else(|| run.fail(format!("frame {k} should be in .../{suffix}: {got:?}")))?;
                let lib = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
                let line = lib.lines().position(|l| l.trim() == *source).map(|n| n as u32 + 1);
                let line = line.ok_or_else(|| format!("{path} has no line {source:?}"))?;
                (path, Some(line), function.to_string())
            }
        });
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Top {
    /// The fault is in libc (strlen of ctypes.string_at(0)).
    Libc,
    /// The fault is ccext_crash_here, at the CRASH-LINE.
    Ccext,
}

/// The merged stack of the crashed thread: merged, the faulting native frame first, and the
/// first Python frame right after the interpreter's (or _ctypes') native frame that called
/// into what crashed.
fn merged_order(i: &Interp, run: &Run, top: Top) -> Result<(), String> {
    let t = run.crashed();
    if merge_kind(t) != Some("merged") {
        return Err(run.fail(format!("merge {:?}, want merged ({:?})", merge_kind(t), t.get("merge"))));
    }
    let fs = frames(t);
    let shown: Vec<String> = fs.iter().take(40).map(show_frame).collect();
    let f0 = fs.first().ok_or_else(|| run.fail("no frames"))?;
    if is_python(f0) {
        return Err(run.fail(format!("frame 0 is a Python frame: {shown:#?}")));
    }
    match top {
        Top::Libc => {
            if !module_of(f0).starts_with("libc") {
                return Err(run.fail(format!("frame 0 not in libc: {shown:#?}")));
            }
        }
        Top::Ccext => {
            let line = crash_line("pyext/ccext.c", "/* CRASH-LINE */");
            if !module_of(f0).starts_with("ccext")
                || s(f0, "function") != Some("ccext_crash_here")
                || f0["line"].as_u64() != Some(line as u64)
            {
                return Err(run.fail(format!("frame 0 is not ccext_crash_here at ccext.c:{line}: {f0}")));
            }
        }
    }
    let p = fs.iter().position(is_python).ok_or_else(|| run.fail("no Python frame in the merged stack"))?;
    let before = &fs[p - 1];
    let m = module_of(before);
    // Debian's LTO builds (sid) call a C extension's function straight from the eval loop, with
    // no interpreter frame between: there the extension's own function may come right before.
    let direct = matches!(i.kind, Kind::Sid) && matches!(top, Top::Ccext) && m.starts_with("ccext");
    if is_python(before)
        || !(m.starts_with("libpython") || m.starts_with("python") || m.starts_with("_ctypes") || direct)
    {
        return Err(run.fail(format!("the frame before the first Python frame is not libpython/_ctypes: {shown:#?}")));
    }
    Ok(())
}

// ---- the cases ----------------------------------------------------------------------------

/// a. ctypes.string_at(0) from nested functions; e. its diagnosis (a NULL passed from Python).
#[test]
fn ctypes_null_deref() {
    matrix("ctypes NULL deref", |i, ext, dir| {
        let (script, text) = write_script(dir, "ctypes_null.py", ext, CASE_CTYPES);
        let b = bare(i, &script, true);
        let run = caught(i, &script)?;
        same_status(&b, &run)?;
        let want = ground_truth(
            i,
            &b,
            &run,
            &script,
            &text,
            &[
                Expect::Stdlib {
                    suffix: "ctypes/__init__.py",
                    function: "string_at",
                    source: "return _string_at(ptr, size)",
                },
                Expect::Marker("A1", "inner"),
                Expect::Marker("A2", "middle"),
                Expect::Marker("A3", "outer"),
                Expect::Marker("A4", "<module>"),
            ],
        )?;
        same_python_frames(&run, &want)?;
        merged_order(i, &run, Top::Libc)?;
        if run.classification() != "null_pointer_dereference" {
            return Err(run.fail(format!("classification {:?}", run.classification())));
        }
        if !run.diagnosis().contains("NULL pointer was passed from Python") {
            return Err(run.fail(format!("diagnosis {:?}", run.diagnosis())));
        }
        Ok(format!("{} Python frames match, merged, diagnosed", want.len()))
    });
}

/// b. A crash inside the C extension, called from nested functions and a method.
#[test]
fn extension_crash() {
    matrix("C extension crash", |i, ext, dir| {
        let (script, text) = write_script(dir, "ext_crash.py", ext, CASE_EXT);
        let b = bare(i, &script, true);
        let run = caught(i, &script)?;
        same_status(&b, &run)?;
        let want = ground_truth(
            i,
            &b,
            &run,
            &script,
            &text,
            &[
                Expect::Marker("B1", "run"),
                Expect::Marker("B2", "middle"),
                Expect::Marker("B3", "outer"),
                Expect::Marker("B4", "<module>"),
            ],
        )?;
        same_python_frames(&run, &want)?;
        merged_order(i, &run, Top::Ccext)?;
        Ok(format!("{} Python frames match, merged", want.len()))
    });
}

/// b. The same through ccext.call_cb: Python → C → Python → C, two eval-loop entries.
#[test]
fn extension_crash_through_callback() {
    matrix("C extension crash through a C callback", |i, ext, dir| {
        let (script, text) = write_script(dir, "ext_callback.py", ext, CASE_CALLBACK);
        let b = bare(i, &script, true);
        let run = caught(i, &script)?;
        same_status(&b, &run)?;
        let want = ground_truth(
            i,
            &b,
            &run,
            &script,
            &text,
            &[
                Expect::Marker("C1", "crash"),
                Expect::Marker("C2", "via_c"),
                Expect::Marker("C3", "outer"),
                Expect::Marker("C4", "<module>"),
            ],
        )?;
        same_python_frames(&run, &want)?;
        merged_order(i, &run, Top::Ccext)?;
        // call_cb sits between the callback's frame and the frame that called it.
        let fs = frames(run.crashed());
        let py_fn = |name: &str| {
            fs.iter().position(|f| is_python(f) && s(f, "function").map(short_function).as_deref() == Some(name))
        };
        let cb = fs.iter().position(|f| !is_python(f) && s(f, "function") == Some("call_cb"));
        match (py_fn("crash"), cb, py_fn("via_c")) {
            (Some(a), Some(c), Some(v)) if a < c && c < v => {}
            other => {
                let shown: Vec<String> = fs.iter().map(show_frame).collect();
                return Err(
                    run.fail(format!("want crash < call_cb < via_c in the merged stack, at {other:?}: {shown:#?}"))
                );
            }
        }
        Ok(format!("{} Python frames match, call_cb merged between them", want.len()))
    });
}

/// c. A crash in the extension's own native thread while the main thread waits in Python.
#[test]
fn native_thread_crash() {
    matrix("crash in a native thread", |i, ext, dir| {
        let (script, text) = write_script(dir, "native_thread.py", ext, CASE_NATIVE_THREAD);
        let b = bare(i, &script, false);
        let run = caught(i, &script)?;
        same_status(&b, &run)?;
        let t = run.crashed();
        if s(t, "name") != Some("ccext-worker") || t["main"] == true {
            return Err(run.fail(format!("crashed thread {:?} (main {}), want ccext-worker", s(t, "name"), t["main"])));
        }
        if has_python_frames(t) {
            return Err(run.fail(format!("the native thread has Python frames: {:?}", python_frames(t))));
        }
        let f0 = frames(t).first().map(show_frame).unwrap_or_default();
        if !f0.starts_with("ccext_thread_crash in ccext") {
            return Err(run.fail(format!("frame 0 is {f0:?}, want ccext_thread_crash")));
        }
        if run.report.get("python").is_none() {
            return Err(run.fail("no python state in the report"));
        }
        if run.report.get("python_call_site").is_some() {
            return Err(run.fail("a python_call_site for a thread without Python frames"));
        }
        let main = run.main_thread().ok_or_else(|| run.fail("no main thread"))?;
        let file = script.display().to_string();
        let want: Vec<PyFrame> = [("N1", "wait_for_worker"), ("N2", "main"), ("N3", "<module>")]
            .iter()
            .map(|(m, f)| (file.clone(), Some(line_of(&text, m)), f.to_string()))
            .collect();
        if python_frames(main) != want {
            return Err(run.fail(format!("main thread's Python frames {:?}, want {want:?}", python_frames(main))));
        }
        let tag = "\"ccext-worker\", a native thread with no Python frames";
        let site =
            format!("the main thread ({}) was at {file}:{} in wait_for_worker", main["tid"], line_of(&text, "N1"));
        if !run.text.contains(tag) || !run.text.contains(&site) {
            return Err(run.fail(format!("the text report should say {tag:?} and {site:?}")));
        }
        Ok(format!("ccext-worker without Python frames; main thread's stack ({} frames) present", want.len()))
    });
}

/// d. A crash in a Python thread that is not the main thread.
#[test]
fn python_thread_crash() {
    matrix("crash in a Python thread", |i, ext, dir| {
        let (script, text) = write_script(dir, "py_thread.py", ext, CASE_PY_THREAD);
        let b = bare(i, &script, true);
        let run = caught(i, &script)?;
        same_status(&b, &run)?;
        if run.crashed()["main"] == true {
            return Err(run.fail("the crashed thread is the main thread"));
        }
        let got = python_frames(run.crashed());
        let n = if i.py2() {
            // No faulthandler: the two marked frames, then threading's own.
            let file = script.display().to_string();
            let want = vec![
                (file.clone(), Some(line_of(&text, "D1")), "crash_in_thread".to_string()),
                (file, Some(line_of(&text, "D2")), "work".to_string()),
            ];
            let rest_ok = got.len() > 2 && got[2..].iter().all(|f| f.0.ends_with("threading.py"));
            if got.get(..2) != Some(&want[..]) || !rest_ok || got.last().map(|f| f.2.as_str()) != Some("__bootstrap") {
                return Err(
                    run.fail(format!("crashed thread's Python frames {got:?}, want {want:?} then threading.py's"))
                );
            }
            got.len()
        } else {
            let want = faulthandler_frames(&String::from_utf8_lossy(&b.stderr))?;
            same_python_frames(&run, &want)?;
            want.len()
        };
        merged_order(i, &run, Top::Ccext)?;
        // The main thread is in t.join(), or still in t.start() waiting for the thread to say
        // it started: both are right.
        let main = run.main_thread().ok_or_else(|| run.fail("no main thread"))?;
        let main_py = python_frames(main);
        let at = |m: &str| (script.display().to_string(), Some(line_of(&text, m)), "<module>".to_string());
        let (start, join) = (at("DS"), at("D3"));
        let where_ = match main_py.last() {
            Some(f) if *f == join => "t.join()",
            Some(f) if *f == start => "t.start()",
            _ => {
                return Err(
                    run.fail(format!("main thread's Python frames {main_py:?} should end in {join:?} or {start:?}"))
                )
            }
        };
        Ok(format!("{n} Python frames match, merged; main thread in {where_}"))
    });
}

/// e. A native thread calls back into Python after the interpreter was finalized.
#[test]
fn late_callback_after_finalization() {
    matrix("late callback after finalization", |i, ext, dir| {
        let (script, _) = write_script(dir, "late.py", ext, CASE_LATE);
        let b = bare(i, &script, false);
        if i.at_least(3, 15) && exit_signal(&b.status).is_none() {
            // 3.15's PyGILState_Ensure no longer lets a thread in after finalization.
            return Ok(format!("{NOT_APPLICABLE}the bare run does not crash ({})", b.status));
        }
        let run = caught(i, &script)?;
        same_status(&b, &run)?;
        let t = run.crashed();
        if s(t, "name") != Some("ccext-late") || has_python_frames(t) {
            return Err(run.fail(format!("crashed thread {:?}, Python frames {:?}", s(t, "name"), python_frames(t))));
        }
        // PyGILState_Ensure's call of PyThreadState_New is in its .cold part, which has no
        // name in a stripped interpreter (Debian's): either name will do.
        let natives: Vec<&str> = frames(t).iter().filter_map(|f| s(f, "function")).collect();
        let entered = natives.contains(&"PyGILState_Ensure") || natives.contains(&"PyThreadState_New");
        if !entered || !natives.contains(&"ccext_late_callback") {
            return Err(run.fail(format!("crashed thread's frames {natives:?}")));
        }
        let d = run.diagnosis();
        if !d.contains("after the interpreter was finalized") || !d.contains("ccext_late_callback") {
            return Err(run.fail(format!("diagnosis {d:?}")));
        }
        let state = run.report["python"]["state"].as_str().unwrap_or("");
        let state_note = if i.py2() {
            // 2.7 keeps no finalizing state: Py_Finalize only clears `initialized`.
            format!("state {state:?} (2.7 keeps no finalizing flag)")
        } else if state == "finalizing" || state == "finalized" {
            format!("state {state}")
        } else {
            return Err(run.fail(format!("python.state {state:?}, want finalizing or finalized")));
        };
        Ok(format!("diagnosed; {state_note}"))
    });
}

const CASE_SUSPECT: &str = r#"import ccext


def lookup(key):
    return ccext.dict_get_null(key)  # @S1


lookup("k")
"#;

/// The extension passes NULL into the interpreter's dict code (numpy issue 24023's pattern):
/// the fault is in the interpreter, and the header names the extension as the suspect.
#[test]
fn extension_passes_null_into_the_interpreter() {
    matrix("NULL passed into the interpreter", |i, ext, dir| {
        let (script, text) = write_script(dir, "suspect.py", ext, CASE_SUSPECT);
        let b = bare(i, &script, false);
        let run = caught(i, &script)?;
        same_status(&b, &run)?;
        let culprit = &run.report["culprit"];
        let faulted = module_of(&culprit["frame"]);
        if !(faulted.starts_with("libpython") || faulted.starts_with("python")) {
            return Err(run.fail(format!("faulted in {faulted}, not the interpreter: {}", culprit["frame"])));
        }
        let suspect = &culprit["suspect"];
        if s(suspect, "owner") != Some("ccext") || s(&suspect["frame"], "function") != Some("ccext_lookup") {
            return Err(run.fail(format!("suspect {suspect}")));
        }
        if !run.text.contains("suspect      ccext's code: ccext_lookup in ccext") {
            return Err(run.fail("the header does not name the suspect"));
        }
        let site = &run.report["python_call_site"];
        if site["line"].as_u64() != Some(line_of(&text, "S1") as u64) {
            return Err(run.fail(format!("python_call_site {site}")));
        }
        Ok("faulted in the interpreter, suspect ccext_lookup".into())
    });
}

/// e. Deep Python recursion that overflows the C stack.
#[test]
fn deep_recursion_overflow() {
    matrix("deep recursion overflows the C stack", |i, ext, dir| {
        let (body, how) = if i.at_least(3, 11) {
            (CASE_RECURSION_C, "recursion through a C frame with a 64 KiB buffer")
        } else {
            (CASE_RECURSION_PLAIN, "plain recursion")
        };
        if i.at_least(3, 14) {
            // 3.14+ measure the C stack: a RecursionError (3.15) or a fatal error that aborts
            // (3.14, a segfault when the check comes too late), not a reliable overflow.
            return Ok(format!("{NOT_APPLICABLE}3.14+ guard the C stack themselves"));
        }
        let (script, text) = write_script(dir, "recursion.py", ext, body);
        let b = bare(i, &script, false);
        let run = caught(i, &script)?;
        same_status(&b, &run)?;
        if run.classification() != "stack_overflow" {
            return Err(run.fail(format!("classification {:?}", run.classification())));
        }
        let d = run.diagnosis();
        if !d.contains("deep recursion in Python") || !d.contains("down") {
            return Err(run.fail(format!("diagnosis {d:?}")));
        }
        // The innermost frame may be one that had not started running when the stack ran out
        // (3.6 allocates the frame first): then its line is the `def` line, as CPython says.
        let site = run.report.get("python_call_site").cloned().unwrap_or_default();
        let line = line_of(&text, "R1") as u64;
        let site_line = site["line"].as_u64().unwrap_or(0);
        if !(site_line == line || site_line == line - 1) || !s(&site, "function").unwrap_or("").starts_with("down") {
            return Err(run.fail(format!("python_call_site {site}, want line {line} (or the def line) in down")));
        }
        Ok(format!("{how}: stack_overflow, diagnosed"))
    });
}
