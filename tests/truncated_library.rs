//! A library truncated and rewritten on disk while crashcatch reads it (issue 11, point 6):
//! crashcatch must never die of SIGBUS (as it did when it mapped the files it read); every run
//! ends with a report. A helper thread flips the library between truncated and whole, as fast
//! as it can, from just before the crash until crashcatch exits.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fixture, run_caught_in, skip, Variant};

const SCRIPT: &str = r#"
import ctypes, os, sys, time
lib = ctypes.CDLL(sys.argv[1])
open(sys.argv[2], "w").close()
deadline = time.time() + 30
while not os.path.exists(sys.argv[3]) and time.time() < deadline:
    time.sleep(0.001)
time.sleep(0.003)
lib.cc_fixture_crash_null(None)
"#;

const RUNS: usize = 8;

/// Waits for `ready`, then says `go` and flips `lib` between truncated (to a fraction of its
/// size, cycling) and whole until `stop`.
fn flipper(lib: &Path, original: &[u8], ready: &Path, go: &Path, stop: &AtomicBool) -> u64 {
    let t0 = Instant::now();
    while !ready.exists() {
        if stop.load(Ordering::Relaxed) || t0.elapsed() > Duration::from_secs(60) {
            return 0;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    fs::write(go, b"").unwrap();
    let file = fs::OpenOptions::new().write(true).open(lib).unwrap();
    let mut flips = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let cut = [0, original.len() / 8, original.len() / 2, original.len() - 64][(flips % 4) as usize];
        let _ = file.set_len(cut as u64);
        std::thread::yield_now();
        let _ = file.write_all_at(&original[cut..], cut as u64);
        flips += 1;
    }
    flips
}

#[test]
fn library_truncated_during_capture_never_kills_crashcatch() {
    let python = Path::new("/usr/bin/python3");
    if !python.exists() {
        skip("truncated_library", "/usr/bin/python3 is missing");
        return;
    }
    // The fixture library with symbols and DWARF: crashcatch reads its symbols, line table and
    // CFI for the crashing frame.
    let original = fs::read(fixture(Variant::Fp, "libccfix.so")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("crash.py");
    fs::write(&script, SCRIPT).unwrap();
    let mut total_flips = 0;
    for run in 0..RUNS {
        let lib = dir.path().join(format!("libccfix-{run}.so"));
        fs::write(&lib, &original).unwrap();
        let (ready, go) = (dir.path().join(format!("ready-{run}")), dir.path().join(format!("go-{run}")));
        let stop = Arc::new(AtomicBool::new(false));
        let helper = {
            let (lib, original, ready, go, stop) =
                (lib.clone(), original.clone(), ready.clone(), go.clone(), stop.clone());
            std::thread::spawn(move || flipper(&lib, &original, &ready, &go, &stop))
        };
        let caught = run_caught_in(
            &["-q"],
            &[python.as_os_str(), script.as_os_str(), lib.as_os_str(), ready.as_os_str(), go.as_os_str()],
        );
        stop.store(true, Ordering::Relaxed);
        let flips = helper.join().unwrap();
        total_flips += flips;
        let status = caught.output.status;
        let report = caught.report();
        assert!(
            report.is_some(),
            "run {run}: no report (crashcatch's status {status:?}, {flips} flips)\n{}",
            common::describe(&caught.output)
        );
        let report = report.unwrap();
        // The crash is the process's own SIGSEGV, or a SIGBUS in it when its code page was cut
        // away under it; either way crashcatch wrote it up.
        let signal = report["signal"]["name"].as_str().unwrap_or("");
        assert!(matches!(signal, "SIGSEGV" | "SIGBUS"), "run {run}: signal {signal}");
    }
    assert!(total_flips > 0, "the helper never truncated the library");
    eprintln!("truncated_library: {RUNS} runs, {total_flips} truncations");
}
