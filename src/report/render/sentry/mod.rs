//! A report as a Sentry-protocol event, for the trackers teams already run (Sentry, self-hosted
//! Sentry, GlitchTip, Bugsink): crashes as `fatal` events, hangs and test timeouts as `error`
//! events, each with the merged stack of the thread that matters as the exception's stack trace,
//! every other thread, the debug images, the tags of the run, and `fingerprint` set to
//! crashcatch's own so the tracker groups exactly as crashcatch does. docs/report-schema.md
//! ("Crash tracker events") maps the report's fields to the event's.
//!
//! The event is typed ([`event`]); [`render`] serializes it through the JSON escaper and keeps it
//! within the tracker's size limit by leaving out, step by step, what matters least (the other
//! threads' frames, then the other threads, then the images), saying so in the event.

pub mod context;
pub mod envelope;
pub mod event;
pub mod event_id;
pub mod frames;
pub mod images;

use std::collections::BTreeMap;

pub use context::Context;
use context::{tag_value, Origin};
use event::*;

use super::escape;
use super::summary::{one_line, python_site};
use crate::report::model::{Crash, CrashKind, PythonFrame};

/// Relay takes event items of up to 1 MB; this leaves room for what it adds.
pub const MAX_EVENT_BYTES: usize = 900 * 1024;
/// At most this many threads are listed.
pub const MAX_THREADS: usize = 256;
/// Longest string of the crashcatch context (a note, the command line).
const MAX_TEXT: usize = 2048;
/// At most this many notes.
const MAX_NOTES: usize = 32;

/// Whether a report is sent as an event: crashes and hangs (test timeouts included); a
/// `crashcatch dump` is a look at a running process, not a failure.
pub fn is_sent(crash: &Crash) -> bool {
    matches!(crash.kind, CrashKind::Crash | CrashKind::Hang)
}

/// An event, serialized.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub event_id: String,
    /// The event's JSON, escaped for the medium (valid JSON, no raw control character).
    pub json: String,
    /// What was left out to fit [`MAX_EVENT_BYTES`].
    pub left_out: Vec<String>,
}

/// How much of the report goes in: tried from the first (everything) to the last.
#[derive(Debug, Clone, Copy)]
struct Shape {
    main_frames: usize,
    other_frames: Option<usize>,
    threads: usize,
    all_images: bool,
    what: &'static str,
}

const SHAPES: &[Shape] = &[
    Shape {
        main_frames: frames::MAX_FRAMES,
        other_frames: Some(frames::MAX_FRAMES),
        threads: MAX_THREADS,
        all_images: true,
        what: "",
    },
    Shape {
        main_frames: frames::MAX_FRAMES,
        other_frames: Some(50),
        threads: MAX_THREADS,
        all_images: true,
        what: "frames of the other threads past their 50 innermost",
    },
    Shape {
        main_frames: frames::MAX_FRAMES,
        other_frames: Some(10),
        threads: MAX_THREADS,
        all_images: true,
        what: "frames of the other threads past their 10 innermost",
    },
    Shape {
        main_frames: frames::MAX_FRAMES,
        other_frames: None,
        threads: MAX_THREADS,
        all_images: true,
        what: "the other threads' stacks",
    },
    Shape {
        main_frames: 100,
        other_frames: None,
        threads: 16,
        all_images: false,
        what: "the other threads' stacks, threads past 16, images without frames, frames past 100",
    },
    Shape {
        main_frames: 20,
        other_frames: None,
        threads: 1,
        all_images: false,
        what: "every other thread, images without frames, frames past 20",
    },
];

/// The event of `crash`, serialized, as large as the tracker takes.
pub fn render(crash: &Crash, ctx: &Context) -> Rendered {
    let origin = ctx.origin(crash);
    let mut last = String::new();
    let mut left_out = Vec::new();
    for shape in SHAPES {
        left_out = if shape.what.is_empty() { Vec::new() } else { vec![shape.what.to_string()] };
        let ev = build(crash, ctx, &origin, *shape, &left_out);
        last = serialize(&ev);
        if last.len() <= MAX_EVENT_BYTES {
            break;
        }
    }
    Rendered { event_id: event_id::event_id(crash), json: last, left_out }
}

