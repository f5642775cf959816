//! `crashcatch upload --sentry-dsn DSN DIR...`: the crash and hang reports found in folders (CI
//! artifacts collected by an earlier job) sent to a Sentry-protocol tracker, one event each,
//! within one time budget (`--sentry-timeout`, 60 s by default). Idempotent: an event's id is
//! derived from its report, so a report already sent (live, or by an earlier upload) is one
//! event in the tracker however often it is uploaded. The CI tags are those the report recorded
//! from the crashed process's environment; `CRASHCATCH_RELEASE` and `CRASHCATCH_ENVIRONMENT` are
//! the uploader's. Exit status 0 when every report was read and sent, 1 otherwise, 2 for a bad
//! command line or DSN.

use std::time::{Duration, Instant};

use crashcatch::capture::analysis::fingerprint;
use crashcatch::contain;
use crashcatch::report::input;
use crashcatch::report::model::CrashKind;
use crashcatch::report::output::console;
use crashcatch::report::output::sentry::{send_one, Delivery, Dsn, Outcome};
use crashcatch::report::render::escape::terminal;
use crashcatch::report::render::sentry::{is_sent, Context};

use crate::cli::UploadArgs;

/// The budget when `--sentry-timeout` is not given: an upload is a step of its own.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run(a: &UploadArgs) -> i32 {
    let dsn = match Dsn::parse(&a.sentry_dsn) {
        Ok(d) => d,
        Err(e) => {
            console::say(&format!("--sentry-dsn: {e}"));
            return 2;
        }
    };
    let found = input::find_reports(&a.paths);
    for line in found.missing.iter().chain(&found.skipped) {
        console::say(&format!("skipped {line}"));
    }
    let target = dsn.to_string();
    let mut delivery = match Delivery::new(dsn) {
        Ok(d) => d,
        Err(why) => {
            console::say(&format!("upload: {why}"));
            return 1;
        }
    };
    let context = Context::upload(|k| std::env::var(k).ok());
    let deadline = Instant::now() + a.sentry_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let (mut sent, mut failed, mut others) = (0usize, 0usize, 0usize);
    let mut first_failure = None;
    // One report at a time, read whole through the door, sent, dropped.
    for path in &found.files {
        let mut crash = match input::read_crash(path) {
            Ok(c) => c,
            Err(why) => {
                console::say(&format!("skipped {}: {why}", path.display()));
                continue;
            }
        };
        if !is_sent(&crash) {
            others += 1;
            continue;
        }
        // Reports written before fingerprints existed: computed from the report itself.
        if crash.kind == CrashKind::Crash && crash.fingerprint.is_none() {
            crash.fingerprint =
                Some(fingerprint::fingerprint(&crash, fingerprint::project_root(&crash, None).as_deref()));
        }
        let outcome = contain::contain(|| send_one(&mut delivery, &crash, &context, deadline))
            .unwrap_or_else(|why| Outcome::NotSent(format!("internal error: {why}")));
        match outcome {
            Outcome::Sent => sent += 1,
            Outcome::NotSent(why) => {
                failed += 1;
                first_failure.get_or_insert(format!("{}: {why}", path.display()));
            }
        }
    }
    if others > 0 {
        console::say(&format!("{others} report{} of crashcatch dump not sent (not a crash or hang)", plural(others)));
    }
    match first_failure {
        None => console::say(&format!("sent {sent} event{} to {target}", plural(sent))),
        Some(why) => console::say(&format!(
            "{failed} of {} event{} not sent to {target}: {}",
            sent + failed,
            plural(sent + failed),
            terminal::text(&why)
        )),
    }
    i32::from(failed > 0 || !found.missing.is_empty())
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
