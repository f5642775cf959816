//! The command line and environment a process started with, read back from its initial stack:
//! the kernel laid out argc, argv[], NULL, envp[], NULL, then the auxiliary vector, and a core
//! holds that stack and (in NT_AUXV) a copy of the vector, so finding the copy finds the rest.

use crate::process::{Memory, MemoryExt};

/// The auxiliary vector is searched for this far below the top of the stack mapping.
const SEARCH_BYTES: u64 = 8 << 20;
const CHUNK: usize = 64 * 1024;
const MAX_ARGS: usize = 1 << 16;
const MAX_ENV: usize = 1 << 16;
const MAX_STRING: usize = 128 * 1024;
/// At most this many bytes of strings in all.
const MAX_TOTAL: usize = 8 << 20;

/// argv and envp as the process started with them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StartStrings {
    pub args: Vec<String>,
    pub env: Vec<String>,
}

/// Finds the auxiliary vector `auxv` (as NT_AUXV holds it) in the stack mapping
/// `[start, end)` and reads the argv and envp arrays below it.
pub(crate) fn start_strings(memory: &dyn Memory, start: u64, end: u64, auxv: &[(u64, u64)]) -> Option<StartStrings> {
    let at = find_auxv(memory, start, end, auxv)?;
    // envp's NULL is right below the vector.
    let mut p = at.checked_sub(8)?;
    if memory.read_u64(p).ok()? != 0 {
        return None;
    }
    let mut env_ptrs = Vec::new();
    while env_ptrs.len() < MAX_ENV {
        p = p.checked_sub(8)?;
        match memory.read_u64(p).ok()? {
            0 => break,
            v => env_ptrs.push(v),
        }
    }
    env_ptrs.reverse();
    // Then argv, whose first word below is argc: the count of pointers read so far.
    let mut arg_ptrs = Vec::new();
    while arg_ptrs.len() < MAX_ARGS {
        p = p.checked_sub(8)?;
        let v = memory.read_u64(p).ok()?;
        if v == arg_ptrs.len() as u64 {
            break;
        }
        arg_ptrs.push(v);
    }
    arg_ptrs.reverse();
    let mut budget = MAX_TOTAL;
    let mut strings = |ptrs: &[u64]| -> Vec<String> {
        let mut out = Vec::new();
        for &s in ptrs {
            let Ok(v) = memory.read_cstr(s, MAX_STRING.min(budget)) else { continue };
            budget = budget.saturating_sub(v.len() + 1);
            out.push(v);
            if budget == 0 {
                break;
            }
        }
        out
    };
    let args = strings(&arg_ptrs);
    let env = strings(&env_ptrs);
    Some(StartStrings { args, env })
}

/// The address of the first entry of `auxv` in the top [`SEARCH_BYTES`] of the mapping.
fn find_auxv(memory: &dyn Memory, start: u64, end: u64, auxv: &[(u64, u64)]) -> Option<u64> {
    let pattern: Vec<u8> =
        auxv.iter().take(4).flat_map(|&(k, v)| k.to_le_bytes().into_iter().chain(v.to_le_bytes())).collect();
    if pattern.len() < 32 {
        return None;
    }
    let low = start.max(end.saturating_sub(SEARCH_BYTES));
    let mut hi = end;
    let mut buf = vec![0u8; CHUNK + pattern.len()];
    // From the top down, chunks overlapping by the pattern's length.
    while hi > low {
        let lo = hi.saturating_sub(CHUNK as u64).max(low);
        let len = ((hi - lo) as usize + pattern.len()).min((end - lo) as usize);
        let got = memory.read_partial(lo, &mut buf[..len]);
        let hay = &buf[..got];
        let mut found = None;
        for off in (0..hay.len().saturating_sub(pattern.len() - 1)).step_by(8) {
            if hay[off..off + pattern.len()] == pattern[..] {
                found = Some(lo + off as u64);
            }
        }
        if found.is_some() {
            return found;
        }
        hi = lo;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ImageMemory;

    #[test]
    fn reads_back_a_laid_out_stack() {
        let base = 0x7ffd_0000_0000u64;
        let mut words: Vec<u64> = vec![0xdead, 2, base + 0x800, base + 0x808, 0, base + 0x810, 0];
        let auxv = [(33u64, 0x7fff_1000u64), (16, 0xbfebfbff), (6, 4096), (17, 100)];
        for (k, v) in auxv {
            words.extend([k, v]);
        }
        words.extend([0, 0]);
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes.resize(0x800, 0);
        bytes.extend_from_slice(b"python\0\0-c\0\0\0\0\0\0A=1\0");
        bytes.resize(0x1000, 0);
        let mut m = ImageMemory::new();
        m.add(base, bytes);
        let s = start_strings(&m, base, base + 0x1000, &auxv).unwrap();
        assert_eq!(s.args, vec!["python", "-c"]);
        assert_eq!(s.env, vec!["A=1"]);
        assert_eq!(start_strings(&m, base, base + 0x1000, &auxv[..1]), None);
    }
}
