//! The wheel (pyproject.toml, maturin with `bindings = "bin"`): built with target/venv's
//! maturin into target/wheels, installed into a fresh venv under target/, and used from PATH on
//! a real crash.
//!
//! A release build takes a minute or more, too long for every `make test`: the test runs only
//! with CRASHCATCH_WHEEL_TEST=1 (`make wheel-test`), and otherwise says on the real stderr that
//! it was skipped. The Docker example's build stage is run the same way, without an engine
//! (`make test-docker` runs the example in a real one).
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;
#[path = "packaging/docker_context.rs"]
mod docker_context;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use common::*;
use docker_context::{copy_destination, copy_file, copy_sources, in_root, Dockerfile, Ignore};
use serde_json::Value;

/// The two maturin builds share target/release/crashcatch: one at a time, each packing its own.
static MATURIN: Mutex<()> = Mutex::new(());

fn enabled() -> bool {
    if std::env::var("CRASHCATCH_WHEEL_TEST").is_ok_and(|v| v == "1") {
        return true;
    }
    common::skip(
        "wheel_installs_crashcatch_on_path",
        "set CRASHCATCH_WHEEL_TEST=1 (make wheel-test) to build and test the wheel",
    );
    false
}

fn check(out: &std::process::Output, what: &str) {
    assert!(out.status.success(), "{what} failed\n{}", describe(out));
}

/// `maturin build --release --out target/wheels`; returns the wheel it built.
fn build_wheel() -> PathBuf {
    let maturin = venv_dir().join("bin").join("maturin");
    assert!(
        maturin.exists(),
        "{} is missing: run `make venv` (scripts/venv-requirements.txt has maturin)",
        maturin.display()
    );
    let wheels = root().join("target").join("wheels");
    let _guard = MATURIN.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Command::new(&maturin);
    c.args(["build", "--release", "--out"]).arg(&wheels).current_dir(root());
    // A release build (ring's C and assembly included) from scratch: minutes, not seconds.
    let out = run_within(c, timeout().max(std::time::Duration::from_secs(1800)));
    check(&out, "maturin build");
    // maturin names the wheel it wrote: "Built wheel to target/wheels/crashcatch-….whl".
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let name = text
        .split_whitespace()
        .rfind(|w| w.ends_with(".whl"))
        .and_then(|w| Path::new(w).file_name())
        .unwrap_or_else(|| panic!("maturin did not say which wheel it built\n{text}"))
        .to_owned();
    let wheel = wheels.join(name);
    assert!(wheel.exists(), "{} is missing\n{text}", wheel.display());
    let file = wheel.file_name().unwrap().to_string_lossy().into_owned();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        file.starts_with(&format!("crashcatch-{version}-py3-none-")) && file.contains("x86_64"),
        "wheel name {file}: the Cargo version, any Python, Linux x86_64"
    );
    wheel
}

