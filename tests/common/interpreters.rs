//! Every Python interpreter here, for tests that run on all of them: pyenv 2.7 and 3.6–3.13
//! (`$PYENV_ROOT/versions`), Debian's /usr/bin/python3.11, and Debian sid's 3.13–3.15 from
//! `make sid` (run with `--debug-dir` on their -dbg files). Missing ones are listed, so a test
//! can report them with [`super::skip`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::root;

const SYSTEM_PYTHON: &str = "/usr/bin/python3.11";
const SID_PYTHONS: &[&str] = &["3.13", "3.14", "3.15"];
pub const SID_DEBUG: &str = "target/sid-dbg/usr/lib/debug";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pyenv,
    System,
    Sid,
}

#[derive(Debug, Clone)]
pub struct Interp {
    /// `pyenv 3.11.7`, `system 3.11.2`, `sid 3.14.0`.
    pub label: String,
    pub python: PathBuf,
    pub version: (u32, u32, u32),
    /// Extra crashcatch arguments (sid's `--debug-dir`).
    pub args: Vec<String>,
    pub kind: Kind,
}

impl Interp {
    pub fn py2(&self) -> bool {
        self.version.0 == 2
    }
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.version.0, self.version.1) >= (major, minor)
    }
}

pub struct Found {
    pub interps: Vec<Interp>,
    /// What was looked for and not found, with why.
    pub missing: Vec<String>,
}

fn version_of(python: &Path) -> Option<(u32, u32, u32)> {
    let out =
        Command::new(python).args(["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"]).output().ok()?;
    let v: Vec<u32> = String::from_utf8_lossy(&out.stdout).trim().split('.').filter_map(|p| p.parse().ok()).collect();
    match v.as_slice() {
        [a, b, c] => Some((*a, *b, *c)),
        _ => None,
    }
}

/// Every interpreter found (looked for once per test process), oldest first.
pub fn all() -> &'static Found {
    static FOUND: OnceLock<Found> = OnceLock::new();
    FOUND.get_or_init(|| {
        let mut candidates: Vec<(PathBuf, Kind)> = Vec::new();
        let mut missing = Vec::new();
        let pyenv_root = std::env::var_os("PYENV_ROOT")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")))
            .unwrap_or_else(|| PathBuf::from("/root/.pyenv"));
        let mut names: Vec<String> = std::fs::read_dir(pyenv_root.join("versions"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.split('.').all(|p| p.parse::<u32>().is_ok()))
            .collect();
        names.sort();
        for ver in names {
            let mm: String = ver.split('.').take(2).collect::<Vec<_>>().join(".");
            let p = pyenv_root.join("versions").join(&ver).join("bin").join(format!("python{mm}"));
            if p.exists() {
                candidates.push((p, Kind::Pyenv));
            } else {
                missing.push(format!("pyenv {ver}: {} not found", p.display()));
            }
        }
        if Path::new(SYSTEM_PYTHON).exists() {
            candidates.push((PathBuf::from(SYSTEM_PYTHON), Kind::System));
        } else {
            missing.push(format!("{SYSTEM_PYTHON}: not found"));
        }
        for v in SID_PYTHONS {
            let p = root().join(format!("target/sid/run-python{v}"));
            if !p.exists() {
                missing.push(format!("sid {v}: {} not found (make sid)", p.display()));
            } else if !root().join(SID_DEBUG).join(".build-id").is_dir() {
                missing.push(format!("sid {v}: no debug files under {SID_DEBUG} (make sid)"));
            } else {
                candidates.push((p, Kind::Sid));
            }
        }
        let mut interps = Vec::new();
        for (python, kind) in candidates {
            let Some(version) = version_of(&python) else {
                missing.push(format!("{}: printed no version", python.display()));
                continue;
            };
            let v = format!("{}.{}.{}", version.0, version.1, version.2);
            let label = match kind {
                Kind::System => format!("system {v}"),
                Kind::Sid => format!("sid {v}"),
                Kind::Pyenv => format!("pyenv {v}"),
            };
            let args = match kind {
                Kind::Sid => vec!["--debug-dir".to_string(), root().join(SID_DEBUG).display().to_string()],
                _ => vec![],
            };
            interps.push(Interp { label, python, version, args, kind });
        }
        interps.sort_by_key(|i| (i.version, i.label.clone()));
        Found { interps, missing }
    })
}
