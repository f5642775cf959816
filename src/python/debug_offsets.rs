//! `_Py_DebugOffsets` (3.13+): the first member of `_PyRuntime`, where the interpreter publishes
//! the offsets a reader needs. Its shape (which groups, which fields, in which order) is only
//! stable within a minor version, so each known minor has a [`Shape`] naming its fields. A
//! version newer than any shape here is parsed in each known shape, newest first, and the first
//! one whose values pass [`DebugOffsets::check`] is used (the report then says the version is
//! newer than those tested).

use super::error::{OffsetsError, ShapeMiss};
use super::layout::{
    CodeLayout, FrameLayout, GilLayout, Instr, InterpLayout, Layout, LineTable, RuntimeLayout, StringLayout, TopFrame,
    TstateLayout,
};
use crate::process::{Memory, MemoryExt};

pub const COOKIE: &[u8; 8] = b"xdebugpy";

/// The newest minor version of 3.x this reader was tested against (a live interpreter, its
/// DWARF and its published offsets).
pub const NEWEST_TESTED: u32 = 15;

/// The fields of `_Py_DebugOffsets` this reader uses, all byte offsets (or sizes), plus how the
/// table was parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DebugOffsets {
    pub version: u64,
    pub free_threaded: bool,
    /// The minor version whose shape the table was parsed in.
    pub shape: u32,
    /// The version is newer than [`NEWEST_TESTED`]: the table was parsed in a known shape that
    /// its values fit, not in one made for it.
    pub newer_than_tested: bool,
    pub rt_size: u64,
    pub rt_finalizing: u64,
    pub rt_interpreters_head: u64,
    pub is_size: u64,
    pub is_id: u64,
    pub is_next: u64,
    pub is_threads_head: u64,
    pub is_ceval_gil: u64,
    /// `_gil` embedded in the interpreter, and its `enabled`/`locked`/`last_holder`
    /// (interp-relative; `enabled` is 0 in GIL builds).
    pub is_gil_runtime_state: u64,
    pub is_gil_enabled: u64,
    pub is_gil_locked: u64,
    pub is_gil_holder: u64,
    pub ts_size: u64,
    pub ts_next: u64,
    pub ts_interp: u64,
    pub ts_current_frame: u64,
    pub ts_thread_id: u64,
    pub ts_native_thread_id: u64,
    pub fr_size: u64,
    pub fr_previous: u64,
    pub fr_executable: u64,
    pub fr_instr_ptr: u64,
    pub fr_owner: u64,
    /// Free-threaded 3.14+ only (0 otherwise).
    pub fr_tlbc_index: u64,
    pub co_size: u64,
    pub co_filename: u64,
    pub co_name: u64,
    pub co_qualname: u64,
    pub co_linetable: u64,
    pub co_firstlineno: u64,
    pub co_code_adaptive: u64,
    /// Free-threaded 3.14+ only (0 otherwise).
    pub co_tlbc: u64,
    pub ob_size: u64,
    pub ob_type: u64,
    pub bytes_size: u64,
    pub bytes_ob_size: u64,
    pub bytes_ob_sval: u64,
    pub uni_size: u64,
    pub uni_state: u64,
    pub uni_length: u64,
    pub uni_asciiobject_size: u64,
    /// `sizeof(PyCompactUnicodeObject)`, published from 3.15 (0 before).
    pub uni_compact_size: u64,
    /// What the object reader (locals, thread names, the collector's state) takes from the
    /// table; see [`super::objects::ObjectLayout`].
    pub objects: ObjectOffsets,
}

/// The fields of `_Py_DebugOffsets` about objects (0 where a shape lacks them: `tp_basicsize`,
/// `tp_dictoffset` and `ht_cached_keys` are published from 3.15).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectOffsets {
    pub is_gc: u64,
    pub is_imports_modules: u64,
    pub fr_localsplus: u64,
    pub co_argcount: u64,
    pub co_localsplusnames: u64,
    pub co_localspluskinds: u64,
    pub tp_name: u64,
    pub tp_flags: u64,
    pub tp_basicsize: u64,
    pub tp_dictoffset: u64,
    pub ht_cached_keys: u64,
    pub tuple_ob_item: u64,
    pub tuple_ob_size: u64,
    pub list_ob_item: u64,
    pub list_ob_size: u64,
    pub dict_ma_keys: u64,
    pub dict_ma_values: u64,
    pub float_ob_fval: u64,
    pub long_lv_tag: u64,
    pub long_ob_digit: u64,
    pub gc_collecting: u64,
}

/// The groups of `_Py_DebugOffsets` in order, each with its u64 fields in order.
/// 3.13: Include/internal/pycore_runtime.h. 3.14, 3.15: Include/internal/pycore_debug_offsets.h.
pub struct Shape {
    pub minor: u32,
    groups: &'static [(&'static str, &'static [&'static str])],
}

