//! The text renderer, for people: what died and how, where it faulted, from which Python line,
//! then the crashed thread's stack, the asyncio tasks, and the other threads. One part per
//! file, in the order they are written.

mod asyncio;
mod fields;
mod frames;
mod headline;
mod interpreter;
mod python;
mod style;
mod threads;
mod variables;

pub use style::Style;

use super::Render;
use crate::report::model::Crash;

/// The text report, for people.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    pub style: Style,
}

impl Render for Text {
    fn render(&self, crash: &Crash) -> String {
        let (mut out, st) = (String::new(), &self.style);
        headline::write(&mut out, crash, st);
        fields::process(&mut out, crash);
        fields::fault(&mut out, crash, st);
        python::write(&mut out, crash);
        interpreter::write(&mut out, crash);
        fields::closing(&mut out, crash);
        threads::write(&mut out, crash, st);
        out
    }
}
