//! One door in, one escaper out, on every surface (issue 23): `crashcatch core` shows nothing
//! the crashed process could not read itself (its NT_PRPSINFO uid); a core naming a root-only
//! file does not read it; `--output-dir` behind a link someone else planted is refused at start
//! (and nothing lands where the link points); `summarize` escapes crafted reports and crafted
//! file and folder names in text, JSON and Markdown, and stays bounded on big hostile reports;
//! `--core` is capped per run, not only per core.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn is_root() -> bool {
    // SAFETY: geteuid has no arguments.
    unsafe { libc::geteuid() == 0 }
}

/// A folder anyone may enter and read.
fn open_dir() -> tempfile::TempDir {
    let d = tempfile::Builder::new().prefix("crashcatch-doors-").tempdir().unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == ext)).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A script that drops to nobody, then crashes in frames whose code names `secret` (line 1)
/// and `public` (line 2).
const DISCLOSE: &str = r#"
import ctypes, os, sys
secret, public = sys.argv[1], sys.argv[2]
os.setgroups([]); os.setgid(65534); os.setuid(65534)
def at(path, line, body):
    ns = {"ctypes": ctypes}
    exec(compile("\n" * (line - 1) + "def g(nxt):\n    " + body + "\n", path, "exec"), ns)
    return ns["g"]
crash = at(secret, 1, "return ctypes.string_at(0)")
mid = at(public, 2, "return nxt(None)")
mid(crash)
"#;