fn serialize(ev: &Event) -> String {
    let json = serde_json::to_string(ev).unwrap_or_else(|e| {
        serde_json::json!({ "event_id": ev.event_id, "message": format!("crashcatch: {e}") }).to_string()
    });
    escape::json::harden(json)
}

/// The event of `crash` in one shape.
fn build(crash: &Crash, ctx: &Context, origin: &Origin, shape: Shape, left_out: &[String]) -> Event {
    let arch = arch(crash);
    let lead = lead_thread(crash);
    let is_crash = crash.kind == CrashKind::Crash;
    let exception = Exception {
        ty: exception_type(crash),
        value: cut(&summary(crash), 1024),
        thread_id: lead.map(|t| t.tid as u64),
        mechanism: mechanism(crash),
        stacktrace: lead.and_then(|t| frames::stacktrace(t, shape.main_frames, is_crash, !is_crash)),
    };
    let mut threads: Vec<event::Thread> = Vec::new();
    let mut listed: Vec<&crate::report::model::Thread> = crash.threads.iter().collect();
    // The lead thread, the main thread and the GIL holder first, then by tid.
    listed.sort_by_key(|t| (Some(t.tid) != lead.map(|l| l.tid), !(t.main || t.holds_gil), t.tid));
    for t in listed.into_iter().take(shape.threads) {
        let is_lead = Some(t.tid) == lead.map(|l| l.tid);
        threads.push(event::Thread {
            id: t.tid as u64,
            name: t.name.as_deref().map(|n| cut(n, 256)),
            crashed: is_lead && is_crash,
            current: is_lead,
            main: t.main,
            stacktrace: match (is_lead, shape.other_frames) {
                (false, Some(max)) => frames::stacktrace(t, max, false, true),
                _ => None,
            },
        });
    }
    let mut images = images::images(crash, arch);
    if !shape.all_images {
        let used: Vec<String> = threads
            .iter()
            .filter_map(|t| t.stacktrace.as_ref())
            .chain(exception.stacktrace.as_ref())
            .flat_map(|s| s.frames.iter().filter_map(|f| f.package.clone()))
            .collect();
        images.retain(|i| used.contains(&i.code_file));
    }
    Event {
        event_id: event_id::event_id(crash),
        timestamp: valid_time(&crash.time).then(|| crash.time.clone()),
        platform: "native",
        level: if is_crash { Level::Fatal } else { Level::Error },
        logger: "crashcatch",
        release: origin.release.clone(),
        environment: origin.environment.clone(),
        server_name: origin.server_name.clone(),
        transaction: test_id(crash).and_then(|t| tag_value(&t)),
        fingerprint: fingerprint(crash),
        tags: tags(crash, origin, arch),
        exception: Values { values: vec![exception] },
        threads: Values { values: threads },
        debug_meta: DebugMeta { images },
        contexts: Contexts {
            os: OsContext { ty: "os", name: "Linux", kernel_version: ctx.kernel.clone() },
            device: DeviceContext { ty: "device", arch },
            runtime: python_version(crash).map(|v| RuntimeContext { ty: "runtime", name: "CPython", version: v }),
            crashcatch: crashcatch_context(crash, origin, left_out),
        },
        sdk: Sdk { name: "crashcatch", version: env!("CARGO_PKG_VERSION") },
    }
}

/// The thread whose stack is the exception's: the crashed thread, or in a hang the main thread
/// (it runs the test), else the first.
fn lead_thread(crash: &Crash) -> Option<&crate::report::model::Thread> {
    match crash.kind {
        CrashKind::Crash => crash
            .threads
            .iter()
            .find(|t| t.crashed)
            .or_else(|| crash.threads.iter().find(|t| t.tid == crash.crashed_tid)),
        _ => crash.threads.iter().find(|t| t.main),
    }
    .or(crash.threads.first())
}

fn exception_type(crash: &Crash) -> String {
    match crash.kind {
        _ if crash.test_timeout.is_some() => "TestTimeout".into(),
        CrashKind::Crash if !crash.signal.name.is_empty() => cut(&crash.signal.name, 64),
        CrashKind::Crash => "Crash".into(),
        _ => "Hang".into(),
    }
}

