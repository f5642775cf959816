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

use super::source::{ReadAt, Source};

const SYM_SIZE: u64 = 24;
/// Symbols read per window.
const WINDOW_SYMS: u64 = 16384;
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

/// The tables a look-up searches, in the order that breaks ties (later wins), and which of them
/// answer first: when a file has its own `.symtab`, its `.dynsym` holds nothing more (the
/// linker writes every global to both), so it is read only for the addresses the `.symtab` left
/// without a covering symbol, and a 1,000,000-function library is scanned once, not twice.
pub struct Tables<'a> {
    pub all: Vec<Table<'a>>,
    /// Indexes into `all` of the tables read first; the others only for what they leave open.
    pub primary: Vec<usize>,
}

impl<'a> Tables<'a> {
    /// Every table read for every address.
    pub fn flat(all: Vec<Table<'a>>) -> Self {
        let primary = (0..all.len()).collect();
        Tables { all, primary }
    }
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

/// One raw Elf64_Sym.
type RawSym = [u8; SYM_SIZE as usize];

fn sym_addr(s: &RawSym) -> u64 {
    u64::from_le_bytes([s[8], s[9], s[10], s[11], s[12], s[13], s[14], s[15]])
}

fn sym_size(s: &RawSym) -> u64 {
    u64::from_le_bytes([s[16], s[17], s[18], s[19], s[20], s[21], s[22], s[23]])
}

/// Whether a raw entry is one a look-up may return: named, defined, with an address, and not
/// a section, file, common or TLS symbol.
#[inline]
fn usable(s: &RawSym) -> bool {
    let name = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    let kind = s[4] & 0xf;
    let shndx = u16::from_le_bytes([s[6], s[7]]);
    name != 0
        && shndx != SHN_UNDEF
        && shndx != SHN_COMMON
        && !matches!(kind, STT_SECTION | STT_FILE | STT_COMMON | STT_TLS)
}

#[inline]
fn entry(s: &RawSym, index: u64, table: usize) -> Entry {
    Entry { addr: sym_addr(s), size: sym_size(s), name: u32::from_le_bytes([s[0], s[1], s[2], s[3]]), index, table }
}

/// Calls `f(raw entry, index)` for every entry of one table, read in windows of
/// `WINDOW_SYMS`; `base` is the index of its first entry over all tables.
fn scan(table: &Table<'_>, base: u64, mut f: impl FnMut(&RawSym, u64)) {
    let count = table.count.min(MAX_SYMS);
    let mut at = 0;
    let mut buf = Vec::new();
    while at < count {
        let n = (count - at).min(WINDOW_SYMS);
        buf.resize((n * SYM_SIZE) as usize, 0);
        if !table.src.read_exact_at(table.offset.saturating_add(at * SYM_SIZE), &mut buf) {
            break;
        }
        let mut index = base + at;
        for s in buf.chunks_exact(SYM_SIZE as usize) {
            index += 1;
            f(s.try_into().expect("chunks of SYM_SIZE"), index);
        }
        at += n;
    }
}

/// The index of each table's first entry, over all tables in order.
fn bases(tables: &[Table<'_>]) -> Vec<u64> {
    let mut base = 0;
    tables
        .iter()
        .map(|t| {
            let b = base;
            base += t.count.min(MAX_SYMS);
            b
        })
        .collect()
}

/// Calls `f` for every symbol a look-up may return, table after table.
fn for_each_entry(tables: &[Table<'_>], mut f: impl FnMut(Entry)) {
    for (t, (table, base)) in tables.iter().zip(bases(tables)).enumerate() {
        scan(table, base, |s, index| {
            if sym_addr(s) != 0 && usable(s) {
                f(entry(s, index, t));
            }
        });
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
    // Hostile offsets and sizes: a sum that overflows reads nothing rather than panicking.
    let mut at = start.saturating_add(offset);
    let end = start.saturating_add(size);
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

/// The symbol covering each of `queries` (SVMAs): one pass over the primary tables, then one
/// over the others for the addresses still without a covering symbol, if any.
///
/// Per entry the work is a comparison with the highest address asked for, a binary search
/// among the (few) addresses, and one comparison with the best symbol found so far below that
/// address: most entries of a large table stop there.
pub fn lookup(tables: &Tables<'_>, queries: &[u64]) -> Vec<Option<SymbolHit>> {
    let mut q: Vec<u64> = queries.to_vec();
    q.sort_unstable();
    q.dedup();
    let k = q.len();
    if k == 0 {
        return Vec::new();
    }
    let mut state = Search { q, cover: vec![None; k], below: vec![None; k] };
    let bases = bases(&tables.all);
    for &t in &tables.primary {
        state.pass(&tables.all[t], bases[t], t);
    }
    for t in (0..tables.all.len()).filter(|t| !tables.primary.contains(t)) {
        if state.cover.iter().all(Option::is_some) {
            break;
        }
        state.pass(&tables.all[t], bases[t], t);
    }
    let answers = state.answers();
    let hits: Vec<Option<SymbolHit>> = answers
        .iter()
        .map(|hit| {
            hit.and_then(|e| {
                Some(SymbolHit { name: read_name(&tables.all[e.table], e.name)?, addr: e.addr, size: e.size })
            })
        })
        .collect();
    queries.iter().map(|x| hits[state.q.binary_search(x).expect("every query is in q")].clone()).collect()
}

/// The state of one look-up over sorted, distinct queries `q`.
struct Search {
    q: Vec<u64>,
    /// Per query: the best sized symbol covering it (the sorted table's last one that does).
    cover: Vec<Option<Entry>>,
    /// Per query i: the best symbol with q[i-1] < address <= q[i]; the sorted table's
    /// predecessor of q[j] is the last non-empty one of below[..=j].
    below: Vec<Option<Entry>>,
}

impl Search {
    fn pass(&mut self, table: &Table<'_>, base: u64, t: usize) {
        let qmax = *self.q.last().expect("at least one query");
        scan(table, base, |s, index| {
            let addr = sym_addr(s);
            // Zero (undefined, absolute 0) or above every query: it can neither cover one nor
            // precede one.
            if addr.wrapping_sub(1) >= qmax {
                return;
            }
            let i = self.q.partition_point(|&x| x < addr);
            let size = sym_size(s);
            let covers = size > 0 && addr.saturating_add(size) > self.q[i];
            if !covers {
                // Cannot cover q[i] nor any later (higher) query; it matters only if it beats
                // the best predecessor candidate in its interval.
                if let Some(b) = &self.below[i] {
                    if (b.addr, std::cmp::Reverse(b.size)) > (addr, std::cmp::Reverse(size)) {
                        return;
                    }
                }
            }
            if !usable(s) {
                return;
            }
            let e = entry(s, index, t);
            if beats(&self.below[i], &e) {
                self.below[i] = Some(e);
            }
            if covers {
                let end = addr.saturating_add(size);
                for j in i..self.q.len() {
                    if self.q[j] >= end {
                        break;
                    }
                    if beats(&self.cover[j], &e) {
                        self.cover[j] = Some(e);
                    }
                }
            }
        });
    }

    /// The covering symbol of each query; else its predecessor when that one is sizeless (a
    /// sizeless symbol covers up to the next symbol, and no symbol starts between it and the
    /// query, or it would be the predecessor).
    fn answers(&self) -> Vec<Option<Entry>> {
        let mut pred: Option<Entry> = None;
        let mut out = Vec::with_capacity(self.q.len());
        for j in 0..self.q.len() {
            if self.below[j].is_some() {
                pred = self.below[j];
            }
            out.push(match (self.cover[j], pred) {
                (Some(c), _) => Some(c),
                (None, Some(p)) if p.size == 0 => Some(p),
                _ => None,
            });
        }
        out
    }
}

/// Whether `e` beats the current best (None, or a lower rank).
fn beats(current: &Option<Entry>, e: &Entry) -> bool {
    current.as_ref().map_or(true, |c| c.rank() < e.rank())
}

/// (device, inode, size, name) of a symbol looked up by name in a file.
pub type NameKey = (u64, u64, u64, String);

/// Lookups by name remembered for the life of crashcatch, across reports: each is a scan of
/// a string table and a symbol table (a fraction of a millisecond in a large interpreter), and
/// the Python stage makes about twenty. Bounded; keyed by the file's identity and size, so a
/// file replaced on disk is looked up again.
static BY_NAME: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<NameKey, Option<u64>>>> =
    std::sync::OnceLock::new();
const MAX_REMEMBERED: usize = 16384;

fn by_name() -> std::sync::MutexGuard<'static, std::collections::HashMap<NameKey, Option<u64>>> {
    BY_NAME.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner())
}

/// A lookup remembered for this file and name.
pub fn remembered(key: &NameKey) -> Option<Option<u64>> {
    by_name().get(key).copied()
}

/// Remembers a lookup (forgets them all past [`MAX_REMEMBERED`]).
pub fn remember(key: NameKey, address: Option<u64>) {
    let mut m = by_name();
    if m.len() >= MAX_REMEMBERED {
        m.clear();
    }
    m.insert(key, address);
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
        if !table.src.read_exact_at(start.saturating_add(at), &mut buf) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (address, size, kind, section index) of one raw symbol; its name is `s<position>`.
    type Raw = (u64, u64, u8, u16);

    /// Where one table lies in a test file: (entries offset, count, (strings offset, size)).
    type Place = (u64, u64, (u64, u64));

    /// A file holding one symbol table per `tables` entry, and the tables' positions in it.
    fn file(tables: &[Vec<Raw>]) -> (Source, Vec<Place>) {
        let mut bytes = Vec::new();
        let mut where_ = Vec::new();
        for (t, syms) in tables.iter().enumerate() {
            let mut strtab = vec![0u8];
            let mut names = Vec::new();
            for i in 0..syms.len() {
                names.push(strtab.len() as u32);
                strtab.extend_from_slice(format!("t{t}s{i}").as_bytes());
                strtab.push(0);
            }
            let str_at = bytes.len() as u64;
            bytes.extend_from_slice(&strtab);
            let sym_at = bytes.len() as u64;
            for ((addr, size, kind, shndx), name) in syms.iter().zip(names) {
                bytes.extend_from_slice(&name.to_le_bytes());
                bytes.push(*kind);
                bytes.push(0);
                bytes.extend_from_slice(&shndx.to_le_bytes());
                bytes.extend_from_slice(&addr.to_le_bytes());
                bytes.extend_from_slice(&size.to_le_bytes());
            }
            where_.push((sym_at, syms.len() as u64, (str_at, strtab.len() as u64)));
        }
        (Source::Owned(bytes), where_)
    }

    /// What a table sorted by (address, size descending, table order) answers: the last sized
    /// symbol covering the address, else the last symbol at or below it if it is sizeless.
    fn reference(tables: &[Vec<Raw>], q: u64) -> Option<String> {
        let mut all = Vec::new();
        let mut index = 0u64;
        for (t, syms) in tables.iter().enumerate() {
            for (i, &(addr, size, kind, shndx)) in syms.iter().enumerate() {
                index += 1;
                let bad = addr == 0 || shndx == SHN_UNDEF || shndx == SHN_COMMON || matches!(kind, 3..=6);
                if !bad {
                    all.push((addr, std::cmp::Reverse(size), index, format!("t{t}s{i}")));
                }
            }
        }
        all.sort();
        let cover = all.iter().rfind(|e| e.1 .0 > 0 && e.0 <= q && q < e.0.saturating_add(e.1 .0));
        if let Some(c) = cover {
            return Some(c.3.clone());
        }
        let pred = all.iter().rfind(|e| e.0 <= q)?;
        (pred.1 .0 == 0).then(|| pred.3.clone())
    }

    fn raw() -> impl Strategy<Value = Raw> {
        (
            0u64..400,
            prop_oneof![Just(0u64), 1u64..80, Just(u64::MAX)],
            prop_oneof![Just(2u8), Just(1u8), 0u8..7],
            prop_oneof![Just(1u16), Just(0u16), Just(SHN_COMMON)],
        )
    }

    fn names(
        src: &Source,
        where_: &[(u64, u64, (u64, u64))],
        primary: Vec<usize>,
        queries: &[u64],
    ) -> Vec<Option<String>> {
        let all = where_.iter().map(|&(offset, count, strtab)| Table { src, offset, count, strtab }).collect();
        let tables = Tables { all, primary };
        lookup(&tables, queries).into_iter().map(|h| h.map(|h| h.name.to_string())).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Every table read for every address: the sorted table's answers, in any table order.
        #[test]
        fn answers_are_the_sorted_tables(
            tables in prop::collection::vec(prop::collection::vec(raw(), 0..60), 1..3),
            queries in prop::collection::vec(0u64..500, 1..12),
        ) {
            let (src, where_) = file(&tables);
            let got = names(&src, &where_, (0..tables.len()).collect(), &queries);
            let want: Vec<Option<String>> = queries.iter().map(|&q| reference(&tables, q)).collect();
            prop_assert_eq!(got, want);
        }

        /// A `.symtab` read first and a `.dynsym` (a subset of it, as linkers write them) only
        /// for what it leaves open: the same answers as reading both, but for which of two
        /// equal symbols is named.
        #[test]
        fn symtab_first_agrees_with_both(
            symtab in prop::collection::vec(raw(), 1..80),
            pick in prop::collection::vec(any::<bool>(), 80),
            queries in prop::collection::vec(0u64..500, 1..12),
        ) {
            let dynsym: Vec<Raw> = symtab.iter().zip(&pick).filter(|(_, &p)| p).map(|(s, _)| *s).collect();
            let tables = vec![symtab.clone(), dynsym.clone()];
            let (src, where_) = file(&tables);
            let got = names(&src, &where_, vec![0], &queries);
            let both = names(&src, &where_, vec![0, 1], &queries);
            // Names differ between the tables; compare the (address, size) they stand for.
            let key = |n: &Option<String>| n.as_ref().map(|n| {
                let (t, i) = n[1..].split_once('s').unwrap();
                let t: usize = t.parse().unwrap();
                let s = tables[t][i.parse::<usize>().unwrap()];
                (s.0, s.1)
            });
            prop_assert_eq!(got.iter().map(key).collect::<Vec<_>>(), both.iter().map(key).collect::<Vec<_>>());
        }
    }
}