const RUNTIME: (&str, &[&str]) = ("runtime_state", &["size", "finalizing", "interpreters_head"]);
const PYOBJECT: (&str, &[&str]) = ("pyobject", &["size", "ob_type"]);
const TUPLE: (&str, &[&str]) = ("tuple_object", &["size", "ob_item", "ob_size"]);
const LIST: (&str, &[&str]) = ("list_object", &["size", "ob_item", "ob_size"]);
const SET: (&str, &[&str]) = ("set_object", &["size", "used", "table", "mask"]);
const DICT: (&str, &[&str]) = ("dict_object", &["size", "ma_keys", "ma_values"]);
const FLOAT: (&str, &[&str]) = ("float_object", &["size", "ob_fval"]);
const LONG: (&str, &[&str]) = ("long_object", &["size", "lv_tag", "ob_digit"]);
const BYTES: (&str, &[&str]) = ("bytes_object", &["size", "ob_size", "ob_sval"]);
const GEN: (&str, &[&str]) = ("gen_object", &["size", "gi_name", "gi_iframe", "gi_frame_state"]);
const LLIST: (&str, &[&str]) = ("llist_node", &["next", "prev"]);
const DEBUGGER: (&str, &[&str]) = (
    "debugger_support",
    &[
        "eval_breaker",
        "remote_debugger_support",
        "remote_debugging_enabled",
        "debugger_pending_call",
        "debugger_script_path",
        "debugger_script_path_size",
    ],
);
const INTERP_314: (&str, &[&str]) = (
    "interpreter_state",
    &[
        "size",
        "id",
        "next",
        "threads_head",
        "threads_main",
        "gc",
        "imports_modules",
        "sysdict",
        "builtins",
        "ceval_gil",
        "gil_runtime_state",
        "gil_runtime_state_enabled",
        "gil_runtime_state_locked",
        "gil_runtime_state_holder",
        "code_object_generation",
        "tlbc_generation",
    ],
);
const FRAME_314: (&str, &[&str]) = (
    "interpreter_frame",
    &["size", "previous", "executable", "instr_ptr", "localsplus", "owner", "stackpointer", "tlbc_index"],
);
const CODE_313: &[&str] = &[
    "size",
    "filename",
    "name",
    "qualname",
    "linetable",
    "firstlineno",
    "argcount",
    "localsplusnames",
    "localspluskinds",
    "co_code_adaptive",
];
const CODE_314: &[&str] = &[
    "size",
    "filename",
    "name",
    "qualname",
    "linetable",
    "firstlineno",
    "argcount",
    "localsplusnames",
    "localspluskinds",
    "co_code_adaptive",
    "co_tlbc",
];
const TSTATE_313: &[&str] =
    &["size", "prev", "next", "interp", "current_frame", "thread_id", "native_thread_id", "datastack_chunk", "status"];
const UNICODE_313: &[&str] = &["size", "state", "length", "asciiobject_size"];

pub const SHAPE_313: Shape = Shape {
    minor: 13,
    groups: &[
        RUNTIME,
        (
            "interpreter_state",
            &[
                "size",
                "id",
                "next",
                "threads_head",
                "gc",
                "imports_modules",
                "sysdict",
                "builtins",
                "ceval_gil",
                "gil_runtime_state",
                "gil_runtime_state_enabled",
                "gil_runtime_state_locked",
                "gil_runtime_state_holder",
            ],
        ),
        ("thread_state", TSTATE_313),
        ("interpreter_frame", &["size", "previous", "executable", "instr_ptr", "localsplus", "owner"]),
        ("code_object", CODE_313),
        PYOBJECT,
        ("type_object", &["size", "tp_name", "tp_repr", "tp_flags"]),
        TUPLE,
        LIST,
        DICT,
        FLOAT,
        LONG,
        BYTES,
        ("unicode_object", UNICODE_313),
        ("gc", &["size", "collecting"]),
    ],
};

pub const SHAPE_314: Shape = Shape {
    minor: 14,
    groups: &[
        RUNTIME,
        INTERP_314,
        ("thread_state", TSTATE_313),
        FRAME_314,
        ("code_object", CODE_314),
        PYOBJECT,
        ("type_object", &["size", "tp_name", "tp_repr", "tp_flags"]),
        TUPLE,
        LIST,
        SET,
        DICT,
        FLOAT,
        LONG,
        BYTES,
        ("unicode_object", UNICODE_313),
        ("gc", &["size", "collecting"]),
        GEN,
        LLIST,
        DEBUGGER,
    ],
};

