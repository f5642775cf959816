//! The tracker's rate limits, as Sentry's developer documentation ("Rate Limiting",
//! develop.sentry.dev/sdk/rate-limiting/) has SDKs honour them: `X-Sentry-Rate-Limits`
//! (`retry_after:categories:scope:...`, comma-separated, on any answer) per data category, else
//! on a 429 `Retry-After` (seconds) for everything, else on a bare 429 sixty seconds. crashcatch
//! sends error events (category `error`; `default` is not ours) and attachments (`attachment`).

use std::time::{Duration, Instant};

/// A 429 that says nothing more blocks for this long.
const BARE_429: Duration = Duration::from_secs(60);
/// The longest wait believed (a day).
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// Until when each category is blocked.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    all: Option<Instant>,
    error: Option<Instant>,
    attachment: Option<Instant>,
}

impl Limits {
    /// Takes in what an answer said: its status, `Retry-After` and `X-Sentry-Rate-Limits`.
    pub fn update(&mut self, status: u16, retry_after: Option<&str>, rate_limits: Option<&str>, now: Instant) {
        if let Some(header) = rate_limits.filter(|h| !h.trim().is_empty()) {
            for quota in header.split(',') {
                self.quota(quota.trim(), now);
            }
        }
        // A 429 whose header named nothing of ours (or no header): Retry-After, else a minute.
        if status == 429 && self.event_blocked_until(now).is_none() {
            let wait = retry_after.and_then(seconds).unwrap_or(BARE_429);
            extend(&mut self.all, now + wait);
        }
    }

    /// `retry_after:categories:...` (one quota limit).
    fn quota(&mut self, quota: &str, now: Instant) {
        let mut parts = quota.split(':');
        let Some(wait) = parts.next().and_then(seconds) else { return };
        let until = now + wait;
        let categories = parts.next().unwrap_or("").trim();
        if categories.is_empty() {
            extend(&mut self.all, until);
            return;
        }
        for c in categories.split(';').map(str::trim) {
            match c {
                "error" => extend(&mut self.error, until),
                "attachment" => extend(&mut self.attachment, until),
                // Categories crashcatch never sends (transaction, session, default, ...).
                _ => {}
            }
        }
    }

    /// Until when an event may not be sent, if it is blocked now.
    pub fn event_blocked_until(&self, now: Instant) -> Option<Instant> {
        [self.all, self.error].into_iter().flatten().filter(|&t| t > now).max()
    }

    /// Whether attachments are blocked now (the event then goes without them).
    pub fn attachments_blocked(&self, now: Instant) -> bool {
        [self.all, self.attachment].into_iter().flatten().any(|t| t > now)
    }
}

/// Keeps the later of two limits on one category.
fn extend(slot: &mut Option<Instant>, until: Instant) {
    if slot.map_or(true, |t| t < until) {
        *slot = Some(until);
    }
}

/// `2700` or `1.5` seconds (an HTTP date is not understood: `None`).
fn seconds(s: &str) -> Option<Duration> {
    let v = s.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)?;
    Some(Duration::from_secs_f64(v).min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_on_429() {
        let now = Instant::now();
        let mut l = Limits::default();
        l.update(200, Some("30"), None, now);
        assert_eq!(l.event_blocked_until(now), None, "Retry-After counts on a 429 only");
        l.update(429, Some("2"), None, now);
        assert_eq!(l.event_blocked_until(now), Some(now + Duration::from_secs(2)));
        assert!(l.attachments_blocked(now));
        assert_eq!(l.event_blocked_until(now + Duration::from_secs(3)), None);
        let mut l = Limits::default();
        l.update(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"), None, now);
        assert_eq!(l.event_blocked_until(now), Some(now + BARE_429));
    }

    #[test]
    fn sentry_rate_limits_per_category() {
        let now = Instant::now();
        let mut l = Limits::default();
        // What Bugsink says on every answer: transactions are not taken.
        l.update(200, None, Some("86400:transaction;span:organization"), now);
        assert_eq!(l.event_blocked_until(now), None);
        assert!(!l.attachments_blocked(now));
        l.update(200, None, Some("60:attachment:key, 2.5:default;error;security:organization:quota"), now);
        assert_eq!(l.event_blocked_until(now), Some(now + Duration::from_millis(2500)));
        assert!(l.attachments_blocked(now + Duration::from_secs(30)));
        let mut l = Limits::default();
        l.update(429, Some("1"), Some("7::organization"), now);
        assert_eq!(l.event_blocked_until(now), Some(now + Duration::from_secs(7)), "the header wins over Retry-After");
        let mut l = Limits::default();
        l.update(200, None, Some("garbage, :::, -1:error"), now);
        assert_eq!(l.event_blocked_until(now), None);
        l.update(429, None, Some("garbage, :::, -1:error"), now);
        assert_eq!(l.event_blocked_until(now), Some(now + BARE_429), "a 429 always blocks");
    }
}