/// The report's one-line summary (the fingerprint has a field of its own).
fn summary(crash: &Crash) -> String {
    if crash.kind == CrashKind::Hang && crash.test_timeout.is_none() {
        let mut s = "still running at the --hang-timeout".to_string();
        if let Some(main) = crash.threads.iter().find(|t| t.main) {
            if let Some(n) = main.native_frames().next() {
                s.push_str(&format!("; main thread in {}", n.describe()));
            }
            if let Some(p) = main.user_frame().or_else(|| main.python_frames().next()) {
                s.push_str(&format!("; Python {}:{} in {}", p.file, p.line.unwrap_or(0), p.function));
            }
        }
        return s;
    }
    let mut s = one_line(crash);
    if let Some(f) = &crash.fingerprint {
        if let Some(stripped) = s.strip_suffix(&format!("; fingerprint {f}")) {
            s = stripped.to_string();
        }
    }
    s
}

fn mechanism(crash: &Crash) -> Mechanism {
    let sig = &crash.signal;
    let is_crash = crash.kind == CrashKind::Crash;
    let mut data = BTreeMap::new();
    if let (true, Some(a)) = (is_crash, sig.fault_address) {
        data.insert("relevant_address".to_string(), a.to_string());
    }
    if let Some(t) = &sig.terminated_by {
        data.insert("terminated_by".to_string(), cut(t, 64));
    }
    let description = match (&crash.classification, &crash.diagnosis) {
        (_, Some(d)) => Some(cut(d, MAX_TEXT)),
        (Some(c), None) => Some(cut(&c.summary, MAX_TEXT)),
        (None, None) => None,
    };
    Mechanism {
        ty: if crash.test_timeout.is_some() {
            "crashcatch.test_timeout"
        } else if is_crash {
            "crashcatch"
        } else {
            "crashcatch.hang"
        },
        handled: false,
        synthetic: is_crash,
        description,
        meta: (is_crash && sig.number > 0).then(|| MechanismMeta {
            signal: PosixSignal {
                number: sig.number,
                code: sig.code,
                name: cut(&sig.name, 64),
                code_name: sig.code_name.as_deref().map(|c| cut(c, 64)),
            },
        }),
        data,
    }
}

/// `[<crashcatch fingerprint>]` for crashes; a test timeout is grouped by its test, a hang by
/// where the main thread waits.
fn fingerprint(crash: &Crash) -> Vec<String> {
    if let Some(t) = &crash.test_timeout {
        return vec!["crashcatch-timeout".into(), cut(test_without_phase(&t.test), 512)];
    }
    match crash.kind {
        CrashKind::Crash => crash.fingerprint.iter().map(|f| cut(f, 64)).collect(),
        _ => {
            let main = crash.threads.iter().find(|t| t.main);
            let native = main
                .and_then(|t| t.native_frames().next())
                .map(|n| format!("{} {}", n.module_name().unwrap_or("?"), n.function.as_deref().unwrap_or("?")));
            let python = main.and_then(|t| t.user_frame()).map(|p| format!("{} {}", p.file, p.function));
            vec!["crashcatch-hang".into(), cut(&native.unwrap_or_default(), 512), cut(&python.unwrap_or_default(), 512)]
        }
    }
}

fn tags(crash: &Crash, origin: &Origin, arch: &str) -> BTreeMap<String, String> {
    let mut t = origin.tags.clone();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.as_deref().and_then(tag_value) {
            t.insert(k.to_string(), v);
        }
    };
    put("kind", Some(crash.kind.as_str().into()));
    put(
        "signal",
        Some(match crash.kind {
            _ if crash.test_timeout.is_some() => "timeout".into(),
            CrashKind::Crash => crash.signal.name.clone(),
            _ => "hang".into(),
        }),
    );
    put("test", test_id(crash));
    put("fingerprint", crash.fingerprint.clone());
    put("python.version", python_version(crash));
    put("python.implementation", crash.python.as_ref().map(|_| "CPython".into()));
    put("interpreter.state", crash.python.as_ref().and_then(|p| p.state).map(|s| s.words().into()));
    put(
        "classification",
        crash.classification.as_ref().and_then(|c| serde_json::to_value(c.kind).ok()?.as_str().map(str::to_string)),
    );
    put(
        "native.module",
        crash
            .culprit
            .as_ref()
            .map(|c| c.first_outside_system.as_ref().unwrap_or(&c.frame))
            .and_then(|f| f.module_name().map(str::to_string)),
    );
    put(
        "xdist.worker",
        crash.process.environment.iter().find(|v| v.name == "PYTEST_XDIST_WORKER").map(|v| v.value.clone()),
    );
    put("arch", Some(arch.to_string()));
    t
}

