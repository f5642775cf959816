//! What a per-test timeout report (`--test-timeout`) says about the test that ran too long.

use serde::{Deserialize, Serialize};

/// A pytest test that ran in one process for longer than `--test-timeout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestTimeout {
    /// The test as `PYTEST_CURRENT_TEST` names it, phase included: `t.py::test_x (call)`.
    pub test: String,
    /// The limit, in seconds.
    pub limit_s: f64,
    /// How long it had been running when the report was made (seen at most a second late).
    pub elapsed_s: f64,
    /// What crashcatch did to the process after the report.
    pub action: TimeoutAction,
}

impl super::Crash {
    /// A report that stands for a failed test run: a crash, or a test that timed out (the
    /// whole-run `--hang-timeout` and `crashcatch dump` reports are not).
    pub fn is_failure(&self) -> bool {
        self.kind == super::CrashKind::Crash || self.test_timeout.is_some()
    }
}

/// `--test-timeout-action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutAction {
    /// SIGKILL the process (an xdist worker is replaced and the run goes on).
    #[default]
    Kill,
    /// SIGTERM the process.
    Term,
    /// Only the report; the process goes on.
    Dump,
}

impl TimeoutAction {
    /// `killed (SIGKILL)`, for people.
    pub fn words(self) -> &'static str {
        match self {
            TimeoutAction::Kill => "killed (SIGKILL)",
            TimeoutAction::Term => "sent SIGTERM",
            TimeoutAction::Dump => "left running",
        }
    }
}
