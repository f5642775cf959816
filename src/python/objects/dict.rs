//! Dicts in the target's memory, in every layout CPython has used: 2.7's open table, 3.6–3.10's
//! compact dict, 3.11+'s keys with log2 sizes and str-only entries, split dicts whose values
//! live apart, and the managed dicts of 3.11+ instances (a dict pointer in front of the object,
//! or values with the type's cached keys, inline after the object from 3.13).

use super::layout::{DictLayout, ManagedDict, TPFLAGS_INLINE_VALUES, TPFLAGS_MANAGED_DICT};
use super::read::{ObjectError, Objects};
use crate::process::MemoryExt;

/// Most entries visited in one dict (a lookup by name, or the items shown).
pub const MAX_ENTRIES: usize = 1 << 14;

/// A dict's entries as (key, value) object addresses, up to `max` of them, and its size.
pub fn items(o: &Objects<'_>, dict: u64, max: usize) -> Result<(u64, Vec<(u64, u64)>), ObjectError> {
    o.pay()?;
    match o.l.dict {
        DictLayout::Table { used, mask, table } => {
            let len = o.mem.read_i64(dict.wrapping_add(used))?;
            let mask = o.mem.read_i64(dict.wrapping_add(mask))?;
            if !(0..(1 << 30)).contains(&mask) || !(0..=mask + 1).contains(&len) {
                return Err(ObjectError::Implausible { what: "table size", addr: dict, value: mask });
            }
            let table = o.ptr(dict.wrapping_add(table))?;
            let slots = (mask as usize + 1).min(MAX_ENTRIES);
            let mut out = Vec::new();
            for i in 0..slots {
                if out.len() >= max {
                    break;
                }
                let e = table.wrapping_add(24 * i as u64);
                let (key, value) = (o.ptr(e + 8)?, o.ptr(e + 16)?);
                if key != 0 && value != 0 {
                    out.push((key, value));
                }
            }
            Ok((len as u64, out))
        }
        DictLayout::Compact { ma_used, ma_keys, ma_values, .. }
        | DictLayout::Log2 { ma_used, ma_keys, ma_values, .. } => {
            let len = o.mem.read_i64(dict.wrapping_add(ma_used))?;
            if !(0..(1 << 40)).contains(&len) {
                return Err(ObjectError::Implausible { what: "ma_used", addr: dict, value: len });
            }
            let keys = o.ptr(dict.wrapping_add(ma_keys))?;
            let values = o.ptr(dict.wrapping_add(ma_values))?;
            let values = (values != 0).then(|| split_values(o, values));
            Ok((len as u64, entries(o, keys, values, max)?))
        }
    }
}

/// Where a split dict's value array starts, from its `ma_values`.
fn split_values(o: &Objects<'_>, values: u64) -> u64 {
    match o.l.dict {
        DictLayout::Log2 { values: off, .. } => values.wrapping_add(off),
        _ => values,
    }
}

/// The entries of a keys object; with `values` (a split table), each value is `values[i]`.
fn entries(o: &Objects<'_>, keys: u64, values: Option<u64>, max: usize) -> Result<Vec<(u64, u64)>, ObjectError> {
    if keys == 0 {
        return Err(ObjectError::Null("dict keys"));
    }
    let (nentries, first, width) = match o.l.dict {
        DictLayout::Compact { dk_size, dk_nentries, dk_indices, .. } => {
            let size = o.mem.read_i64(keys.wrapping_add(dk_size))?;
            if !(1..(1 << 40)).contains(&size) || size & (size - 1) != 0 {
                return Err(ObjectError::Implausible { what: "dk_size", addr: keys, value: size });
            }
            let ix = match size {
                0..=0xff => 1,
                0x100..=0xffff => 2,
                0x1_0000..=0xffff_ffff => 4,
                _ => 8,
            };
            let n = o.mem.read_i64(keys.wrapping_add(dk_nentries))?;
            (n, keys.wrapping_add(dk_indices).wrapping_add(size as u64 * ix), 24)
        }
        DictLayout::Log2 { dk_log2_index_bytes, dk_kind, dk_nentries, dk_indices, .. } => {
            let log2_bytes = o.mem.read_u8(keys.wrapping_add(dk_log2_index_bytes))?;
            let kind = o.mem.read_u8(keys.wrapping_add(dk_kind))?;
            if log2_bytes > 40 || kind > 2 {
                return Err(ObjectError::Implausible { what: "keys kind", addr: keys, value: i64::from(kind) });
            }
            let n = o.mem.read_i64(keys.wrapping_add(dk_nentries))?;
            let width = if kind == 0 { 24 } else { 16 };
            (n, keys.wrapping_add(dk_indices).wrapping_add(1u64 << log2_bytes), width)
        }
        DictLayout::Table { .. } => return Err(ObjectError::Text("a 2.7 dict has no keys object".into())),
    };
    if !(0..(1 << 40)).contains(&nentries) {
        return Err(ObjectError::Implausible { what: "dk_nentries", addr: keys, value: nentries });
    }
    let n = (nentries as usize).min(MAX_ENTRIES);
    let mut out = Vec::new();
    for i in 0..n {
        if out.len() >= max {
            break;
        }
        let e = first.wrapping_add(width * i as u64);
        let key_at = if width == 24 { e + 8 } else { e };
        let key = o.ptr(key_at)?;
        let value = match values {
            Some(v) => o.ptr(v.wrapping_add(8 * i as u64))?,
            None => o.ptr(key_at + 8)?,
        };
        if key != 0 && value != 0 {
            out.push((key, value));
        }
    }
    Ok(out)
}

