//! The `interpreter` field: which CPython, where it is in its life (running, finalizing and by
//! which thread, finalized), and which thread holds the GIL.

use std::fmt::Write;

use super::fields::field;
use crate::report::model::{Crash, InterpreterState};

pub(super) fn write(out: &mut String, crash: &Crash) {
    let Some(py) = &crash.python else { return };
    let mut s = format!("CPython {}", py.version.as_deref().unwrap_or("(version unknown)"));
    match py.state {
        Some(InterpreterState::Finalizing) => {
            let _ = write!(s, ", finalizing");
            if let Some(t) = py.finalizing_tid {
                let _ = write!(s, " (thread {t} runs Py_FinalizeEx)");
            }
        }
        Some(other) => {
            let _ = write!(s, ", {}", other.words());
        }
        None => {}
    }
    match py.gil_holder_tid {
        Some(t) => {
            let _ = write!(s, "; thread {t} holds the GIL");
        }
        None => {
            let _ = write!(s, "; no thread holds the GIL");
        }
    }
    if py.interpreters.iter().any(|i| i.gc_collecting == Some(true)) {
        let _ = write!(s, "; the garbage collector is running");
    }
    field(out, "interpreter", &s);
}
