//! A stopped process in, a report out: runs unwind, symbolize, python and merge in order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::merge;
use crate::modules::ModuleSet;
use crate::process::{MemoryExt, Snapshot};
use crate::python;
use crate::report::classify::{self, Facts};
use crate::report::model::*;
use crate::report::signals;
use crate::symbolize::Symbolizer;
use crate::unwind::{self, Limits};

/// Settings that shape a report.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Skip the Python stage (tests, or when the user asks).
    pub no_python: bool,
    /// Put the whole environment in the report (default: only an allow-list of names).
    pub show_env: bool,
}

/// Libraries whose faults are usually the caller's bug (strlen(NULL)): the culprit also names
/// the first frame outside them.
pub fn is_system_module(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    // libffi is call glue (ctypes, cffi): the caller beyond it is the one that matters.
    [
        "libc.so",
        "libc-",
        "ld-linux",
        "libpthread",
        "libm.so",
        "libdl.so",
        "librt.so",
        "libstdc++",
        "libgcc_s",
        "[vdso]",
        "libc.musl",
        "ld-musl",
        "libffi.so",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// glibc keeps the text of a failed assert() (and of its own fatal messages) in `__abort_msg`:
/// a pointer to `{ unsigned int size; char msg[]; }`.
fn abort_message(snap: &Snapshot<'_>, modules: &ModuleSet) -> Option<String> {
    let libc = modules.by_name(|n| n.starts_with("libc.so") || n.starts_with("libc-")).next()?;
    let sym = libc.symbol_address("__abort_msg")?;
    let p = snap.memory.read_u64(sym).ok()?;
    if p == 0 {
        return None;
    }
    let msg = snap.memory.read_cstr(p + 4, 4096).ok()?;
    (!msg.is_empty()).then_some(msg)
}

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

/// The live environment of the process: libc's `environ` array, read from memory (pytest
/// sets PYTEST_CURRENT_TEST after start-up, so /proc/PID/environ does not have it). Falls
/// back to /proc/PID/environ when libc's symbol cannot be found.
pub fn live_environment(snap: &Snapshot<'_>, modules: &ModuleSet) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let environ = modules
        .by_name(|n| {
            n.starts_with("libc.so") || n.starts_with("libc-") || n.starts_with("ld-musl") || n.starts_with("libc.musl")
        })
        .find_map(|m| m.symbol_address("__environ").or_else(|| m.symbol_address("environ")));
    if let Some(sym) = environ {
        if let Ok(mut p) = snap.memory.read_u64(sym) {
            for _ in 0..4096 {
                let Ok(s) = snap.memory.read_u64(p) else { break };
                if s == 0 {
                    break;
                }
                if let Ok(kv) = snap.memory.read_cstr(s, 64 * 1024) {
                    if let Some((k, v)) = kv.split_once('=') {
                        out.push((k.to_string(), v.to_string()));
                    }
                }
                p += 8;
            }
            if !out.is_empty() {
                return out;
            }
        }
    }
    if let Ok(b) = std::fs::read(format!("/proc/{}/environ", snap.pid)) {
        for kv in b.split(|&c| c == 0) {
            let kv = String::from_utf8_lossy(kv);
            if let Some((k, v)) = kv.split_once('=') {
                out.push((k.to_string(), v.to_string()));
            }
        }
    }
    out
}

fn registers_map(r: &crate::process::Registers) -> BTreeMap<String, Hex> {
    let mut m = BTreeMap::new();
    for (n, v) in [
        ("rax", r.rax),
        ("rbx", r.rbx),
        ("rcx", r.rcx),
        ("rdx", r.rdx),
        ("rsi", r.rsi),
        ("rdi", r.rdi),
        ("rbp", r.rbp),
        ("rsp", r.rsp),
        ("r8", r.r8),
        ("r9", r.r9),
        ("r10", r.r10),
        ("r11", r.r11),
        ("r12", r.r12),
        ("r13", r.r13),
        ("r14", r.r14),
        ("r15", r.r15),
        ("rip", r.rip),
        ("eflags", r.eflags),
        ("fs_base", r.fs_base),
    ] {
        m.insert(n.to_string(), Hex(v));
    }
    m
}

/// Builds the report for a stopped process. `capture_time` is how long the supervisor took to
/// stop the threads and read their registers.
pub fn build_report(snap: &Snapshot<'_>, opts: &Options, capture_time: Duration) -> Crash {
    let t0 = Instant::now();
    let modules = ModuleSet::from_snapshot(snap);
    let mut notes = Vec::new();

    // Native stacks.
    let t_unwind = Instant::now();
    let mut raw = Vec::with_capacity(snap.threads.len());
    for t in &snap.threads {
        match &t.regs {
            Some(regs) => raw.push(Some(unwind::unwind(regs, snap.memory, &modules, Limits::default()))),
            None => raw.push(None),
        }
    }
    let unwind_ms = ms(t_unwind.elapsed());

    // Debug files of the frames' modules from debuginfod servers, when configured (bounded).
    let pcs = raw.iter().flatten().flat_map(|s| s.frames.iter().map(|f| f.pc));
    crate::modules::debuginfod::fetch_missing(&modules, pcs, &mut notes);

    let t_sym = Instant::now();
    let symbolizer = Symbolizer::new(&modules);
    let natives: Vec<Vec<NativeFrame>> = raw
        .iter()
        .map(|r| r.as_ref().map(|s| s.frames.iter().map(|f| symbolizer.symbolize(f)).collect()).unwrap_or_default())
        .collect();
    let symbolize_ms = ms(t_sym.elapsed());

    // Python.
    let t_py = Instant::now();
    let py = if opts.no_python { None } else { python::inspect(snap, &modules) };
    let python_ms = ms(t_py.elapsed());

    // Threads, merged.
    let mut threads = Vec::with_capacity(snap.threads.len());
    for ((t, r), native) in snap.threads.iter().zip(&raw).zip(natives) {
        let py_thread = py
            .as_ref()
            .and_then(|p| p.interpreters.iter().flat_map(|i| i.threads.iter()).find(|pt| pt.tid == Some(t.tid)));
        let elided_at = r.as_ref().and_then(|s| s.elided);
        let (frames, merge, elided) = match elided_at {
            Some((at, count)) => {
                let m = merge::merge_thread_elided(native, py_thread, at);
                (m.frames, m.info, Some(Elided { at: m.at, count, python_count: m.python_elided }))
            }
            None => {
                let (f, m) = merge::merge_thread(native, py_thread);
                (f, m, None)
            }
        };
        let crashed = t.tid == snap.crashed_tid;
        threads.push(Thread {
            tid: t.tid,
            name: t.name.clone(),
            crashed,
            main: t.tid == snap.pid,
            holds_gil: py_thread.is_some_and(|p| p.holds_gil),
            frames,
            elided,
            merge,
            unwind_error: match (r, &t.note) {
                (Some(s), _) => s.error.clone(),
                (None, Some(n)) => Some(n.clone()),
                (None, None) => Some("registers could not be read".into()),
            },
            registers: if crashed { t.regs.as_ref().map(registers_map) } else { None },
        });
    }
    threads.sort_by_key(|t| (!t.crashed, t.tid));

    // The culprit: the crashed thread's innermost native frame, and the first frame outside
    // the system libraries when it faulted inside one.
    let crashed = threads.iter().find(|t| t.crashed);
    let crashed_native: Vec<NativeFrame> = crashed.map(|t| t.native_frames().cloned().collect()).unwrap_or_default();
    let culprit = crashed_native.first().map(|top| {
        let in_system = top.module.as_deref().is_some_and(is_system_module);
        let first_outside_system = if in_system {
            crashed_native.iter().skip(1).find(|f| f.module.as_deref().is_some_and(|m| !is_system_module(m))).cloned()
        } else {
            None
        };
        Culprit { frame: top.clone(), first_outside_system }
    });
    let python_call_site = crashed.and_then(|t| t.python_frames().next().cloned());

    // Classification.
    let crashed_regs = snap.thread(snap.crashed_tid).and_then(|t| t.regs.as_ref());
    let insn = crashed_regs.and_then(|r| {
        let mut b = [0u8; 2];
        snap.memory.read_exact(r.rip, &mut b).ok().map(|_| b)
    });
    let abort_msg = if snap.signal.signo == libc::SIGABRT { abort_message(snap, &modules) } else { None };
    let classification = classify::classify(&Facts {
        signal: &snap.signal,
        regs: crashed_regs,
        maps: &snap.maps,
        abort_message: abort_msg,
        top_functions: crashed_native.iter().filter_map(|f| f.function.clone()).take(12).collect(),
        insn,
    });

    let (code_name, desc) = signals::code_name(snap.signal.signo, snap.signal.code);
    let signal = SignalReport {
        number: snap.signal.signo,
        name: signals::signal_name(snap.signal.signo),
        code: snap.signal.code,
        code_name: code_name.map(str::to_string),
        description: desc.to_string(),
        fault_address: snap.signal.addr.map(Hex),
        sender_pid: snap.signal.sender_pid,
        terminated_by: None,
    };

    let module_infos = modules
        .iter()
        .map(|m| ModuleInfo {
            path: m.path.clone(),
            base: Hex(m.start),
            end: Hex(m.end),
            build_id: m.build_id_hex(),
            debug_file: m
                .elf()
                .ok()
                .and_then(|e| e.loaded_debug_file())
                .and_then(|d| d.path.as_ref())
                .map(|p| p.display().to_string()),
        })
        .collect();

    if let Some(p) = &py {
        notes.extend(p.errors.iter().map(|e| format!("python: {e}")));
    }

    let env = live_environment(snap, &modules);
    let test = env.iter().find(|(k, _)| k == "PYTEST_CURRENT_TEST").map(|(_, v)| v.clone());
    let environment = env
        .into_iter()
        .filter(|(k, _)| opts.show_env || ENV_ALLOW.contains(&k.as_str()))
        .map(|(name, value)| EnvVar { name, value })
        .collect();

    let total = capture_time + t0.elapsed();
    let mut crash = Crash {
        schema_version: SCHEMA_VERSION,
        kind: "crash".into(),
        tool: Tool::default(),
        time: now_rfc3339(),
        process: ProcessInfo {
            pid: snap.pid,
            exe: snap.exe.clone(),
            cmdline: snap.cmdline.clone(),
            test,
            ancestry: Vec::new(),
            environment,
        },
        signal,
        classification,
        culprit,
        python_user_frame: None,
        python_call_site,
        diagnosis: None,
        crashed_tid: snap.crashed_tid,
        also_faulting: Vec::new(),
        threads,
        python: py,
        modules: module_infos,
        notes,
        timings: Timings { capture_ms: ms(capture_time), unwind_ms, symbolize_ms, python_ms, total_ms: ms(total) },
        files: Vec::new(),
    };
    if let Some(t) = crash.threads.iter().find(|t| t.crashed) {
        crash.python_user_frame =
            crate::report::diagnose::user_frame(t).filter(|u| Some(*u) != crash.python_call_site.as_ref()).cloned();
    }
    crash.diagnosis = crate::report::diagnose::diagnose(&crash);
    crash
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_shape() {
        let s = super::now_rfc3339();
        assert_eq!(s.len(), 24, "{s}");
        assert!(s.ends_with('Z') && s.as_bytes()[10] == b'T');
    }
}