/// 3.15 inserts `base_frame`, `last_profiled_frame`, `last_profiled_frame_seq` after
/// `current_frame` and appends `holds_gil`, `gil_requested`, `current_exception`, `exc_state` to
/// `thread_state`; adds the `err_stackitem` group after it; `tp_basicsize`, `tp_dictoffset` to
/// `type_object`; the `heap_type_object` group after it; `compactunicodeobject_size` to
/// `unicode_object`; `frame`, `generation_stats_size`, `generation_stats` to `gc`.
pub const SHAPE_315: Shape = Shape {
    minor: 15,
    groups: &[
        RUNTIME,
        INTERP_314,
        (
            "thread_state",
            &[
                "size",
                "prev",
                "next",
                "interp",
                "current_frame",
                "base_frame",
                "last_profiled_frame",
                "last_profiled_frame_seq",
                "thread_id",
                "native_thread_id",
                "datastack_chunk",
                "status",
                "holds_gil",
                "gil_requested",
                "current_exception",
                "exc_state",
            ],
        ),
        ("err_stackitem", &["exc_value"]),
        FRAME_314,
        ("code_object", CODE_314),
        PYOBJECT,
        ("type_object", &["size", "tp_name", "tp_repr", "tp_flags", "tp_basicsize", "tp_dictoffset"]),
        ("heap_type_object", &["size", "ht_cached_keys"]),
        TUPLE,
        LIST,
        SET,
        DICT,
        FLOAT,
        LONG,
        BYTES,
        ("unicode_object", &["size", "state", "length", "asciiobject_size", "compactunicodeobject_size"]),
        ("gc", &["size", "collecting", "frame", "generation_stats_size", "generation_stats"]),
        GEN,
        LLIST,
        DEBUGGER,
    ],
};

/// Every shape this reader knows, oldest first.
pub const SHAPES: &[&Shape] = &[&SHAPE_313, &SHAPE_314, &SHAPE_315];

impl Shape {
    /// Bytes from the cookie to the end of the last group.
    pub fn size(&self) -> usize {
        24 + 8 * self.groups.iter().map(|g| g.1.len()).sum::<usize>()
    }

    /// Byte position of `group.field` inside the struct, if this shape has it.
    pub fn pos(&self, group: &str, field: &str) -> Option<usize> {
        let mut at = 24;
        for (g, fields) in self.groups {
            if *g == group {
                return fields.iter().position(|f| *f == field).map(|i| at + 8 * i);
            }
            at += 8 * fields.len();
        }
        None
    }
}

/// Fields every shape has; the others ([`OPTIONAL`]) stay 0 where a shape lacks them.
const OPTIONAL: &[(&str, &str)] = &[
    ("interpreter_frame", "tlbc_index"),
    ("code_object", "co_tlbc"),
    ("unicode_object", "compactunicodeobject_size"),
    ("type_object", "tp_basicsize"),
    ("type_object", "tp_dictoffset"),
    ("heap_type_object", "ht_cached_keys"),
];

impl DebugOffsets {
    /// (group, field, slot) for every field this reader takes from the table.
    fn slots(&mut self) -> Vec<(&'static str, &'static str, &mut u64)> {
        vec![
            ("runtime_state", "size", &mut self.rt_size),
            ("runtime_state", "finalizing", &mut self.rt_finalizing),
            ("runtime_state", "interpreters_head", &mut self.rt_interpreters_head),
            ("interpreter_state", "size", &mut self.is_size),
            ("interpreter_state", "id", &mut self.is_id),
            ("interpreter_state", "next", &mut self.is_next),
            ("interpreter_state", "threads_head", &mut self.is_threads_head),
            ("interpreter_state", "ceval_gil", &mut self.is_ceval_gil),
            ("interpreter_state", "gil_runtime_state", &mut self.is_gil_runtime_state),
            ("interpreter_state", "gil_runtime_state_enabled", &mut self.is_gil_enabled),
            ("interpreter_state", "gil_runtime_state_locked", &mut self.is_gil_locked),
            ("interpreter_state", "gil_runtime_state_holder", &mut self.is_gil_holder),
            ("thread_state", "size", &mut self.ts_size),
            ("thread_state", "next", &mut self.ts_next),
            ("thread_state", "interp", &mut self.ts_interp),
            ("thread_state", "current_frame", &mut self.ts_current_frame),
            ("thread_state", "thread_id", &mut self.ts_thread_id),
            ("thread_state", "native_thread_id", &mut self.ts_native_thread_id),
            ("interpreter_frame", "size", &mut self.fr_size),
            ("interpreter_frame", "previous", &mut self.fr_previous),
            ("interpreter_frame", "executable", &mut self.fr_executable),
            ("interpreter_frame", "instr_ptr", &mut self.fr_instr_ptr),
            ("interpreter_frame", "owner", &mut self.fr_owner),
            ("interpreter_frame", "tlbc_index", &mut self.fr_tlbc_index),
            ("code_object", "size", &mut self.co_size),
            ("code_object", "filename", &mut self.co_filename),
            ("code_object", "name", &mut self.co_name),
            ("code_object", "qualname", &mut self.co_qualname),
            ("code_object", "linetable", &mut self.co_linetable),
            ("code_object", "firstlineno", &mut self.co_firstlineno),
            ("code_object", "co_code_adaptive", &mut self.co_code_adaptive),
            ("code_object", "co_tlbc", &mut self.co_tlbc),
            ("pyobject", "size", &mut self.ob_size),
            ("pyobject", "ob_type", &mut self.ob_type),
            ("bytes_object", "size", &mut self.bytes_size),
            ("bytes_object", "ob_size", &mut self.bytes_ob_size),
            ("bytes_object", "ob_sval", &mut self.bytes_ob_sval),
            ("unicode_object", "size", &mut self.uni_size),
            ("unicode_object", "state", &mut self.uni_state),
            ("unicode_object", "length", &mut self.uni_length),
            ("unicode_object", "asciiobject_size", &mut self.uni_asciiobject_size),
            ("unicode_object", "compactunicodeobject_size", &mut self.uni_compact_size),
            ("interpreter_state", "gc", &mut self.objects.is_gc),
            ("interpreter_state", "imports_modules", &mut self.objects.is_imports_modules),
            ("interpreter_frame", "localsplus", &mut self.objects.fr_localsplus),
            ("code_object", "argcount", &mut self.objects.co_argcount),
            ("code_object", "localsplusnames", &mut self.objects.co_localsplusnames),
            ("code_object", "localspluskinds", &mut self.objects.co_localspluskinds),
            ("type_object", "tp_name", &mut self.objects.tp_name),
            ("type_object", "tp_flags", &mut self.objects.tp_flags),
            ("type_object", "tp_basicsize", &mut self.objects.tp_basicsize),
            ("type_object", "tp_dictoffset", &mut self.objects.tp_dictoffset),
            ("heap_type_object", "ht_cached_keys", &mut self.objects.ht_cached_keys),
            ("tuple_object", "ob_item", &mut self.objects.tuple_ob_item),
            ("tuple_object", "ob_size", &mut self.objects.tuple_ob_size),
            ("list_object", "ob_item", &mut self.objects.list_ob_item),
            ("list_object", "ob_size", &mut self.objects.list_ob_size),
            ("dict_object", "ma_keys", &mut self.objects.dict_ma_keys),
            ("dict_object", "ma_values", &mut self.objects.dict_ma_values),
            ("float_object", "ob_fval", &mut self.objects.float_ob_fval),
            ("long_object", "lv_tag", &mut self.objects.long_lv_tag),
            ("long_object", "ob_digit", &mut self.objects.long_ob_digit),
            ("gc", "collecting", &mut self.objects.gc_collecting),
        ]
    }

