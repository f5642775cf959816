//! Per-version struct layouts of CPython, as small hand-written tables (64-bit, GIL builds).
//!
//! Each number was measured on the pyenv builds with gdb and is re-checked against their DWARF by
//! `tests/python_layouts_dwarf.rs` through [`Layout::dwarf_checks`]. 3.13+ prefer the offsets the
//! interpreter publishes about itself (`_Py_DebugOffsets`, see [`super::debug_offsets`]).

/// Where the interpreter keeps its state; only the fields this reader uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The major version (2 or 3).
    pub major: u32,
    /// The minor version.
    pub minor: u32,
    /// Which table this is, for notes: `3.7.4+`, `3.13 (debug offsets)`.
    pub label: String,
    /// `_PyRuntimeState`.
    pub runtime: RuntimeLayout,
    /// `PyInterpreterState`.
    pub interp: InterpLayout,
    /// `PyThreadState`.
    pub tstate: TstateLayout,
    /// A frame: `PyFrameObject` (≤3.10) or `_PyInterpreterFrame` (3.11+).
    pub frame: FrameLayout,
    /// `PyCodeObject`.
    pub code: CodeLayout,
    /// `str` objects.
    pub string: StringLayout,
    /// `PyBytesObject` (3.x) or `PyStringObject` (2.7), which hold line tables: (`ob_size`, data).
    pub bytes: (u64, u64),
    /// `struct _gil_runtime_state` (3.12+, reached through `interp.ceval_gil`).
    pub gil: GilLayout,
    /// `ob_type` in `PyObject`: 8 in GIL builds, 24 in free-threaded ones (published by 3.13+).
    pub ob_type: u64,
}

/// `_PyRuntimeState` (3.7+). Absent for 2.7 and 3.6, which use globals instead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuntimeLayout {
    /// `interpreters.head`: the first interpreter.
    pub interpreters_head: Option<u64>,
    /// `finalizing` / `_finalizing`: the finalizing thread state, NULL while running.
    pub finalizing: Option<u64>,
    /// `initialized` (an int): set once the runtime is initialized, cleared by finalization.
    pub initialized: Option<u64>,
    /// `gilstate.tstate_current` (3.7–3.11): the thread state holding the GIL.
    pub tstate_current: Option<u64>,
}

/// `PyInterpreterState`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpLayout {
    /// `next`: the next interpreter.
    pub next: u64,
    /// `threads.head`: the newest thread state.
    pub threads_head: u64,
    /// `id` (3.7+).
    pub id: Option<u64>,
    /// `ceval.gil`, a pointer to the GIL in use (3.12+).
    pub ceval_gil: Option<u64>,
}

/// `struct _gil_runtime_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GilLayout {
    /// `last_holder`: the thread state that took it last.
    pub last_holder: u64,
    /// `locked` (an int).
    pub locked: u64,
}

/// How a thread state points at its innermost frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopFrame {
    /// A frame pointer in the thread state (`frame` ≤3.10, `current_frame` 3.13+).
    Direct(u64),
    /// `tstate->cframe->current_frame` (3.11, 3.12).
    ViaCFrame {
        /// `cframe` in the thread state.
        cframe: u64,
        /// `current_frame` in `_PyCFrame`.
        current_frame: u64,
    },
}

/// `PyThreadState`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TstateLayout {
    /// `next`: the next (older) thread state.
    pub next: u64,
    /// `interp`: its interpreter.
    pub interp: u64,
    /// How it points at its innermost frame.
    pub top_frame: TopFrame,
    /// `thread_id`: the `pthread_t`.
    pub thread_id: u64,
    /// `native_thread_id`: the kernel tid (3.8+).
    pub native_thread_id: Option<u64>,
}

/// What a frame's instruction field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instr {
    /// `f_lasti` as an int, a byte offset into co_code (≤3.9).
    LastiBytes,
    /// `f_lasti` as an int, in 2-byte code units (3.10).
    LastiUnits,
    /// A pointer into `co_code_adaptive` (3.11+: `prev_instr`, then `instr_ptr`).
    Pointer,
}

