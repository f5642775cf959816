//! The process's live environment, and which of it a report shows.

use crate::modules::ModuleSet;
use crate::process::{live, MemoryExt, Snapshot};
use crate::report::model::EnvVar;

/// Environment variables shown in reports: they explain a Python crash and hold no secrets.
pub const ENV_ALLOW: &[&str] = &[
    "PYTEST_CURRENT_TEST",
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONFAULTHANDLER",
    "PYTHONMALLOC",
    "PYTHONDEVMODE",
    "PYTHONHASHSEED",
    "VIRTUAL_ENV",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "CI",
    "GITHUB_ACTIONS",
];

/// At most this many variables are read from memory.
const MAX_VARIABLES: usize = 4096;
/// At most this many bytes of one `NAME=value` string.
const MAX_VARIABLE_BYTES: usize = 64 * 1024;

/// The live environment of the process: libc's `environ` array, read from memory (pytest
/// sets PYTEST_CURRENT_TEST after start-up, so /proc/PID/environ does not have it). Falls
/// back to /proc/PID/environ when libc's symbol cannot be found.
pub fn live_environment(snap: &Snapshot<'_>, modules: &ModuleSet) -> Vec<(String, String)> {
    let from_memory = environ_symbol(snap, modules).map(|sym| read_environ(snap, sym)).unwrap_or_default();
    if !from_memory.is_empty() {
        return from_memory;
    }
    live::environ(snap.pid)
        .into_iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// The live `environ`: an executable that refers to it (a non-PIE python3.11, as Debian's) has
/// its own copy (a copy relocation) and libc updates that one, leaving libc's own stale; so the
/// executable's definition first, then libc's.
fn environ_symbol(snap: &Snapshot<'_>, modules: &ModuleSet) -> Option<u64> {
    let symbol = |m: &crate::modules::Module| m.symbol_address("__environ").or_else(|| m.symbol_address("environ"));
    let exe = snap.exe.as_deref().and_then(|e| modules.iter().find(|m| m.path == e)).and_then(symbol);
    exe.or_else(|| {
        modules
            .by_name(|n| {
                n.starts_with("libc.so")
                    || n.starts_with("libc-")
                    || n.starts_with("ld-musl")
                    || n.starts_with("libc.musl")
            })
            .find_map(symbol)
    })
}

fn read_environ(snap: &Snapshot<'_>, sym: u64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(mut p) = snap.memory.read_u64(sym) else { return out };
    for _ in 0..MAX_VARIABLES {
        let Ok(s) = snap.memory.read_u64(p) else { break };
        if s == 0 {
            break;
        }
        if let Ok(kv) = snap.memory.read_cstr(s, MAX_VARIABLE_BYTES) {
            if let Some((k, v)) = kv.split_once('=') {
                out.push((k.to_string(), v.to_string()));
            }
        }
        p += 8;
    }
    out
}

/// The variables a report shows: the allow-list, or all of them with `show_all`.
pub fn shown(env: Vec<(String, String)>, show_all: bool) -> Vec<EnvVar> {
    env.into_iter()
        .filter(|(k, _)| show_all || ENV_ALLOW.contains(&k.as_str()))
        .map(|(name, value)| EnvVar { name, value })
        .collect()
}
