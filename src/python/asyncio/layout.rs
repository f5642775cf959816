//! Per-version offsets of what the asyncio reader follows: the collector's lists (3.11–3.13),
//! `TaskObj` (Modules/_asynciomodule.c), coroutine and generator objects, the value stack of
//! their embedded frames, and the small objects a `gather` leaves behind (functions, cells,
//! tuples, lists, bound C functions). Measured on the pyenv builds with gdb and re-checked
//! against their DWARF by tests/python_layouts_dwarf.rs through [`AsyncioLayout::dwarf_checks`].

/// How a suspended frame's value stack is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// `int stacktop` (an index into `localsplus`, 3.11–3.13).
    Top {
        /// `stacktop`'s offset in the frame.
        stacktop: u64,
        /// `localsplus`' offset in the frame.
        localsplus: u64,
    },
    /// `_PyStackRef *stackpointer` (3.14+); the references are tagged in their low bits. The
    /// awaited object is `peek` entries below it: 1 in 3.14; 2 in 3.15, where the value sent
    /// in sits on top of it (seen on Debian's 3.15.2).
    Pointer {
        /// `stackpointer`'s offset in the frame.
        stackpointer: u64,
        /// How many entries below it the awaited object is.
        peek: u64,
    },
}

/// When a suspended generator is inside `await` / `yield from` (its stack top is the awaited
/// object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YieldFrom {
    /// `gi_frame_state == FRAME_SUSPENDED` and the instruction after `prev_instr` is `RESUME`
    /// (or its instrumented form) with an oparg of 2 or more (3.11, 3.12: `_PyGen_yf`).
    ResumeAfter {
        /// The opcodes of `RESUME` and its instrumented form.
        resume: &'static [u8],
    },
    /// `gi_frame_state` is one of these (`FRAME_SUSPENDED_YIELD_FROM`, 3.13+, and 3.15's
    /// `FRAME_SUSPENDED_YIELD_FROM_LOCKED`).
    States(&'static [i8]),
}

/// What 3.14+ add to a task, and the set that may hold its awaiters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tasks314 {
    /// `task_awaited_by` (a future, a task, or a set of them) and `task_awaited_by_is_set` (a char).
    pub awaited_by: u64,
    /// `task_awaited_by_is_set`.
    pub awaited_by_is_set: u64,
    /// `task_node`, the task's link in its thread's (or interpreter's) list of tasks.
    pub node: u64,
    /// `PySetObject.mask` and `table`, and `sizeof(setentry)` (key first).
    pub set_mask: u64,
    /// `PySetObject.table`.
    pub set_table: u64,
    /// `sizeof(setentry)`.
    pub set_entry: u64,
}

