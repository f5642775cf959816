//! Symbol look-ups straight from the raw `.symtab` / `.dynsym` tables, without building a
//! sorted copy of them: one streaming pass over the tables answers every address asked for
//! at once (a report asks for a few dozen), and a name is found by searching the string table
//! for it, then the symbols that point there. Memory is a fixed-size window whatever the
//! library's size; time is one linear pass per batch of addresses.
//!
//! The answers are those of a table sorted by (address, size descending, table order):
//! the sized symbol covering the address with the highest start (the smallest, then the last
//! in table order, on ties); else the last symbol at or below the address if it is sizeless and
//! no other symbol starts between it and the address.

use std::rc::Rc;

use memchr::memmem;

use super::headers::u64_at;
use super::source::{ReadAt, Source};

const SYM_SIZE: u64 = 24;
/// Symbols read per window.
const WINDOW_SYMS: u64 = 4096;
/// String-table bytes searched per read.
const STR_WINDOW: u64 = 1 << 20;
/// Longest symbol name read (C++ names run to kilobytes).
const MAX_NAME: u64 = 64 << 10;
/// At most this many symbols per table (a corrupt count cannot make a pass endless).
const MAX_SYMS: u64 = 64 << 20;

const STT_SECTION: u8 = 3;
const STT_FILE: u8 = 4;
const STT_COMMON: u8 = 5;
const STT_TLS: u8 = 6;
const SHN_UNDEF: u16 = 0;
const SHN_COMMON: u16 = 0xfff2;

/// One symbol table of one file: where its entries and its string table are.
#[derive(Clone, Copy)]
pub struct Table<'a> {
    pub src: &'a Source,
    pub offset: u64,
    pub count: u64,
    pub strtab: (u64, u64),
}

/// A symbol that covers an address.
#[derive(Debug, Clone)]
pub struct SymbolHit {
    pub name: Rc<str>,
    pub addr: u64,
    pub size: u64,
}

/// One symbol entry as far as look-ups need it.
#[derive(Clone, Copy)]
struct Entry {
    addr: u64,
    size: u64,
    name: u32,
    /// Position over all tables searched, in order: later wins ties.
    index: u64,
    table: usize,
}

impl Entry {
    /// Order of the sorted table: address, then size descending, then table order.
    fn rank(&self) -> (u64, std::cmp::Reverse<u64>, u64) {
        (self.addr, std::cmp::Reverse(self.size), self.index)
    }
}