/// A frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameLayout {
    /// `f_back` / `previous`.
    pub back: u64,
    /// `f_code` / `f_executable`.
    pub code: u64,
    /// `f_lasti`, `prev_instr` or `instr_ptr`.
    pub instr: u64,
    /// What `instr` holds.
    pub instr_kind: Instr,
    /// The frame is a heap object with an `ob_type` (≤3.10).
    pub is_object: bool,
    /// 3.11's `is_entry` byte.
    pub is_entry: Option<u64>,
    /// `owner` byte (3.11+).
    pub owner: Option<u64>,
    /// Owner values of the frames the C eval loop pushes for itself (shims), which carry no
    /// Python code: 3 (CSTACK) in 3.12/3.13; 3 (INTERPRETER) and 4 (CSTACK) in 3.14.
    pub shim_owners: Vec<u8>,
    /// `f_executable` is a tagged `_PyStackRef` (3.14): clear the low bits.
    pub code_tagged: bool,
    /// `tlbc_index` (free-threaded 3.14+): which thread-local copy of the bytecode
    /// `instr_ptr` points into (an int32; 0 is the code object's own `co_code_adaptive`).
    pub tlbc_index: Option<u64>,
}

/// The format of a code object's line table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineTable {
    /// `co_lnotab`: (byte delta, line delta) pairs; the line delta is signed from 3.6 on.
    Lnotab {
        /// The line delta is signed.
        signed: bool,
    },
    /// 3.10's `co_linetable`: (byte delta, signed line delta), -128 means no line.
    Linetable310,
    /// 3.11+ location table (Objects/locations.md).
    Locations,
}

/// `PyCodeObject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeLayout {
    /// `co_filename`.
    pub filename: u64,
    /// `co_name`.
    pub name: u64,
    /// `co_qualname` (3.11+).
    pub qualname: Option<u64>,
    /// `co_lnotab` or `co_linetable`, a bytes object.
    pub linetable: u64,
    /// `co_firstlineno` (an int).
    pub firstlineno: u64,
    /// `co_code_adaptive`, the inline bytecode (3.11+), where instruction pointers point.
    pub code_adaptive: Option<u64>,
    /// The format of its line table.
    pub table: LineTable,
    /// `co_tlbc` (free-threaded 3.14+): a `_PyCodeArray *` (`Py_ssize_t size; char *entries[]`)
    /// of the thread-local bytecode copies.
    pub tlbc: Option<u64>,
}

/// `str` objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringLayout {
    /// Python 2 `PyStringObject`: `ob_size`, then bytes at `data`.
    Bytes {
        /// `ob_size`.
        size: u64,
        /// `ob_sval`.
        data: u64,
    },
    /// `PyUnicodeObject` (PEP 393).
    Unicode {
        /// `length`, in characters.
        length: u64,
        /// `state`, the bit field with `kind`, `compact` and `ascii`.
        state: u64,
        /// `sizeof(PyASCIIObject)`: where compact ASCII data starts.
        ascii_data: u64,
        /// `sizeof(PyCompactUnicodeObject)`: where compact non-ASCII data starts, and where
        /// non-compact strings keep their data pointer.
        compact_data: u64,
        /// Bit of `state` where `kind` starts (`compact` and `ascii` follow it): 2 after the
        /// 2-bit `interned`, 8 in free-threaded 3.14+ where `interned` is a whole byte.
        kind_bit: u32,
    },
}

/// `PyBytesObject`: `ob_size` at 16, data at 32 in every 3.x GIL build.
const BYTES3: (u64, u64) = (16, 32);
/// `ob_type` in every GIL build.
pub const OB_TYPE: u64 = 8;

const UNICODE_OLD: StringLayout =
    StringLayout::Unicode { length: 16, state: 32, ascii_data: 48, compact_data: 72, kind_bit: 2 };
const UNICODE_312: StringLayout =
    StringLayout::Unicode { length: 16, state: 32, ascii_data: 40, compact_data: 56, kind_bit: 2 };

/// One offset of a table and the C member it stands for, for the DWARF cross-check.
#[derive(Debug, Clone)]
pub struct DwarfCheck {
    /// A struct or typedef name as DWARF spells it (`PyThreadState`, `_PyRuntimeState`).
    pub ty: &'static str,
    /// A dotted member path (`interpreters.head`), or `sizeof`.
    pub member: &'static str,
    /// The offset (or size) the table has for it.
    pub value: u64,
}

impl Layout {
    /// The layout as it is on `arch`. The tables are measured on x86_64; on aarch64 glibc's
    /// `pthread_mutex_t` is 48 bytes instead of 40, and 3.7–3.11 keep two of them inside
    /// `_PyRuntime.ceval.gil` (mutex, switch_mutex), before `gilstate.tstate_current`: 16 bytes
    /// further (576 → 592 in Debian bookworm's arm64 python3.11, from PyThreadState_Get's load).
    /// 3.13+ layouts come from the process's own `_Py_DebugOffsets` and need nothing.
    pub fn for_arch(mut self, arch: crate::arch::Arch) -> Layout {
        if arch == crate::arch::Arch::Aarch64 {
            if let Some(o) = self.runtime.tstate_current.as_mut() {
                *o += 16;
            }
        }
        self
    }

