//! The crash fingerprint: a short id of what identifies the bug, not the run. Two reports with
//! the same fingerprint are the same crash (the same signal, in the same native function,
//! reached from the same Python function), whatever the pid, the addresses, the interpreter
//! version, the xdist worker or the line numbers. docs/report-schema.md ("Fingerprint") says
//! exactly what goes in; [`input`] builds that text, [`fingerprint`] hashes it.

use std::path::{Path, PathBuf};

use crate::report::model::{is_python_runtime, project_path, Crash, NativeFrame};

/// Bumped when the input changes: ids of different versions never match by accident.
const VERSION: &str = "crashcatch-fingerprint-v1";

/// Hex digits kept of the SHA-256: 48 bits, no collision in practice among a run's crashes.
pub(crate) const LEN: usize = 12;

/// Caps on what is read from the (hostile) report: names longer than this are cut.
const MAX_NAME: usize = 512;

/// The fingerprint of a finished report; `root` is the project's folder (the crashed
/// process's working folder), against which Python file names are made relative.
pub fn fingerprint(crash: &Crash, root: Option<&Path>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, input(crash, root).as_bytes());
    let mut hex = String::with_capacity(LEN);
    for b in digest.as_ref() {
        hex.push_str(&format!("{b:02x}"));
        if hex.len() >= LEN {
            break;
        }
    }
    hex.truncate(LEN);
    hex
}

/// The folder the fingerprint's Python file names are made relative to: pytest's rootdir when
/// a test was running (its id names the test file relative to the rootdir, and a Python frame
/// of the process names it in full: the rootdir is what comes before), else the process's
/// working folder as it names it. The rootdir holds when a test changed folder
/// (`monkeypatch.chdir`), and is the same live, attached and post-mortem.
pub fn project_root(crash: &Crash, working_dir: Option<&str>) -> Option<PathBuf> {
    rootdir_of_test(crash).or_else(|| working_dir.filter(|w| w.starts_with('/')).map(PathBuf::from))
}

fn rootdir_of_test(crash: &Crash) -> Option<PathBuf> {
    let test = crash.process.test.as_deref()?;
    let test = test.rsplit_once(" (").map_or(test, |(t, _)| t);
    let file = test.split("::").next().unwrap_or("");
    if file.is_empty() || file.starts_with('/') || file.split('/').any(|c| c == ".." || c == ".") {
        return None;
    }
    let crashed = crash.threads.iter().filter(|t| t.crashed);
    let others = crash.threads.iter().filter(|t| !t.crashed);
    let frames = crashed.chain(others).flat_map(|t| t.python_frames());
    frames.take(10_000).find_map(|p| {
        let root = p.file.strip_suffix(file)?.strip_suffix('/')?;
        (root.starts_with('/') || root.is_empty()).then(|| PathBuf::from(if root.is_empty() { "/" } else { root }))
    })
}

/// The text that is hashed, one fact a line:
///
/// ```text
/// crashcatch-fingerprint-v1
/// signal SIGSEGV
/// native libc strlen
/// native _ctypes string_at
/// python tests/test_a.py inner
/// ```
pub fn input(crash: &Crash, root: Option<&Path>) -> String {
    let mut s = format!("{VERSION}\nsignal {}\n", cut(&crash.signal.name));
    for f in native_signature(crash) {
        s.push_str(&format!("native {} {}\n", module_key(f), function_key(f)));
    }
    if let Some(p) = crash.python_user_frame.as_ref().or(crash.python_call_site.as_ref()) {
        s.push_str(&format!("python {} {}\n", project_path(cut(&p.file), root), cut(&p.function)));
    }
    s
}

/// The faulting frame and, when it is in a system library or the interpreter, the first frame
/// outside both (strlen's caller, the extension's callback): see [`super::suspect_frames`].
fn native_signature(crash: &Crash) -> Vec<&NativeFrame> {
    let Some(thread) = crash.threads.iter().find(|t| t.crashed) else {
        return crash.culprit.iter().map(|c| &c.frame).collect();
    };
    let (top, outside) = super::suspect_frames(thread);
    top.into_iter().chain(outside).collect()
}

