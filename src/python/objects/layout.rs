//! Where the fields of ordinary objects are, per CPython version (64-bit GIL builds): types,
//! ints, floats, tuples, lists, dicts and their keys, cells, modules, and what a frame's
//! arguments and locals need from code objects and frames. Measured with gdb on the pyenv
//! builds (2.7, 3.6–3.13) and on Debian sid's 3.14 and 3.15 with their debug files;
//! re-checked against DWARF by tests/python_layouts_dwarf.rs through
//! [`ObjectLayout::dwarf_checks`]. 3.13+ take what `_Py_DebugOffsets` publishes instead.

use crate::python::debug_offsets::ObjectOffsets;

/// How a dict keeps its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DictLayout {
    /// 2.7: an open-addressing table of (hash, key, value) entries: `ma_used`, `ma_mask`, `ma_table`.
    Table { used: u64, mask: u64, table: u64 },
    /// 3.6–3.10: `ma_keys` → `PyDictKeysObject` with `dk_size` (a power of two; the index
    /// width follows from it), `dk_nentries`, then the indices and the (hash, key, value)
    /// entries; `ma_values` is a plain `PyObject **` for split dicts.
    Compact { ma_used: u64, ma_keys: u64, ma_values: u64, dk_size: u64, dk_nentries: u64, dk_indices: u64 },
    /// 3.11+: `dk_log2_size`, `dk_log2_index_bytes`, `dk_kind` (0: general, 24-byte entries;
    /// 1, 2: str keys, 16-byte (key, value) entries), `dk_nentries`, indices; `ma_values` points
    /// at a `PyDictValues` whose array starts at `values` (0 in 3.11/3.12, 8 from 3.13).
    Log2 {
        ma_used: u64,
        ma_keys: u64,
        ma_values: u64,
        dk_log2_size: u64,
        dk_log2_index_bytes: u64,
        dk_kind: u64,
        dk_nentries: u64,
        dk_indices: u64,
        values: u64,
    },
}

/// How an instance keeps its attributes when its type says `Py_TPFLAGS_MANAGED_DICT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedDict {
    /// Before 3.11 every instance dict is at `tp_dictoffset`.
    None,
    /// 3.11: the dict pointer at `obj - 24`, the values at `obj - 32`.
    Split311,
    /// 3.12: one word at `obj - 24`, the values pointer minus 1 (odd: tagged) or the dict.
    Tagged312,
    /// 3.13+: the dict pointer at `obj - 24`; with `Py_TPFLAGS_INLINE_VALUES`, the values
    /// follow the object at `tp_basicsize` (a `PyDictValues` whose byte 3 says valid).
    Inline313,
}

/// Where a frame's arguments and locals are, and how they are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalsLayout {
    /// ≤3.10: `f_localsplus` of the frame object: `co_nlocals` locals (named by
    /// `co_varnames`), then the cells (`co_cellvars`) and free variables (`co_freevars`).
    Classic {
        f_localsplus: u64,
        co_nlocals: u64,
        co_varnames: u64,
        co_cellvars: u64,
        co_freevars: u64,
        co_kwonlyargcount: Option<u64>,
    },
    /// 3.11+: `localsplus` of the interpreter frame, named by `co_localsplusnames` with a
    /// kind byte each in `co_localspluskinds`; 3.14+ tag the references in their low bits.
    Plus { localsplus: u64, names: u64, kinds: u64, kwonlyargcount: u64, tagged: bool },
}

