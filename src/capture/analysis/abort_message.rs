//! glibc's `__abort_msg`: the text of a failed assert() (and of glibc's own fatal messages).

use crate::modules::ModuleSet;
use crate::process::{MemoryExt, Snapshot};

/// At most this many bytes of the message.
const MAX_MESSAGE: usize = 4096;

/// `__abort_msg` points to `{ unsigned int size; char msg[]; }`, or is NULL.
pub(crate) fn abort_message(snap: &Snapshot<'_>, modules: &ModuleSet) -> Option<String> {
    let libc = modules.by_name(|n| n.starts_with("libc.so") || n.starts_with("libc-")).next()?;
    let sym = libc.symbol_address("__abort_msg")?;
    let p = snap.memory.read_u64(sym).ok()?;
    if p == 0 {
        return None;
    }
    let msg = snap.memory.read_cstr(p + 4, MAX_MESSAGE).ok()?;
    (!msg.is_empty()).then_some(msg)
}