    /// The table for a CPython version, or None when this reader does not know it.
    /// `patch` matters only for 3.7 (0–3 and 4+ differ in `_PyRuntimeState`).
    pub fn for_version(major: u32, minor: u32, patch: u32) -> Option<Layout> {
        let obj_frame = |back, code, instr, kind| FrameLayout {
            back,
            code,
            instr,
            instr_kind: kind,
            is_object: true,
            is_entry: None,
            owner: None,
            shim_owners: vec![],
            code_tagged: false,
            tlbc_index: None,
        };
        let no_rt = RuntimeLayout::default();
        let gil = GilLayout { last_holder: 8, locked: 16 };
        let l = match (major, minor) {
            (2, 7) => Layout {
                major,
                minor,
                label: "2.7".into(),
                runtime: no_rt,
                interp: InterpLayout { next: 0, threads_head: 8, id: None, ceval_gil: None },
                tstate: TstateLayout {
                    next: 0,
                    interp: 8,
                    top_frame: TopFrame::Direct(16),
                    thread_id: 144,
                    native_thread_id: None,
                },
                frame: obj_frame(24, 32, 120, Instr::LastiBytes),
                code: CodeLayout {
                    filename: 80,
                    name: 88,
                    qualname: None,
                    linetable: 104,
                    firstlineno: 96,
                    code_adaptive: None,
                    table: LineTable::Lnotab { signed: false },
                    tlbc: None,
                },
                string: StringLayout::Bytes { size: 16, data: 36 },
                bytes: (16, 36),
                gil,
                ob_type: OB_TYPE,
            },
            (3, 6) => Layout {
                major,
                minor,
                label: "3.6".into(),
                runtime: no_rt,
                interp: InterpLayout { next: 0, threads_head: 8, id: None, ceval_gil: None },
                tstate: TstateLayout {
                    next: 8,
                    interp: 16,
                    top_frame: TopFrame::Direct(24),
                    thread_id: 152,
                    native_thread_id: None,
                },
                frame: obj_frame(24, 32, 120, Instr::LastiBytes),
                code: CodeLayout {
                    filename: 96,
                    name: 104,
                    qualname: None,
                    linetable: 112,
                    firstlineno: 36,
                    code_adaptive: None,
                    table: LineTable::Lnotab { signed: true },
                    tlbc: None,
                },
                string: UNICODE_OLD,
                bytes: BYTES3,
                gil,
                ob_type: OB_TYPE,
            },
            (3, 7..=10) => {
                let (head, fin, init, cur) = match (minor, patch) {
                    // 3.7.0–3.7.3: tstate_current per py-spy's table; no such build here to measure.
                    (7, 0..=3) => (24, 8, 0, 1392),
                    (7, _) => (24, 8, 0, 1480),
                    (8, _) => (32, 16, 12, 1368),
                    _ => (32, 16, 12, 568),
                };
                let (filename, name, linetable, firstlineno) =
                    if minor == 7 { (96, 104, 112, 36) } else { (104, 112, 120, 40) };
                let (instr, kind, table) = match minor {
                    7..=9 => (104, Instr::LastiBytes, LineTable::Lnotab { signed: true }),
                    _ => (96, Instr::LastiUnits, LineTable::Linetable310),
                };
                Layout {
                    major,
                    minor,
                    label: match (minor, patch) {
                        (7, 0..=3) => "3.7.0-3.7.3".into(),
                        (7, _) => "3.7.4+".into(),
                        _ => format!("3.{minor}"),
                    },
                    runtime: RuntimeLayout {
                        interpreters_head: Some(head),
                        finalizing: Some(fin),
                        initialized: Some(init),
                        tstate_current: Some(cur),
                    },
                    interp: InterpLayout {
                        next: 0,
                        threads_head: 8,
                        id: Some(if minor <= 8 { 16 } else { 24 }),
                        ceval_gil: None,
                    },
                    tstate: TstateLayout {
                        next: 8,
                        interp: 16,
                        top_frame: TopFrame::Direct(24),
                        thread_id: 176,
                        native_thread_id: None,
                    },
                    frame: obj_frame(24, 32, instr, kind),
                    code: CodeLayout {
                        filename,
                        name,
                        qualname: None,
                        linetable,
                        firstlineno,
                        code_adaptive: None,
                        table,
                        tlbc: None,
                    },
                    string: UNICODE_OLD,
                    bytes: BYTES3,
                    gil,
                    ob_type: OB_TYPE,
                }
            }
            (3, 11) => Layout {
                major,
                minor,
                label: "3.11".into(),
                runtime: RuntimeLayout {
                    interpreters_head: Some(40),
                    finalizing: Some(24),
                    initialized: Some(16),
                    tstate_current: Some(576),
                },
                interp: InterpLayout { next: 0, threads_head: 16, id: Some(48), ceval_gil: None },
                tstate: TstateLayout {
                    next: 8,
                    interp: 16,
                    top_frame: TopFrame::ViaCFrame { cframe: 56, current_frame: 8 },
                    thread_id: 152,
                    native_thread_id: Some(160),
                },
                frame: FrameLayout {
                    back: 48,
                    code: 32,
                    instr: 56,
                    instr_kind: Instr::Pointer,
                    is_object: false,
                    is_entry: Some(68),
                    owner: Some(69),
                    shim_owners: vec![],
                    code_tagged: false,
                    tlbc_index: None,
                },
                code: CodeLayout {
                    filename: 112,
                    name: 120,
                    qualname: Some(128),
                    linetable: 136,
                    firstlineno: 72,
                    code_adaptive: Some(184),
                    table: LineTable::Locations,
                    tlbc: None,
                },
                string: UNICODE_OLD,
                bytes: BYTES3,
                gil,
                ob_type: OB_TYPE,
            },
            (3, 12) => Layout {
                major,
                minor,
                label: "3.12".into(),
                runtime: RuntimeLayout {
                    interpreters_head: Some(40),
                    finalizing: Some(24),
                    initialized: Some(16),
                    tstate_current: None,
                },
                interp: InterpLayout { next: 0, threads_head: 72, id: Some(8), ceval_gil: Some(384) },
                tstate: TstateLayout {
                    next: 8,
                    interp: 16,
                    top_frame: TopFrame::ViaCFrame { cframe: 56, current_frame: 0 },
                    thread_id: 136,
                    native_thread_id: Some(144),
                },
                frame: FrameLayout {
                    back: 8,
                    code: 0,
                    instr: 56,
                    instr_kind: Instr::Pointer,
                    is_object: false,
                    is_entry: None,
                    owner: Some(70),
                    shim_owners: vec![3],
                    code_tagged: false,
                    tlbc_index: None,
                },
                code: CodeLayout {
                    filename: 112,
                    name: 120,
                    qualname: Some(128),
                    linetable: 136,
                    firstlineno: 68,
                    code_adaptive: Some(192),
                    table: LineTable::Locations,
                    tlbc: None,
                },
                string: UNICODE_312,
                bytes: BYTES3,
                gil,
                ob_type: OB_TYPE,
            },
            (3, 13) => Layout {
                major,
                minor,
                label: "3.13".into(),
                runtime: RuntimeLayout {
                    interpreters_head: Some(632),
                    finalizing: Some(608),
                    initialized: Some(600),
                    tstate_current: None,
                },
                interp: InterpLayout { next: 7264, threads_head: 7344, id: Some(7272), ceval_gil: Some(16) },
                tstate: TstateLayout {
                    next: 8,
                    interp: 16,
                    top_frame: TopFrame::Direct(72),
                    thread_id: 152,
                    native_thread_id: Some(160),
                },
                frame: FrameLayout {
                    back: 8,
                    code: 0,
                    instr: 56,
                    instr_kind: Instr::Pointer,
                    is_object: false,
                    is_entry: None,
                    owner: Some(70),
                    shim_owners: vec![3],
                    code_tagged: false,
                    tlbc_index: None,
                },
                code: CodeLayout {
                    filename: 112,
                    name: 120,
                    qualname: Some(128),
                    linetable: 136,
                    firstlineno: 68,
                    code_adaptive: Some(200),
                    table: LineTable::Locations,
                    tlbc: None,
                },
                string: UNICODE_312,
                bytes: BYTES3,
                gil,
                ob_type: OB_TYPE,
            },
            _ => return None,
        };
        Some(l)
    }

