//! `crashcatch dump --subprocesses PID`: the process and every descendant (process/tree.rs),
//! each dumped as `dump` dumps one (its own attach, its own bounded stop, its own detach), one
//! after the other, so each is stopped only for its own read phase. A zombie, a process that
//! ended before its turn, or one that refuses the attach is said in one line; the others go on.
//! The output's shape (a header per process in text, one JSON document per line) is in
//! docs/report-schema.md.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::attach::{self, AttachConfig, REFUSED};
use super::forward;
use crate::capture::worker::STUCK_AFTER;
use crate::process::blocking::{self, Fence, GaveUp};
use crate::process::tree::{self, Member, RunState, MAX_PROCESSES};
use crate::report::model::Crash;
use crate::report::output::{console, Emitter, Format, Output, OutputError, Print};
use crate::report::render::escape::{json, terminal};

/// crashcatch's exit status when the first process was dumped and some other one was not:
/// attaching to it failed, the tree was cut at [`MAX_PROCESSES`] or by its listing's deadline,
/// or Ctrl-C came first. (A zombie, or a process that ended before its turn, has no stack left
/// to dump: it is listed and not counted as a failure.)
pub const PARTIAL: i32 = 3;

/// The longest the listing of the tree may take, and one look at a process's state.
const LIST_TIME: Duration = Duration::from_secs(2);

/// What became of one process: the JSON line's `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Its report follows.
    Dumped,
    /// It exited and its parent has not reaped it: no stacks left.
    Zombie,
    /// It ended between the listing and its turn.
    Ended,
    /// Attaching to it or stopping it failed (`reason` says why).
    Failed,
}

/// The processes of the tree, and why it was cut, if it was.
struct Listing {
    members: Vec<Member>,
    cut: Option<String>,
}

/// Lists the tree under `root` on a watched thread: what was found before a deadline or a
/// stuck read is kept, and the cut said.
fn list(root: i32) -> Listing {
    let found = Arc::new(Mutex::new(Vec::new()));
    let sink = found.clone();
    let work = move || {
        tree::walk(root, MAX_PROCESSES, &mut |m| {
            if let Ok(mut v) = sink.lock() {
                v.push(m);
            }
        })
    };
    let result = briefly("cc-tree", work);
    let members: Vec<Member> = found.lock().map(|v| v.clone()).unwrap_or_default();
    let cut = match result {
        Ok(false) => None,
        Ok(true) => Some(format!(
            "pid {root} has more than {MAX_PROCESSES} processes (itself included): only the first {MAX_PROCESSES} are dumped"
        )),
        Err(e) => Some(format!("listing the processes under pid {root} stopped early ({e}): {} found", members.len())),
    };
    Listing { members, cut }
}

/// A process's state, read on a watched thread.
fn state(pid: i32) -> Result<RunState, GaveUp> {
    briefly("cc-state", move || tree::state(pid))
}

/// Runs `work` (reads of /proc) on a watched thread named `name`, for at most [`LIST_TIME`],
/// given up on Ctrl-C or SIGTERM.
fn briefly<T: Send + 'static>(name: &str, work: impl FnOnce() -> T + Send + 'static) -> Result<T, GaveUp> {
    let fence = Arc::new(RwLock::new(Fence::default()));
    blocking::watched(name, fence, work, STUCK_AFTER, Instant::now() + LIST_TIME, &forward::stop_requested)
}

/// Dumps one process of the tree, or says why not.
fn dump_member(pid: i32, emitter: &mut Emitter, cfg: &AttachConfig) -> (Outcome, Option<String>) {
    let not_alive = |s: Result<RunState, GaveUp>| match s {
        Ok(RunState::Zombie) => Some((Outcome::Zombie, "a zombie: it exited and its parent has not reaped it".into())),
        Ok(RunState::Gone) => Some((Outcome::Ended, "it ended before its turn".into())),
        Ok(RunState::Alive) => None,
        Err(e) => Some((Outcome::Failed, format!("its state could not be read: {e}"))),
    };
    if let Some((o, why)) = not_alive(state(pid)) {
        return (o, Some(why));
    }
    match attach::dump_one(pid, emitter, &cfg.capture) {
        Ok(()) => (Outcome::Dumped, None),
        // A refusal may mean it died meanwhile (attaching to a zombie is EPERM): say that.
        Err(e) => match not_alive(state(pid)) {
            Some((o @ (Outcome::Zombie | Outcome::Ended), why)) => (o, Some(why)),
            _ => (Outcome::Failed, Some(e.to_string())),
        },
    }
}

/// Keeps the last report emitted, for the JSON line that carries it.
struct Kept(Rc<RefCell<Option<serde_json::Value>>>);

impl Output for Kept {
    fn report(&mut self, crash: &Crash) -> Result<(), OutputError> {
        *self.0.borrow_mut() = serde_json::to_value(crash).ok();
        Ok(())
    }
}

/// One process in `--format json`: one line.
#[derive(Serialize)]
struct Line<'a> {
    pid: i32,
    parent: i32,
    depth: u32,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<serde_json::Value>,
}

fn json_line(m: &Member, outcome: Outcome, reason: Option<&str>, report: Option<serde_json::Value>) -> String {
    let line = Line { pid: m.pid, parent: m.parent, depth: m.depth, outcome, reason, report };
    let mut s =
        serde_json::to_string(&line).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string());
    s.push('\n');
    json::harden(s)
}

