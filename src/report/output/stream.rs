//! Reports on stderr: the whole report (text or JSON) for every report, or a renderer's text
//! for crashes only (GitHub annotations).

use super::{console, Output, OutputError};
use crate::report::model::Crash;
use crate::report::render::Render;

pub struct Stderr<R: Render> {
    renderer: R,
    only_crashes: bool,
}

impl<R: Render> Stderr<R> {
    /// Every report: crashes, dumps and hangs.
    pub fn every(renderer: R) -> Self {
        Stderr { renderer, only_crashes: false }
    }

    /// Crashes only.
    pub fn crashes(renderer: R) -> Self {
        Stderr { renderer, only_crashes: true }
    }
}

impl<R: Render> Output for Stderr<R> {
    fn report(&mut self, crash: &Crash) -> Result<(), OutputError> {
        if self.only_crashes && !crash.is_failure() {
            return Ok(());
        }
        console::write(self.renderer.render(crash).as_bytes());
        Ok(())
    }
}