    /// Parses `bytes` (the table from the cookie on) in `shape`.
    fn parse(bytes: &[u8], shape: &Shape) -> DebugOffsets {
        let word = |p: usize| bytes.get(p..p + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
        let mut d =
            DebugOffsets { version: word(8), free_threaded: word(16) != 0, shape: shape.minor, ..Default::default() };
        for (g, f, slot) in d.slots() {
            if let Some(p) = shape.pos(g, f) {
                *slot = word(p);
            }
        }
        d
    }

    /// Whether the values are believable for the shape they were parsed in: sizes and offsets in
    /// range, every offset inside its struct, and the object headers consistent with each other
    /// (`bytes.ob_size` and `unicode.length` right after the `PyObject` header, `ob_sval` and
    /// `state` 16 bytes later, ...). Parsing in the wrong shape shifts every group after the
    /// first difference, which these relations catch.
    pub fn check(&self) -> Result<(), OffsetsError> {
        let mut me = self.clone();
        if let Some((group, field, v)) = me.slots().into_iter().find(|(_, _, v)| **v >= MAX_OFFSET) {
            return Err(OffsetsError::Unbelievable { group, field, value: *v });
        }
        let inside = |group: &'static str, size: u64, offs: &[(&'static str, u64, u64)]| {
            for &(field, offset, width) in offs {
                if offset.saturating_add(width) > size {
                    return Err(OffsetsError::OutsideStruct { group, field, offset, size });
                }
            }
            Ok(())
        };
        inside(
            "runtime_state",
            self.rt_size,
            &[("finalizing", self.rt_finalizing, 8), ("interpreters_head", self.rt_interpreters_head, 8)],
        )?;
        inside(
            "interpreter_state",
            self.is_size,
            &[
                ("id", self.is_id, 8),
                ("next", self.is_next, 8),
                ("threads_head", self.is_threads_head, 8),
                ("ceval_gil", self.is_ceval_gil, 8),
                ("gil_runtime_state_locked", self.is_gil_locked, 4),
                ("gil_runtime_state_holder", self.is_gil_holder, 8),
            ],
        )?;
        inside(
            "thread_state",
            self.ts_size,
            &[
                ("next", self.ts_next, 8),
                ("interp", self.ts_interp, 8),
                ("current_frame", self.ts_current_frame, 8),
                ("thread_id", self.ts_thread_id, 8),
                ("native_thread_id", self.ts_native_thread_id, 8),
            ],
        )?;
        inside(
            "interpreter_frame",
            self.fr_size,
            &[
                ("previous", self.fr_previous, 8),
                ("executable", self.fr_executable, 8),
                ("instr_ptr", self.fr_instr_ptr, 8),
                ("owner", self.fr_owner, 1),
            ],
        )?;
        inside(
            "code_object",
            self.co_size,
            &[
                ("filename", self.co_filename, 8),
                ("name", self.co_name, 8),
                ("qualname", self.co_qualname, 8),
                ("linetable", self.co_linetable, 8),
                ("firstlineno", self.co_firstlineno, 4),
                ("co_code_adaptive", self.co_code_adaptive, 0),
            ],
        )?;
        if !(16..=64).contains(&self.ob_size) || self.ob_size % 8 != 0 || self.ob_type + 8 > self.ob_size {
            return Err(OffsetsError::NotAnObjectHeader { size: self.ob_size, ob_type: self.ob_type });
        }
        let h = self.ob_size;
        let mut rel = vec![
            ("bytes_object.ob_size", self.bytes_ob_size, h),
            ("bytes_object.ob_sval", self.bytes_ob_sval, h + 16),
            ("unicode_object.length", self.uni_length, h),
            ("unicode_object.state", self.uni_state, h + 16),
            ("unicode_object.asciiobject_size", self.uni_asciiobject_size, h + 24),
        ];
        if self.uni_compact_size != 0 {
            rel.push(("unicode_object.compactunicodeobject_size", self.uni_compact_size, h + 40));
        }
        for (field, got, want) in rel {
            if got != want {
                return Err(OffsetsError::Misplaced { field, got, want, header: h });
            }
        }
        if self.bytes_size < self.bytes_ob_sval || self.uni_size < self.uni_asciiobject_size {
            return Err(OffsetsError::TooSmall);
        }
        Ok(())
    }
}

