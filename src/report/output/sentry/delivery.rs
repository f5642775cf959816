//! Sending envelopes to one DSN within a deadline: rate limits honoured (waiting for them when
//! they end before the deadline, else giving up), a tracker that is down or failing retried a
//! little, then given up for the rest of the run so the next report does not wait for it again,
//! an envelope the tracker finds too large sent again without its attachments.

use std::time::{Duration, Instant};

use super::dsn::Dsn;
use super::ratelimit::Limits;
use super::transport::{self, Answer};
use crate::report::render::sentry::envelope::Envelope;

/// Waits before the retries of a failed request (a refused connection, a 5xx).
const BACKOFF: &[Duration] = &[Duration::from_millis(250), Duration::from_millis(1000)];

/// What became of one envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Not sent, and why (in words, without the key).
    NotSent(String),
}

/// The sender to one DSN.
pub struct Delivery {
    dsn: Dsn,
    agent: ureq::Agent,
    limits: Limits,
    /// Set when the tracker cannot take events at all (unreachable, refusing the key, no such
    /// project, redirecting): the reason, given for every later envelope without asking again.
    gone: Option<String>,
}

impl Delivery {
    /// A sender to `dsn` through the proxy crashcatch's environment names for it; `Err` when
    /// that proxy cannot be used.
    pub fn new(dsn: Dsn) -> Result<Delivery, String> {
        let proxy = transport::proxy_for(&dsn).to_ureq()?;
        Ok(Delivery { agent: transport::agent(proxy), dsn, limits: Limits::default(), gone: None })
    }

    pub fn dsn(&self) -> &Dsn {
        &self.dsn
    }

    /// Sends one envelope, ending by `deadline`.
    pub fn send(&mut self, envelope: &Envelope, deadline: Instant) -> Outcome {
        if let Some(why) = &self.gone {
            return Outcome::NotSent(why.clone());
        }
        let mut envelope = envelope.clone();
        let mut failures = 0usize;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Outcome::NotSent("no answer within --sentry-timeout".into());
            }
            if let Some(until) = self.limits.event_blocked_until(now) {
                if until > deadline {
                    let secs = until.saturating_duration_since(now).as_secs_f64().ceil();
                    return Outcome::NotSent(format!("the tracker asked to wait {secs:.0} s (rate limit)"));
                }
                std::thread::sleep(until - now);
                continue;
            }
            if envelope.has_attachments() && self.limits.attachments_blocked(now) {
                envelope = envelope.without_attachments();
            }
            let answer = transport::post(&self.agent, &self.dsn, &envelope.encode(), deadline);
            let why = match answer {
                Answer::Status { code, retry_after, rate_limits } => {
                    self.limits.update(code, retry_after.as_deref(), rate_limits.as_deref(), Instant::now());
                    match code {
                        200..=299 => return Outcome::Sent,
                        429 => continue,
                        413 if envelope.has_attachments() => {
                            envelope = envelope.without_attachments();
                            continue;
                        }
                        300..=399 => {
                            return self.give_up(format!("HTTP {code}: the tracker redirects elsewhere (not followed)"))
                        }
                        401 | 403 => return self.give_up(format!("HTTP {code}: the tracker refused the DSN's key")),
                        404 => return self.give_up("HTTP 404: no such project or endpoint on the tracker".into()),
                        400..=499 => return Outcome::NotSent(format!("HTTP {code}: the tracker rejected the event")),
                        _ => format!("HTTP {code} from the tracker"),
                    }
                }
                Answer::TimedOut => return self.give_up("no answer within --sentry-timeout".into()),
                Answer::Broken(why) => return self.give_up(why),
                Answer::Unreachable(why) => why,
            };
            // A failure worth another try, after a pause, while the deadline allows.
            let Some(pause) = BACKOFF.get(failures) else { return self.give_up(why) };
            failures += 1;
            if Instant::now() + *pause >= deadline {
                return self.give_up(why);
            }
            std::thread::sleep(*pause);
        }
    }

    fn give_up(&mut self, why: String) -> Outcome {
        self.gone = Some(why.clone());
        Outcome::NotSent(why)
    }
}