fn crashcatch_context(crash: &Crash, origin: &Origin, left_out: &[String]) -> CrashcatchContext {
    let describe = |p: &PythonFrame| format!("{}:{} in {}", p.file, p.line.unwrap_or(0), p.function);
    CrashcatchContext {
        ty: "crashcatch",
        kind: crash.kind.as_str(),
        pid: crash.process.pid,
        fingerprint: crash.fingerprint.clone(),
        test: crash.process.test.as_deref().map(|t| cut(t, MAX_TEXT)),
        classification: crash.classification.as_ref().map(|c| cut(&c.summary, MAX_TEXT)),
        diagnosis: crash.diagnosis.as_deref().map(|d| cut(d, MAX_TEXT)),
        faulted: crash.culprit.as_ref().map(|c| cut(&c.frame.describe(), MAX_TEXT)),
        called_from: crash
            .culprit
            .as_ref()
            .and_then(|c| c.first_outside_system.as_ref())
            .map(|f| cut(&f.describe(), MAX_TEXT)),
        python_call_site: python_site(crash).map(|p| cut(&describe(p), MAX_TEXT)),
        interpreter: crash.python.as_ref().map(|p| {
            let mut s = format!("CPython {}", p.version.as_deref().unwrap_or("(version unknown)"));
            if let Some(st) = p.state {
                s.push_str(&format!(", {}", st.words()));
            }
            if let Some(g) = p.gil_holder_tid {
                s.push_str(&format!("; thread {g} holds the GIL"));
            }
            cut(&s, MAX_TEXT)
        }),
        command: (!crash.process.cmdline.is_empty()).then(|| cut(&crash.process.cmdline.join(" "), MAX_TEXT)),
        report: crash.files.first().map(|f| cut(f, MAX_TEXT)),
        ci_url: origin.ci_url.as_deref().map(|u| cut(u, MAX_TEXT)),
        notes: crash.notes.iter().take(MAX_NOTES).map(|n| cut(n, MAX_TEXT)).collect(),
        left_out: left_out.to_vec(),
    }
}

/// The pytest test without its phase: `t.py::test_a` of `t.py::test_a (call)`.
fn test_id(crash: &Crash) -> Option<String> {
    let t = crash.test_timeout.as_ref().map(|t| t.test.as_str()).or(crash.process.test.as_deref())?;
    Some(test_without_phase(t).to_string())
}

fn test_without_phase(t: &str) -> &str {
    match t.rsplit_once(" (") {
        Some((id, phase)) if phase.ends_with(')') => id,
        _ => t,
    }
}

fn python_version(crash: &Crash) -> Option<String> {
    crash.python.as_ref()?.version.as_deref().filter(|v| v.len() <= 32).map(str::to_string)
}

/// The architecture the report's registers were read on (this build's otherwise).
fn arch(crash: &Crash) -> &'static str {
    let regs = crash.threads.iter().find_map(|t| t.registers.as_ref());
    match regs {
        Some(r) if r.contains_key("rip") => "x86_64",
        Some(r) if r.contains_key("x29") || r.contains_key("pc") => "aarch64",
        _ => std::env::consts::ARCH,
    }
}

/// `2026-11-25T15:04:12.123Z`: the shape the report writes (a report read back may hold anything).
fn valid_time(t: &str) -> bool {
    let b = t.as_bytes();
    (20..=35).contains(&b.len())
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && t.ends_with('Z')
        && b.iter().all(|c| c.is_ascii_digit() || b"-:.TZ".contains(c))
}

