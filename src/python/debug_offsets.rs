//! `_Py_DebugOffsets` (3.13+): the first member of `_PyRuntime`, where the interpreter publishes
//! the offsets a reader needs. Its shape is only stable within a minor version, so the parser is
//! chosen by the `version` it carries.

use super::layout::{
    CodeLayout, FrameLayout, GilLayout, Instr, InterpLayout, Layout, LineTable, RuntimeLayout, StringLayout, TopFrame,
    TstateLayout,
};
use crate::process::{Memory, MemoryExt};

pub const COOKIE: &[u8; 8] = b"xdebugpy";

/// The fields of `_Py_DebugOffsets` this reader uses, all byte offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DebugOffsets {
    pub version: u64,
    pub free_threaded: bool,
    pub rt_finalizing: u64,
    pub rt_interpreters_head: u64,
    pub is_id: u64,
    pub is_next: u64,
    pub is_threads_head: u64,
    pub is_ceval_gil: u64,
    /// `_gil` embedded in the interpreter, and its `locked`/`last_holder` (interp-relative).
    pub is_gil_runtime_state: u64,
    pub is_gil_locked: u64,
    pub is_gil_holder: u64,
    pub ts_next: u64,
    pub ts_interp: u64,
    pub ts_current_frame: u64,
    pub ts_thread_id: u64,
    pub ts_native_thread_id: u64,
    pub fr_previous: u64,
    pub fr_executable: u64,
    pub fr_instr_ptr: u64,
    pub fr_owner: u64,
    pub co_filename: u64,
    pub co_name: u64,
    pub co_qualname: u64,
    pub co_linetable: u64,
    pub co_firstlineno: u64,
    pub co_code_adaptive: u64,
    pub ob_type: u64,
    pub bytes_ob_size: u64,
    pub bytes_ob_sval: u64,
    pub uni_state: u64,
    pub uni_length: u64,
    pub uni_asciiobject_size: u64,
}

/// Field counts of each group, in order, per minor version; each field is a u64.
/// 3.13: Include/internal/pycore_runtime.h. 3.14: Include/internal/pycore_debug_offsets.h.
struct Shape {
    /// (group name, number of u64 fields)
    groups: &'static [(&'static str, usize)],
}

const SHAPE_313: Shape = Shape {
    groups: &[
        ("runtime_state", 3),
        ("interpreter_state", 13),
        ("thread_state", 9),
        ("interpreter_frame", 6),
        ("code_object", 10),
        ("pyobject", 2),
        ("type_object", 4),
        ("tuple_object", 3),
        ("list_object", 3),
        ("dict_object", 3),
        ("float_object", 2),
        ("long_object", 3),
        ("bytes_object", 3),
        ("unicode_object", 4),
        ("gc", 2),
    ],
};

const SHAPE_314: Shape = Shape {
    groups: &[
        ("runtime_state", 3),
        ("interpreter_state", 16),
        ("thread_state", 9),
        ("interpreter_frame", 8),
        ("code_object", 11),
        ("pyobject", 2),
        ("type_object", 4),
        ("tuple_object", 3),
        ("list_object", 3),
        ("set_object", 4),
        ("dict_object", 3),
        ("float_object", 2),
        ("long_object", 3),
        ("bytes_object", 3),
        ("unicode_object", 4),
        ("gc", 2),
        ("gen_object", 4),
        ("llist_node", 2),
        ("debugger_support", 6),
    ],
};

impl Shape {
    fn size(&self) -> usize {
        24 + 8 * self.groups.iter().map(|g| g.1).sum::<usize>()
    }
    /// Byte position of field `i` of group `name` inside the struct.
    fn pos(&self, name: &str, i: usize) -> usize {
        let mut at = 24;
        for (g, n) in self.groups {
            if *g == name {
                assert!(i < *n);
                return at + 8 * i;
            }
            at += 8 * n;
        }
        unreachable!("unknown group {name}")
    }
}

/// The debug-offsets shape for a `PY_VERSION_HEX`, when this reader knows it.
fn shape_for(version: u64) -> Option<&'static Shape> {
    match (version >> 24, (version >> 16) & 0xff) {
        (3, 13) => Some(&SHAPE_313),
        (3, 14) => Some(&SHAPE_314),
        _ => None,
    }
}