/// The value of the `str` key `name` in the dict at `dict`.
pub fn get(o: &Objects<'_>, dict: u64, name: &str) -> Result<Option<u64>, ObjectError> {
    let (_, all) = items(o, dict, MAX_ENTRIES)?;
    Ok(find(o, &all, name))
}

fn find(o: &Objects<'_>, entries: &[(u64, u64)], name: &str) -> Option<u64> {
    entries.iter().find(|(k, _)| o.key_text(*k, name.len() + 1).as_deref() == Some(name)).map(|&(_, v)| v)
}

/// An attribute of an instance (from its `__dict__`, wherever the version keeps it).
pub fn attr(o: &Objects<'_>, obj: u64, name: &str) -> Result<Option<u64>, ObjectError> {
    o.pay()?;
    let ty = o.type_of(obj)?;
    let flags = o.mem.read_u64(ty.wrapping_add(o.l.tp_flags))?;
    let managed = o.l.managed_dict != ManagedDict::None && flags & TPFLAGS_MANAGED_DICT != 0;
    if !managed {
        let off = o.mem.read_i64(ty.wrapping_add(o.l.tp_dictoffset))?;
        if off <= 0 || off > (1 << 20) {
            return Ok(None);
        }
        let dict = o.ptr(obj.wrapping_add(off as u64))?;
        return if dict == 0 { Ok(None) } else { get(o, dict, name) };
    }
    let cached_keys = || o.ptr(ty.wrapping_add(o.l.ht_cached_keys));
    // `values` is a `PyDictValues *`.
    let from_values = |values: u64| -> Result<Option<u64>, ObjectError> {
        let all = entries(o, cached_keys()?, Some(split_values(o, values)), MAX_ENTRIES)?;
        Ok(find(o, &all, name))
    };
    let word = o.ptr(obj.wrapping_sub(24))?;
    match o.l.managed_dict {
        ManagedDict::Split311 => match word {
            0 => {
                let values = o.ptr(obj.wrapping_sub(32))?;
                if values == 0 {
                    Ok(None)
                } else {
                    from_values(values)
                }
            }
            dict => get(o, dict, name),
        },
        ManagedDict::Tagged312 => match word {
            0 => Ok(None),
            // Stored as the values' address minus one (3.12's `_PyDictOrValues_SetValues`).
            w if w & 1 == 1 => from_values(w.wrapping_add(1)),
            dict => get(o, dict, name),
        },
        ManagedDict::Inline313 => {
            if word != 0 {
                return get(o, word, name);
            }
            if flags & TPFLAGS_INLINE_VALUES == 0 {
                return Ok(None);
            }
            let size = o.mem.read_i64(ty.wrapping_add(o.l.tp_basicsize))?;
            if !(16..(1 << 20)).contains(&size) {
                return Ok(None);
            }
            let values = obj.wrapping_add(size as u64);
            // PyDictValues: capacity, size, embedded, valid (bytes), then the array.
            if o.mem.read_u8(values + 3)? == 0 {
                return Ok(None);
            }
            from_values(values)
        }
        ManagedDict::None => Ok(None),
    }
}