/// What reading the debug offsets at an address found.
#[derive(Debug)]
pub enum Found {
    /// No cookie: the interpreter is older than 3.13 (or this is not `_PyRuntime`).
    Absent,
    /// A cookie, but a table this reader cannot use: `why` says what did not fit.
    Unreadable {
        version: u64,
        why: OffsetsError,
    },
    Ok(Box<DebugOffsets>),
}

/// Reads `_Py_DebugOffsets` at `addr` (the `_PyRuntime` address).
pub fn read(mem: &dyn Memory, addr: u64) -> Result<Found, OffsetsError> {
    read_with(mem, addr, NEWEST_TESTED, SHAPES)
}

/// [`read`] with a different idea of what was tested and which shapes exist: a version whose
/// minor is above `tested_up_to` is parsed in each of `shapes`, newest first (tests present a
/// known version as unknown this way).
pub fn read_with(mem: &dyn Memory, addr: u64, tested_up_to: u32, shapes: &[&Shape]) -> Result<Found, OffsetsError> {
    let mut head = [0u8; 24];
    mem.read_exact(addr, &mut head).map_err(OffsetsError::Runtime)?;
    if &head[..8] != COOKIE {
        return Ok(Found::Absent);
    }
    let version = u64::from_le_bytes(head[8..16].try_into().unwrap());
    let (major, minor) = (version >> 24, ((version >> 16) & 0xff) as u32);
    let name = super::version::Version::from_hex(version).map_or_else(|| format!("{version:#x}"), |v| v.to_string());
    let unreadable = |why: OffsetsError| Ok(Found::Unreadable { version, why });
    if major != 3 || minor < 13 {
        return unreadable(OffsetsError::NoTable(name));
    }
    let mut order: Vec<&Shape> = shapes.to_vec();
    order.sort_by_key(|s| std::cmp::Reverse(s.minor));
    let newer = minor > tested_up_to;
    if !newer {
        order.retain(|s| s.minor == minor);
    }
    if order.is_empty() {
        return unreadable(OffsetsError::UnknownShape(name));
    }
    let mut tried = Vec::new();
    for shape in order {
        let bytes = match mem.read_bytes(addr, shape.size()) {
            Ok(b) => b,
            Err(e) => {
                tried.push((shape.minor, ShapeMiss::Read(e)));
                continue;
            }
        };
        let mut d = DebugOffsets::parse(&bytes, shape);
        match d.check() {
            Ok(()) => {
                d.newer_than_tested = newer;
                return Ok(Found::Ok(Box::new(d)));
            }
            Err(e) => tried.push((shape.minor, ShapeMiss::Check(Box::new(e)))),
        }
    }
    unreadable(OffsetsError::NoShapeFits { version: name, newer, tested_up_to, tried })
}

/// Offsets (and sizes) beyond this are not believable for any of these structs.
const MAX_OFFSET: u64 = 1 << 24;

