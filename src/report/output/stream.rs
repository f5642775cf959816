//! Reports printed whole: the report (text or JSON) for every report, on stderr beside the
//! traced command's output or on stdout when it is the command's product (`dump`, `core`), or
//! a renderer's text for crashes only (GitHub annotations, on stderr).

use super::{console, Output, OutputError};
use crate::report::model::Crash;
use crate::report::render::Render;

/// Which of crashcatch's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stderr,
    Stdout,
}

pub struct Printed<R: Render> {
    renderer: R,
    only_crashes: bool,
    to: Stream,
}

impl<R: Render> Printed<R> {
    /// Every report: crashes, dumps and hangs.
    pub fn every(renderer: R, to: Stream) -> Self {
        Printed { renderer, only_crashes: false, to }
    }

    /// Crashes (and test timeouts) only, on stderr.
    pub fn crashes(renderer: R) -> Self {
        Printed { renderer, only_crashes: true, to: Stream::Stderr }
    }
}

impl<R: Render> Output for Printed<R> {
    fn report(&mut self, crash: &Crash) -> Result<(), OutputError> {
        if self.only_crashes && !crash.is_failure() {
            return Ok(());
        }
        let text = self.renderer.render(crash);
        match self.to {
            Stream::Stderr => console::write(text.as_bytes()),
            Stream::Stdout => {
                console::out(text.as_bytes());
            }
        }
        Ok(())
    }
}
