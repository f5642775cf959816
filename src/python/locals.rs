//! A Python frame's arguments and local variables, read from its memory: up to 3.10 from the
//! frame object's `f_localsplus` (named by `co_varnames`, `co_cellvars`, `co_freevars`), from
//! 3.11 from the interpreter frame's `localsplus` (named by `co_localsplusnames`, with a kind
//! byte each). Cells are looked through to their contents. At most [`MAX_LOCALS`] per frame.

use super::objects::layout::{LocalsLayout, CO_VARARGS, CO_VARKEYWORDS};
use super::objects::repr::{self, Mode};
use super::objects::{Builtin, ObjectError, Objects};
use super::strings::read_bytes_object;
use crate::process::MemoryExt;
use crate::report::model::{Local, LocalKind};

/// Most variables shown per frame.
pub const MAX_LOCALS: usize = 64;
/// Longest variable name read.
const MAX_NAME: usize = 128;

/// `co_localspluskinds` bits (3.11+): a hidden local (a comprehension's, 3.13+), a cell, a free
/// variable.
const CO_FAST_HIDDEN: u8 = 0x10;
const CO_FAST_CELL: u8 = 0x40;
const CO_FAST_FREE: u8 = 0x80;

/// What to read of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub arguments_only: bool,
    pub mode: Mode,
}

/// The variables of the frame at `frame` running `code`, and a note when some are left out.
pub fn read(o: &Objects<'_>, frame: u64, code: u64, want: Want) -> (Vec<Local>, Option<String>) {
    match slots(o, frame, code) {
        Ok(slots) => show(o, slots, want),
        Err(ObjectError::Budget) => (Vec::new(), Some("not read: the budget for reading objects is spent".into())),
        Err(e) => (Vec::new(), Some(format!("not read: {e}"))),
    }
}

/// One variable before it is shown: its name, kind and value (0 when unbound).
struct Slot {
    name: String,
    kind: LocalKind,
    value: u64,
}

struct Slots {
    slots: Vec<Slot>,
    /// Variables past [`MAX_LOCALS`].
    more: usize,
}

fn show(o: &Objects<'_>, s: Slots, want: Want) -> (Vec<Local>, Option<String>) {
    let mut out = Vec::new();
    let mut more = s.more;
    for slot in s.slots {
        if want.arguments_only && slot.kind != LocalKind::Argument {
            continue;
        }
        if o.spent() {
            more += 1;
            continue;
        }
        let shown = repr::show(o, slot.value, want.mode);
        out.push(Local {
            name: slot.name,
            kind: slot.kind,
            type_name: shown.type_name,
            repr: shown.repr,
            length: shown.length,
        });
    }
    let note = match (more, o.spent()) {
        (0, _) => None,
        (n, true) => Some(format!("{n} more not shown: the budget for reading objects is spent")),
        (n, false) => Some(format!("{n} more not shown (at most {MAX_LOCALS} per frame)")),
    };
    (out, note)
}

fn int_at(o: &Objects<'_>, addr: u64) -> Result<i64, ObjectError> {
    let v = o.mem.read_i32(addr)?;
    if !(0..=(1 << 20)).contains(&v) {
        return Err(ObjectError::Implausible { what: "count", addr, value: i64::from(v) });
    }
    Ok(i64::from(v))
}

/// The names in the tuple at `tuple` (up to `max`), and its length.
fn names(o: &Objects<'_>, tuple: u64, max: usize) -> Result<(usize, Vec<String>), ObjectError> {
    o.pay()?;
    let (n, items) = o.items(tuple, false, max)?;
    let names = items.into_iter().map(|p| o.str(p, MAX_NAME).map(|(_, s)| s).unwrap_or_else(|_| "?".into())).collect();
    Ok((n as usize, names))
}

/// The number of arguments of `code` (positional, keyword-only, *args, **kwargs).
fn argument_count(o: &Objects<'_>, code: u64, kwonly_at: Option<u64>) -> Result<usize, ObjectError> {
    let l = o.l;
    let argcount = int_at(o, code.wrapping_add(l.co_argcount))?;
    let kwonly = match kwonly_at {
        Some(k) => int_at(o, code.wrapping_add(k))?,
        None => 0,
    };
    let flags = o.mem.read_u32(code.wrapping_add(l.co_flags))?;
    let star = i64::from(flags & CO_VARARGS != 0) + i64::from(flags & CO_VARKEYWORDS != 0);
    Ok((argcount + kwonly + star) as usize)
}