/// Calls `f` for every symbol a look-up may return, table after table.
fn for_each_entry(tables: &[Table<'_>], mut f: impl FnMut(Entry)) {
    let mut index = 0u64;
    for (t, table) in tables.iter().enumerate() {
        let count = table.count.min(MAX_SYMS);
        let mut at = 0;
        let mut buf = Vec::new();
        while at < count {
            let n = (count - at).min(WINDOW_SYMS);
            buf.resize((n * SYM_SIZE) as usize, 0);
            if !table.src.read_exact_at(table.offset + at * SYM_SIZE, &mut buf) {
                break;
            }
            for s in buf.chunks_exact(SYM_SIZE as usize) {
                index += 1;
                let name = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                let kind = s[4] & 0xf;
                let shndx = u16::from_le_bytes([s[6], s[7]]);
                let addr = u64_at(s, 8);
                if name == 0 || addr == 0 || shndx == SHN_UNDEF || shndx == SHN_COMMON {
                    continue;
                }
                if matches!(kind, STT_SECTION | STT_FILE | STT_COMMON | STT_TLS) {
                    continue;
                }
                f(Entry { addr, size: u64_at(s, 16), name, index, table: t });
            }
            at += n;
        }
    }
}

/// The name of a symbol, without its version (`memcpy@@GLIBC_2.14` → `memcpy`); None when
/// empty or unreadable.
fn read_name(table: &Table<'_>, offset: u32) -> Option<Rc<str>> {
    let (start, size) = table.strtab;
    let offset = u64::from(offset);
    if offset >= size {
        return None;
    }
    let mut name = Vec::new();
    let mut at = start + offset;
    let end = start + size;
    while at < end && (name.len() as u64) < MAX_NAME {
        let n = (end - at).min(256);
        let mut chunk = vec![0u8; n as usize];
        if !table.src.read_exact_at(at, &mut chunk) {
            return None;
        }
        if let Some(z) = chunk.iter().position(|&c| c == 0) {
            name.extend_from_slice(&chunk[..z]);
            let name = String::from_utf8_lossy(&name);
            let name = name.split_once('@').map_or(&*name, |(n, _)| n);
            return (!name.is_empty()).then(|| name.into());
        }
        name.extend_from_slice(&chunk);
        at += n;
    }
    None
}

/// The symbol covering each of `queries` (SVMAs), in one pass over the tables.
pub fn lookup(tables: &[Table<'_>], queries: &[u64]) -> Vec<Option<SymbolHit>> {
    let mut q: Vec<u64> = queries.to_vec();
    q.sort_unstable();
    q.dedup();
    let k = q.len();
    if k == 0 {
        return Vec::new();
    }
    // Per sorted query: best covering sized symbol; best symbol at or below (the sorted table's
    // predecessor); lowest address above.
    let mut cover: Vec<Option<Entry>> = vec![None; k];
    let mut pred: Vec<Option<Entry>> = vec![None; k];
    let mut next: Vec<u64> = vec![u64::MAX; k];
    for_each_entry(tables, |e| {
        // Queries at or above the symbol's start: [i, k).
        let i = q.partition_point(|&x| x < e.addr);
        // Predecessor: non-decreasing in the query, so stop at the first that is already better.
        for p in &mut pred[i..] {
            match p {
                Some(b) if b.rank() >= e.rank() => break,
                _ => *p = Some(e),
            }
        }
        // Next start above: also non-decreasing in the query, walked downwards.
        for n in next[..i].iter_mut().rev() {
            if *n <= e.addr {
                break;
            }
            *n = e.addr;
        }
        if e.size > 0 {
            let end = e.addr.saturating_add(e.size);
            for j in i..k {
                if q[j] >= end {
                    break;
                }
                // The highest start covering wins; then the sorted table's later entry.
                if beats(&cover[j], &e) {
                    cover[j] = Some(e);
                }
            }
        }
    });
    let mut answers = Vec::with_capacity(k);
    for j in 0..k {
        let hit = match (cover[j], pred[j]) {
            (Some(c), _) => Some(c),
            (None, Some(p)) if p.size == 0 && q[j] < next[j] => Some(p),
            _ => None,
        };
        answers.push(
            hit.and_then(|e| {
                Some(SymbolHit { name: read_name(&tables[e.table], e.name)?, addr: e.addr, size: e.size })
            }),
        );
    }
    queries.iter().map(|x| answers[q.binary_search(x).expect("every query is in q")].clone()).collect()
}

/// Whether `e` beats the current best (None, or a lower rank).
fn beats(current: &Option<Entry>, e: &Entry) -> bool {
    current.as_ref().map_or(true, |c| c.rank() < e.rank())
}

/// The address of the first symbol named `name` in the sorted table (lowest address, then
/// largest size, then table order), searching each string table for the name.
pub fn address_of(tables: &[Table<'_>], name: &str) -> Option<u64> {
    if name.is_empty() || name.len() as u64 > MAX_NAME {
        return None;
    }
    // Offsets, per table, of strings that are `name` or `name@version`.
    let offsets: Vec<Vec<u32>> = tables.iter().map(|t| name_offsets(t, name.as_bytes())).collect();
    if offsets.iter().all(Vec::is_empty) {
        return None;
    }
    let mut best: Option<Entry> = None;
    for_each_entry(tables, |e| {
        if offsets[e.table].binary_search(&e.name).is_ok() {
            let key = |x: &Entry| (x.addr, std::cmp::Reverse(x.size), x.index);
            if best.as_ref().map_or(true, |b| key(&e) < key(b)) {
                best = Some(e);
            }
        }
    });
    best.map(|e| e.addr)
}

/// Sorted offsets into the table's strings where `name` followed by NUL or '@' starts.
fn name_offsets(table: &Table<'_>, name: &[u8]) -> Vec<u32> {
    let (start, size) = table.strtab;
    let finder = memmem::Finder::new(name);
    let mut out = Vec::new();
    let overlap = name.len() as u64 + 1;
    let mut at = 0u64;
    let mut buf = Vec::new();
    while at < size {
        let n = (size - at).min(STR_WINDOW + overlap);
        buf.resize(n as usize, 0);
        if !table.src.read_exact_at(start + at, &mut buf) {
            break;
        }
        for pos in finder.find_iter(&buf) {
            let after = buf.get(pos + name.len()).copied();
            // A match must start where the window's own part starts or later, so the overlap
            // is not counted twice.
            if matches!(after, Some(0) | Some(b'@')) && (pos as u64) < STR_WINDOW.min(n) {
                if let Ok(off) = u32::try_from(at + pos as u64) {
                    out.push(off);
                }
            }
        }
        if n < STR_WINDOW + overlap {
            break;
        }
        at += STR_WINDOW;
    }
    out.sort_unstable();
    out.dedup();
    out
}
