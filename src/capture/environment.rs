//! The process's live environment, and which of it a report shows.

use crate::modules::ModuleSet;
use crate::process::{Memory, MemoryExt, Snapshot};
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

/// The CI's job, run, commit and runner, also shown: they say where a crash happened, hold no
/// secrets, and let `crashcatch upload` tag an event with the job that crashed rather than the
/// one that uploads (report::render::sentry::context reads them).
pub const CI_ALLOW: &[&str] = &[
    "GITHUB_JOB",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "GITHUB_SHA",
    "GITHUB_REPOSITORY",
    "GITHUB_WORKFLOW",
    "GITHUB_REF_NAME",
    "GITHUB_SERVER_URL",
    "RUNNER_NAME",
    "RUNNER_OS",
    "GITLAB_CI",
    "CI_JOB_NAME",
    "CI_JOB_ID",
    "CI_JOB_URL",
    "CI_PIPELINE_ID",
    "CI_COMMIT_SHA",
    "CI_PROJECT_PATH",
    "CI_COMMIT_REF_NAME",
    "CI_RUNNER_DESCRIPTION",
    "BUILDKITE",
    "BUILDKITE_LABEL",
    "BUILDKITE_BUILD_NUMBER",
    "BUILDKITE_COMMIT",
    "BUILDKITE_PIPELINE_SLUG",
    "BUILDKITE_BRANCH",
    "BUILDKITE_AGENT_NAME",
    "CIRCLECI",
    "CIRCLE_JOB",
    "CIRCLE_BUILD_NUM",
    "CIRCLE_SHA1",
    "CIRCLE_PROJECT_REPONAME",
    "CIRCLE_BRANCH",
    "JENKINS_URL",
    "JOB_NAME",
    "BUILD_NUMBER",
    "GIT_COMMIT",
    "GIT_BRANCH",
    "NODE_NAME",
];

/// crashcatch's own variables whose value is a secret: shown as `(hidden)` even with
/// `--show-env` (the DSN holds the tracker's key).
pub const ENV_SECRET: &[&str] = &["CRASHCATCH_SENTRY_DSN"];

/// At most this many variables are read from memory.
const MAX_VARIABLES: usize = 4096;
/// At most this many bytes of one `NAME=value` string.
const MAX_VARIABLE_BYTES: usize = 64 * 1024;