fn cut(s: &str) -> &str {
    match s.char_indices().nth(MAX_NAME) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The module's name without what changes between builds and interpreters: the folder, the
/// version and ABI suffixes (`_ctypes.cpython-311-x86_64-linux-gnu.so` → `_ctypes`,
/// `libc.so.6` → `libc`), an auditwheel hash (`librdkafka-0cb94173.so.1` → `librdkafka`);
/// the interpreter (libpython3.11.so, python3.12) is `python`.
pub(crate) fn module_key(f: &NativeFrame) -> String {
    let Some(path) = f.module.as_deref() else {
        return "?".into();
    };
    if is_python_runtime(path) {
        return "python".into();
    }
    let name = cut(path.rsplit('/').next().unwrap_or(path));
    let mut end = name.len();
    for marker in [".so", ".cpython-", ".abi3", ".pypy"] {
        if let Some(i) = name.find(marker) {
            end = end.min(i);
        }
    }
    let mut name = &name[..end];
    if let Some((stem, hash)) = name.rsplit_once('-') {
        if hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()) && !stem.is_empty() {
            name = stem;
        }
    }
    name.to_string()
}

/// The function that faulted, as the source names it: the innermost inlined function when
/// there is one (the same whether a build inlined it or not), without compiler clone suffixes
/// (`.cold`, `.isra.0`, `.part.1`); in a system library without the CPU variant glibc picked
/// (`__strlen_evex`, `__strlen_avx2` → `strlen`). An unnamed function is `?`: its offset
/// changes with every build.
pub(crate) fn function_key(f: &NativeFrame) -> String {
    let name = f.inlined.first().map(|i| i.function.as_str()).or(f.function.as_deref());
    let Some(name) = name else {
        return "?".into();
    };
    let name = without_clone_suffix(cut(name));
    if f.in_system_library() {
        without_cpu_variant(name)
    } else {
        name.to_string()
    }
}

fn without_clone_suffix(name: &str) -> &str {
    const CLONES: &[&str] = &["cold", "isra", "part", "constprop", "lto_priv", "llvm", "localalias"];
    let mut parts: Vec<&str> = name.split('.').collect();
    while parts.len() > 1 {
        let last = parts[parts.len() - 1];
        if last.bytes().all(|b| b.is_ascii_digit()) || CLONES.contains(&last) {
            parts.pop();
        } else {
            break;
        }
    }
    let keep: usize = parts.iter().map(|p| p.len()).sum::<usize>() + parts.len() - 1;
    &name[..keep]
}

