//! The crash tracker event and envelope under hostile strings: random text (escape sequences,
//! newlines, C1 controls, line separators, bidirectional overrides, workflow commands, huge
//! names) in every string of a report, from the target or from a report file read back. The
//! event must be valid JSON with no raw control character, its tags one line of at most 200
//! characters, its release one Sentry accepts or none, and the envelope must parse item by item.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use crashcatch::report::model::*;
use crashcatch::report::render::sentry::envelope::Envelope;
use crashcatch::report::render::sentry::{render, Context, MAX_EVENT_BYTES};
use proptest::prelude::*;

fn hostile() -> impl Strategy<Value = String> {
    common::hostile::hostile_string(6)
}

fn is_hostile(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

prop_compose! {
    fn crash()(s in prop::collection::vec(hostile(), 14), time_ok in any::<bool>()) -> Crash {
        let mut native = NativeFrame::at(0x401000, Trust::Context);
        native.module = Some(format!("/{}", s[0]));
        native.function = Some(s[1].clone());
        native.function_offset = Some(Hex(4));
        native.file = Some(s[2].clone());
        native.line = Some(3);
        native.inlined = vec![InlinedFrame { function: s[3].clone(), file: Some(s[4].clone()), line: Some(1) }];
        let py = PythonFrame { file: format!("/{}", s[5]), function: s[6].clone(), line: Some(8), source: Some(s[7].clone()), ..PythonFrame::default() };
        let process = ProcessInfo {
            pid: 9,
            exe: Some(s[8].clone()),
            cmdline: vec![s[8].clone(), s[9].clone()],
            test: Some(format!("{} (call)", s[10])),
            environment: vec![
                EnvVar { name: "GITHUB_ACTIONS".into(), value: "true".into() },
                EnvVar { name: "GITHUB_JOB".into(), value: s[11].clone() },
                EnvVar { name: "GITHUB_SHA".into(), value: s[12].clone() },
                EnvVar { name: "PYTEST_XDIST_WORKER".into(), value: s[13].clone() },
            ],
            ..Default::default()
        };
        let signal = SignalReport { number: 11, name: s[1].clone(), code: 1, code_name: Some(s[2].clone()), ..Default::default() };
        let time = if time_ok { "2026-11-25T15:04:12.123Z".to_string() } else { s[3].clone() };
        let mut c = Crash::minimal(CrashKind::Crash, time, process, signal, 9, s[4].clone());
        c.fingerprint = Some(s[5].clone());
        c.diagnosis = Some(s[6].clone());
        c.classification = Some(Classification { kind: ClassificationKind::Abort, summary: s[7].clone(), message: None });
        c.culprit = Some(Culprit { frame: native.clone(), first_outside_system: Some(native.clone()), suspect: None });
        c.python_call_site = Some(py.clone());
        c.python = Some(PythonState { version: Some(s[9].clone()), ..Default::default() });
        c.modules = vec![ModuleInfo { path: format!("/{}", s[0]), base: Hex(0x400000), end: Hex(0x500000), build_id: Some(s[10].clone()), debug_file: Some(s[11].clone()) }];
        c.threads = vec![Thread {
            tid: 9,
            name: Some(s[12].clone()),
            crashed: true,
            main: true,
            frames: vec![Frame::Native(native), Frame::Python(py)],
            ..Default::default()
        }];
        c
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn events_of_hostile_reports_are_clean_json(c in crash()) {
        let ctx = Context::upload(|_| None);
        let r = render(&c, &ctx);
        prop_assert!(r.json.len() <= MAX_EVENT_BYTES);
        let raw: Vec<char> = r.json.chars().filter(|c| is_hostile(*c)).collect();
        prop_assert!(raw.is_empty(), "raw {:?}", raw);
        let v: serde_json::Value = serde_json::from_str(&r.json).expect("valid JSON");
        for (k, t) in v["tags"].as_object().unwrap() {
            let t = t.as_str().unwrap();
            prop_assert!(t.chars().count() <= 200 && !t.chars().any(|c| c.is_control() || is_hostile(c)), "{}: {:?}", k, t);
            prop_assert!(!t.is_empty() && t.trim() == t);
        }
        if let Some(rel) = v["release"].as_str() {
            prop_assert!(!rel.contains('/') && !rel.chars().any(char::is_control) && rel.chars().count() <= 200);
        }
        // The envelope parses item by item, whatever the strings.
        let bytes = Envelope::of(&c, &r, true).encode();
        let first = bytes.iter().position(|&b| b == b'\n').unwrap();
        let head: serde_json::Value = serde_json::from_slice(&bytes[..first]).unwrap();
        prop_assert_eq!(head["event_id"].as_str(), Some(r.event_id.as_str()));
        let mut rest = &bytes[first + 1..];
        let mut items = 0;
        while !rest.is_empty() {
            let nl = rest.iter().position(|&b| b == b'\n').unwrap();
            let h: serde_json::Value = serde_json::from_slice(&rest[..nl]).unwrap();
            let len = h["length"].as_u64().unwrap() as usize;
            prop_assert_eq!(rest[nl + 1 + len], b'\n');
            rest = &rest[nl + 2 + len..];
            items += 1;
        }
        prop_assert_eq!(items, 3);
    }
}
