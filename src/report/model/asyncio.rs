//! The asyncio section of a report: every task of the process's event loops, what each one's
//! coroutines are suspended in, what it awaits and which task awaits it.

use serde::{Deserialize, Serialize};

use super::Hex;

/// The tasks found in the process (`python.asyncio` in the JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AsyncioState {
    /// How the tasks were found: `gc` (3.11–3.13: the collector's lists, C Task objects) or
    /// `asyncio_debug` (3.14+: the task lists `_Py_AsyncioDebug` publishes).
    pub source: String,
    /// Tasks that are not finished, in the order found (at most a few thousand).
    pub tasks: Vec<AsyncioTask>,
    /// What could not be read, and limits reached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One asyncio task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AsyncioTask {
    /// The Task object's address: how `awaited_by` and `awaits.task` refer to it.
    pub id: Hex,
    /// `Task.get_name()`.
    pub name: String,
    /// Pending, cancelled or finished.
    pub state: TaskState,
    /// The task is running now (its coroutine is executing), on this thread when known.
    #[serde(default)]
    pub running: bool,
    /// The thread it runs on, when it is running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<i32>,
    /// The coroutine chain it is suspended in, outermost (the task's own coroutine) first,
    /// following `cr_await` / `gi_yieldfrom` through coroutines and generators.
    pub coroutines: Vec<CoroutineFrame>,
    /// What the innermost coroutine awaits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaits: Option<Awaited>,
    /// The tasks waiting for this one (directly, or through a `gather`), by `id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaited_by: Vec<Hex>,
}

/// A Task's (Future's) state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Not done yet.
    #[default]
    Pending,
    /// Cancelled.
    Cancelled,
    /// Done.
    Finished,
    /// Its state could not be read.
    Unknown,
}

impl TaskState {
    /// `pending`, for people.
    pub fn words(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Cancelled => "cancelled",
            TaskState::Finished => "finished",
            TaskState::Unknown => "state unknown",
        }
    }
}

/// One coroutine (or generator) of a task's await chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoroutineFrame {
    /// The function's qualified name.
    pub function: String,
    /// Its file.
    pub file: String,
    /// The line it is suspended at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// A coroutine, a generator or an async generator.
    pub kind: CoroutineKind,
}

/// What object a [`CoroutineFrame`] is the frame of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoroutineKind {
    /// A coroutine (`async def`).
    #[default]
    Coroutine,
    /// A generator (`yield`).
    Generator,
    /// An async generator (`async def` with `yield`).
    AsyncGenerator,
}

/// What a task's innermost coroutine awaits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Awaited {
    /// A task, a future, or something else.
    pub kind: AwaitedKind,
    /// For people: `task 'worker-1'`, `a _GatheringFuture (gather)`, `a Future in Event.wait`.
    pub description: String,
    /// The awaited task, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Hex>,
}

/// What kind of thing a task awaits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwaitedKind {
    /// Another task.
    Task,
    /// A future (an Event's, Queue's or Lock's waiter, a sleep's timer, `gather`'s).
    #[default]
    Future,
    /// Something else awaitable that could not be followed.
    Other,
}