impl DebugOffsets {
    /// A layout from the interpreter's own offsets. What the table does not publish comes from
    /// what is known of its minor version (or, for a newer one, of the newest known): which frame
    /// owners are the eval loop's own, whether code references are tagged, where `kind` sits in
    /// a string's `state`.
    pub fn to_layout(&self) -> Result<Layout, OffsetsError> {
        let major = (self.version >> 24) as u32;
        let minor = ((self.version >> 16) & 0xff) as u32;
        self.check()?;
        let ft = self.free_threaded;
        let gil_base = self.is_gil_runtime_state;
        let tested = if self.newer_than_tested { format!(", parsed as 3.{}", self.shape) } else { String::new() };
        Ok(Layout {
            major,
            minor,
            label: format!("{major}.{minor}{} (_Py_DebugOffsets{tested})", if ft { "t" } else { "" }),
            runtime: RuntimeLayout {
                interpreters_head: Some(self.rt_interpreters_head),
                finalizing: Some(self.rt_finalizing),
                initialized: None,
                tstate_current: None,
            },
            interp: InterpLayout {
                next: self.is_next,
                threads_head: self.is_threads_head,
                id: Some(self.is_id),
                ceval_gil: Some(self.is_ceval_gil),
            },
            tstate: TstateLayout {
                next: self.ts_next,
                interp: self.ts_interp,
                top_frame: TopFrame::Direct(self.ts_current_frame),
                thread_id: self.ts_thread_id,
                native_thread_id: Some(self.ts_native_thread_id),
            },
            frame: FrameLayout {
                back: self.fr_previous,
                code: self.fr_executable,
                instr: self.fr_instr_ptr,
                instr_kind: Instr::Pointer,
                is_object: false,
                is_entry: None,
                owner: Some(self.fr_owner),
                shim_owners: shim_owners(minor),
                code_tagged: minor >= 14,
                tlbc_index: (ft && self.fr_tlbc_index != 0).then_some(self.fr_tlbc_index),
            },
            code: CodeLayout {
                filename: self.co_filename,
                name: self.co_name,
                qualname: Some(self.co_qualname),
                linetable: self.co_linetable,
                firstlineno: self.co_firstlineno,
                code_adaptive: Some(self.co_code_adaptive),
                table: LineTable::Locations,
                tlbc: (ft && self.co_tlbc != 0).then_some(self.co_tlbc),
            },
            string: StringLayout::Unicode {
                length: self.uni_length,
                state: self.uni_state,
                ascii_data: self.uni_asciiobject_size,
                // PyCompactUnicodeObject is PyASCIIObject plus utf8_length and utf8 (16 bytes)
                // since 3.12 removed wstr; 3.15 publishes it.
                compact_data: if self.uni_compact_size != 0 {
                    self.uni_compact_size
                } else {
                    self.uni_asciiobject_size + 16
                },
                kind_bit: if ft && minor >= 14 { 8 } else { 2 },
            },
            bytes: (self.bytes_ob_size, self.bytes_ob_sval),
            gil: GilLayout {
                last_holder: self.is_gil_holder.wrapping_sub(gil_base),
                locked: self.is_gil_locked.wrapping_sub(gil_base),
            },
            ob_type: self.ob_type,
        })
    }
}

/// Owner values of the frames the eval loop pushes for itself: FRAME_OWNED_BY_CSTACK (3) in
/// 3.13; 3.14 adds FRAME_OWNED_BY_INTERPRETER (3) for its entry frame and moves CSTACK to 4;
/// 3.15 drops CSTACK. Include/internal/pycore_frame.h, pycore_interpframe_structs.h.
fn shim_owners(minor: u32) -> Vec<u8> {
    match minor {
        ..=13 => vec![3],
        14 => vec![3, 4],
        _ => vec![3],
    }
}

/// Builds a `_Py_DebugOffsets` image (for tests): `d` laid out in the shape of minor `shape`,
/// with the version and free-threading flag of `d`, other fields zero.
pub fn encode_as(d: &DebugOffsets, shape: u32) -> Vec<u8> {
    let shape = SHAPES.iter().find(|s| s.minor == shape).expect("a known shape");
    let mut out = vec![0u8; shape.size()];
    out[..8].copy_from_slice(COOKIE);
    out[8..16].copy_from_slice(&d.version.to_le_bytes());
    out[16..24].copy_from_slice(&u64::from(d.free_threaded).to_le_bytes());
    let mut d = d.clone();
    for (g, f, v) in d.slots() {
        match shape.pos(g, f) {
            Some(p) => out[p..p + 8].copy_from_slice(&v.to_le_bytes()),
            None => assert!(*v == 0 || OPTIONAL.contains(&(g, f)), "3.{} has no {g}.{f}", shape.minor),
        }
    }
    out
}

/// [`encode_as`] in the shape of `d.shape`.
pub fn encode(d: &DebugOffsets) -> Vec<u8> {
    encode_as(d, d.shape)
}

