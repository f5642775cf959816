//! The interpreter's well-known objects, found by symbol in its module: the built-in types an
//! object is compared with (by address: a subclass, or an object whose type pointer lies, is
//! never taken for one), the None/True/False singletons, and the static flags that 2.7 and
//! 3.6 keep outside any struct.

use crate::modules::Module;
use crate::process::Memory;

/// The built-in types whose objects the reader shows by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    NoneType,
    Bool,
    /// 2.7's fixed-size `int`.
    Int,
    /// `int` (3.x), `long` (2.7).
    Long,
    Float,
    /// `str` (3.x).
    Str,
    /// `bytes` (3.x), `str` (2.7).
    Bytes,
    /// 2.7's `unicode`.
    Unicode2,
    Tuple,
    List,
    Dict,
    Set,
    FrozenSet,
    Cell,
}

/// Addresses of well-known objects (None where the symbol is missing).
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub none: Option<u64>,
    pub true_: Option<u64>,
    pub false_: Option<u64>,
    types: Vec<(u64, Builtin)>,
    /// 2.7: the static `initialized` that `Py_IsInitialized` returns.
    pub py2_initialized: Option<u64>,
    /// 2.7, 3.6: gcmodule.c's static `collecting`.
    pub gc_collecting: Option<u64>,
}

impl Known {
    /// Looks the objects up in the interpreter's module `m`, for CPython `major`.
    pub fn find(m: &Module, mem: &dyn Memory, major: u32, minor: u32) -> Known {
        let sym = |n: &str| m.symbol_address(n);
        let py2 = major == 2;
        let names: &[(&str, Builtin)] = if py2 {
            &[
                ("PyInt_Type", Builtin::Int),
                ("PyLong_Type", Builtin::Long),
                ("PyString_Type", Builtin::Bytes),
                ("PyUnicode_Type", Builtin::Unicode2),
            ]
        } else {
            &[("PyLong_Type", Builtin::Long), ("PyUnicode_Type", Builtin::Str), ("PyBytes_Type", Builtin::Bytes)]
        };
        let common: &[(&str, Builtin)] = &[
            ("PyBool_Type", Builtin::Bool),
            ("PyFloat_Type", Builtin::Float),
            ("PyTuple_Type", Builtin::Tuple),
            ("PyList_Type", Builtin::List),
            ("PyDict_Type", Builtin::Dict),
            ("PySet_Type", Builtin::Set),
            ("PyFrozenSet_Type", Builtin::FrozenSet),
            ("PyCell_Type", Builtin::Cell),
        ];
        let types = names.iter().chain(common).filter_map(|&(n, b)| Some((sym(n)?, b))).collect();
        let none = sym("_Py_NoneStruct");
        let static_gc = py2 || minor <= 6;
        Known {
            none,
            true_: sym("_Py_TrueStruct"),
            // 2.7 calls its False `_Py_ZeroStruct`.
            false_: sym("_Py_FalseStruct").or_else(|| sym("_Py_ZeroStruct")),
            types,
            py2_initialized: if py2 {
                sym("Py_IsInitialized").and_then(|f| super::super::discover::decode_rip_load32(mem, f))
            } else {
                None
            },
            gc_collecting: if static_gc { sym("collecting") } else { None },
        }
    }

    /// For tests: the given type addresses and singletons.
    pub fn synthetic(types: &[(u64, Builtin)], none: u64, true_: u64, false_: u64) -> Known {
        Known {
            none: Some(none),
            true_: Some(true_),
            false_: Some(false_),
            types: types.to_vec(),
            ..Default::default()
        }
    }

    /// The built-in type at address `ty`, if it is one.
    pub fn builtin(&self, ty: u64) -> Option<Builtin> {
        self.types.iter().find(|(a, _)| *a == ty).map(|(_, b)| *b)
    }
}