/// `__strlen_evex` → `strlen`, `__memmove_avx_unaligned_erms` → `memmove`, `__GI_raise` → `raise`.
fn without_cpu_variant(name: &str) -> String {
    const VARIANTS: &[&str] = &[
        "evex",
        "evex512",
        "avx",
        "avx2",
        "avx512",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "sse2",
        "sse3",
        "ssse3",
        "sse4",
        "sse42",
        "sse4_1",
        "sse4_2",
        "sse",
        "erms",
        "unaligned",
        "aligned",
        "rtm",
        "vex",
        "x86_64",
        "generic",
        "baseline",
        "v2",
        "v3",
        "v4",
        "1",
        "2",
    ];
    let mut n = name.trim_start_matches('_');
    for prefix in ["GI_", "libc_", "IO_"] {
        if let Some(rest) = n.strip_prefix(prefix) {
            n = rest.trim_start_matches('_');
            break;
        }
    }
    let mut parts: Vec<&str> = n.split('_').collect();
    while parts.len() > 1 && VARIANTS.contains(&parts[parts.len() - 1]) {
        parts.pop();
    }
    let out = parts.join("_");
    if out.is_empty() {
        name.to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::Hex;
    use crate::report::model::PythonFrame;
    use crate::report::model::{
        CrashKind, Frame, InlinedFrame, ProcessInfo, SignalReport, Thread, Trust, SCHEMA_VERSION,
    };

    fn nf(module: &str, function: Option<&str>, offset: u64) -> NativeFrame {
        NativeFrame {
            address: Hex(0x7f00_0000_0000 + offset),
            module: Some(module.into()),
            module_offset: Some(Hex(offset)),
            function: function.map(Into::into),
            function_offset: None,
            file: None,
            line: Some(offset as u32),
            inlined: vec![],
            trust: Trust::Cfi,
            sp: None,
        }
    }

    fn py(file: &str, function: &str, line: u32) -> PythonFrame {
        PythonFrame { file: file.into(), function: function.into(), line: Some(line), ..Default::default() }
    }

    fn crash(frames: Vec<Frame>, user: Option<PythonFrame>, pid: i32) -> Crash {
        let call_site = frames.iter().find_map(|f| match f {
            Frame::Python(p) => Some(p.clone()),
            _ => None,
        });
        Crash {
            schema_version: SCHEMA_VERSION,
            kind: CrashKind::Crash,
            fingerprint: None,
            tool: Default::default(),
            time: format!("2026-01-01T00:00:{pid:02}Z"),
            process: ProcessInfo { pid, ..Default::default() },
            signal: SignalReport { number: 11, name: "SIGSEGV".into(), ..Default::default() },
            classification: None,
            culprit: None,
            python_call_site: call_site,
            python_user_frame: user,
            diagnosis: None,
            crashed_tid: pid,
            test_timeout: None,
            also_faulting: vec![],
            threads: vec![Thread { tid: pid, crashed: true, main: true, frames, ..Default::default() }],
            python: None,
            modules: vec![],
            notes: vec![],
            timings: Default::default(),
            files: vec![],
        }
    }

    /// A ctypes crash as pyenv's 3.11 (or 3.12, with `v`) reports it, from a project at `root`.
    fn ctypes_crash(v: &str, libc_fn: &str, root: &str, line: u32, pid: i32) -> Crash {
        let frames = vec![
            Frame::Native(nf("/usr/lib/x86_64-linux-gnu/libc.so.6", Some(libc_fn), 0x1000 + pid as u64)),
            Frame::Native(nf(
                &format!(
                    "/py/{v}/lib/python{v}/lib-dynload/_ctypes.cpython-{}-x86_64-linux-gnu.so",
                    v.replace('.', "")
                ),
                Some("string_at"),
                0x20 + line as u64,
            )),
            Frame::Native(nf("/usr/lib/x86_64-linux-gnu/libffi.so.8", None, 0x300)),
            Frame::Native(nf(&format!("/py/{v}/lib/libpython{v}.so.1.0"), Some("_PyObject_MakeTpCall"), 0x400)),
            Frame::Python(py(&format!("/py/{v}/lib/python{v}/ctypes/__init__.py"), "string_at", 519)),
            Frame::Python(py(&format!("{root}/tests/test_a.py"), "Helper.inner", line)),
            Frame::Native(nf(&format!("/py/{v}/lib/libpython{v}.so.1.0"), Some("PyEval_EvalCode"), 0x500)),
            Frame::Native(nf("/some/other/ext.so", Some("unrelated"), 0x600)),
        ];
        let user = py(&format!("{root}/tests/test_a.py"), "Helper.inner", line);
        crash(frames, Some(user), pid)
    }

    #[test]
    fn input_names_what_identifies_the_bug() {
        let c = ctypes_crash("3.11", "__strlen_evex", "/ws/proj", 12, 100);
        assert_eq!(
            input(&c, Some(Path::new("/ws/proj"))),
            "crashcatch-fingerprint-v1\nsignal SIGSEGV\nnative libc strlen\nnative _ctypes string_at\npython tests/test_a.py Helper.inner\n"
        );
    }

    #[test]
    fn same_bug_same_id_across_runs_interpreters_cpus_and_checkouts() {
        let a = ctypes_crash("3.11", "__strlen_evex", "/ws/proj", 12, 100);
        let b = ctypes_crash("3.12", "__strlen_avx2", "/home/ci/work/proj", 40, 4242);
        let fa = fingerprint(&a, Some(Path::new("/ws/proj")));
        let fb = fingerprint(&b, Some(Path::new("/home/ci/work/proj")));
        assert_eq!(fa.len(), LEN);
        assert!(fa.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(fa, fb);
    }

    #[test]
    fn different_bugs_different_ids() {
        let root = Some(Path::new("/ws/proj"));
        let base = fingerprint(&ctypes_crash("3.11", "__strlen_evex", "/ws/proj", 12, 1), root);
        // Another Python function.
        let mut c = ctypes_crash("3.11", "__strlen_evex", "/ws/proj", 12, 1);
        c.python_user_frame.as_mut().unwrap().function = "Helper.other".into();
        assert_ne!(fingerprint(&c, root), base);
        // Another libc function.
        let c = ctypes_crash("3.11", "__memcpy_evex_unaligned_erms", "/ws/proj", 12, 1);
        assert_ne!(fingerprint(&c, root), base);
        // Another signal.
        let mut c = ctypes_crash("3.11", "__strlen_evex", "/ws/proj", 12, 1);
        c.signal.name = "SIGBUS".into();
        assert_ne!(fingerprint(&c, root), base);
    }

    #[test]
    fn inlined_and_cloned_functions_read_as_the_source_names_them() {
        let mut f = nf("/x/libfoo.so.1", Some("outer.isra.0"), 1);
        assert_eq!(function_key(&f), "outer");
        f.inlined = vec![InlinedFrame { function: "leaf".into(), file: None, line: None }];
        assert_eq!(function_key(&f), "leaf");
        assert_eq!(function_key(&nf("/lib/libc.so.6", Some("__memmove_avx_unaligned_erms"), 1)), "memmove");
        assert_eq!(function_key(&nf("/lib/libc.so.6", Some("__GI_raise"), 1)), "raise");
        assert_eq!(
            function_key(&nf("/lib/libc.so.6", Some("__pthread_kill_implementation"), 1)),
            "pthread_kill_implementation"
        );
        assert_eq!(function_key(&nf("/lib/libc.so.6", None, 1)), "?");
        assert_eq!(
            function_key(&nf("/x/libfoo.so", Some("_PyEval_EvalFrameDefault.cold.12"), 1)),
            "_PyEval_EvalFrameDefault"
        );
    }

    #[test]
    fn module_names_lose_versions_abi_tags_and_hashes() {
        let m = |p: &str| module_key(&nf(p, None, 0));
        assert_eq!(m("/a/_ctypes.cpython-311-x86_64-linux-gnu.so"), "_ctypes");
        assert_eq!(m("/a/_rust.abi3.so"), "_rust");
        assert_eq!(m("/a/librdkafka-0cb94173.so.1"), "librdkafka");
        assert_eq!(m("/lib/libc.so.6"), "libc");
        assert_eq!(m("/py/lib/libpython3.11.so.1.0"), "python");
        assert_eq!(m("/usr/bin/python3.12"), "python");
        assert_eq!(m("/t/fixtures/fp/null_deref"), "null_deref");
    }

    #[test]
    fn the_project_root_is_pytests_rootdir_else_the_working_folder() {
        let mut c = ctypes_crash("3.11", "__strlen_evex", "/ws/proj", 12, 1);
        // No test: the working folder.
        assert_eq!(project_root(&c, Some("/ws/proj")), Some(PathBuf::from("/ws/proj")));
        assert_eq!(project_root(&c, Some("relative")), None);
        assert_eq!(project_root(&c, None), None);
        // A test, whose file a frame names: the rootdir, whatever folder the process was in.
        c.process.test = Some("tests/test_a.py::Helper::test_inner (call)".into());
        assert_eq!(project_root(&c, Some("/tmp/pytest-of-ci/x")), Some(PathBuf::from("/ws/proj")));
        assert_eq!(
            input(&c, project_root(&c, Some("/tmp/elsewhere")).as_deref()),
            "crashcatch-fingerprint-v1\nsignal SIGSEGV\nnative libc strlen\nnative _ctypes string_at\npython tests/test_a.py Helper.inner\n"
        );
        // A test id no frame names, or that climbs out: the working folder.
        c.process.test = Some("other/test_b.py::test_x (call)".into());
        assert_eq!(project_root(&c, Some("/ws")), Some(PathBuf::from("/ws")));
        c.process.test = Some("../tests/test_a.py::test_x (call)".into());
        assert_eq!(project_root(&c, Some("/ws")), Some(PathBuf::from("/ws")));
    }

    #[test]
    fn same_test_name_in_two_folders_two_ids() {
        let unit = ctypes_crash("3.11", "__strlen_evex", "/ws/proj/tests/unit", 12, 1);
        let integration = ctypes_crash("3.11", "__strlen_evex", "/ws/proj/tests/integration", 12, 1);
        let root = Some(Path::new("/ws/proj"));
        assert_ne!(fingerprint(&unit, root), fingerprint(&integration, root));
    }

    #[test]
    fn a_libpython_fault_names_the_extension_that_called_it() {
        let frames = vec![
            Frame::Native(nf("/py/lib/libpython3.11.so.1.0", Some("PyThreadState_New"), 1)),
            Frame::Native(nf("/py/lib/libpython3.11.so.1.0", Some("PyGILState_Ensure"), 2)),
            Frame::Native(nf("/site/confluent_kafka/cimpl.cpython-311-x86_64-linux-gnu.so", Some("oauth_cb"), 3)),
            Frame::Native(nf("/site/librdkafka-0cb94173.so.1", Some("rd_kafka_op_call"), 4)),
        ];
        let c = crash(frames, None, 5);
        assert_eq!(
            input(&c, None),
            "crashcatch-fingerprint-v1\nsignal SIGSEGV\nnative python PyThreadState_New\nnative cimpl oauth_cb\n"
        );
    }
}