fn slots(o: &Objects<'_>, frame: u64, code: u64) -> Result<Slots, ObjectError> {
    o.pay()?;
    match o.l.locals {
        LocalsLayout::Classic {
            f_localsplus,
            co_nlocals,
            co_varnames,
            co_cellvars,
            co_freevars,
            co_kwonlyargcount,
        } => {
            let nargs = argument_count(o, code, co_kwonlyargcount)?;
            let nlocals = int_at(o, code.wrapping_add(co_nlocals))? as usize;
            let (nvar, mut all) = names(o, o.ptr(code.wrapping_add(co_varnames))?, MAX_LOCALS)?;
            if nvar != nlocals {
                return Err(ObjectError::Text(format!("co_varnames has {nvar} names for {nlocals} locals")));
            }
            let mut kinds: Vec<LocalKind> =
                (0..all.len()).map(|i| if i < nargs { LocalKind::Argument } else { LocalKind::Local }).collect();
            let mut total = nlocals;
            for field in [co_cellvars, co_freevars] {
                let (n, more) = names(o, o.ptr(code.wrapping_add(field))?, MAX_LOCALS)?;
                if all.len() == total {
                    let room = MAX_LOCALS.saturating_sub(all.len());
                    kinds.extend(std::iter::repeat(LocalKind::Cell).take(more.len().min(room)));
                    all.extend(more.into_iter().take(room));
                }
                total += n;
            }
            let values = values(o, frame.wrapping_add(f_localsplus), all.len(), false)?;
            Ok(finish(o, all, kinds, values, total))
        }
        LocalsLayout::Plus { localsplus, names: names_at, kinds: kinds_at, kwonlyargcount, tagged } => {
            let nargs = argument_count(o, code, Some(kwonlyargcount))?;
            let (total, all) = names(o, o.ptr(code.wrapping_add(names_at))?, MAX_LOCALS)?;
            let kind_bytes = read_bytes_object(o.mem, o.bytes, o.ptr(code.wrapping_add(kinds_at))?, 1 << 20)?;
            if kind_bytes.len() != total {
                return Err(ObjectError::Text(format!("{} kinds for {total} names", kind_bytes.len())));
            }
            let values = values(o, frame.wrapping_add(localsplus), all.len(), tagged)?;
            let mut keep = (Vec::new(), Vec::new(), Vec::new());
            for (i, name) in all.into_iter().enumerate() {
                let k = kind_bytes[i];
                if k & CO_FAST_HIDDEN != 0 {
                    continue;
                }
                keep.0.push(name);
                keep.1.push(if i < nargs {
                    LocalKind::Argument
                } else if k & (CO_FAST_CELL | CO_FAST_FREE) != 0 {
                    LocalKind::Cell
                } else {
                    LocalKind::Local
                });
                keep.2.push(values[i]);
            }
            let hidden = kind_bytes.iter().filter(|&&k| k & CO_FAST_HIDDEN != 0).count();
            Ok(finish(o, keep.0, keep.1, keep.2, total - hidden))
        }
    }
}

/// `n` object pointers at `at` (tagged references cleared of their tag bits).
fn values(o: &Objects<'_>, at: u64, n: usize, tagged: bool) -> Result<Vec<u64>, ObjectError> {
    let raw = o.mem.read_bytes(at, n * 8)?;
    Ok(raw
        .chunks_exact(8)
        .map(|c| {
            let v = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            // 3.14+: the low bits tag a reference; both set is a tagged integer, not an object.
            match (tagged, v & 3) {
                (true, 3) => 0,
                (true, _) => v & !3,
                (false, _) => v,
            }
        })
        .collect())
}

/// Looks through cells to what they hold (a cell variable, and from 3.11 an argument that is
/// one), and gives an argument that moved into a cell (≤3.10 empties the argument's own slot)
/// the cell's value.
fn finish(o: &Objects<'_>, names: Vec<String>, kinds: Vec<LocalKind>, mut values: Vec<u64>, total: usize) -> Slots {
    for v in values.iter_mut() {
        if *v != 0 && o.builtin(*v) == Some(Builtin::Cell) {
            *v = o.cell(*v).unwrap_or(0);
        }
    }
    let mut slots: Vec<Slot> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut value = values[i];
        if value == 0 && kinds[i] == LocalKind::Argument {
            if let Some(j) = (0..names.len()).find(|&j| j != i && kinds[j] == LocalKind::Cell && names[j] == *name) {
                value = values[j];
            }
        }
        // An argument that is also a cell is shown once, as the argument.
        if kinds[i] == LocalKind::Cell && names[..i].contains(name) {
            continue;
        }
        slots.push(Slot { name: name.clone(), kind: kinds[i], value });
    }
    let more = total.saturating_sub(names.len());
    Slots { slots, more }
}
