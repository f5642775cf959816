//! Reading ordinary objects from the target's memory: what type an object is, and the value of
//! ints, floats, strings, bytes and the first items of containers. Every read is bounded, every
//! count checked for plausibility, and every object visit is paid for out of one budget per
//! report, so hostile objects (a type that lies, a size of 2^60, a cycle) cost little and end
//! as an error, never as a panic or a hang.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Instant;

use super::known::{Builtin, Known};
use super::layout::ObjectLayout;
use crate::process::{Memory, MemoryExt, ReadError};
use crate::python::layout::StringLayout;
use crate::python::strings::read_str;

/// Longest type name read.
const MAX_TYPE_NAME: usize = 96;
/// Sizes above this are not believed (no container or string in a real process is that big).
pub const MAX_PLAUSIBLE_LEN: i64 = 1 << 40;

/// Why an object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error(transparent)]
    Memory(#[from] ReadError),
    #[error("NULL {0}")]
    Null(&'static str),
    #[error("{what} of the object at {addr:#x} is implausible ({value})")]
    Implausible { what: &'static str, addr: u64, value: i64 },
    #[error("the budget for reading objects is spent")]
    Budget,
    #[error(transparent)]
    String(#[from] crate::python::error::StringError),
    #[error("{0}")]
    Text(String),
}

/// An int's value: exact when it fits in 128 bits, else its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntValue {
    Exact(i128),
    Big { negative: bool, bits: u64 },
}

/// The object reader of one report.
pub struct Objects<'a> {
    pub mem: &'a dyn Memory,
    pub l: &'a ObjectLayout,
    pub strings: &'a StringLayout,
    /// `PyBytesObject` (`ob_size`, data), as the walker's layout has it.
    pub bytes: (u64, u64),
    pub known: &'a Known,
    visits: Cell<usize>,
    deadline: Option<Instant>,
    names: RefCell<HashMap<u64, Option<String>>>,
}

impl<'a> Objects<'a> {
    pub fn new(
        mem: &'a dyn Memory,
        l: &'a ObjectLayout,
        strings: &'a StringLayout,
        bytes: (u64, u64),
        known: &'a Known,
        visits: usize,
        deadline: Option<Instant>,
    ) -> Self {
        Objects {
            mem,
            l,
            strings,
            bytes,
            known,
            visits: Cell::new(visits),
            deadline,
            names: RefCell::new(HashMap::new()),
        }
    }

    /// Pays for one object visit; fails once the budget or the report's deadline is spent.
    pub fn pay(&self) -> Result<(), ObjectError> {
        let left = self.visits.get();
        if left == 0 || crate::python::walk::past(self.deadline) {
            self.visits.set(0);
            return Err(ObjectError::Budget);
        }
        self.visits.set(left - 1);
        Ok(())
    }

    /// Whether the budget is spent (what is shown stops there).
    pub fn spent(&self) -> bool {
        self.visits.get() == 0
    }

    pub fn ptr(&self, addr: u64) -> Result<u64, ObjectError> {
        Ok(self.mem.read_u64(addr)?)
    }

    /// The type object of `obj`.
    pub fn type_of(&self, obj: u64) -> Result<u64, ObjectError> {
        if obj == 0 {
            return Err(ObjectError::Null("object"));
        }
        match self.ptr(obj.wrapping_add(self.l.ob_type))? {
            0 => Err(ObjectError::Null("type")),
            t => Ok(t),
        }
    }

    /// The built-in type `obj` is an exact instance of, if any.
    pub fn builtin(&self, obj: u64) -> Option<Builtin> {
        if obj != 0 && Some(obj) == self.known.none {
            return Some(Builtin::NoneType);
        }
        self.type_of(obj).ok().and_then(|t| self.known.builtin(t))
    }

    /// A type's `tp_name` (`Foo`, `mod.Foo`), read once per type; None when unreadable.
    pub fn type_name(&self, ty: u64) -> Option<String> {
        if let Some(n) = self.names.borrow().get(&ty) {
            return n.clone();
        }
        let name = self
            .ptr(ty.wrapping_add(self.l.tp_name))
            .ok()
            .filter(|&p| p != 0)
            .and_then(|p| self.mem.read_cstr(p, MAX_TYPE_NAME).ok())
            .filter(|n| !n.is_empty());
        self.names.borrow_mut().insert(ty, name.clone());
        name
    }

    /// The name of `obj`'s type, `?` when unreadable.
    pub fn type_name_of(&self, obj: u64) -> String {
        if Some(obj) == self.known.none && obj != 0 {
            return "NoneType".into();
        }
        self.type_of(obj).ok().and_then(|t| self.type_name(t)).unwrap_or_else(|| "?".into())
    }

    /// `ob_size` of a variable-size object, checked.
    pub fn var_size(&self, obj: u64) -> Result<u64, ObjectError> {
        let n = self.mem.read_i64(obj.wrapping_add(self.l.ob_size))?;
        plausible("size", obj, n)
    }

    /// The value of an `int` (3.x, 2.7 `long`) or a 2.7 `int`.
    pub fn int(&self, obj: u64, small: bool) -> Result<IntValue, ObjectError> {
        if small {
            return Ok(IntValue::Exact(i128::from(self.mem.read_i64(obj.wrapping_add(self.l.int_ival))?)));
        }
        let word = self.mem.read_i64(obj.wrapping_add(self.l.long_size))?;
        let (negative, ndigits) = if self.l.long_tagged {
            let tag = word as u64;
            (tag & 3 == 2, tag >> 3)
        } else {
            (word < 0, word.unsigned_abs())
        };
        if ndigits as i64 > MAX_PLAUSIBLE_LEN {
            return Err(ObjectError::Implausible { what: "digit count", addr: obj, value: word });
        }
        if ndigits > 4 {
            return Ok(IntValue::Big { negative, bits: ndigits * 30 });
        }
        let mut v: i128 = 0;
        for i in (0..ndigits).rev() {
            let d = self.mem.read_u32(obj.wrapping_add(self.l.long_digits + 4 * i))? & 0x3fff_ffff;
            v = (v << 30) | i128::from(d);
        }
        Ok(IntValue::Exact(if negative { -v } else { v }))
    }

    pub fn float(&self, obj: u64) -> Result<f64, ObjectError> {
        Ok(f64::from_bits(self.mem.read_u64(obj.wrapping_add(self.l.float_fval))?))
    }

    /// A `str`'s length in characters and its first `max` characters.
    pub fn str(&self, obj: u64, max: usize) -> Result<(u64, String), ObjectError> {
        let len_at = match *self.strings {
            StringLayout::Bytes { size, .. } => size,
            StringLayout::Unicode { length, .. } => length,
        };
        let len = plausible("length", obj, self.mem.read_i64(obj.wrapping_add(len_at))?)?;
        let text = read_str(self.mem, self.strings, obj, max)?;
        Ok((len, text))
    }

    /// A `bytes` object's length and its first `max` bytes.
    pub fn bytes(&self, obj: u64, max: usize) -> Result<(u64, Vec<u8>), ObjectError> {
        let len = plausible("size", obj, self.mem.read_i64(obj.wrapping_add(self.bytes.0))?)?;
        let n = (len as usize).min(max);
        Ok((len, self.mem.read_bytes(obj.wrapping_add(self.bytes.1), n)?))
    }

    /// A tuple's or list's length and its first `max` items.
    pub fn items(&self, obj: u64, list: bool, max: usize) -> Result<(u64, Vec<u64>), ObjectError> {
        let len = self.var_size(obj)?;
        let n = (len as usize).min(max);
        let base = if list {
            match self.ptr(obj.wrapping_add(self.l.list_items))? {
                0 if len > 0 => return Err(ObjectError::Null("list items")),
                p => p,
            }
        } else {
            obj.wrapping_add(self.l.tuple_items)
        };
        let mut raw = vec![0u8; n * 8];
        self.mem.read_exact(base, &mut raw)?;
        Ok((len, raw.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect()))
    }

    /// A set's number of items.
    pub fn set_len(&self, obj: u64) -> Result<u64, ObjectError> {
        plausible("size", obj, self.mem.read_i64(obj.wrapping_add(self.l.set_used))?)
    }

    /// What a cell holds (0 when empty).
    pub fn cell(&self, obj: u64) -> Result<u64, ObjectError> {
        self.ptr(obj.wrapping_add(self.l.cell_ref))
    }

    /// The text of a `str` key, for lookups by name (short keys only).
    pub fn key_text(&self, obj: u64, max: usize) -> Option<String> {
        let (len, text) = self.str(obj, max).ok()?;
        (len as usize <= max).then_some(text)
    }
}

fn plausible(what: &'static str, addr: u64, n: i64) -> Result<u64, ObjectError> {
    if (0..=MAX_PLAUSIBLE_LEN).contains(&n) {
        Ok(n as u64)
    } else {
        Err(ObjectError::Implausible { what, addr, value: n })
    }
}