/// What reading the debug offsets at an address found.
#[derive(Debug)]
pub enum Found {
    /// No cookie: the interpreter is older than 3.13 (or this is not `_PyRuntime`).
    Absent,
    /// A cookie with a version this reader has no parser for.
    Unknown {
        version: u64,
    },
    Ok(Box<DebugOffsets>),
}

/// Reads `_Py_DebugOffsets` at `addr` (the `_PyRuntime` address).
pub fn read(mem: &dyn Memory, addr: u64) -> Result<Found, String> {
    let mut head = [0u8; 24];
    mem.read_exact(addr, &mut head).map_err(|e| format!("_PyRuntime: {e}"))?;
    if &head[..8] != COOKIE {
        return Ok(Found::Absent);
    }
    let version = u64::from_le_bytes(head[8..16].try_into().unwrap());
    let free_threaded = u64::from_le_bytes(head[16..24].try_into().unwrap()) != 0;
    let Some(shape) = shape_for(version) else { return Ok(Found::Unknown { version }) };
    let bytes = mem.read_bytes(addr, shape.size()).map_err(|e| format!("_Py_DebugOffsets: {e}"))?;
    let f = |g: &str, i: usize| {
        let p = shape.pos(g, i);
        u64::from_le_bytes(bytes[p..p + 8].try_into().unwrap())
    };
    let is314 = std::ptr::eq(shape, &SHAPE_314);
    // interpreter_state: size, id, next, threads_head, [threads_main], gc, imports_modules,
    // sysdict, builtins, ceval_gil, gil_runtime_state, enabled, locked, holder, ...
    let k = usize::from(is314);
    Ok(Found::Ok(Box::new(DebugOffsets {
        version,
        free_threaded,
        rt_finalizing: f("runtime_state", 1),
        rt_interpreters_head: f("runtime_state", 2),
        is_id: f("interpreter_state", 1),
        is_next: f("interpreter_state", 2),
        is_threads_head: f("interpreter_state", 3),
        is_ceval_gil: f("interpreter_state", 8 + k),
        is_gil_runtime_state: f("interpreter_state", 9 + k),
        is_gil_locked: f("interpreter_state", 11 + k),
        is_gil_holder: f("interpreter_state", 12 + k),
        ts_next: f("thread_state", 2),
        ts_interp: f("thread_state", 3),
        ts_current_frame: f("thread_state", 4),
        ts_thread_id: f("thread_state", 5),
        ts_native_thread_id: f("thread_state", 6),
        fr_previous: f("interpreter_frame", 1),
        fr_executable: f("interpreter_frame", 2),
        fr_instr_ptr: f("interpreter_frame", 3),
        fr_owner: f("interpreter_frame", 5),
        co_filename: f("code_object", 1),
        co_name: f("code_object", 2),
        co_qualname: f("code_object", 3),
        co_linetable: f("code_object", 4),
        co_firstlineno: f("code_object", 5),
        co_code_adaptive: f("code_object", 9),
        ob_type: f("pyobject", 1),
        bytes_ob_size: f("bytes_object", 1),
        bytes_ob_sval: f("bytes_object", 2),
        uni_state: f("unicode_object", 1),
        uni_length: f("unicode_object", 2),
        uni_asciiobject_size: f("unicode_object", 3),
    })))
}

/// Offsets beyond this are not believable for any of these structs; a corrupt table is refused.
const MAX_OFFSET: u64 = 1 << 20;