/// The 3.13.0 values (measured with gdb on the pyenv build, sizes from its `.PyRuntime`).
pub fn values_3_13_0() -> DebugOffsets {
    DebugOffsets {
        version: 0x030d00f0,
        shape: 13,
        rt_size: 283320,
        rt_finalizing: 608,
        rt_interpreters_head: 632,
        is_size: 194968,
        is_id: 7272,
        is_next: 7264,
        is_threads_head: 7344,
        is_ceval_gil: 16,
        is_gil_runtime_state: 7752,
        is_gil_locked: 7768,
        is_gil_holder: 7760,
        ts_size: 304,
        ts_next: 8,
        ts_interp: 16,
        ts_current_frame: 72,
        ts_thread_id: 152,
        ts_native_thread_id: 160,
        fr_size: 80,
        fr_previous: 8,
        fr_executable: 0,
        fr_instr_ptr: 56,
        fr_owner: 70,
        co_size: 200,
        co_filename: 112,
        co_name: 120,
        co_qualname: 128,
        co_linetable: 136,
        co_firstlineno: 68,
        co_code_adaptive: 200,
        ob_size: 16,
        ob_type: 8,
        bytes_size: 40,
        bytes_ob_size: 16,
        bytes_ob_sval: 32,
        uni_size: 64,
        uni_state: 32,
        uni_length: 16,
        uni_asciiobject_size: 40,
        ..Default::default()
    }
}