/// The offsets of one minor version (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncioLayout {
    /// The minor version (3.minor).
    pub minor: u32,
    /// `PyInterpreterState.gc`, and in it `permanent_generation` (a `gc_generation` whose first
    /// member is the list head).
    pub interp_gc: u64,
    /// `_gc_runtime_state.generation0`, a pointer to `generations[0]`'s head (the three
    /// generations follow each other): read rather than computed, since the DWARF of Debian's
    /// 3.13.18 places `generations` at 20, where 3.13.0 has 24.
    pub gc_generation0: u64,
    /// `sizeof(struct gc_generation)`.
    pub gc_generation_size: u64,
    /// How many generations there are.
    pub gc_generation_count: u64,
    /// `permanent_generation` in `PyInterpreterState.gc`.
    pub gc_permanent: u64,
    /// `sizeof(PyGC_Head)`, in front of every tracked object.
    pub gc_head: u64,
    /// `PyTypeObject.tp_name` and `tp_base`.
    pub tp_name: u64,
    /// `PyTypeObject.tp_base`.
    pub tp_base: u64,
    /// `TaskObj` (a Future's fields first).
    pub task_callback0: u64,
    /// `fut_callbacks`.
    pub task_callbacks: u64,
    /// `fut_state`.
    pub task_state: u64,
    /// `task_fut_waiter`, the future the task waits on.
    pub task_fut_waiter: u64,
    /// `task_coro`.
    pub task_coro: u64,
    /// `task_name`.
    pub task_name: u64,
    /// `futureiterobject.future`.
    pub future_iter_future: u64,
    /// `PyGenObject` / `PyCoroObject`: `gi_frame_state` (int8) and the embedded `gi_iframe`.
    pub gen_frame_state: u64,
    /// `gi_iframe`, the embedded frame.
    pub gen_iframe: u64,
    /// `FRAME_SUSPENDED` (3.11, 3.12) or `FRAME_SUSPENDED_YIELD_FROM` (3.13+).
    pub frame_suspended: i8,
    /// `FRAME_CREATED` (not started yet) and `FRAME_EXECUTING`.
    pub frame_created: i8,
    /// `FRAME_EXECUTING`.
    pub frame_executing: i8,
    /// How a suspended frame's value stack is found.
    pub stack: Stack,
    /// When a suspended generator is inside `await`.
    pub yield_from: YieldFrom,
    /// `PyFunctionObject.func_closure`, `PyCellObject.ob_ref`, `PyCFunctionObject.m_self`.
    pub func_closure: u64,
    /// `PyCellObject.ob_ref`.
    pub cell_ref: u64,
    /// `PyCFunctionObject.m_self`.
    pub cfunction_self: u64,
    /// `PyTupleObject` and `PyListObject`: (`ob_size`, `ob_item`).
    pub tuple: (u64, u64),
    /// `PyListObject`: (`ob_size`, `ob_item`).
    pub list: (u64, u64),
    /// `PyLongObject`: the size word (`ob_size`, or 3.12+'s `lv_tag`) and `ob_digit`.
    pub long: (u64, u64),
    /// 3.12+: the digit count is `lv_tag >> 3`.
    pub long_tagged: bool,
    /// 3.14+: tasks are found through `_Py_AsyncioDebug`'s lists, not the collector's.
    pub v314: Option<Tasks314>,
}

impl AsyncioLayout {
    /// The layout for CPython 3.`minor` (GIL builds), if known.
    pub fn for_version(minor: u32) -> Option<AsyncioLayout> {
        let base = AsyncioLayout {
            minor,
            interp_gc: 0,
            gc_generation0: 96,
            gc_generation_size: 24,
            gc_generation_count: 3,
            gc_permanent: 104,
            gc_head: 16,
            tp_name: 24,
            tp_base: 256,
            task_callback0: 24,
            task_callbacks: 40,
            task_state: 88,
            task_fut_waiter: 128,
            task_coro: 136,
            task_name: 144,
            future_iter_future: 16,
            gen_frame_state: 67,
            gen_iframe: 72,
            frame_suspended: -1,
            frame_created: -2,
            frame_executing: 0,
            stack: Stack::Top { stacktop: 64, localsplus: 72 },
            yield_from: YieldFrom::ResumeAfter { resume: &[151] },
            func_closure: 72,
            cell_ref: 16,
            cfunction_self: 24,
            tuple: (16, 24),
            list: (16, 24),
            long: (16, 24),
            long_tagged: true,
            v314: None,
        };
        let v314 = AsyncioLayout {
            interp_gc: 0,
            task_state: 104,
            task_fut_waiter: 120,
            task_coro: 128,
            task_name: 136,
            frame_created: -3,
            stack: Stack::Pointer { stackpointer: 64, peek: 1 },
            // 3.14 caches a tuple's hash in front of its items.
            tuple: (16, 32),
            yield_from: YieldFrom::States(&[-1]),
            v314: Some(Tasks314 {
                awaited_by: 96,
                awaited_by_is_set: 109,
                node: 152,
                set_mask: 32,
                set_table: 40,
                set_entry: 16,
            }),
            ..base.clone()
        };
        match minor {
            11 => {
                Some(AsyncioLayout { interp_gc: 648, gen_frame_state: 75, gen_iframe: 80, long_tagged: false, ..base })
            }
            12 => Some(AsyncioLayout {
                interp_gc: 112,
                // RESUME and INSTRUMENTED_RESUME (sys.monitoring).
                yield_from: YieldFrom::ResumeAfter { resume: &[151, 240] },
                ..base
            }),
            13 => Some(AsyncioLayout {
                interp_gc: 7400,
                task_state: 96,
                task_fut_waiter: 112,
                task_coro: 120,
                task_name: 128,
                frame_created: -3,
                yield_from: YieldFrom::States(&[-1]),
                ..base
            }),
            14 => Some(v314),
            // 3.15 numbers the frame states from 0 (Include/internal/pycore_frame.h).
            15 => Some(AsyncioLayout {
                frame_created: 0,
                frame_suspended: 1,
                frame_executing: 4,
                yield_from: YieldFrom::States(&[2, 3]),
                stack: Stack::Pointer { stackpointer: 64, peek: 2 },
                ..v314
            }),
            _ => None,
        }
    }