/// The text header above each process's report.
fn header(first: bool, m: &Member) -> String {
    format!("{}==> pid {} (parent {}) <==\n", if first { "" } else { "\n" }, m.pid, m.parent)
}

/// The stderr line at the end: how many processes, and what became of those not dumped.
fn tally(outcomes: &[Outcome], not_tried: usize) -> String {
    let count = |o: Outcome| outcomes.iter().filter(|&&x| x == o).count();
    let mut parts = vec![format!("{} of {} processes dumped", count(Outcome::Dumped), outcomes.len() + not_tried)];
    for (o, what) in
        [(Outcome::Zombie, "zombie"), (Outcome::Ended, "ended before its turn"), (Outcome::Failed, "failed")]
    {
        if count(o) > 0 {
            parts.push(format!("{} {what}", count(o)));
        }
    }
    if not_tried > 0 {
        parts.push(format!("{not_tried} not tried (interrupted)"));
    }
    parts.join(", ")
}

/// The exit status: [`REFUSED`] when the first process was not dumped, [`PARTIAL`] when some
/// other one could not be or the tree was cut, 0 otherwise.
fn status(outcomes: &[Outcome], not_tried: usize, cut: bool) -> i32 {
    if outcomes.first() != Some(&Outcome::Dumped) {
        REFUSED
    } else if cut || not_tried > 0 || outcomes.contains(&Outcome::Failed) {
        PARTIAL
    } else {
        0
    }
}

/// Why the process asked for cannot be dumped at all, said as `dump` says it (without listing
/// the whole of /proc first).
fn root_refusal(pid: i32) -> Option<String> {
    match state(pid) {
        Ok(RunState::Alive) => None,
        Ok(RunState::Zombie) => Some(format!("pid {pid} is a zombie: it exited and its parent has not reaped it")),
        Ok(RunState::Gone) => Some(format!("no such process: {pid}")),
        Err(e) => Some(format!("pid {pid}: its state could not be read: {e}")),
    }
}

/// Runs `dump --subprocesses`; returns crashcatch's exit status (see [`status`]).
pub fn dump(mut cfg: AttachConfig) -> i32 {
    // Ctrl-C or SIGTERM: the process being read is detached, the rest are not tried.
    forward::install_detach_handlers();
    super::set_non_dumpable();
    let printed = cfg.output.print != Print::Nowhere;
    let as_json = cfg.output.format == Format::Json;
    if as_json {
        // Each report is printed inside its process's line, not on its own.
        cfg.output.print = Print::Nowhere;
    }
    if let Some(why) = root_refusal(cfg.pid) {
        console::say(&why);
        return REFUSED;
    }
    let mut emitter = Emitter::new(cfg.output.clone());
    let kept = Rc::new(RefCell::new(None));
    emitter.add_output(Box::new(Kept(kept.clone())));
    let listing = list(cfg.pid);
    let mut outcomes = Vec::new();
    for m in &listing.members {
        if forward::stop_requested() {
            break;
        }
        if printed && !as_json {
            console::out(header(outcomes.is_empty(), m).as_bytes());
        }
        let (outcome, reason) = dump_member(m.pid, &mut emitter, &cfg);
        let report = kept.borrow_mut().take().filter(|_| outcome == Outcome::Dumped);
        if printed && as_json {
            console::out(json_line(m, outcome, reason.as_deref(), report).as_bytes());
        } else if let (true, Some(why)) = (printed, &reason) {
            console::out(format!("not dumped: {}\n", terminal::text(why)).as_bytes());
        }
        outcomes.push(outcome);
    }
    let not_tried = listing.members.len() - outcomes.len();
    if let Some(cut) = &listing.cut {
        console::say(cut);
    }
    console::say(&tally(&outcomes, not_tried));
    status(&outcomes, not_tried, listing.cut.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_is_refused_partial_or_zero() {
        use Outcome::*;
        assert_eq!(status(&[Dumped, Zombie, Ended, Dumped], 0, false), 0);
        assert_eq!(status(&[Dumped, Failed], 0, false), PARTIAL);
        assert_eq!(status(&[Dumped], 0, true), PARTIAL);
        assert_eq!(status(&[Dumped], 2, false), PARTIAL);
        assert_eq!(status(&[Failed, Dumped], 0, false), REFUSED);
        assert_eq!(status(&[Zombie], 0, false), REFUSED);
        assert_eq!(status(&[], 1, false), REFUSED);
    }

    #[test]
    fn the_tally_names_what_was_not_dumped() {
        use Outcome::*;
        assert_eq!(tally(&[Dumped, Dumped], 0), "2 of 2 processes dumped");
        assert_eq!(
            tally(&[Dumped, Zombie, Failed], 2),
            "1 of 5 processes dumped, 1 zombie, 1 failed, 2 not tried (interrupted)"
        );
    }

    #[test]
    fn a_json_line_is_one_line_and_leaves_out_what_is_unknown() {
        let m = Member { pid: 12, parent: 3, depth: 1 };
        let l = json_line(&m, Outcome::Zombie, Some("a zombie\n\u{1b}[2J"), None);
        assert_eq!(l.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["outcome"], "zombie");
        assert_eq!((v["pid"].as_i64(), v["parent"].as_i64(), v["depth"].as_i64()), (Some(12), Some(3), Some(1)));
        assert!(v.get("report").is_none());
        assert!(!l.contains('\u{1b}'));
    }
}
