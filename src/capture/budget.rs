//! How long one report may take: the process is stopped while it is made, and a hostile target
//! (huge libraries, thousands of threads) must not hold it, and the run, for longer. Work past the
//! deadline is left out, the crashed thread's first, and the report says what was left out.

use std::time::{Duration, Instant};

/// From the fatal signal to the report on disk, by default.
pub const REPORT_TIME: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
pub struct Budget {
    start: Instant,
    deadline: Instant,
    limit: Duration,
}

impl Budget {
    /// `limit` from `start` (the moment the supervisor began stopping the process).
    pub fn new(start: Instant, limit: Duration) -> Self {
        Budget { start, deadline: start + limit, limit }
    }

    /// Moves the deadline by `d`: time spent on what has a bound of its own (debuginfod).
    pub fn extend(&mut self, d: Duration) {
        self.deadline += d;
    }

    /// The moment `num/den` of the budget is spent (a stage that must leave time to the next).
    pub fn at_fraction(&self, num: u32, den: u32) -> Instant {
        self.deadline - self.limit + self.limit * num / den.max(1)
    }

    /// Milliseconds since the start, rounded to microseconds.
    pub fn elapsed_ms(&self) -> f64 {
        (self.start.elapsed().as_secs_f64() * 1e6).round() / 1e3
    }

    /// The moment the budget is spent (for stages that check it themselves).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The deadline has passed.
    pub fn spent(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// `what` was left out because the budget was spent: the note the report carries.
    pub fn note(&self, what: &str) -> String {
        format!("{what}: left out, the report's {:.1} s budget was spent", self.limit.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spent_after_the_limit() {
        let b = Budget::new(Instant::now(), Duration::from_secs(60));
        assert!(!b.spent());
        let b = Budget::new(Instant::now() - Duration::from_secs(3), Duration::from_secs(2));
        assert!(b.spent());
        assert_eq!(b.note("python"), "python: left out, the report's 2.0 s budget was spent");
    }
}