#[test]
fn wheel_installs_crashcatch_on_path() {
    if !enabled() {
        return;
    }
    let wheel = build_wheel();

    // A fresh venv from the test venv's interpreter, with only the wheel in it.
    let venv = root().join("target").join("wheel-test-venv");
    let _ = std::fs::remove_dir_all(&venv);
    let mut c = Command::new(venv_python());
    c.args(["-m", "venv"]).arg(&venv);
    check(&run(c), "python -m venv");
    let python = venv.join("bin").join("python");
    let mut c = Command::new(&python);
    c.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index", "--no-deps"]).arg(&wheel);
    check(&run(c), "pip install the wheel");

    // On PATH, as the venv's own script.
    let bin_dir = venv.join("bin");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()));
    let mut c = Command::new("sh");
    c.args(["-c", "command -v crashcatch"]).env("PATH", &path);
    let out = run(c);
    check(&out, "command -v crashcatch");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), bin_dir.join("crashcatch").display().to_string());
    let mut c = Command::new("sh");
    c.args(["-c", "crashcatch --version"]).env("PATH", &path);
    let out = run(c);
    check(&out, "crashcatch --version");
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")), "{}", describe(&out));

    // A crash through the installed binary, found on PATH.
    let dir = out_dir();
    let script = dir.path().join("crash.py");
    std::fs::write(&script, "import ctypes\n\ndef f():\n    ctypes.string_at(0)\n\nf()\n").unwrap();
    let bare = run_bare(&[python.as_os_str(), script.as_os_str()]);
    assert_eq!(exit_signal(&bare.status), Some(libc::SIGSEGV), "{}", describe(&bare));
    let reports_dir = dir.path().join("reports");
    let mut c = Command::new("sh");
    c.args(["-c", "exec crashcatch --output-dir \"$1\" --format json -- \"$2\" \"$3\"", "sh"])
        .arg(&reports_dir)
        .arg(&python)
        .arg(&script)
        .env("PATH", &path);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CRASHCATCH_") {
            c.env_remove(&name);
        }
    }
    let out = run(c);
    assert_eq!(status_pair(&out.status), status_pair(&bare.status), "{}", describe(&out));
    let reports: Vec<PathBuf> = std::fs::read_dir(&reports_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}\n{}", describe(&out));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&reports[0]).unwrap()).unwrap();
    assert_eq!(report["signal"]["name"], "SIGSEGV");
    assert_eq!(report["tool"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(report["classification"]["kind"], "null_pointer_dereference", "{report}");
    let site = match &report["python_user_frame"] {
        Value::Null => &report["python_call_site"],
        f => f,
    };
    assert_eq!(site["file"], script.to_str().unwrap(), "{report}");
    assert_eq!(site["function"], "f", "{report}");
    assert_eq!(site["line"], 4, "{report}");

    pytest_plugin_from_the_wheel(&venv, &wheel);
}

/// The pytest plugin as installed: in the wheel with its pytest11 entry point, `pytest
/// --crashcatch` in a project with a crashing test (the binary found next to the interpreter,
/// the plugin through the entry point: no PYTHONPATH, no CRASHCATCH_BINARY), then the plugin's
/// own pytester tests against the installed package. pytest and pytest-xdist come from the test
/// venv through a .pth file (the fresh venv has no index to install from).
fn pytest_plugin_from_the_wheel(venv: &Path, wheel: &Path) {
    let python = venv.join("bin").join("python");
    let mut c = Command::new(&python);
    c.args([
        "-c",
        "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); names = z.namelist(); \
         print('\\n'.join(names)); \
         ep = [n for n in names if n.endswith('.dist-info/entry_points.txt')]; \
         print(z.read(ep[0]).decode() if ep else 'NO ENTRY POINTS')",
    ])
    .arg(wheel);
    let out = run(c);
    check(&out, "reading the wheel");
    let listing = String::from_utf8_lossy(&out.stdout);
    for want in ["crashcatch/__init__.py", "crashcatch/pytest_plugin.py", "crashcatch/py.typed", "[pytest11]"] {
        assert!(listing.contains(want), "{want} is not in the wheel:\n{listing}");
    }
    assert!(listing.replace(" ", "").contains("crashcatch=crashcatch.pytest_plugin"), "{listing}");

    let mut c = Command::new(venv_python());
    c.args(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]);
    let out = run(c);
    check(&out, "the test venv's site-packages");
    let test_site = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut c = Command::new(&python);
    c.args(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]);
    let out = run(c);
    check(&out, "the wheel venv's site-packages");
    let site = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    std::fs::write(site.join("test-venv.pth"), format!("{test_site}\n")).unwrap();

    let clean = |c: &mut Command| {
        for (name, _) in std::env::vars_os() {
            let n = name.to_string_lossy();
            if n.starts_with("CRASHCATCH") || n.starts_with("PYTEST_") || n == "PYTHONPATH" || n.starts_with("GITHUB_")
            {
                c.env_remove(&name);
            }
        }
    };
    let project = out_dir();
    std::fs::write(
        project.path().join("test_native.py"),
        "import ctypes\n\ndef test_ok():\n    pass\n\ndef test_crash():\n    ctypes.string_at(0)\n",
    )
    .unwrap();
    let mut c = Command::new(&python);
    c.args(["-m", "pytest", "-p", "no:cacheprovider", "--crashcatch", "--crashcatch-output-dir", "reports", "-n", "2"])
        .current_dir(project.path());
    clean(&mut c);
    let out = run(c);
    assert_eq!(out.status.code(), Some(1), "a crashed xdist worker fails the run\n{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 failed, 1 passed"), "{}", describe(&out));
    let reports: Vec<PathBuf> = std::fs::read_dir(project.path().join("reports"))
        .unwrap_or_else(|e| panic!("no reports folder ({e})\n{}", describe(&out)))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(reports.len(), 1, "{}", describe(&out));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&reports[0]).unwrap()).unwrap();
    assert_eq!(report["process"]["test"], "test_native.py::test_crash (call)", "{report}");
    assert!(report["fingerprint"].is_string(), "{report}");

    // The plugin's own tests, against the installed package and binary.
    let mut c = Command::new(&python);
    c.args(["-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir"])
        .arg(project.path())
        .arg(root().join("python").join("tests"))
        .current_dir(project.path());
    clean(&mut c);
    let out = run(c);
    check(&out, "python/tests against the installed wheel");
}

