//! `threading.Thread.name` of every thread, read the way py-spy reads it: `sys.modules` →
//! `threading` → its `_active` dict (thread ident → Thread object) → each Thread's `_name`
//! (2.7: the mangled `_Thread__name`). The ident is the `pthread_t` the thread state records.

use std::collections::HashMap;

use super::objects::{dict, Builtin, ObjectError, Objects};

/// Longest thread name kept.
const MAX_NAME: usize = 256;
/// Most threads read from `_active`.
const MAX_THREADS: usize = 4096;

/// Thread ident → name, for the interpreter at `interp`. Empty when `threading` was never
/// imported.
pub fn read(o: &Objects<'_>, interp: u64) -> Result<HashMap<u64, String>, ObjectError> {
    let mut out = HashMap::new();
    let modules = o.ptr(interp.wrapping_add(o.l.interp_modules))?;
    if modules == 0 || o.builtin(modules) != Some(Builtin::Dict) {
        return Ok(out);
    }
    let Some(threading) = dict::get(o, modules, "threading")? else { return Ok(out) };
    if o.type_name_of(threading) != "module" {
        return Ok(out);
    }
    let globals = o.ptr(threading.wrapping_add(o.l.module_dict))?;
    let Some(active) = dict::get(o, globals, "_active")? else { return Ok(out) };
    if o.builtin(active) != Some(Builtin::Dict) {
        return Ok(out);
    }
    let (_, entries) = dict::items(o, active, MAX_THREADS)?;
    for (key, thread) in entries {
        o.pay()?;
        let ident = match o.builtin(key) {
            Some(Builtin::Long) => o.int(key, false),
            Some(Builtin::Int) => o.int(key, true),
            _ => continue,
        };
        let Ok(super::objects::read::IntValue::Exact(ident)) = ident else { continue };
        let mut name = None;
        for attr in ["_name", "_Thread__name"] {
            if let Ok(Some(v)) = dict::attr(o, thread, attr) {
                name = Some(v);
                break;
            }
        }
        let text = name.filter(|&n| matches!(o.builtin(n), Some(Builtin::Str | Builtin::Bytes)));
        if let Some(Ok((_, text))) = text.map(|n| o.str(n, MAX_NAME)) {
            out.insert(ident as u64, text);
        }
    }
    Ok(out)
}