    /// Every offset of this table with the C member it must equal, for the DWARF cross-check.
    pub fn dwarf_checks(&self) -> Vec<DwarfCheck> {
        let mut v = Vec::new();
        let mut c = |ty: &'static str, member: &'static str, value: u64| v.push(DwarfCheck { ty, member, value });
        let (major, minor) = (self.major, self.minor);
        let rt = "_PyRuntimeState";
        if let Some(o) = self.runtime.interpreters_head {
            c(rt, "interpreters.head", o);
        }
        if let Some(o) = self.runtime.finalizing {
            c(rt, if minor <= 8 { "finalizing" } else { "_finalizing" }, o);
        }
        if let Some(o) = self.runtime.initialized {
            c(rt, "initialized", o);
        }
        if let Some(o) = self.runtime.tstate_current {
            c(rt, "gilstate.tstate_current", o);
        }
        let is = "PyInterpreterState";
        c(is, "next", self.interp.next);
        c(is, if major == 2 || minor <= 10 { "tstate_head" } else { "threads.head" }, self.interp.threads_head);
        if let Some(o) = self.interp.id {
            c(is, "id", o);
        }
        if let Some(o) = self.interp.ceval_gil {
            c(is, "ceval.gil", o);
        }
        if minor >= 12 {
            c("_gil_runtime_state", "last_holder", self.gil.last_holder);
            c("_gil_runtime_state", "locked", self.gil.locked);
        }
        let ts = "PyThreadState";
        c(ts, "next", self.tstate.next);
        c(ts, "interp", self.tstate.interp);
        match self.tstate.top_frame {
            TopFrame::Direct(o) => c(ts, if major == 2 || minor <= 10 { "frame" } else { "current_frame" }, o),
            TopFrame::ViaCFrame { cframe, current_frame } => {
                c(ts, "cframe", cframe);
                c("_PyCFrame", "current_frame", current_frame);
            }
        }
        c(ts, "thread_id", self.tstate.thread_id);
        if let Some(o) = self.tstate.native_thread_id {
            c(ts, "native_thread_id", o);
        }
        if self.frame.is_object {
            let f = "PyFrameObject";
            c(f, "f_back", self.frame.back);
            c(f, "f_code", self.frame.code);
            c(f, "f_lasti", self.frame.instr);
        } else {
            let f = "_PyInterpreterFrame";
            c(f, "previous", self.frame.back);
            c(f, if minor >= 13 { "f_executable" } else { "f_code" }, self.frame.code);
            c(f, if minor >= 13 { "instr_ptr" } else { "prev_instr" }, self.frame.instr);
            if let Some(o) = self.frame.is_entry {
                c(f, "is_entry", o);
            }
            if let Some(o) = self.frame.owner {
                c(f, "owner", o);
            }
        }
        let co = "PyCodeObject";
        c(co, "co_filename", self.code.filename);
        c(co, "co_name", self.code.name);
        if let Some(o) = self.code.qualname {
            c(co, "co_qualname", o);
        }
        c(
            co,
            if matches!(self.code.table, LineTable::Lnotab { .. }) { "co_lnotab" } else { "co_linetable" },
            self.code.linetable,
        );
        c(co, "co_firstlineno", self.code.firstlineno);
        if let Some(o) = self.code.code_adaptive {
            c(co, "co_code_adaptive", o);
        }
        match self.string {
            StringLayout::Bytes { size, data } => {
                c("PyStringObject", "ob_size", size);
                c("PyStringObject", "ob_sval", data);
            }
            StringLayout::Unicode { length, state, ascii_data, compact_data, .. } => {
                c("PyASCIIObject", "length", length);
                c("PyASCIIObject", "state", state);
                c("PyASCIIObject", "sizeof", ascii_data);
                c("PyCompactUnicodeObject", "sizeof", compact_data);
                c("PyUnicodeObject", "data", compact_data);
                c("PyBytesObject", "ob_base.ob_size", self.bytes.0);
                c("PyBytesObject", "ob_sval", self.bytes.1);
            }
        }
        c("PyObject", "ob_type", self.ob_type);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_versions_have_tables() {
        for (ma, mi) in [(2, 7), (3, 6), (3, 7), (3, 8), (3, 9), (3, 10), (3, 11), (3, 12), (3, 13)] {
            let l = Layout::for_version(ma, mi, 0).unwrap();
            assert_eq!((l.major, l.minor), (ma, mi));
            assert!(!l.dwarf_checks().is_empty());
        }
        assert!(Layout::for_version(3, 5, 0).is_none());
        assert!(Layout::for_version(3, 14, 0).is_none(), "3.14 comes from its debug offsets only");
    }

    #[test]
    fn python_37_patch_levels_differ() {
        let early = Layout::for_version(3, 7, 3).unwrap();
        let late = Layout::for_version(3, 7, 4).unwrap();
        assert_eq!(early.runtime.tstate_current, Some(1392));
        assert_eq!(late.runtime.tstate_current, Some(1480));
    }
}
