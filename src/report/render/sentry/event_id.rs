//! The event id, derived from the report rather than drawn at random: the same report sent twice
//! (live, then again by `crashcatch upload` from the CI artifacts) is one event, as trackers
//! drop an event whose id they already have. What goes in names one report: the kind, the
//! process, the moment and thread of the signal, the command and the fingerprint.

use crate::report::model::Crash;

/// Bumped when the input changes.
const VERSION: &str = "crashcatch-event-id-v1";

/// 32 lowercase hex digits: the first 16 bytes of a SHA-256, marked as an RFC 9562 version 8
/// (custom) UUID, the form Sentry's `event_id` takes.
pub fn event_id(crash: &Crash) -> String {
    let mut input = format!(
        "{VERSION}\n{}\n{}\n{}\n{}\n{}\n",
        crash.kind.as_str(),
        crash.process.pid,
        crash.time,
        crash.crashed_tid,
        crash.fingerprint.as_deref().unwrap_or("-"),
    );
    input.push_str(crash.process.exe.as_deref().unwrap_or("-"));
    for arg in crash.process.cmdline.iter().take(64) {
        input.push('\0');
        input.extend(arg.chars().take(4096));
    }
    if let Some(t) = &crash.test_timeout {
        input.push('\n');
        input.push_str(&t.test);
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, input.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{CrashKind, ProcessInfo, SignalReport};

    fn crash(pid: i32, time: &str) -> Crash {
        let process = ProcessInfo { pid, cmdline: vec!["python3".into(), "t.py".into()], ..Default::default() };
        Crash::minimal(CrashKind::Crash, time.into(), process, SignalReport::default(), pid, String::new())
    }

    #[test]
    fn one_report_one_id() {
        let a = event_id(&crash(7, "2026-11-25T15:04:12.123Z"));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(&a[12..13], "8", "version 8");
        assert_eq!(a, event_id(&crash(7, "2026-11-25T15:04:12.123Z")));
        assert_ne!(a, event_id(&crash(8, "2026-11-25T15:04:12.123Z")));
        assert_ne!(a, event_id(&crash(7, "2026-11-25T15:04:12.124Z")));
    }
}
