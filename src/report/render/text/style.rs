//! Colour in the text report: bold titles, the faulting frame in red, our own remarks dim; only
//! on a terminal, and never with NO_COLOR set or TERM=dumb. Colour wraps text that is already
//! escaped: the escape sequences in the report are ours alone.

/// Colour only on a terminal (and never with NO_COLOR set).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Colour on.
    pub color: bool,
}

impl Style {
    /// No colour.
    pub fn plain() -> Self {
        Style { color: false }
    }
    /// Colours when the output is a terminal (`tty`; and neither NO_COLOR nor TERM=dumb says
    /// otherwise).
    pub fn detect(tty: bool) -> Self {
        Style {
            color: tty && std::env::var_os("NO_COLOR").is_none() && std::env::var("TERM").map_or(true, |t| t != "dumb"),
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    pub(super) fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }

    pub(super) fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }

    pub(super) fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}
