//! The manylinux2014 wheel's binary on an old glibc: Debian bullseye's libc6 (glibc 2.31, as on
//! Debian 11, Ubuntu 20.04, RHEL 8) unpacked under target/bullseye, and the binary run through
//! bullseye's own loader (as `make sid` runs sid's Python), on real crashes. Its exit status and
//! report must match the host build's. The host build must not start there (it needs glibc
//! 2.32+): that shows the old glibc is the one really used.
//!
//! It needs the wheel from `make wheels` (minutes of zig linking), so it runs only with
//! CRASHCATCH_WHEELS_TEST=1 (`make wheels-test`), and otherwise says it was skipped.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

fn enabled() -> bool {
    if std::env::var("CRASHCATCH_WHEELS_TEST").is_ok_and(|v| v == "1") {
        return true;
    }
    skip("old_glibc", "set CRASHCATCH_WHEELS_TEST=1 (make wheels-test) to run the manylinux binary on glibc 2.31");
    false
}

fn bullseye_lib() -> PathBuf {
    root().join("target/bullseye/lib/x86_64-linux-gnu")
}

/// The crashcatch binary of the x86_64 wheel tagged `tag` in target/wheels, unpacked.
fn wheel_binary(tag: &str) -> PathBuf {
    let wheels = root().join("target/wheels");
    let wheel = std::fs::read_dir(&wheels)
        .unwrap_or_else(|e| panic!("{}: {e} (run make wheels)", wheels.display()))
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(&format!("{tag}_x86_64.whl")))
        .unwrap_or_else(|| panic!("no {tag}_x86_64 wheel in {} (run make wheels)", wheels.display()));
    let dest = root().join("target/old-glibc").join(tag).join("crashcatch");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let mut c = Command::new("python3");
    c.args([
        "-c",
        "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
         n = [x for x in z.namelist() if x.endswith('/scripts/crashcatch')][0]; \
         open(sys.argv[2], 'wb').write(z.read(n))",
    ])
    .arg(&wheel)
    .arg(&dest);
    let out = run(c);
    assert!(out.status.success(), "unpacking {}\n{}", wheel.display(), describe(&out));
    std::fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dest
}

/// `BINARY ARGS...` run through bullseye's loader and libraries. The command crashcatch starts
/// is exec'd normally (with its own loader): only crashcatch runs on glibc 2.31.
fn through_bullseye(binary: &Path) -> Command {
    let lib = bullseye_lib();
    let mut c = Command::new(lib.join("ld-linux-x86-64.so.2"));
    c.arg("--library-path").arg(&lib).arg(binary);
    c
}

/// `crashcatch --output-dir D --format json -- CMD`, with `crashcatch` being `base`; the status
/// pair and the report.
fn caught(mut base: Command, cmd: &[PathBuf]) -> ((Option<i32>, Option<i32>), Value, String) {
    let dir = out_dir();
    base.arg("--output-dir").arg(dir.path()).arg("--format").arg("json").arg("--").args(cmd);
    let out = run(base);
    let json = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    (status_pair(&out.status), report, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// What must agree between the two builds: signal, classification, and the crashed thread's
/// functions and modules, innermost first.
fn essentials(report: &Value) -> Value {
    let crashed = report["threads"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["crashed"] == Value::Bool(true)))
        .cloned()
        .unwrap_or(Value::Null);
    let frames: Vec<Value> = crashed["frames"]
        .as_array()
        .map(|f| f.iter().map(|f| serde_json::json!([f["kind"], f["function"], f["module"], f["line"]])).collect())
        .unwrap_or_default();
    serde_json::json!({
        "signal": report["signal"]["name"],
        "code": report["signal"]["code_name"],
        "classification": report["classification"]["kind"],
        "frames": frames,
    })
}

#[test]
fn manylinux_binary_runs_on_glibc_2_31() {
    if !enabled() {
        return;
    }
    let lib = bullseye_lib();
    assert!(lib.join("libc.so.6").exists(), "{} is missing: make wheels-test unpacks bullseye's libc6", lib.display());
    let version = run(through_bullseye(&lib.join("libc.so.6")));
    assert!(String::from_utf8_lossy(&version.stdout).contains("release version 2.31"), "{}", describe(&version));

    // The host build needs a newer glibc: it must not start here.
    let mut c = through_bullseye(&bin());
    c.arg("--version");
    let host = run(c);
    let err = String::from_utf8_lossy(&host.stderr);
    assert!(!host.status.success() && err.contains("not found"), "host build on glibc 2.31:\n{}", describe(&host));

    let many = wheel_binary("manylinux_2_17");
    let mut c = through_bullseye(&many);
    c.arg("--version");
    let v = run(c);
    assert!(v.status.success(), "manylinux binary on glibc 2.31:\n{}", describe(&v));

    compare_with_host(|| through_bullseye(&many), "glibc 2.31");
}

/// The musllinux wheel's binary is static (no loader, no libraries): it catches the same
/// crashes of glibc programs and a glibc Python as the host build. A Python built against musl
/// (Alpine's) is not available here, so that combination is not tested.
#[test]
fn musl_static_binary_catches_glibc_crashes() {
    if !enabled() {
        return;
    }
    let musl = wheel_binary("musllinux_1_2");
    let elf = std::fs::read(&musl).unwrap();
    let file = object::read::elf::ElfFile64::<object::Endianness>::parse(&*elf).expect("the musl binary is ELF");
    let endian = file.endian();
    use object::read::elf::ProgramHeader;
    let interp = file.elf_program_headers().iter().any(|p| p.p_type(endian) == object::elf::PT_INTERP);
    assert!(!interp, "the musl binary has a program interpreter: it is not static");
    compare_with_host(|| Command::new(&musl), "the static musl binary");
}

/// Runs the same crashes under `make_base()` and under the host build: same status, same report.
fn compare_with_host(make_base: impl Fn() -> Command, what: &str) {
    ensure_fixtures();
    let script = root().join("target/old-glibc/ctypes_null.py");
    std::fs::write(&script, "import ctypes\n\ndef call():\n    return ctypes.string_at(0)  # crash here\n\ncall()\n")
        .unwrap();
    let cases: Vec<(&str, Vec<PathBuf>)> = vec![
        ("null_deref", vec![fixture(Variant::Fp, "null_deref")]),
        ("abort_assert", vec![fixture(Variant::Nofp, "abort_assert"), PathBuf::from("assert")]),
        ("thread_crash", vec![fixture(Variant::Fp, "thread_crash")]),
        ("python ctypes", vec![venv_python(), script.clone()]),
    ];
    for (name, cmd) in cases {
        let (old_status, old_report, old_err) = caught(make_base(), &cmd);
        let (host_status, host_report, _) = caught(Command::new(bin()), &cmd);
        assert_eq!(old_status, host_status, "{name}: exit status under {what} vs host\n{old_err}");
        assert!(old_status.1.is_some(), "{name}: expected death by a signal, got {old_status:?}\n{old_err}");
        let (a, b) = (essentials(&old_report), essentials(&host_report));
        assert_eq!(a, b, "{name}: report under {what} differs from the host build's");
        assert!(a["frames"].as_array().is_some_and(|f| f.len() >= 2), "{name}: {a}");
        println!(
            "{what}: {name}: status {old_status:?}, {} frames, same as the host build",
            a["frames"].as_array().unwrap().len()
        );
    }
    let (_, py, _) = caught(make_base(), &[venv_python(), script.clone()]);
    let text = py.to_string();
    assert!(text.contains("ctypes_null.py"), "the Python line is missing under {what}:\n{text}");
}