/// The live environment of the process: libc's `environ` array, read from memory (pytest
/// sets PYTEST_CURRENT_TEST after start-up, so the starting environment does not have it).
/// Falls back to the environment the process started with (/proc/PID/environ, or a core's
/// initial stack) when libc's symbol cannot be found.
pub fn live_environment(snap: &Snapshot<'_>, modules: &ModuleSet) -> Vec<(String, String)> {
    let from_memory = environ_symbol(snap, modules).map(|sym| read_environ(snap, sym)).unwrap_or_default();
    if !from_memory.is_empty() {
        return from_memory;
    }
    snap.view
        .initial_environment()
        .into_iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// libc's `environ`; when the program defines it too (a copy relocation: Debian's non-PIE
/// python3.X), the program's copy, which interposes libc's and is the one libc updates. The
/// program is the executable, or the interpreter when the loader was run as the program
/// (`ld.so python3.14 ...`), whose own `__environ` is never updated.
fn environ_symbol(snap: &Snapshot<'_>, modules: &ModuleSet) -> Option<u64> {
    environ_address(modules, snap.exe.as_deref())
}

/// [`environ_symbol`] for a process known by its modules and executable path (`--test-timeout`
/// looks it up once per image of a running process).
pub fn environ_address(modules: &ModuleSet, exe: Option<&str>) -> Option<u64> {
    let is_loader = |n: &str| n.starts_with("ld-") || n.starts_with("ld.so");
    let exe = modules.executable(exe).filter(|m| !is_loader(m.name()));
    let interpreter = modules.by_name(|n| n.starts_with("python")).take(1);
    let libc = modules.by_name(|n| {
        n.starts_with("libc.so") || n.starts_with("libc-") || n.starts_with("ld-musl") || n.starts_with("libc.musl")
    });
    exe.into_iter()
        .chain(interpreter)
        .chain(libc)
        .find_map(|m| m.symbol_address("__environ").or_else(|| m.symbol_address("environ")))
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

/// One variable read from libc's live `environ` at `sym`, without stopping the process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variable {
    /// Its value, when the variable is set.
    pub value: Option<String>,
    /// Its index in the `environ` array, a hint for the next read (setenv replaces in place).
    pub index: Option<usize>,
}

/// Reads the one variable `name` from libc's `environ` at `sym`: first at `hint` (where it was
/// last time: three small reads), else by scanning the array (capped like the full read).
pub fn read_variable(mem: &dyn Memory, sym: u64, name: &str, hint: Option<usize>) -> Variable {
    let Ok(array) = mem.read_u64(sym) else { return Variable::default() };
    if array == 0 {
        return Variable::default();
    }
    let prefix = format!("{name}=");
    let at = |i: usize| -> Option<Option<String>> {
        let s = mem.read_u64(array.wrapping_add(8 * i as u64)).ok()?;
        if s == 0 {
            return None;
        }
        let kv = mem.read_cstr(s, MAX_VARIABLE_BYTES).ok();
        Some(kv.and_then(|kv| kv.strip_prefix(&prefix).map(str::to_string)))
    };
    if let Some(i) = hint.filter(|&i| i < MAX_VARIABLES) {
        if let Some(Some(value)) = at(i) {
            return Variable { value: Some(value), index: Some(i) };
        }
    }
    // The pointers in chunks, then only the strings whose first bytes match.
    let mut chunk = [0u8; 8 * 64];
    let mut i = 0usize;
    while i < MAX_VARIABLES {
        let got = mem.read_partial(array.wrapping_add(8 * i as u64), &mut chunk) / 8;
        if got == 0 {
            break;
        }
        for k in 0..got {
            let s = u64::from_le_bytes(chunk[8 * k..8 * k + 8].try_into().unwrap_or([0; 8]));
            if s == 0 {
                return Variable::default();
            }
            let mut head = [0u8; 64];
            let n = mem.read_partial(s, &mut head[..prefix.len().min(64)]);
            if n == prefix.len().min(64) && head[..n] == prefix.as_bytes()[..n] {
                if let Ok(kv) = mem.read_cstr(s, MAX_VARIABLE_BYTES) {
                    if let Some(v) = kv.strip_prefix(&prefix) {
                        return Variable { value: Some(v.to_string()), index: Some(i + k) };
                    }
                }
            }
        }
        i += got;
    }
    Variable::default()
}

/// The variables a report shows: the allow-list, or all of them with `show_all`.
pub fn shown(env: Vec<(String, String)>, show_all: bool) -> Vec<EnvVar> {
    env.into_iter()
        .filter(|(k, _)| show_all || ENV_ALLOW.contains(&k.as_str()) || CI_ALLOW.contains(&k.as_str()))
        .map(|(name, value)| match ENV_SECRET.contains(&name.as_str()) {
            true => EnvVar { name, value: "(hidden)".into() },
            false => EnvVar { name, value },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ImageMemory;

    fn image(vars: &[&str]) -> (ImageMemory, u64) {
        let mut m = ImageMemory::new();
        let (sym, array, strings) = (0x1000u64, 0x2000u64, 0x10000u64);
        m.add(sym, vec![0; 8]).add(array, vec![0; 0x1000]).add(strings, vec![0; 0x1000]);
        m.write_u64(sym, array);
        let mut at = strings;
        let mut ptrs = Vec::new();
        for v in vars {
            m.write(at, format!("{v}\0").as_bytes());
            ptrs.push(at);
            at += 0x100;
        }
        ptrs.push(0);
        let bytes: Vec<u8> = ptrs.iter().flat_map(|p| p.to_le_bytes()).collect();
        m.write(array, &bytes);
        (m, sym)
    }

    #[test]
    fn secrets_are_hidden_even_with_show_env() {
        let env = vec![
            ("CRASHCATCH_SENTRY_DSN".to_string(), "https://k3y@h/1".to_string()),
            ("GITHUB_SHA".to_string(), "abc".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let all = shown(env.clone(), true);
        assert_eq!(all[0].value, "(hidden)");
        assert_eq!(all.len(), 3);
        let some = shown(env, false);
        assert_eq!(some.len(), 1, "the CI's facts are shown, the rest is not");
        assert_eq!(some[0].name, "GITHUB_SHA");
    }

    #[test]
    fn reads_one_variable_with_and_without_a_hint() {
        let (m, sym) = image(&["HOME=/root", "PYTEST_CURRENT_TESTX=no", "PYTEST_CURRENT_TEST=t.py::test_a (call)"]);
        let v = read_variable(&m, sym, "PYTEST_CURRENT_TEST", None);
        assert_eq!(v.value.as_deref(), Some("t.py::test_a (call)"));
        assert_eq!(v.index, Some(2));
        assert_eq!(read_variable(&m, sym, "PYTEST_CURRENT_TEST", Some(2)), v);
        // A stale hint falls back to the scan.
        assert_eq!(read_variable(&m, sym, "PYTEST_CURRENT_TEST", Some(0)), v);
        assert_eq!(read_variable(&m, sym, "NOPE", Some(7)), Variable::default());
    }
}