/// The values of Debian sid's 3.15.2 (`.PyRuntime` of /usr/bin/python3.15, 3.15.2-1), for tests.
pub fn values_3_15_2() -> DebugOffsets {
    DebugOffsets {
        version: 0x030f02f0,
        shape: 15,
        rt_size: 346568,
        rt_finalizing: 912,
        rt_interpreters_head: 936,
        is_size: 226240,
        is_id: 7272,
        is_next: 7264,
        is_threads_head: 7336,
        is_ceval_gil: 16,
        is_gil_runtime_state: 7736,
        is_gil_locked: 7752,
        is_gil_holder: 7744,
        ts_size: 888,
        ts_current_frame: 72,
        ts_thread_id: 176,
        ts_native_thread_id: 184,
        fr_size: 88,
        fr_instr_ptr: 56,
        fr_owner: 74,
        co_size: 216,
        co_code_adaptive: 208,
        uni_compact_size: 56,
        ..values_3_13_0()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ImageMemory;

    fn image(bytes: Vec<u8>) -> ImageMemory {
        let mut m = ImageMemory::new();
        // Room after the table, as in `_PyRuntime`: a reader trying a longer shape can read it.
        let mut b = bytes;
        b.resize(4096, 0);
        m.add(0x1000, b);
        m
    }

    #[test]
    fn shapes_have_the_documented_sizes() {
        assert_eq!(SHAPE_313.size(), 584);
        assert_eq!(SHAPE_314.size(), 760);
        assert_eq!(SHAPE_313.pos("thread_state", "size"), Some(152));
        assert_eq!(SHAPE_314.pos("thread_state", "size"), Some(176));
        assert_eq!(SHAPE_314.pos("interpreter_frame", "size"), Some(248));
        assert_eq!(SHAPE_314.pos("code_object", "size"), Some(312));
        // 3.15: thread_state grows by 7 fields, err_stackitem and heap_type_object are new.
        assert_eq!(SHAPE_315.pos("thread_state", "thread_id"), Some(176 + 8 * 8));
        assert_eq!(SHAPE_315.pos("interpreter_frame", "size"), Some(176 + 8 * 16 + 8));
        assert_eq!(SHAPE_315.size(), 760 + 8 * (7 + 1 + 2 + 2 + 1 + 3));
        assert_eq!(SHAPE_313.pos("code_object", "co_tlbc"), None);
    }

    #[test]
    fn every_known_version_reads_back_in_its_own_shape() {
        for d in [values_3_13_0(), DebugOffsets { version: 0x030e0af0, shape: 14, ..values_3_13_0() }, values_3_15_2()]
        {
            let m = image(encode(&d));
            let Found::Ok(got) = read(&m, 0x1000).unwrap() else { panic!("3.{} not parsed", d.shape) };
            assert_eq!(*got, d);
            assert!(!got.newer_than_tested);
        }
    }

    #[test]
    fn debug_offsets_of_313_match_the_static_table() {
        let d = values_3_13_0();
        let m = image(encode(&d));
        let Found::Ok(got) = read(&m, 0x1000).unwrap() else { panic!("not parsed") };
        let from_offsets = got.to_layout().unwrap();
        let table = Layout::for_version(3, 13, 0).unwrap();
        // Everything but the label and `initialized` (not published) must agree.
        assert_eq!(from_offsets.interp, table.interp);
        assert_eq!(from_offsets.tstate, table.tstate);
        assert_eq!(from_offsets.frame, table.frame);
        assert_eq!(from_offsets.code, table.code);
        assert_eq!(from_offsets.string, table.string);
        assert_eq!(from_offsets.gil, table.gil);
        assert_eq!(from_offsets.bytes, table.bytes);
        assert_eq!(from_offsets.ob_type, table.ob_type);
        assert_eq!(from_offsets.runtime.interpreters_head, table.runtime.interpreters_head);
        assert_eq!(from_offsets.runtime.finalizing, table.runtime.finalizing);
    }

    #[test]
    fn refuses_bad_cookies_versions_and_values() {
        let d = values_3_13_0();
        let mut img = encode(&d);
        img[0] = b'X';
        assert!(matches!(read(&image(img), 0x1000).unwrap(), Found::Absent));
        // A cookie on a version that has no table.
        let mut img = encode(&d);
        img[8..16].copy_from_slice(&0x030c01f0u64.to_le_bytes());
        assert!(matches!(read(&image(img), 0x1000).unwrap(), Found::Unreadable { version: 0x030c01f0, .. }));
        // Implausible offsets, and a frame field outside the frame.
        let mut bad = d.clone();
        bad.co_name = 1 << 40;
        assert!(bad.to_layout().is_err());
        let Found::Unreadable { why, .. } = read(&image(encode(&bad)), 0x1000).unwrap() else { panic!() };
        assert!(why.to_string().contains("implausible"), "{why}");
        assert!(matches!(&why, OffsetsError::NoShapeFits { newer: false, tried, .. } if tried.len() == 1), "{why:?}");
        let mut bad = d.clone();
        bad.fr_owner = 80;
        let why = bad.check().unwrap_err();
        assert_eq!(
            why,
            OffsetsError::OutsideStruct { group: "interpreter_frame", field: "owner", offset: 80, size: d.fr_size }
        );
        assert!(why.to_string().starts_with("interpreter_frame.owner (80) lies outside its struct of"), "{why}");
        let mut bad = d.clone();
        bad.uni_state = 40;
        assert!(
            matches!(bad.check(), Err(OffsetsError::Misplaced { field: "unicode_object.state", got: 40, .. })),
            "{:?}",
            bad.check()
        );
        assert!(read(&ImageMemory::new(), 0x9000).is_err());
    }

    /// A version newer than any tested is read in the first known shape its values fit.
    #[test]
    fn newer_versions_are_read_in_a_shape_that_fits() {
        // 3.16 publishing a table shaped like 3.15's.
        let mut d = values_3_15_2();
        d.version = 0x031000a1;
        let Found::Ok(got) = read(&image(encode_as(&d, 15)), 0x1000).unwrap() else { panic!() };
        assert!(got.newer_than_tested);
        assert_eq!(got.shape, 15);
        assert_eq!(got.ts_thread_id, 176);
        let l = got.to_layout().unwrap();
        assert_eq!((l.major, l.minor), (3, 16));
        assert!(l.label.contains("parsed as 3.15"), "{}", l.label);
        // A tested version is only read in its own shape: 3.13 in 3.14's shape is refused.
        let r = read(&image(encode_as(&DebugOffsets { shape: 14, ..values_3_13_0() }, 14)), 0x1000).unwrap();
        assert!(matches!(r, Found::Unreadable { .. }), "{r:?}");
        // 3.16 in 3.14's shape: 3.15's does not fit, 3.14's does.
        let mut d14 = DebugOffsets { shape: 14, ..values_3_13_0() };
        d14.version = 0x031000a1;
        let Found::Ok(got) = read(&image(encode_as(&d14, 14)), 0x1000).unwrap() else { panic!() };
        assert_eq!((got.shape, got.newer_than_tested), (14, true));
        assert_eq!(got.ts_thread_id, 152);
    }

    /// A known version presented as unknown: 3.15.2's real table, with 3.15 "untested", is
    /// still read in the 3.15 shape; with the 3.15 shape hidden as well, it fits no other shape
    /// and is refused with the reasons, never misread.
    #[test]
    fn a_known_version_presented_as_unknown() {
        let m = image(encode(&values_3_15_2()));
        let Found::Ok(got) = read_with(&m, 0x1000, 14, SHAPES).unwrap() else { panic!() };
        assert_eq!((got.shape, got.newer_than_tested), (15, true));
        assert_eq!(DebugOffsets { newer_than_tested: false, ..*got }, values_3_15_2());
        let r = read_with(&m, 0x1000, 14, &[&SHAPE_313, &SHAPE_314]).unwrap();
        let Found::Unreadable { why, .. } = r else { panic!("misread: {r:?}") };
        let text = why.to_string();
        assert!(text.contains("fit none") && text.contains("as 3.14") && text.contains("as 3.13"), "{why}");
    }

    #[test]
    fn shape_314_moves_groups_and_owners() {
        let d = DebugOffsets { version: 0x030e00f0, shape: 14, ..values_3_13_0() };
        let m = image(encode(&d));
        let Found::Ok(got) = read(&m, 0x1000).unwrap() else { panic!() };
        assert_eq!(*got, d);
        // The thread_state group starts at byte 176 in 3.14.
        let raw = encode(&d);
        assert_eq!(u64::from_le_bytes(raw[176 + 8 * 4..176 + 8 * 5].try_into().unwrap()), 72);
        let l = got.to_layout().unwrap();
        assert_eq!(l.frame.shim_owners, vec![3, 4]);
        assert!(l.frame.code_tagged);
        let l15 = values_3_15_2().to_layout().unwrap();
        assert_eq!(l15.frame.shim_owners, vec![3]);
        assert_eq!(l15.tstate.thread_id, 176);
    }
}
