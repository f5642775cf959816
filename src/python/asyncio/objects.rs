//! What a Python object in the target is, from its type's `tp_name` (and its bases'), and the
//! few small objects the asyncio reader looks into: ints, tuples, lists, cells.

use std::cell::RefCell;
use std::collections::HashMap;

use super::layout::AsyncioLayout;
use crate::process::{Memory, MemoryExt};

/// Most base classes followed from a type to a known one.
const MAX_BASES: usize = 8;
/// Longest type name read.
const MAX_TYPE_NAME: usize = 128;
/// Most items read from one tuple or list.
pub(crate) const MAX_ITEMS: usize = 64;

/// The kinds of object the reader follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Task,
    Future,
    FutureIter,
    Coroutine,
    Generator,
    AsyncGenerator,
    Function,
    BuiltinMethod,
    Cell,
    Tuple,
    List,
    Str,
    Int,
    Other,
}

/// Object kinds by type address, each type read once.
pub(crate) struct Types<'a> {
    mem: &'a dyn Memory,
    layout: &'a AsyncioLayout,
    ob_type: u64,
    cache: RefCell<HashMap<u64, (Kind, String)>>,
}

impl<'a> Types<'a> {
    pub fn new(mem: &'a dyn Memory, l: &'a AsyncioLayout, ob_type: u64) -> Self {
        Types { mem, layout: l, ob_type, cache: RefCell::new(HashMap::new()) }
    }

    /// The type of the object at `obj`.
    pub(crate) fn type_of(&self, obj: u64) -> Option<u64> {
        if obj == 0 {
            return None;
        }
        self.mem.read_u64(obj.wrapping_add(self.ob_type)).ok().filter(|&t| t != 0)
    }

    /// What the object at `obj` is.
    pub fn kind(&self, obj: u64) -> Kind {
        self.type_of(obj).map_or(Kind::Other, |t| self.kind_of_type(t).0)
    }

    /// The object's type name (`_GatheringFuture`, `_asyncio.Future`), empty when unreadable.
    pub fn name(&self, obj: u64) -> String {
        self.type_of(obj).map(|t| self.kind_of_type(t).1).unwrap_or_default()
    }

    /// The kind of the type at `ty` and its own name. A subclass of Task or Future is one.
    pub(crate) fn kind_of_type(&self, ty: u64) -> (Kind, String) {
        if let Some(k) = self.cache.borrow().get(&ty) {
            return k.clone();
        }
        let own = self.type_name(ty);
        let mut kind = by_name(&own);
        let mut t = ty;
        for _ in 0..MAX_BASES {
            if kind != Kind::Other {
                break;
            }
            let Ok(base) = self.mem.read_u64(t.wrapping_add(self.layout.tp_base)) else { break };
            if base == 0 || base == t {
                break;
            }
            kind = match by_name(&self.type_name(base)) {
                k @ (Kind::Task | Kind::Future) => k,
                _ => Kind::Other,
            };
            t = base;
        }
        let mut cache = self.cache.borrow_mut();
        if cache.len() < 4096 {
            cache.insert(ty, (kind, own.clone()));
        }
        (kind, own)
    }

    fn type_name(&self, ty: u64) -> String {
        self.mem
            .read_u64(ty.wrapping_add(self.layout.tp_name))
            .ok()
            .and_then(|p| self.mem.read_cstr(p, MAX_TYPE_NAME).ok())
            .unwrap_or_default()
    }
}

fn by_name(name: &str) -> Kind {
    match name {
        "_asyncio.Task" => Kind::Task,
        "_asyncio.Future" => Kind::Future,
        "_asyncio.FutureIter" => Kind::FutureIter,
        "coroutine" => Kind::Coroutine,
        "generator" => Kind::Generator,
        "async_generator" => Kind::AsyncGenerator,
        "function" => Kind::Function,
        "builtin_function_or_method" => Kind::BuiltinMethod,
        "cell" => Kind::Cell,
        "tuple" => Kind::Tuple,
        "list" => Kind::List,
        "str" => Kind::Str,
        "int" => Kind::Int,
        _ => Kind::Other,
    }
}

/// The items of a tuple or list (at most [`MAX_ITEMS`]).
pub(crate) fn items(mem: &dyn Memory, l: &AsyncioLayout, kind: Kind, obj: u64) -> Vec<u64> {
    let (size, base) = match kind {
        Kind::Tuple => (l.tuple.0, obj.wrapping_add(l.tuple.1)),
        Kind::List => (l.list.0, mem.read_u64(obj.wrapping_add(l.list.1)).unwrap_or(0)),
        _ => return Vec::new(),
    };
    let n = mem.read_i64(obj.wrapping_add(size)).unwrap_or(0).clamp(0, MAX_ITEMS as i64) as usize;
    if base == 0 {
        return Vec::new();
    }
    (0..n).filter_map(|i| mem.read_u64(base.wrapping_add(8 * i as u64)).ok()).filter(|&p| p != 0).collect()
}

/// A small non-negative int (one or two 30-bit digits), as the lazily formatted task names of
/// 3.13 hold (`Task-<n>`).
pub(crate) fn small_int(mem: &dyn Memory, l: &AsyncioLayout, obj: u64) -> Option<u64> {
    let word = mem.read_u64(obj.wrapping_add(l.long.0)).ok()?;
    let digits = if l.long_tagged {
        if word & 3 == 2 {
            return None; // negative
        }
        word >> 3
    } else {
        word
    };
    let d0 = u64::from(mem.read_u32(obj.wrapping_add(l.long.1)).ok()?);
    match digits {
        0 => Some(0),
        1 => Some(d0),
        2 => Some(d0 | (u64::from(mem.read_u32(obj.wrapping_add(l.long.1 + 4)).ok()?) << 30)),
        _ => None,
    }
}
