//! The asyncio part of the text report: the tasks as a tree, like `python -m asyncio pstree`: each task under the task that
//! awaits it, with the coroutines it is suspended in (outermost first) and what it awaits.
//! Names, functions and files come from the target: each is escaped for the terminal.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::super::escape::terminal::{line_start, text as esc};
use crate::report::model::{AsyncioState, AsyncioTask, Crash, Hex};

/// Most tasks drawn; the rest are counted (the JSON report has them all).
const MAX_DRAWN: usize = 200;

/// The running task of thread `tid`, if any: `'name'`.
pub(super) fn running_task(crash: &Crash, tid: i32) -> Option<&AsyncioTask> {
    let a = crash.python.as_ref()?.asyncio.as_ref()?;
    a.tasks.iter().find(|t| t.running && t.thread == Some(tid))
}

/// The tree, one line per entry, without a trailing blank line; empty when there are no tasks.
pub(super) fn render(a: &AsyncioState) -> String {
    let mut out = String::new();
    if a.tasks.is_empty() && a.notes.is_empty() {
        return out;
    }
    let n = a.tasks.len();
    let _ = writeln!(out, "asyncio tasks ({n} pending)");
    let by_id: HashMap<Hex, &AsyncioTask> = a.tasks.iter().map(|t| (t.id, t)).collect();
    let mut children: HashMap<Hex, Vec<&AsyncioTask>> = HashMap::new();
    for t in &a.tasks {
        for p in &t.awaited_by {
            if by_id.contains_key(p) {
                children.entry(*p).or_default().push(t);
            }
        }
    }
    let roots: Vec<&AsyncioTask> =
        a.tasks.iter().filter(|t| !t.awaited_by.iter().any(|p| by_id.contains_key(p))).collect();
    let mut drawn = HashSet::new();
    let mut ctx = Ctx { out: &mut out, children: &children, by_id: &by_id, drawn: &mut drawn };
    let last = roots.len();
    for (i, r) in roots.iter().enumerate() {
        ctx.task(r, "  ", i + 1 == last);
    }
    // Tasks only reachable through a cycle of awaits.
    let rest: Vec<&AsyncioTask> = a.tasks.iter().filter(|t| !ctx.drawn.contains(&t.id)).collect();
    let last = rest.len();
    for (i, r) in rest.iter().enumerate() {
        if !ctx.drawn.contains(&r.id) {
            ctx.task(r, "  ", i + 1 == last);
        }
    }
    if n > MAX_DRAWN {
        let _ = writeln!(out, "  ... {} more tasks in the JSON report", n - MAX_DRAWN);
    }
    for note in &a.notes {
        let _ = writeln!(out, "  note: {}", esc(note));
    }
    out
}

struct Ctx<'a, 'b> {
    out: &'b mut String,
    children: &'b HashMap<Hex, Vec<&'a AsyncioTask>>,
    by_id: &'b HashMap<Hex, &'a AsyncioTask>,
    drawn: &'b mut HashSet<Hex>,
}

impl<'a> Ctx<'a, '_> {
    fn task(&mut self, t: &'a AsyncioTask, indent: &str, last: bool) {
        if self.drawn.len() >= MAX_DRAWN {
            return;
        }
        self.drawn.insert(t.id);
        let branch = if last { "└── " } else { "├── " };
        let mut title = format!("{indent}{branch}{} ({})", esc(&t.name), t.state.words());
        if t.running {
            match t.thread {
                Some(tid) => {
                    let _ = write!(title, ", running on thread {tid}");
                }
                None => title.push_str(", running"),
            }
        }
        let others: Vec<String> =
            t.awaited_by.iter().skip(1).filter_map(|p| self.by_id.get(p)).map(|p| esc(&p.name).into_owned()).collect();
        if !others.is_empty() {
            let _ = write!(title, ", also awaited by {}", others.join(", "));
        }
        let _ = writeln!(self.out, "{title}");
        let inner = format!("{indent}{}", if last { "    " } else { "│   " });
        for c in &t.coroutines {
            let line = c.line.map(|l| format!(":{l}")).unwrap_or_default();
            // The function begins the line (after the tree's spaces): escaped as a line start.
            let _ = writeln!(self.out, "{inner}  {} at {}{}", line_start(&c.function), esc(&c.file), line);
        }
        if let Some(a) = &t.awaits {
            let _ = writeln!(self.out, "{inner}  awaits {}", esc(&a.description));
        }
        // Drawn under their first awaiter only.
        let kids: Vec<&'a AsyncioTask> = self
            .children
            .get(&t.id)
            .map(|v| v.iter().copied().filter(|k| k.awaited_by.first() == Some(&t.id)).collect())
            .unwrap_or_default();
        let n = kids.len();
        for (i, k) in kids.into_iter().enumerate() {
            if !self.drawn.contains(&k.id) {
                self.task(k, &inner, i + 1 == n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Awaited, AwaitedKind, CoroutineFrame, CoroutineKind, TaskState};

    fn task(id: u64, name: &str, by: &[u64], func: &str, awaits: &str) -> AsyncioTask {
        AsyncioTask {
            id: Hex(id),
            name: name.into(),
            state: TaskState::Pending,
            coroutines: vec![CoroutineFrame {
                function: func.into(),
                file: "app.py".into(),
                line: Some(3),
                kind: CoroutineKind::Coroutine,
            }],
            awaits: Some(Awaited { kind: AwaitedKind::Future, description: awaits.into(), task: None }),
            awaited_by: by.iter().map(|&b| Hex(b)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn target_strings_are_escaped() {
        let mut t = task(1, "evil\x1b[2J\n::error::x", &[], "f\x07", "a Future");
        t.coroutines[0].file = "a\rb.py".into();
        let s = render(&AsyncioState { source: "gc".into(), tasks: vec![t], notes: vec![] });
        assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{s:?}");
        assert_eq!(s.lines().count(), 4, "{s}");
    }

    #[test]
    fn draws_children_under_their_awaiter_and_survives_cycles() {
        let a = AsyncioState {
            source: "gc".into(),
            tasks: vec![
                task(1, "main", &[], "main", "gather()'s _GatheringFuture"),
                task(2, "event-waiter", &[1], "wait_for_event", "a Future in Event.wait"),
                task(3, "queue-reader", &[1], "read_queue", "a Future in Queue.get"),
                task(4, "ping", &[5], "ping", "task 'pong'"),
                task(5, "pong", &[4], "pong", "task 'ping'"),
            ],
            notes: vec![],
        };
        let s = render(&a);
        let expected = "asyncio tasks (5 pending)
  └── main (pending)
        main at app.py:3
        awaits gather()'s _GatheringFuture
      ├── event-waiter (pending)
      │     wait_for_event at app.py:3
      │     awaits a Future in Event.wait
      └── queue-reader (pending)
            read_queue at app.py:3
            awaits a Future in Queue.get
  ├── ping (pending)
  │     ping at app.py:3
  │     awaits task 'pong'
  │   └── pong (pending)
  │         pong at app.py:3
  │         awaits task 'ping'
";
        assert_eq!(s, expected, "\n{s}");
    }
}