/// At most `max` characters.
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Frame as ModelFrame, Hex, ModuleInfo, NativeFrame, ProcessInfo, SignalReport, Trust};

    fn big_crash(threads: usize, frames: usize) -> Crash {
        let process = ProcessInfo { pid: 7, cmdline: vec!["python3".into()], ..Default::default() };
        let signal = SignalReport { number: 11, name: "SIGSEGV".into(), code: 1, ..Default::default() };
        let mut c = Crash::minimal(CrashKind::Crash, "2026-11-25T15:04:12.123Z".into(), process, signal, 7, "n".into());
        c.fingerprint = Some("0123456789ab".into());
        c.modules = (0..2000)
            .map(|i| ModuleInfo {
                path: format!("/usr/lib/python3/dist-packages/pkg{i}/_native.cpython-311-x86_64-linux-gnu.so"),
                base: Hex(0x1000_0000 * (i + 1)),
                end: Hex(0x1000_0000 * (i + 1) + 0x10000),
                build_id: Some(format!("{:040x}", i + 1)),
                debug_file: None,
            })
            .collect();
        c.threads = (0..threads)
            .map(|t| crate::report::model::Thread {
                tid: 7 + t as i32,
                crashed: t == 0,
                main: t == 0,
                frames: (0..frames)
                    .map(|i| {
                        let mut f = NativeFrame::at(0x1000_0000 * (i as u64 % 2000 + 1) + 0x10, Trust::Cfi);
                        f.module = Some(c.modules[i % 2000].path.clone());
                        f.function = Some(format!("namespace::Class<{}>::method_{i}", "T".repeat(100)));
                        f.file = Some(format!("/build/src/very/long/path/{i}/file.cc"));
                        f.line = Some(i as u32);
                        ModelFrame::Native(f)
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        c
    }

    #[test]
    fn a_huge_report_fits_the_tracker_and_says_what_it_left_out() {
        let c = big_crash(300, 250);
        let r = render(&c, &Context::default());
        assert!(r.json.len() <= MAX_EVENT_BYTES, "{} bytes", r.json.len());
        assert!(!r.left_out.is_empty());
        let v: serde_json::Value = serde_json::from_str(&r.json).unwrap();
        assert_eq!(v["contexts"]["crashcatch"]["left_out"][0], r.left_out[0].as_str());
        assert_eq!(v["fingerprint"][0], "0123456789ab");
        assert!(!v["exception"]["values"][0]["stacktrace"]["frames"].as_array().unwrap().is_empty());
        // A small one is whole.
        let small = render(&big_crash(2, 5), &Context::default());
        assert!(small.left_out.is_empty());
        let v: serde_json::Value = serde_json::from_str(&small.json).unwrap();
        assert_eq!(v["threads"]["values"][1]["stacktrace"]["frames"].as_array().unwrap().len(), 5);
        assert_eq!(v["threads"]["values"][1]["stacktrace"]["snapshot"], true);
        assert_eq!(v["debug_meta"]["images"].as_array().unwrap().len(), images::MAX_IMAGES);
    }

    #[test]
    fn hangs_and_timeouts_are_errors_grouped_by_test_or_place() {
        use crate::report::model::{TestTimeout, TimeoutAction};
        let mut c = big_crash(1, 3);
        c.kind = CrashKind::Hang;
        c.fingerprint = None;
        let v: serde_json::Value = serde_json::from_str(&render(&c, &Context::default()).json).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["exception"]["values"][0]["type"], "Hang");
        assert_eq!(v["fingerprint"][0], "crashcatch-hang");
        assert!(v["exception"]["values"][0]["mechanism"].get("meta").is_none());
        c.test_timeout = Some(TestTimeout {
            test: "t.py::test_x[a b] (call)".into(),
            limit_s: 1.0,
            elapsed_s: 1.5,
            action: TimeoutAction::Kill,
        });
        let v: serde_json::Value = serde_json::from_str(&render(&c, &Context::default()).json).unwrap();
        assert_eq!(v["exception"]["values"][0]["type"], "TestTimeout");
        assert_eq!(v["fingerprint"], serde_json::json!(["crashcatch-timeout", "t.py::test_x[a b]"]));
        assert_eq!(v["tags"]["signal"], "timeout");
        assert_eq!(v["transaction"], "t.py::test_x[a b]");
        c.kind = CrashKind::Dump;
        assert!(!is_sent(&c));
    }
}