impl DebugOffsets {
    /// A layout from the interpreter's own offsets. Free-threaded builds are refused: their object
    /// header and string state differ in ways the offsets do not describe.
    pub fn to_layout(&self) -> Result<Layout, String> {
        let major = (self.version >> 24) as u32;
        let minor = ((self.version >> 16) & 0xff) as u32;
        if self.free_threaded {
            return Err(format!(
                "CPython {major}.{minor} is a free-threaded build, which this reader does not support"
            ));
        }
        let all = [
            self.rt_finalizing,
            self.rt_interpreters_head,
            self.is_next,
            self.is_threads_head,
            self.is_ceval_gil,
            self.ts_next,
            self.ts_interp,
            self.ts_current_frame,
            self.ts_thread_id,
            self.fr_previous,
            self.fr_executable,
            self.fr_instr_ptr,
            self.fr_owner,
            self.co_filename,
            self.co_name,
            self.co_linetable,
            self.co_firstlineno,
            self.co_code_adaptive,
            self.co_qualname,
            self.is_id,
            self.is_gil_runtime_state,
            self.is_gil_locked,
            self.is_gil_holder,
            self.ts_native_thread_id,
            self.bytes_ob_size,
            self.bytes_ob_sval,
            self.uni_state,
            self.uni_length,
            self.uni_asciiobject_size,
        ];
        if all.iter().any(|&o| o >= MAX_OFFSET) {
            return Err("_Py_DebugOffsets holds implausible offsets".into());
        }
        if self.ob_type != 8 {
            return Err(format!("_Py_DebugOffsets says ob_type is at {}, not 8: an unsupported build", self.ob_type));
        }
        let gil_base = self.is_gil_runtime_state;
        Ok(Layout {
            major,
            minor,
            label: format!("{major}.{minor} (_Py_DebugOffsets)"),
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
                // FRAME_OWNED_BY_CSTACK is 3 in 3.13; 3.14 adds FRAME_OWNED_BY_INTERPRETER = 3
                // for the eval loop's entry frame and moves CSTACK to 4.
                shim_owners: if minor >= 14 { vec![3, 4] } else { vec![3] },
                code_tagged: minor >= 14,
            },
            code: CodeLayout {
                filename: self.co_filename,
                name: self.co_name,
                qualname: Some(self.co_qualname),
                linetable: self.co_linetable,
                firstlineno: self.co_firstlineno,
                code_adaptive: Some(self.co_code_adaptive),
                table: LineTable::Locations,
            },
            // Compact non-ASCII data follows PyCompactUnicodeObject: PyASCIIObject plus
            // utf8_length and utf8 (16 bytes) since 3.12 removed wstr.
            string: StringLayout::Unicode {
                length: self.uni_length,
                state: self.uni_state,
                ascii_data: self.uni_asciiobject_size,
                compact_data: self.uni_asciiobject_size + 16,
            },
            bytes: (self.bytes_ob_size, self.bytes_ob_sval),
            gil: GilLayout {
                last_holder: self.is_gil_holder.wrapping_sub(gil_base),
                locked: self.is_gil_locked.wrapping_sub(gil_base),
            },
        })
    }
}

/// Builds a `_Py_DebugOffsets` image (for tests): the given version and offsets laid out in the
/// shape of that version, other fields zero.
pub fn encode(d: &DebugOffsets) -> Vec<u8> {
    let shape = shape_for(d.version).expect("a version with a known shape");
    let mut out = vec![0u8; shape.size()];
    out[..8].copy_from_slice(COOKIE);
    out[8..16].copy_from_slice(&d.version.to_le_bytes());
    out[16..24].copy_from_slice(&u64::from(d.free_threaded).to_le_bytes());
    let k = usize::from(std::ptr::eq(shape, &SHAPE_314));
    let mut put = |g: &str, i: usize, v: u64| {
        let p = shape.pos(g, i);
        out[p..p + 8].copy_from_slice(&v.to_le_bytes());
    };
    put("runtime_state", 1, d.rt_finalizing);
    put("runtime_state", 2, d.rt_interpreters_head);
    put("interpreter_state", 1, d.is_id);
    put("interpreter_state", 2, d.is_next);
    put("interpreter_state", 3, d.is_threads_head);
    put("interpreter_state", 8 + k, d.is_ceval_gil);
    put("interpreter_state", 9 + k, d.is_gil_runtime_state);
    put("interpreter_state", 11 + k, d.is_gil_locked);
    put("interpreter_state", 12 + k, d.is_gil_holder);
    put("thread_state", 2, d.ts_next);
    put("thread_state", 3, d.ts_interp);
    put("thread_state", 4, d.ts_current_frame);
    put("thread_state", 5, d.ts_thread_id);
    put("thread_state", 6, d.ts_native_thread_id);
    put("interpreter_frame", 1, d.fr_previous);
    put("interpreter_frame", 2, d.fr_executable);
    put("interpreter_frame", 3, d.fr_instr_ptr);
    put("interpreter_frame", 5, d.fr_owner);
    put("code_object", 1, d.co_filename);
    put("code_object", 2, d.co_name);
    put("code_object", 3, d.co_qualname);
    put("code_object", 4, d.co_linetable);
    put("code_object", 5, d.co_firstlineno);
    put("code_object", 9, d.co_code_adaptive);
    put("pyobject", 1, d.ob_type);
    put("bytes_object", 1, d.bytes_ob_size);
    put("bytes_object", 2, d.bytes_ob_sval);
    put("unicode_object", 1, d.uni_state);
    put("unicode_object", 2, d.uni_length);
    put("unicode_object", 3, d.uni_asciiobject_size);
    out
}