    /// (C type, field, offset) of every offset above that DWARF can check: in libpython, and
    /// (for the `_asyncio` types) in the `_asyncio` extension module.
    pub fn dwarf_checks(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut v = Vec::new();
        if self.v314.is_none() {
            v.push(("PyInterpreterState", "gc", self.interp_gc));
            v.push(("_gc_runtime_state", "generation0", self.gc_generation0));
            v.push(("_gc_runtime_state", "permanent_generation", self.gc_permanent));
        }
        v.extend([
            ("PyTypeObject", "tp_name", self.tp_name),
            ("PyTypeObject", "tp_base", self.tp_base),
            ("PyGenObject", "gi_frame_state", self.gen_frame_state),
            ("PyGenObject", "gi_iframe", self.gen_iframe),
            ("PyFunctionObject", "func_closure", self.func_closure),
            ("PyCellObject", "ob_ref", self.cell_ref),
            ("PyCFunctionObject", "m_self", self.cfunction_self),
            ("PyTupleObject", "ob_item", self.tuple.1),
            ("PyListObject", "ob_item", self.list.1),
        ]);
        if !self.long_tagged {
            v.push(("PyLongObject", "ob_digit", self.long.1));
        }
        match self.stack {
            Stack::Top { stacktop, localsplus } => {
                v.push(("_PyInterpreterFrame", "stacktop", stacktop));
                v.push(("_PyInterpreterFrame", "localsplus", localsplus));
            }
            Stack::Pointer { stackpointer, .. } => v.push(("_PyInterpreterFrame", "stackpointer", stackpointer)),
        }
        if let Some(t) = self.v314 {
            v.push(("PySetObject", "mask", t.set_mask));
            v.push(("PySetObject", "table", t.set_table));
        }
        v
    }

    /// The same for `_asyncio`'s own structs.
    pub fn dwarf_checks_asyncio(&self) -> Vec<(&'static str, &'static str, u64)> {
        vec![
            ("TaskObj", "task_callback0", self.task_callback0),
            ("TaskObj", "task_callbacks", self.task_callbacks),
            ("TaskObj", "task_state", self.task_state),
            ("TaskObj", "task_fut_waiter", self.task_fut_waiter),
            ("TaskObj", "task_coro", self.task_coro),
            ("TaskObj", "task_name", self.task_name),
            ("futureiterobject", "future", self.future_iter_future),
        ]
        .into_iter()
        .chain(self.v314.iter().flat_map(|t| {
            [
                ("TaskObj", "task_awaited_by", t.awaited_by),
                ("TaskObj", "task_awaited_by_is_set", t.awaited_by_is_set),
                ("TaskObj", "task_node", t.node),
            ]
        }))
        .collect()
    }
}