/// Where the collector says whether it is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcCollecting {
    /// 2.7, 3.6: gcmodule.c's static `int collecting` (found by symbol).
    Static,
    /// 3.7, 3.8: an int in `_PyRuntime`.
    Runtime(u64),
    /// 3.9+: an int in each interpreter.
    Interpreter(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLayout {
    pub major: u32,
    pub minor: u32,
    pub ob_type: u64,
    /// `PyVarObject.ob_size`.
    pub ob_size: u64,
    pub tp_name: u64,
    pub tp_flags: u64,
    pub tp_basicsize: u64,
    pub tp_dictoffset: u64,
    /// `PyHeapTypeObject.ht_cached_keys` (3.11+, the shared keys of managed dicts).
    pub ht_cached_keys: u64,
    /// 2.7 `PyIntObject.ob_ival`.
    pub int_ival: u64,
    /// `PyLongObject`: the size word (`ob_size`, or 3.12+'s `lv_tag`) and the digits.
    pub long_size: u64,
    pub long_digits: u64,
    /// 3.12+: `lv_tag` = digits << 3 | sign (0 positive, 1 zero, 2 negative).
    pub long_tagged: bool,
    pub float_fval: u64,
    pub tuple_items: u64,
    pub list_items: u64,
    /// `PySetObject.used`.
    pub set_used: u64,
    pub cell_ref: u64,
    pub module_dict: u64,
    pub dict: DictLayout,
    pub managed_dict: ManagedDict,
    pub locals: LocalsLayout,
    pub co_argcount: u64,
    pub co_flags: u64,
    /// `PyInterpreterState.modules` (`imports.modules` from 3.12): `sys.modules`.
    pub interp_modules: u64,
    pub gc_collecting: GcCollecting,
}

/// `Py_TPFLAGS_MANAGED_DICT` and (3.13+) `Py_TPFLAGS_INLINE_VALUES`.
pub const TPFLAGS_MANAGED_DICT: u64 = 1 << 4;
pub const TPFLAGS_INLINE_VALUES: u64 = 1 << 2;
/// `CO_VARARGS`, `CO_VARKEYWORDS`.
pub const CO_VARARGS: u32 = 4;
pub const CO_VARKEYWORDS: u32 = 8;

impl ObjectLayout {
    /// The table for CPython `major.minor`, with what `_Py_DebugOffsets` publishes (3.13+)
    /// taking precedence. None for versions this reader does not know.
    pub fn new(major: u32, minor: u32, published: Option<&ObjectOffsets>) -> Option<ObjectLayout> {
        let mut l = Self::table(major, minor)?;
        if let Some(p) = published {
            l.apply(p);
        }
        Some(l)
    }

    fn table(major: u32, minor: u32) -> Option<ObjectLayout> {
        let compact = DictLayout::Compact {
            ma_used: 16,
            ma_keys: 32,
            ma_values: 40,
            dk_size: 8,
            dk_nentries: 32,
            dk_indices: 40,
        };
        let log2 = |values| DictLayout::Log2 {
            ma_used: 16,
            ma_keys: 32,
            ma_values: 40,
            dk_log2_size: 8,
            dk_log2_index_bytes: 9,
            dk_kind: 10,
            dk_nentries: 24,
            dk_indices: 32,
            values,
        };
        // (f_localsplus, co_argcount, co_kwonlyargcount, co_nlocals, co_flags, co_varnames,
        // co_freevars, co_cellvars) up to 3.10.
        let classic = |f_localsplus, argcount, kwonly: Option<u64>, nlocals, flags, varnames, freevars, cellvars| {
            (
                LocalsLayout::Classic {
                    f_localsplus,
                    co_nlocals: nlocals,
                    co_varnames: varnames,
                    co_cellvars: cellvars,
                    co_freevars: freevars,
                    co_kwonlyargcount: kwonly,
                },
                argcount,
                flags,
            )
        };
        let plus = |localsplus, argcount, kwonly, tagged| {
            (LocalsLayout::Plus { localsplus, names: 96, kinds: 104, kwonlyargcount: kwonly, tagged }, argcount, 48)
        };
        let ((locals, co_argcount, co_flags), modules, gc, cached_keys, managed, dict) = match (major, minor) {
            (2, 7) => (
                classic(376, 16, None, 20, 28, 56, 64, 72),
                16,
                GcCollecting::Static,
                0,
                ManagedDict::None,
                DictLayout::Table { used: 24, mask: 32, table: 40 },
            ),
            (3, 6) => (
                classic(376, 16, Some(20), 24, 32, 64, 72, 80),
                16,
                GcCollecting::Static,
                856,
                ManagedDict::None,
                compact,
            ),
            (3, 7) => (
                classic(360, 16, Some(20), 24, 32, 64, 72, 80),
                40,
                GcCollecting::Runtime(632),
                856,
                ManagedDict::None,
                compact,
            ),
            (3, 8) => (
                classic(360, 16, Some(24), 28, 36, 72, 80, 88),
                56,
                GcCollecting::Runtime(544),
                872,
                ManagedDict::None,
                compact,
            ),
            (3, 9) => (
                classic(360, 16, Some(24), 28, 36, 72, 80, 88),
                856,
                GcCollecting::Interpreter(816),
                864,
                ManagedDict::None,
                compact,
            ),
            (3, 10) => (
                classic(352, 16, Some(24), 28, 36, 72, 80, 88),
                856,
                GcCollecting::Interpreter(816),
                872,
                ManagedDict::None,
                compact,
            ),
            (3, 11) => {
                (plus(72, 56, 64, false), 888, GcCollecting::Interpreter(848), 872, ManagedDict::Split311, log2(0))
            }
            (3, 12) => {
                (plus(72, 52, 60, false), 944, GcCollecting::Interpreter(312), 880, ManagedDict::Tagged312, log2(0))
            }
            (3, 13) => {
                (plus(72, 52, 60, false), 7656, GcCollecting::Interpreter(7600), 880, ManagedDict::Inline313, log2(8))
            }
            (3, 14) => {
                (plus(80, 52, 60, true), 7688, GcCollecting::Interpreter(7600), 880, ManagedDict::Inline313, log2(8))
            }
            // Newer versions: 3.15's numbers, corrected by what their debug offsets publish.
            (3, _) if minor >= 15 => {
                (plus(80, 52, 60, true), 7592, GcCollecting::Interpreter(7512), 888, ManagedDict::Inline313, log2(8))
            }
            _ => return None,
        };
        Some(ObjectLayout {
            major,
            minor,
            ob_type: 8,
            ob_size: 16,
            tp_name: 24,
            tp_flags: 168,
            tp_basicsize: 32,
            tp_dictoffset: 288,
            ht_cached_keys: cached_keys,
            int_ival: 16,
            long_size: 16,
            long_digits: 24,
            long_tagged: (major, minor) >= (3, 12),
            float_fval: 16,
            tuple_items: if (major, minor) >= (3, 14) { 32 } else { 24 },
            list_items: 24,
            set_used: 24,
            cell_ref: 16,
            module_dict: 16,
            dict,
            managed_dict: managed,
            locals,
            co_argcount,
            co_flags,
            interp_modules: modules,
            gc_collecting: gc,
        })
    }

    /// Takes the offsets `_Py_DebugOffsets` publishes (a 0 is a field the table lacks).
    fn apply(&mut self, p: &ObjectOffsets) {
        let set = |slot: &mut u64, v: u64| {
            if v != 0 {
                *slot = v;
            }
        };
        set(&mut self.tp_name, p.tp_name);
        set(&mut self.tp_flags, p.tp_flags);
        set(&mut self.tp_basicsize, p.tp_basicsize);
        set(&mut self.tp_dictoffset, p.tp_dictoffset);
        set(&mut self.ht_cached_keys, p.ht_cached_keys);
        set(&mut self.tuple_items, p.tuple_ob_item);
        set(&mut self.list_items, p.list_ob_item);
        set(&mut self.float_fval, p.float_ob_fval);
        set(&mut self.long_size, p.long_lv_tag);
        set(&mut self.long_digits, p.long_ob_digit);
        set(&mut self.interp_modules, p.is_imports_modules);
        set(&mut self.co_argcount, p.co_argcount);
        if let DictLayout::Log2 { ma_keys, ma_values, .. } = &mut self.dict {
            set(ma_keys, p.dict_ma_keys);
            set(ma_values, p.dict_ma_values);
        }
        if let LocalsLayout::Plus { localsplus, names, kinds, .. } = &mut self.locals {
            set(localsplus, p.fr_localsplus);
            set(names, p.co_localsplusnames);
            set(kinds, p.co_localspluskinds);
        }
        if p.is_gc != 0 && p.gc_collecting != 0 {
            self.gc_collecting = GcCollecting::Interpreter(p.is_gc + p.gc_collecting);
        }
    }

    /// (C type, member, offset) of every offset above that DWARF can check, in the
    /// interpreter's own debug information.
    pub fn dwarf_checks(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut v = vec![
            ("PyTypeObject", "tp_name", self.tp_name),
            ("PyTypeObject", "tp_flags", self.tp_flags),
            ("PyTypeObject", "tp_basicsize", self.tp_basicsize),
            ("PyTypeObject", "tp_dictoffset", self.tp_dictoffset),
            ("PyFloatObject", "ob_fval", self.float_fval),
            ("PyTupleObject", "ob_item", self.tuple_items),
            ("PyListObject", "ob_item", self.list_items),
            ("PySetObject", "used", self.set_used),
            ("PyCellObject", "ob_ref", self.cell_ref),
            ("PyModuleObject", "md_dict", self.module_dict),
            ("PyCodeObject", "co_argcount", self.co_argcount),
            ("PyCodeObject", "co_flags", self.co_flags),
        ];
        let old = self.major == 2 || self.minor <= 11;
        v.push(("PyInterpreterState", if old { "modules" } else { "imports.modules" }, self.interp_modules));
        if self.major == 2 {
            v.push(("PyIntObject", "ob_ival", self.int_ival));
        }
        if self.long_tagged {
            v.push(("PyLongObject", "long_value.lv_tag", self.long_size));
            v.push(("PyLongObject", "long_value.ob_digit", self.long_digits));
        } else {
            v.push(("PyLongObject", "ob_digit", self.long_digits));
        }
        if self.managed_dict != ManagedDict::None {
            v.push(("PyHeapTypeObject", "ht_cached_keys", self.ht_cached_keys));
        }
        match self.dict {
            DictLayout::Table { used, mask, table } => {
                v.push(("PyDictObject", "ma_used", used));
                v.push(("PyDictObject", "ma_mask", mask));
                v.push(("PyDictObject", "ma_table", table));
            }
            DictLayout::Compact { ma_used, ma_keys, ma_values, dk_size, dk_nentries, dk_indices } => {
                v.push(("PyDictObject", "ma_used", ma_used));
                v.push(("PyDictObject", "ma_keys", ma_keys));
                v.push(("PyDictObject", "ma_values", ma_values));
                v.push(("PyDictKeysObject", "dk_size", dk_size));
                v.push(("PyDictKeysObject", "dk_nentries", dk_nentries));
                v.push(("PyDictKeysObject", "dk_indices", dk_indices));
            }
            DictLayout::Log2 {
                ma_used,
                ma_keys,
                ma_values,
                dk_log2_size,
                dk_log2_index_bytes,
                dk_kind,
                dk_nentries,
                dk_indices,
                values,
            } => {
                v.push(("PyDictObject", "ma_used", ma_used));
                v.push(("PyDictObject", "ma_keys", ma_keys));
                v.push(("PyDictObject", "ma_values", ma_values));
                v.push(("PyDictKeysObject", "dk_log2_size", dk_log2_size));
                v.push(("PyDictKeysObject", "dk_log2_index_bytes", dk_log2_index_bytes));
                v.push(("PyDictKeysObject", "dk_kind", dk_kind));
                v.push(("PyDictKeysObject", "dk_nentries", dk_nentries));
                v.push(("PyDictKeysObject", "dk_indices", dk_indices));
                v.push(("PyDictValues", "values", values));
            }
        }
        match self.locals {
            LocalsLayout::Classic {
                f_localsplus,
                co_nlocals,
                co_varnames,
                co_cellvars,
                co_freevars,
                co_kwonlyargcount,
            } => {
                v.push(("PyFrameObject", "f_localsplus", f_localsplus));
                v.push(("PyCodeObject", "co_nlocals", co_nlocals));
                v.push(("PyCodeObject", "co_varnames", co_varnames));
                v.push(("PyCodeObject", "co_cellvars", co_cellvars));
                v.push(("PyCodeObject", "co_freevars", co_freevars));
                if let Some(k) = co_kwonlyargcount {
                    v.push(("PyCodeObject", "co_kwonlyargcount", k));
                }
            }
            LocalsLayout::Plus { localsplus, names, kinds, kwonlyargcount, .. } => {
                v.push(("_PyInterpreterFrame", "localsplus", localsplus));
                v.push(("PyCodeObject", "co_localsplusnames", names));
                v.push(("PyCodeObject", "co_localspluskinds", kinds));
                v.push(("PyCodeObject", "co_kwonlyargcount", kwonlyargcount));
            }
        }
        match self.gc_collecting {
            GcCollecting::Static => {}
            GcCollecting::Runtime(o) => v.push(("_PyRuntimeState", "gc.collecting", o)),
            GcCollecting::Interpreter(o) => v.push(("PyInterpreterState", "gc.collecting", o)),
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_version_has_a_table_and_published_offsets_win() {
        for (ma, mi) in [(2, 7), (3, 6), (3, 7), (3, 8), (3, 9), (3, 10), (3, 11), (3, 12), (3, 13), (3, 14), (3, 15)] {
            let l = ObjectLayout::new(ma, mi, None).unwrap();
            assert!(!l.dwarf_checks().is_empty());
        }
        assert!(ObjectLayout::new(3, 5, None).is_none());
        let p =
            ObjectOffsets { tuple_ob_item: 40, is_gc: 100, gc_collecting: 8, fr_localsplus: 88, ..Default::default() };
        let l = ObjectLayout::new(3, 14, Some(&p)).unwrap();
        assert_eq!(l.tuple_items, 40);
        assert_eq!(l.gc_collecting, GcCollecting::Interpreter(108));
        assert!(matches!(l.locals, LocalsLayout::Plus { localsplus: 88, .. }));
        assert_eq!(l.list_items, 24, "a field the table does not publish keeps its value");
    }
}