/// The 3.13.0 values (measured with gdb on the pyenv build), for tests.
pub fn values_3_13_0() -> DebugOffsets {
    DebugOffsets {
        version: 0x030d00f0,
        free_threaded: false,
        rt_finalizing: 608,
        rt_interpreters_head: 632,
        is_id: 7272,
        is_next: 7264,
        is_threads_head: 7344,
        is_ceval_gil: 16,
        is_gil_runtime_state: 7752,
        is_gil_locked: 7768,
        is_gil_holder: 7760,
        ts_next: 8,
        ts_interp: 16,
        ts_current_frame: 72,
        ts_thread_id: 152,
        ts_native_thread_id: 160,
        fr_previous: 8,
        fr_executable: 0,
        fr_instr_ptr: 56,
        fr_owner: 70,
        co_filename: 112,
        co_name: 120,
        co_qualname: 128,
        co_linetable: 136,
        co_firstlineno: 68,
        co_code_adaptive: 200,
        ob_type: 8,
        bytes_ob_size: 16,
        bytes_ob_sval: 32,
        uni_state: 32,
        uni_length: 16,
        uni_asciiobject_size: 40,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ImageMemory;

    #[test]
    fn shapes_have_the_documented_sizes() {
        assert_eq!(SHAPE_313.size(), 584);
        assert_eq!(SHAPE_314.size(), 760);
        assert_eq!(SHAPE_313.pos("thread_state", 0), 152);
        assert_eq!(SHAPE_314.pos("thread_state", 0), 176);
        assert_eq!(SHAPE_314.pos("interpreter_frame", 0), 248);
        assert_eq!(SHAPE_314.pos("code_object", 0), 312);
    }

    #[test]
    fn debug_offsets_of_313_match_the_static_table() {
        let d = values_3_13_0();
        let mut m = ImageMemory::new();
        m.add(0x1000, encode(&d));
        let Found::Ok(got) = read(&m, 0x1000).unwrap() else { panic!("not parsed") };
        assert_eq!(*got, d);
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
        assert_eq!(from_offsets.runtime.interpreters_head, table.runtime.interpreters_head);
        assert_eq!(from_offsets.runtime.finalizing, table.runtime.finalizing);
    }

    #[test]
    fn refuses_bad_cookies_versions_and_free_threading() {
        let mut m = ImageMemory::new();
        let mut d = values_3_13_0();
        let mut img = encode(&d);
        img[0] = b'X';
        m.add(0x1000, img);
        assert!(matches!(read(&m, 0x1000).unwrap(), Found::Absent));
        let mut img = encode(&d);
        img[8..16].copy_from_slice(&0x030f00f0u64.to_le_bytes());
        m.add(0x1000, img);
        assert!(matches!(read(&m, 0x1000).unwrap(), Found::Unknown { version: 0x030f00f0 }));
        d.free_threaded = true;
        assert!(d.to_layout().is_err());
        d.free_threaded = false;
        d.co_name = 1 << 40;
        assert!(d.to_layout().is_err());
        assert!(read(&m, 0x9000).is_err());
    }

    #[test]
    fn shape_314_moves_groups_and_owners() {
        let mut d = values_3_13_0();
        d.version = 0x030e00f0;
        let mut m = ImageMemory::new();
        m.add(0x1000, encode(&d));
        let Found::Ok(got) = read(&m, 0x1000).unwrap() else { panic!() };
        assert_eq!(*got, d);
        // The thread_state group starts at byte 176 in 3.14.
        let raw = encode(&d);
        assert_eq!(u64::from_le_bytes(raw[176 + 8 * 4..176 + 8 * 5].try_into().unwrap()), 72);
        let l = got.to_layout().unwrap();
        assert_eq!(l.frame.shim_owners, vec![3, 4]);
        assert!(l.frame.code_tagged);
    }
}
