//! The text renderer, for people: the culprit first, then the crashed thread, then the others.

use super::model::Crash;

pub fn render(crash: &Crash) -> String {
    format!("crashcatch: pid {} killed by {}\n", crash.process.pid, crash.signal.name)
}