#[test]
fn crashcatch_core_shows_nothing_the_crashed_process_could_not_read() {
    if !is_root() {
        skip("hostile_doors core disclosure", "needs root (crashcatch as root, the target dropping to nobody)");
        return;
    }
    let py = PathBuf::from("/usr/bin/python3");
    if !py.exists() {
        skip("hostile_doors core disclosure", "no /usr/bin/python3");
        return;
    }
    let work = open_dir();
    let secret = work.path().join("shadow");
    fs::write(&secret, "SECRET-LINE-core-9e107d9d\nSECRET-LINE-core-second\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let public = work.path().join("public.py");
    fs::write(&public, "# first\n# second\nPUBLIC_LINE = 'shown'\n").unwrap();
    fs::set_permissions(&public, fs::Permissions::from_mode(0o644)).unwrap();
    let script = work.path().join("disclose.py");
    fs::write(&script, DISCLOSE).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let out = out_dir();
    let mut c = Command::new(bin());
    c.args(["--core", "--format", "json", "--output-dir"]).arg(out.path()).arg("--").arg(&py);
    c.arg(&script).arg(&secret).arg(&public).current_dir(work.path());
    let live = run(c);
    let core = files_with(out.path(), "core");
    assert_eq!(core.len(), 1, "no core\n{}", describe(&live));
    // The live report already refuses (issue 11); the core's must too.
    let mut c = Command::new(bin());
    c.args(["core", "--format", "json"]).arg(&core[0]);
    let post = run(c);
    let printed = format!("{}{}", String::from_utf8_lossy(&post.stdout), String::from_utf8_lossy(&post.stderr));
    assert_eq!(post.status.code(), Some(0), "{}", describe(&post));
    assert!(!printed.contains("SECRET-LINE"), "a root-only line leaked through crashcatch core:\n{printed}");
    let r: Value = serde_json::from_slice(&post.stdout).unwrap();
    let json = r.to_string();
    assert!(json.contains("/shadow"), "the frame is there, only its text is not: {json}");
    assert!(json.contains("PUBLIC_LINE = 'shown'"), "source lines do work as nobody: {json}");
}

#[test]
fn a_core_naming_a_root_only_file_does_not_read_it() {
    if !is_root() {
        skip("hostile_doors core NT_FILE", "needs root");
        return;
    }
    // A core of a process that ran as nobody, whose NT_FILE then names a root-only file in
    // place of one of its libraries (same length): the file is not read with root's rights.
    let exe = fixture(Variant::Fp, "null_deref");
    let lib = fs::canonicalize(exe.with_file_name("libccfix.so")).unwrap();
    let out = out_dir();
    let mut c = Command::new(bin());
    c.args(["--core", "--output-dir"]).arg(out.path()).args(["--", "setpriv", "--reuid=65534", "--regid=65534"]);
    c.arg("--clear-groups").arg(&exe);
    let live = run(c);
    let Some(core) = files_with(out.path(), "core").pop() else {
        skip("hostile_doors core NT_FILE", &format!("no core (setpriv missing?): {}", describe(&live)));
        return;
    };
    let mut bytes = fs::read(&core).unwrap();
    let name = lib.to_str().unwrap().to_string();
    let private = tempfile::Builder::new().prefix("p").tempdir_in("/tmp").unwrap();
    fs::set_permissions(private.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let base = private.path().to_str().unwrap();
    assert!(base.len() + 2 <= name.len());
    let secret = format!("{base}{}s", "/".repeat(name.len() - base.len() - 1));
    // An ELF file (a copy of the library) that only root may read.
    fs::copy(&lib, &secret).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let mut n = 0;
    let mut i = 0;
    while let Some(at) = bytes[i..].windows(name.len()).position(|w| w == name.as_bytes()) {
        bytes[i + at..i + at + name.len()].copy_from_slice(secret.as_bytes());
        i += at + name.len();
        n += 1;
    }
    assert!(n > 0);
    let patched = out.path().join("patched.core");
    fs::write(&patched, &bytes).unwrap();
    let mut c = Command::new(bin());
    c.args(["core", "--format", "json"]).arg(&patched);
    let post = run(c);
    let r: Value = serde_json::from_slice(&post.stdout).unwrap_or_else(|e| panic!("{e}\n{}", describe(&post)));
    let notes: Vec<String> =
        r["notes"].as_array().unwrap().iter().filter_map(|n| n.as_str().map(str::to_string)).collect();
    assert!(
        notes.iter().any(|n| n.contains(&secret) && n.contains("cannot be read here")),
        "the root-only file was read for a nobody core: {notes:#?}"
    );
    // Its symbols are not in the report either: the crashing function came from that file.
    assert_ne!(r["culprit"]["frame"]["function"], "cc_fixture_crash_null", "{}", r["culprit"]);
}

#[test]
fn an_output_dir_behind_a_link_someone_else_planted_is_refused_at_start() {
    if !is_root() {
        skip("hostile_doors output link", "needs root (the folder above belongs to nobody)");
        return;
    }
    let top = open_dir();
    let private = tempfile::tempdir().unwrap(); // root's, 0700
    let ws = top.path().join("ws");
    fs::create_dir(&ws).unwrap();
    std::os::unix::fs::chown(&ws, Some(65534), Some(65534)).unwrap();
    // What a target running as nobody can do: its folder, its link.
    let link = ws.join("reports");
    std::os::unix::fs::symlink(private.path(), &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
    let exe = fixture(Variant::Fp, "null_deref");
    let mut c = Command::new(bin());
    c.arg("--output-dir").arg(&link).arg("--").arg(&exe);
    let out = run(c);
    let bare = run_bare(&[exe.as_os_str()]);
    assert_eq!(status_pair(&out.status), status_pair(&bare.status), "{}", describe(&out));
    assert_eq!(fs::read_dir(private.path()).unwrap().count(), 0, "a report landed in root's folder");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or("");
    assert!(first.contains("--output-dir") && first.contains("symbolic link"), "said at start: {stderr}");
    // A folder of the host user's (a Docker bind mount) under root's folders is written into,
    // and the reports are given to that user.
    let mount = private.path().join("reports");
    fs::create_dir(&mount).unwrap();
    std::os::unix::fs::chown(&mount, Some(1001), Some(1001)).unwrap();
    fs::set_permissions(&mount, fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = Command::new(bin());
    c.arg("--output-dir").arg(&mount).arg("--").arg(&exe);
    let out = run(c);
    let json = files_with(&mount, "json");
    assert_eq!(json.len(), 1, "{}", describe(&out));
    let meta = fs::metadata(&json[0]).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.mode() & 0o777), (1001, 0o600));
}

/// A report whose every string is a workflow command, an escape sequence or a bidi override.
fn crafted_report(fingerprint: &str) -> String {
    let evil = "::error title=FN::owned\u{1b}[31m ##[error]x \u{202e}\u{2028}\u{9b}31m";
    serde_json::json!({
        "schema_version": 1, "kind": "crash", "fingerprint": fingerprint,
        "tool": {"name": "crashcatch", "version": "0"}, "time": "2026-01-01T00:00:00Z",
        "process": {"pid": 1, "cmdline": [evil], "test": format!("{evil}::test (call)")},
        "signal": {"number": 11, "name": evil, "code": 1, "description": evil},
        "culprit": {"frame": {"address": "0x1", "module": evil, "function": evil, "inlined": [{"function": evil}]}},
        "python_call_site": {"file": evil, "function": evil, "line": 3},
        "crashed_tid": 1, "threads": [], "modules": [], "timings": {}
    })
    .to_string()
}

fn check_unsteerable(what: &str, text: &str) {
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        assert!(!t.starts_with("::"), "{what}: line {i} starts a workflow command: {line:?}");
        assert!(!line.contains("##["), "{what}: line {i} holds a legacy workflow command: {line:?}");
    }
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| {
            c != '\n'
                && (c.is_control()
                    || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        })
        .collect();
    assert!(bad.is_empty(), "{what}: raw controls {bad:?}\n{text}");
}

#[test]
fn summarize_escapes_crafted_reports_and_crafted_names() {
    let dir = tempfile::tempdir().unwrap();
    let evil_dir = dir.path().join("job\n::error title=DIR::x\u{1b}[31m");
    fs::create_dir(&evil_dir).unwrap();
    fs::write(evil_dir.join("crash-1.json"), crafted_report("::error title=FP::x")).unwrap();
    fs::write(dir.path().join("x\n::error title=FN::y\u{1b}[31m.json"), "not json").unwrap();
    fs::write(dir.path().join("crash-2.json"), crafted_report("abcdef012345")).unwrap();
    for format in ["text", "json", "markdown"] {
        let mut c = Command::new(bin());
        c.args(["summarize", "--format", format]).arg(dir.path());
        let out = run(c);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        check_unsteerable(&format!("summarize --format {format} (stdout)"), &stdout);
        check_unsteerable(&format!("summarize --format {format} (stderr)"), &stderr);
        assert!(stderr.contains("skipped"), "{stderr}");
        match format {
            "json" => {
                let v: Value = serde_json::from_str(&stdout).expect("the JSON parses");
                assert_eq!(v["crashes"], 2, "{v}");
            }
            "markdown" => {
                let rows = stdout.lines().filter(|l| l.starts_with("| ")).count();
                assert_eq!(rows, 4, "the header, its rule and two rows:\n{stdout}");
                let parser = pulldown_cmark::Parser::new_ext(&stdout, pulldown_cmark::Options::ENABLE_TABLES);
                let cells = parser
                    .filter(|e| matches!(e, pulldown_cmark::Event::Start(pulldown_cmark::Tag::TableCell)))
                    .count();
                assert_eq!(cells, 3 * 7, "every row keeps its 7 cells:\n{stdout}");
            }
            _ => assert!(stdout.contains("2 crashes, 2 distinct"), "{stdout}"),
        }
    }
}

/// Runs `c` with its data segment (heap and anonymous mappings: RLIMIT_DATA) capped at
/// `bytes`: a process that needs more fails its allocation and dies. (wait4's ru_maxrss would
/// count the test process itself from the fork, and it runs other tests meanwhile.)
fn status_with_data_limit(mut c: Command, bytes: u64) -> std::process::ExitStatus {
    use std::os::unix::process::CommandExt;
    c.stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: setrlimit in the child between fork and exec, async-signal-safe.
    unsafe {
        c.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            if libc::setrlimit(libc::RLIMIT_DATA, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    c.status().unwrap()
}

#[test]
fn summarize_memory_stays_bounded_on_big_hostile_reports() {
    let dir = tempfile::tempdir().unwrap();
    // 30 MiB of notes ["","",...] (10 million strings), and a 60 MiB test id.
    let head = crafted_report("0123456789ab");
    let notes = format!("{},\"notes\":[{}\"\"]}}", &head[..head.len() - 1], "\"\",".repeat(10 << 20));
    fs::write(dir.path().join("notes.json"), &notes).unwrap();
    let long = head.replacen("\"pid\":1", &format!("\"pid\":1,\"test\":\"{}\"", "a".repeat(60 << 20)), 1);
    fs::write(dir.path().join("long.json"), &long).unwrap();
    drop((notes, long));
    // And 10,000 reports with as many distinct fingerprints: the groups are capped, not kept.
    for i in 0..10_000 {
        fs::write(dir.path().join(format!("r{i}.json")), crafted_report(&format!("{i:012x}"))).unwrap();
    }
    let mut c = Command::new(bin());
    c.args(["summarize", "--format", "json"]).arg(dir.path());
    let status = status_with_data_limit(c, 100 << 20);
    assert!(
        status.success(),
        "summarize needed more than 100 MiB on 90 MiB of hostile reports and 10,000 distinct ones: {status}"
    );
    // The control: the same limit, a tenth of it, does fail (the limit bites).
    let mut c = Command::new(bin());
    c.args(["summarize", "--format", "json"]).arg(dir.path());
    assert!(!status_with_data_limit(c, 10 << 20).success(), "10 MiB should not be enough for a 60 MiB string");
}

#[test]
fn core_files_are_capped_per_run() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    // Twenty children, each with 8 MiB of dirty memory, crash one after the other.
    let script = dir.path().join("fork.py");
    fs::write(
        &script,
        "import ctypes, os\nfor i in range(20):\n    if os.fork() == 0:\n        b = bytearray(os.urandom(8 << 20))\n        ctypes.string_at(0)\n    os.wait()\n",
    )
    .unwrap();
    let out = out_dir();
    let mut c = Command::new(bin());
    c.args(["--core", "--core-max-total-mb", "40", "--output-dir"]).arg(out.path()).arg("--").arg(&py).arg(&script);
    let r = run_within(c, Duration::from_secs(300));
    let total: u64 = files_with(out.path(), "core").iter().map(|p| fs::metadata(p).unwrap().len()).sum();
    let stderr = String::from_utf8_lossy(&r.stderr);
    // The cap counts contents; each core's headers and notes (tens of kB) come on top.
    assert!(total <= 41 << 20, "{} MiB of cores with --core-max-total-mb 40", total >> 20);
    assert!(stderr.contains("--core-max-total-mb"), "a line says cores were skipped: {stderr}");
    assert!(files_with(out.path(), "core").len() >= 2, "the first cores are written: {stderr}");
}