/// examples/docker/Dockerfile, read without an engine (`make test-docker` builds and runs it in
/// one): its stages, the files every COPY takes from the context exist and are let through by
/// Dockerfile.dockerignore, the base is a build argument defaulting to python:3.12-slim,
/// crashcatch is the entrypoint with pytest as the command, reports go to /reports, its maturin
/// is the one the test venv pins.
#[test]
fn docker_example_is_consistent() {
    let dir = root().join("examples").join("docker");
    let text = std::fs::read_to_string(dir.join("Dockerfile")).expect("the Dockerfile");
    let dockerfile = Dockerfile::parse(&text);
    let ignore = Ignore::parse(&std::fs::read_to_string(dir.join("Dockerfile.dockerignore")).unwrap());
    assert_eq!(dockerfile.global_default("BASE"), Some("python:3.12-slim"), "{:?}", dockerfile.global_args);
    assert_eq!(dockerfile.global_default("WHEEL"), Some("source"), "{:?}", dockerfile.global_args);
    let source = dockerfile.stage("wheel-source").expect("a wheel-source stage");
    assert_eq!(source.from, "${BASE}");
    assert!(dockerfile.stage("wheel-prebuilt").is_some(), "a wheel-prebuilt stage");
    assert_eq!(dockerfile.stage("wheel").map(|s| s.from.as_str()), Some("wheel-${WHEEL}"));
    let last = dockerfile.stages.last().unwrap();
    assert_eq!(last.from, "${BASE}");
    // Every COPY of the sources takes files (the prebuilt wheels need `make wheels` first).
    for stage in [source, last] {
        for copy in stage.all("COPY").filter(|c| !c.starts_with("--from")) {
            let words: Vec<&str> = copy.split_whitespace().collect();
            for src in &words[..words.len() - 1] {
                let files = copy_sources(&root(), src, &ignore);
                assert!(!files.is_empty(), "COPY {src}: nothing in the context (Dockerfile.dockerignore?)");
            }
        }
    }
    assert!(last.all("ENTRYPOINT").any(|e| e == r#"["crashcatch", "--"]"#));
    assert!(last.all("CMD").any(|e| e == r#"["pytest"]"#));
    assert!(last.all("ENV").any(|e| e.contains("CRASHCATCH_OUTPUT_DIR=/reports")));
    let requirements = std::fs::read_to_string(root().join("scripts").join("venv-requirements.txt")).unwrap();
    let pin = requirements
        .lines()
        .find(|l| l.starts_with("maturin=="))
        .expect("maturin pinned in scripts/venv-requirements.txt");
    assert!(
        source.all("RUN").any(|r| r == format!("pip install --no-cache-dir {pin}")),
        "the Dockerfile should install {pin}"
    );
    for f in ["README.md", "project/requirements.txt", "project/tests/test_example.py"] {
        assert!(dir.join(f).exists(), "examples/docker/{f}");
    }
}

/// The Dockerfile's build stage (WHEEL=source) for real, without an engine: the files its COPY
/// lines take from the context (the repository root through Dockerfile.dockerignore) are put
/// where they land in the image, under target/docker-context/root, and its `maturin build` runs
/// there with the test venv's maturin (the one the Dockerfile pins). The wheel must hold the
/// binary and the pytest plugin. Cargo's target folder is the repository's: dependencies built
/// by the wheel test are reused, and the sources keep their times, so a second run is quick.
#[test]
fn docker_build_stage_builds_the_wheel() {
    if std::env::var("CRASHCATCH_WHEEL_TEST").map_or(true, |v| v != "1") {
        common::skip(
            "docker_build_stage_builds_the_wheel",
            "set CRASHCATCH_WHEEL_TEST=1 (make wheel-test) to build the Docker example's wheel",
        );
        return;
    }
    let dir = root().join("examples").join("docker");
    let dockerfile = Dockerfile::parse(&std::fs::read_to_string(dir.join("Dockerfile")).unwrap());
    let ignore = Ignore::parse(&std::fs::read_to_string(dir.join("Dockerfile.dockerignore")).unwrap());
    let stage = dockerfile.stage("wheel-source").expect("a wheel-source stage");
    let image = root().join("target").join("docker-context").join("root");
    let _ = std::fs::remove_dir_all(&image);
    let mut workdir = "/".to_string();
    let mut build = None;
    for i in &stage.instructions {
        match i.keyword.as_str() {
            "WORKDIR" => workdir = i.args.clone(),
            "COPY" => {
                let words: Vec<&str> = i.args.split_whitespace().collect();
                let (dest, sources) = words.split_last().unwrap();
                for src in sources {
                    let files = copy_sources(&root(), src, &ignore);
                    assert!(!files.is_empty(), "COPY {src}: nothing in the context");
                    for f in files {
                        copy_file(&root().join(&f), &in_root(&image, &copy_destination(&workdir, src, dest, &f)));
                    }
                }
            }
            "RUN" if i.args.starts_with("maturin build") => build = Some((workdir.clone(), i.args.clone())),
            _ => {}
        }
    }
    let (cwd, command) = build.expect("the wheel-source stage runs `maturin build`");
    let _guard = MATURIN.lock().unwrap_or_else(|e| e.into_inner());
    let maturin = venv_dir().join("bin").join("maturin");
    let mut c = Command::new(&maturin);
    // The stage's own arguments; absolute paths (--out /wheels) are the image's.
    for word in command.split_whitespace().skip(1) {
        if word.starts_with('/') {
            c.arg(in_root(&image, word));
        } else {
            c.arg(word);
        }
    }
    c.current_dir(in_root(&image, &cwd)).env("CARGO_TARGET_DIR", root().join("target"));
    let out = run_within(c, timeout().max(std::time::Duration::from_secs(1800)));
    check(&out, &format!("{command} in the Docker build context"));
    let wheels: Vec<PathBuf> = std::fs::read_dir(in_root(&image, "/wheels"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "{wheels:?}\n{}", describe(&out));
    let mut c = Command::new(venv_python());
    c.args(["-c", "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))"]).arg(&wheels[0]);
    let out = run(c);
    check(&out, "reading the wheel");
    let listing = String::from_utf8_lossy(&out.stdout);
    let version = env!("CARGO_PKG_VERSION");
    for want in [
        format!("crashcatch-{version}.data/scripts/crashcatch"),
        "crashcatch/pytest_plugin.py".to_string(),
        "crashcatch/__init__.py".to_string(),
        format!("crashcatch-{version}.dist-info/entry_points.txt"),
    ] {
        assert!(listing.lines().any(|l| l == want), "{want} is not in the Docker build's wheel:\n{listing}");
    }
}
