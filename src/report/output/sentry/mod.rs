//! The crash tracker output (`--sentry-dsn`): every crash and hang report becomes one event, sent
//! to a Sentry-protocol tracker (Sentry, self-hosted Sentry, GlitchTip, Bugsink) as an envelope
//! with the text and JSON reports attached.
//!
//! Delivery never hurts the run. A report reaches this output once its files are on disk; it is
//! queued for a sender thread of its own (signals blocked), so the supervisor goes on to deliver
//! the signal at once and the sending happens beside the run. All sending together, retries and
//! waits for the tracker's rate limits included, gets one time budget (`--sentry-timeout`, 5 s
//! by default); at the end of the run crashcatch waits for what is still being sent at most what
//! is left of it. What could not be sent is one line on stderr at the end; the exit status is
//! the command's. Nothing here may panic out: each event is built and sent inside
//! [`contain`](super::contain), and the thread is left behind rather than waited for past the
//! budget.

pub mod delivery;
pub mod dsn;
pub mod ratelimit;
pub mod transport;

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use delivery::{Delivery, Outcome};
pub use dsn::{Dsn, DsnError};

use super::{console, contain, Emitted, Output, OutputError};
use crate::report::model::Crash;
use crate::report::render::sentry::envelope::Envelope;
use crate::report::render::sentry::{self as event, Context};

/// The budget when `--sentry-timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reports queued beyond this many are not sent (a run crashing in a loop).
const MAX_QUEUED: usize = 1000;

/// `--sentry-dsn` and `--sentry-timeout`.
#[derive(Debug, Clone)]
pub struct SentryConfig {
    pub dsn: Dsn,
    /// All sending of the run, together.
    pub timeout: Duration,
}

/// What the sender thread did, shared with the output.
#[derive(Debug, Default)]
struct Tally {
    /// Time spent sending (waits included), counted against the budget.
    spent: Duration,
    sent: usize,
    /// Why the first event that was not sent was not.
    first_failure: Option<String>,
}

/// The output: queues reports for the sender thread, and reports at the end what was not sent.
pub struct Sentry {
    config: SentryConfig,
    context: Context,
    queue: Option<Sender<Crash>>,
    done: Option<Receiver<()>>,
    tally: Arc<Mutex<Tally>>,
    queued: usize,
    start_failure: Option<String>,
}

impl Sentry {
    pub fn new(config: SentryConfig) -> Sentry {
        let (host, kernel) = host_facts();
        let context = Context::live(|k| std::env::var(k).ok(), host, kernel);
        Sentry { config, context, queue: None, done: None, tally: Arc::default(), queued: 0, start_failure: None }
    }

    /// Starts the sender thread (at the first report: a run without crashes starts nothing).
    fn start(&mut self) -> Option<&Sender<Crash>> {
        if self.queue.is_none() && self.start_failure.is_none() {
            let (tx, rx) = mpsc::channel::<Crash>();
            let (done_tx, done_rx) = mpsc::channel::<()>();
            let (config, context, tally) = (self.config.clone(), self.context.clone(), self.tally.clone());
            let spawned = crate::process::quiet_thread::spawn("sentry", move || {
                sender(config, context, rx, &tally);
                let _ = done_tx.send(());
            });
            match spawned {
                Ok(_) => {
                    self.queue = Some(tx);
                    self.done = Some(done_rx);
                }
                Err(e) => self.start_failure = Some(format!("cannot start a thread: {e}")),
            }
        }
        self.queue.as_ref()
    }
}

impl Output for Sentry {
    fn report(&mut self, crash: &Crash) -> Result<(), OutputError> {
        if !event::is_sent(crash) {
            return Ok(());
        }
        self.queued += 1;
        if self.queued > MAX_QUEUED {
            return Ok(());
        }
        if let Some(q) = self.start() {
            let _ = q.send(crash.clone());
        }
        Ok(())
    }

    fn finish(&mut self, _emitted: &[Emitted]) -> Result<(), OutputError> {
        // Closing the queue ends the thread once it has sent what is queued.
        self.queue = None;
        let mut late = false;
        if let Some(done) = self.done.take() {
            let left = self.config.timeout.saturating_sub(lock(&self.tally).spent);
            late = done.recv_timeout(left).is_err();
        }
        let tally = lock(&self.tally);
        let not_sent = self.queued.saturating_sub(tally.sent);
        if not_sent == 0 {
            return Ok(());
        }
        let why = self
            .start_failure
            .clone()
            .or_else(|| tally.first_failure.clone())
            .or_else(|| late.then(|| "no answer within --sentry-timeout".to_string()))
            .or_else(|| (self.queued > MAX_QUEUED).then(|| format!("at most {MAX_QUEUED} events per run")))
            .unwrap_or_else(|| "not sent".into());
        console::say(&format!(
            "sentry: {not_sent} of {} event{} not sent to {}: {}",
            self.queued,
            if self.queued == 1 { "" } else { "s" },
            self.config.dsn,
            self.config.dsn.redact(&why)
        ));
        Ok(())
    }
}

fn lock(t: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// The sender thread: each queued report built into an event and sent, within what is left of
/// the budget.
fn sender(config: SentryConfig, context: Context, queue: Receiver<Crash>, tally: &Mutex<Tally>) {
    let mut delivery = Delivery::new(config.dsn.clone());
    for crash in queue {
        let spent = lock(tally).spent;
        let Some(left) = config.timeout.checked_sub(spent).filter(|l| !l.is_zero()) else {
            fail(tally, "--sentry-timeout used up".into());
            continue;
        };
        let start = Instant::now();
        let outcome = match &mut delivery {
            Err(why) => Outcome::NotSent(why.clone()),
            Ok(d) => contain::contain(|| send_one(d, &crash, &context, start + left))
                .unwrap_or_else(|why| Outcome::NotSent(format!("internal error: {why}"))),
        };
        let mut t = lock(tally);
        t.spent += start.elapsed();
        match outcome {
            Outcome::Sent => t.sent += 1,
            Outcome::NotSent(why) => {
                t.first_failure.get_or_insert(why);
            }
        }
    }
}

fn fail(tally: &Mutex<Tally>, why: String) {
    lock(tally).first_failure.get_or_insert(why);
}

/// Builds the event of one report and sends it by `deadline`.
pub fn send_one(delivery: &mut Delivery, crash: &Crash, context: &Context, deadline: Instant) -> Outcome {
    let rendered = event::render(crash, context);
    let envelope = Envelope::of(crash, &rendered, true);
    delivery.send(&envelope, deadline)
}

/// The machine's name and kernel release (`uname -n`, `uname -r`), for the event.
fn host_facts() -> (Option<String>, Option<String>) {
    let u = rustix::system::uname();
    let field = |f: &std::ffi::CStr| Some(f.to_string_lossy().into_owned()).filter(|s| !s.is_empty());
    (field(u.nodename()), field(u.release()))
}
