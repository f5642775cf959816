//! DWARF lookups that read only the compilation unit holding the address.
//!
//! `addr2line::Context::from_dwarf` builds every unit of a module up front (abbreviations and
//! line-program header for each), which for a large library costs tens of milliseconds and
//! megabytes before the first answer. A crash report needs a few dozen addresses, so this path
//! goes from `.debug_aranges` straight to the unit that holds the address, builds only that unit
//! (cached for the rest of the report), runs its line program and walks its DIE tree.
//!
//! The answers are those of `addr2line::Context::find_frames` (see tests/dwarf_units_differential.rs,
//! which compares the two on real files). When this path cannot answer — no `.debug_aranges`, an
//! address no arange covers while some unit has no arange, or malformed data — it says so and the
//! caller falls back to addr2line.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use gimli::{AttributeValue, DebugInfoOffset, EndianSlice, Reader as _, RunTimeEndian, UnitOffset};

use super::strings::Strings;
use crate::modules::ElfInfo;

pub(crate) type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

/// One frame at an address, innermost first, as `addr2line::Context::find_frames` yields them:
/// the function's raw (mangled) name, and the source location (the address's own for the first
/// frame, the call site of the next-inner inlined function for the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFrame {
    /// Its function's name.
    pub name: Option<String>,
    /// Its source file.
    pub file: Option<String>,
    /// Its line.
    pub line: Option<u32>,
}

/// Why the per-unit index gave no answer (the symbolizer then asks addr2line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexMiss {
    /// The module has no usable `.debug_aranges`.
    #[error("no usable .debug_aranges")]
    NoAranges,
    /// No arange covers the address, and not every unit has aranges.
    #[error("no arange covers the address, and not every unit has aranges")]
    NotCovered,
    /// The DWARF could not be read as expected.
    #[error("the DWARF could not be read: {0}")]
    Failed(#[from] gimli::Error),
}

type Result<T> = std::result::Result<T, IndexMiss>;

/// Bytes of `.debug_abbrev` first read for a unit's table (doubled while it is cut short).
const ABBREV_WINDOW: usize = 8 << 10;

/// How deep DW_AT_abstract_origin / DW_AT_specification chains are followed for a name.
const NAME_DEPTH: usize = 16;

/// One address range of `.debug_aranges` and the unit (its `.debug_info` offset) it belongs to.
#[derive(Debug, Clone, Copy)]
struct Arange {
    start: u64,
    end: u64,
    unit: usize,
}

/// A unit built on demand, with its line table once needed.
struct CachedUnit<'a> {
    offset: usize,
    end: usize,
    unit: gimli::Unit<Reader<'a>>,
    lines: OnceCell<Option<LineRows>>,
    functions: OnceCell<FunctionTable>,
    /// Rendered file paths by line-program file index.
    files: RefCell<HashMap<u64, Option<Rc<str>>>>,
}

/// The rows of one line-program sequence: `[start, end)`, rows sorted by address.
struct Sequence {
    start: u64,
    end: u64,
    rows: Vec<LineRow>,
}

#[derive(Clone, Copy)]
struct LineRow {
    address: u64,
    file: u64,
    line: u32,
}

struct LineRows {
    /// Sorted by start.
    sequences: Vec<Sequence>,
}

/// The per-unit index of one module's DWARF.
pub struct UnitIndex<'a> {
    elf: &'a ElfInfo,
    /// The string sections, read by offset.
    strings: Strings<'a>,
    /// Every section but `.debug_info`, which is read unit by unit through `info`.
    dwarf: gimli::Dwarf<Reader<'a>>,
    endian: RunTimeEndian,
    /// Sorted by start; may overlap.
    aranges: Vec<Arange>,
    units: RefCell<HashMap<usize, Rc<CachedUnit<'a>>>>,
    /// Abbreviation tables by `.debug_abbrev` offset (units may share one).
    abbrevs: RefCell<HashMap<usize, Arc<gimli::Abbreviations>>>,
    /// (offset, end) of every unit in `.debug_info`, read on first need (references into other
    /// units, and the coverage check).
    unit_spans: OnceCell<Option<Vec<(usize, usize)>>>,
    /// Whether every compilation unit has at least one non-empty arange.
    complete: OnceCell<bool>,
}

impl<'a> UnitIndex<'a> {
    /// The index of `elf`'s DWARF, or why there is none (no `.debug_aranges` with entries).
    pub fn new(elf: &'a ElfInfo) -> Result<UnitIndex<'a>> {
        let endian = RunTimeEndian::Little;
        if elf.section(".debug_aranges").is_none() {
            return Err(IndexMiss::NoAranges);
        }
        let load = |id: gimli::SectionId| -> std::result::Result<Reader<'a>, gimli::Error> {
            use gimli::SectionId::*;
            // .debug_info, .debug_abbrev and .debug_line are read per unit (a window at the
            // unit's offsets), strings by offset (strings.rs); location lists, macros and type
            // units are never needed.
            if matches!(
                id,
                DebugInfo
                    | DebugAbbrev
                    | DebugLine
                    | DebugStr
                    | DebugLineStr
                    | DebugStrOffsets
                    | DebugLoc
                    | DebugLocLists
                    | DebugMacinfo
                    | DebugMacro
                    | DebugTypes
                    | DebugCuIndex
                    | DebugTuIndex
            ) {
                return Ok(EndianSlice::new(&[], endian));
            }
            Ok(EndianSlice::new(elf.section_prefix(id.name(), usize::MAX).unwrap_or(&[]), endian))
        };
        let dwarf = gimli::Dwarf::load(load)?;
        let mut aranges = Vec::new();
        let mut headers = dwarf.debug_aranges.headers();
        while let Some(header) = headers.next()? {
            let unit = header.debug_info_offset().0;
            let mut entries = header.entries();
            loop {
                match entries.next() {
                    Ok(Some(e)) => {
                        let r = e.range();
                        if r.begin < r.end {
                            aranges.push(Arange { start: r.begin, end: r.end, unit });
                        }
                    }
                    Ok(None) => break,
                    // An entry whose end overflows: skipped (parse errors end the iterator).
                    Err(_) => continue,
                }
            }
        }
        if aranges.is_empty() {
            return Err(IndexMiss::NoAranges);
        }
        aranges.sort_unstable_by_key(|a| (a.start, a.end, a.unit));
        Ok(UnitIndex {
            elf,
            strings: Strings::new(elf),
            dwarf,
            endian,
            aranges,
            units: RefCell::new(HashMap::new()),
            abbrevs: RefCell::new(HashMap::new()),
            unit_spans: OnceCell::new(),
            complete: OnceCell::new(),
        })
    }

    /// How much of `.debug_info` look-ups of these addresses (SVMAs) will read: up to the start
    /// of the first unit listed in `.debug_aranges` after the furthest unit that holds one of
    /// them (or the section's end). None when an address is in no arange: its look-up may walk
    /// every unit header (see `every_unit_has_aranges`).
    pub(crate) fn info_end(&self, svmas: &[u64]) -> Option<usize> {
        let mut furthest = 0;
        for &probe in svmas {
            let unit = self.aranges_holding(probe).map(|a| a.unit).max()?;
            furthest = furthest.max(unit);
        }
        let size = self.elf.section_size(".debug_info")?;
        let next = self.aranges.iter().map(|a| a.unit).filter(|&u| u > furthest).min();
        Some(next.unwrap_or(size).min(size))
    }

    /// The aranges that contain `probe` (they may overlap).
    fn aranges_holding(&self, probe: u64) -> impl Iterator<Item = &Arange> {
        let upto = self.aranges.partition_point(|a| a.start <= probe);
        self.aranges[..upto].iter().filter(move |a| probe < a.end)
    }

    /// The frames at `probe` (an SVMA), innermost first; empty when the DWARF has nothing there.
    pub fn find_frames(&self, probe: u64) -> Result<Vec<UnitFrame>> {
        // Units whose aranges contain the address, in the order addr2line tries them (by range
        // end, then unit offset): the first with a function or a line row there answers.
        let mut candidates: Vec<Arange> = self.aranges_holding(probe).copied().collect();
        candidates.sort_unstable_by_key(|a| (a.end, a.unit));
        candidates.dedup_by_key(|a| a.unit);
        for c in &candidates {
            let cu = self.unit_at(c.unit)?;
            // addr2line prefers a unit's DW_AT_ranges to its aranges.
            if let Some(ranges) = root_ranges(gimli::UnitRef::new(&self.dwarf, &cu.unit))? {
                if ranges.ranges.is_some() && !ranges.contains(gimli::UnitRef::new(&self.dwarf, &cu.unit), probe)? {
                    continue;
                }
            }
            if let Some(frames) = self.frames_in(&cu, probe)? {
                return Ok(frames);
            }
        }
        if self.every_unit_has_aranges()? {
            Ok(Vec::new())
        } else {
            Err(IndexMiss::NotCovered)
        }
    }

    /// `len` bytes of `.debug_info` at `offset`, kept for the rest of the report: a unit is read
    /// (or, compressed, inflated up to) on its own, never the whole section.
    fn info(&self, offset: usize, len: usize) -> Result<&'a [u8]> {
        self.elf
            .section_slice(".debug_info", offset, len)
            .ok_or(IndexMiss::Failed(gimli::Error::UnexpectedEof(gimli::ReaderOffsetId(offset as u64))))
    }

    /// The end of the unit whose header is at `offset`, from its initial length; None past the
    /// last unit.
    fn unit_end(&self, offset: usize) -> Result<Option<usize>> {
        let size = self.elf.section_size(".debug_info").unwrap_or(0);
        if offset >= size {
            return Ok(None);
        }
        let head = self
            .elf
            .section_peek(".debug_info", offset, 12.min(size - offset))
            .ok_or(IndexMiss::Failed(gimli::Error::UnexpectedEof(gimli::ReaderOffsetId(offset as u64))))?;
        let mut r = EndianSlice::new(&head, self.endian);
        let (length, format) = r.read_initial_length()?;
        let end = offset
            .checked_add(format.initial_length_size() as usize)
            .and_then(|o| o.checked_add(length))
            .filter(|&e| e <= size)
            .ok_or(IndexMiss::Failed(gimli::Error::UnexpectedEof(gimli::ReaderOffsetId(offset as u64))))?;
        Ok(Some(end))
    }

    /// The unit whose header is at `offset` in `.debug_info`, built once from its own bytes
    /// (gimli sees a one-unit section: unit offsets are the same, section offsets are shifted
    /// by `offset`, which `to_unit_offset` below accounts for).
    fn unit_at(&self, offset: usize) -> Result<Rc<CachedUnit<'a>>> {
        if let Some(u) = self.units.borrow().get(&offset) {
            return Ok(u.clone());
        }
        let eof = || IndexMiss::Failed(gimli::Error::UnexpectedEof(gimli::ReaderOffsetId(offset as u64)));
        let end = self.unit_end(offset)?.ok_or_else(eof)?;
        let data = self.info(offset, end - offset)?;
        let debug_info = gimli::DebugInfo::new(data, self.endian);
        let header = debug_info.header_from_offset(DebugInfoOffset(0))?;
        let unit = self.build_unit(header)?;
        let cu = Rc::new(CachedUnit {
            offset,
            end,
            unit,
            lines: OnceCell::new(),
            functions: OnceCell::new(),
            files: RefCell::new(HashMap::new()),
        });
        self.units.borrow_mut().insert(offset, cu.clone());
        Ok(cu)
    }

    /// The unit for `header`, as `gimli::Unit::new` makes it, but from windows: its abbreviation
    /// table and line program are read at their own offsets (`.debug_abbrev`, `.debug_line`),
    /// its name and compilation directory through `strings`.
    fn build_unit(&self, header: gimli::UnitHeader<Reader<'a>>) -> Result<gimli::Unit<Reader<'a>>> {
        let encoding = header.encoding();
        let file_type = self.dwarf.file_type;
        let mut unit = gimli::Unit {
            abbreviations: self.abbreviations(header.debug_abbrev_offset().0)?,
            name: None,
            comp_dir: None,
            low_pc: 0,
            str_offsets_base: gimli::DebugStrOffsetsBase::default_for_encoding_and_file(encoding, file_type),
            addr_base: gimli::DebugAddrBase(0),
            loclists_base: gimli::DebugLocListsBase::default_for_encoding_and_file(encoding, file_type),
            rnglists_base: gimli::DebugRngListsBase::default_for_encoding_and_file(encoding, file_type),
            line_program: None,
            dwo_id: match header.type_() {
                gimli::UnitType::Skeleton(id) | gimli::UnitType::SplitCompilation(id) => Some(id),
                _ => None,
            },
            header,
        };
        let (mut name, mut comp_dir, mut stmt_list, mut low_pc) = (None, None, None, None);
        {
            let mut entries = unit.header.entries_raw(&unit.abbreviations, None)?;
            let abbrev = entries.read_abbreviation()?.ok_or(gimli::Error::MissingUnitDie)?;
            for spec in abbrev.attributes() {
                let attr = entries.read_attribute(*spec)?;
                match (attr.name(), attr.value()) {
                    (gimli::DW_AT_name, v) => name = Some(v),
                    (gimli::DW_AT_comp_dir, v) => comp_dir = Some(v),
                    (gimli::DW_AT_low_pc, v) => low_pc = Some(v),
                    (gimli::DW_AT_stmt_list, AttributeValue::DebugLineRef(o)) => stmt_list = Some(o.0),
                    (gimli::DW_AT_str_offsets_base, AttributeValue::DebugStrOffsetsBase(b)) => {
                        unit.str_offsets_base = b
                    }
                    (gimli::DW_AT_addr_base | gimli::DW_AT_GNU_addr_base, AttributeValue::DebugAddrBase(b)) => {
                        unit.addr_base = b
                    }
                    (gimli::DW_AT_loclists_base, AttributeValue::DebugLocListsBase(b)) => unit.loclists_base = b,
                    (
                        gimli::DW_AT_rnglists_base | gimli::DW_AT_GNU_ranges_base,
                        AttributeValue::DebugRngListsBase(b),
                    ) => unit.rnglists_base = b,
                    (gimli::DW_AT_GNU_dwo_id, AttributeValue::DwoId(id)) if unit.dwo_id.is_none() => {
                        unit.dwo_id = Some(id)
                    }
                    _ => {}
                }
            }
        }
        unit.name = name.and_then(|v| self.strings.attr(&unit, v).ok());
        unit.comp_dir = comp_dir.and_then(|v| self.strings.attr(&unit, v).ok());
        if let Some(offset) = stmt_list {
            unit.line_program = Some(self.line_program(offset, &unit)?);
        }
        if let Some(v) = low_pc {
            if let Some(addr) = self.dwarf.attr_address(&unit, v)? {
                unit.low_pc = addr;
            }
        }
        Ok(unit)
    }

    /// The abbreviation table at `offset` of `.debug_abbrev`, from a window read there (doubled
    /// until the table ends inside it; it has no length field).
    fn abbreviations(&self, offset: usize) -> Result<Arc<gimli::Abbreviations>> {
        if let Some(a) = self.abbrevs.borrow().get(&offset) {
            return Ok(a.clone());
        }
        let eof = || IndexMiss::Failed(gimli::Error::UnexpectedEof(gimli::ReaderOffsetId(offset as u64)));
        let size = self.elf.section_size(".debug_abbrev").ok_or_else(eof)?;
        let rest = size.checked_sub(offset).filter(|&r| r > 0).ok_or_else(eof)?;
        let mut len = ABBREV_WINDOW.min(rest);
        let table = loop {
            let window = self.elf.section_peek(".debug_abbrev", offset, len).ok_or_else(eof)?;
            match gimli::DebugAbbrev::new(&window, self.endian).abbreviations(gimli::DebugAbbrevOffset(0)) {
                Ok(table) => break Arc::new(table),
                Err(gimli::Error::UnexpectedEof(_)) if len < rest => len = len.saturating_mul(2).min(rest),
                Err(e) => return Err(e.into()),
            }
        };
        self.abbrevs.borrow_mut().insert(offset, table.clone());
        Ok(table)
    }

    /// The line program at `offset` of `.debug_line`, read as a window of its own length (kept
    /// for the report: the program borrows it).
    fn line_program(
        &self,
        offset: usize,
        unit: &gimli::Unit<Reader<'a>>,
    ) -> Result<gimli::IncompleteLineProgram<Reader<'a>>> {
        let eof = || IndexMiss::Failed(gimli::Error::UnexpectedEof(gimli::ReaderOffsetId(offset as u64)));
        let size = self.elf.section_size(".debug_line").ok_or_else(eof)?;
        let rest = size.checked_sub(offset).filter(|&r| r > 0).ok_or_else(eof)?;
        let head = self.elf.section_peek(".debug_line", offset, 12.min(rest)).ok_or_else(eof)?;
        let (length, format) = EndianSlice::new(&head, self.endian).read_initial_length()?;
        let len = (format.initial_length_size() as usize).checked_add(length).filter(|&l| l <= rest).ok_or_else(eof)?;
        let window = self.elf.section_slice(".debug_line", offset, len).ok_or_else(eof)?;
        let program = gimli::DebugLine::new(window, self.endian).program(
            gimli::DebugLineOffset(0),
            unit.header.address_size(),
            unit.comp_dir,
            unit.name,
        )?;
        Ok(program)
    }

    /// (offset, end) of every unit: walks the unit headers once (a 12-byte read each).
    fn unit_spans(&self) -> Result<&[(usize, usize)]> {
        let spans = self.unit_spans.get_or_init(|| {
            let mut spans = Vec::new();
            let mut off = 0;
            while let Ok(Some(end)) = self.unit_end(off) {
                spans.push((off, end));
                off = end;
            }
            Some(spans)
        });
        spans.as_deref().ok_or(IndexMiss::Failed(gimli::Error::UnexpectedEof(gimli::ReaderOffsetId(0))))
    }

    /// Whether an address no arange covers is one no unit covers. addr2line takes a unit's
    /// ranges from DW_AT_ranges, its aranges, DW_AT_low_pc/high_pc, or else its line program's
    /// sequences; so this holds when every compilation unit without a non-empty arange has
    /// neither range attributes nor line rows (glibc has 126 such units: data only).
    fn every_unit_has_aranges(&self) -> Result<bool> {
        if let Some(&c) = self.complete.get() {
            return Ok(c);
        }
        let listed: std::collections::HashSet<usize> = self.aranges.iter().map(|a| a.unit).collect();
        let mut complete = true;
        for &(off, _) in self.unit_spans()? {
            if listed.contains(&off) {
                continue;
            }
            let cu = self.unit_at(off)?;
            let needs_ranges = !matches!(
                cu.unit.header.type_(),
                gimli::UnitType::Type { .. } | gimli::UnitType::SplitType { .. } | gimli::UnitType::Partial
            );
            if !needs_ranges {
                continue;
            }
            let root = root_ranges(gimli::UnitRef::new(&self.dwarf, &cu.unit))?;
            let has_rows = match cu.unit.line_program.clone() {
                Some(program) => program.rows().next_row()?.is_some(),
                None => false,
            };
            if root.is_some() || has_rows {
                complete = false;
                break;
            }
        }
        let _ = self.complete.set(complete);
        Ok(complete)
    }

    /// The unit that holds the DIE at `.debug_info` offset `target`, and the DIE's unit offset.
    fn unit_holding(&self, target: usize) -> Result<(Rc<CachedUnit<'a>>, UnitOffset<usize>)> {
        let spans = self.unit_spans()?;
        let i = spans.partition_point(|&(off, _)| off <= target);
        let (off, end) = *spans[..i].last().ok_or(gimli::Error::NoEntryAtGivenOffset(target as u64))?;
        if target >= end {
            return Err(gimli::Error::NoEntryAtGivenOffset(target as u64).into());
        }
        let cu = self.unit_at(off)?;
        let uoff = to_unit_offset(&cu, target).ok_or(gimli::Error::NoEntryAtGivenOffset(target as u64))?;
        Ok((cu, uoff))
    }

    /// The frames at `probe` if this unit has a function or a line row there.
    fn frames_in(&self, cu: &CachedUnit<'a>, probe: u64) -> Result<Option<Vec<UnitFrame>>> {
        let unit = gimli::UnitRef::new(&self.dwarf, &cu.unit);
        if cu.functions.get().is_none() {
            let _ = cu.functions.set(FunctionTable::read(unit)?);
        }
        let table = cu.functions.get().expect("set above");
        let function = find_function(unit, table, probe)?;
        let location = self.location(cu, probe)?;
        let Some(function) = function else {
            return Ok(location.map(|(file, line)| vec![UnitFrame { name: None, file, line }]));
        };
        let (mut file, mut line) = location.unwrap_or((None, None));
        let mut frames = Vec::with_capacity(function.inlined.len() + 1);
        // Innermost first: each inlined function gets the location inside it, and passes its
        // call site to the function it was inlined into.
        for inl in function.inlined.iter().rev() {
            frames.push(UnitFrame { name: self.name(cu, &inl.names)?, file: file.take(), line: line.take() });
            file = match inl.call_file {
                Some(f) => self.file(cu, f)?,
                None => None,
            };
            line = (inl.call_line != 0).then_some(inl.call_line);
        }
        frames.push(UnitFrame { name: self.name(cu, &function.names)?, file, line });
        Ok(Some(frames))
    }

    /// The line table's file and line for `probe`: None when no sequence holds it.
    #[allow(clippy::type_complexity)]
    fn location(&self, cu: &CachedUnit<'a>, probe: u64) -> Result<Option<(Option<String>, Option<u32>)>> {
        let Some(table) = self.lines(cu)? else { return Ok(None) };
        let i = table.sequences.partition_point(|s| s.start <= probe);
        // Sequences can overlap (code folded at address 0 by the linker): take the latest
        // starting one that holds the address.
        let Some(seq) = table.sequences[..i].iter().rev().find(|s| probe < s.end) else { return Ok(None) };
        let j = seq.rows.partition_point(|r| r.address <= probe);
        let Some(row) = j.checked_sub(1).map(|j| seq.rows[j]) else { return Ok(None) };
        if row.line == 0 {
            // No line: addr2line then reports the file alone.
            return Ok(Some((self.file(cu, row.file)?, None)));
        }
        Ok(Some((self.file(cu, row.file)?, Some(row.line))))
    }

    fn lines<'c>(&self, cu: &'c CachedUnit<'a>) -> Result<Option<&'c LineRows>> {
        if cu.lines.get().is_none() {
            let table = match &cu.unit.line_program {
                Some(program) => Some(read_line_table(program.clone())?),
                None => None,
            };
            let _ = cu.lines.set(table);
        }
        Ok(cu.lines.get().and_then(Option::as_ref))
    }

    /// The path of file `index` of the unit's line program: comp_dir, then the file's directory
    /// (unless it is index 0, the compilation directory itself), then its name; an absolute
    /// part replaces what came before.
    fn file(&self, cu: &CachedUnit<'a>, index: u64) -> Result<Option<String>> {
        if let Some(f) = cu.files.borrow().get(&index) {
            return Ok(f.as_deref().map(str::to_string));
        }
        let Some(program) = &cu.unit.line_program else { return Ok(None) };
        let header = program.header();
        let path: Option<Rc<str>> = match header.file(index) {
            Some(file) => {
                let mut path = match &cu.unit.comp_dir {
                    Some(dir) => dir.to_string_lossy().into_owned(),
                    None => String::new(),
                };
                if file.directory_index() != 0 {
                    if let Some(dir) = file.directory(header) {
                        push_path(&mut path, &self.strings.attr(&cu.unit, dir)?.to_string_lossy());
                    }
                }
                push_path(&mut path, &self.strings.attr(&cu.unit, file.path_name())?.to_string_lossy());
                Some(path.into())
            }
            // DWARF 4 and earlier have no file 0; addr2line names it "".
            None if index == 0 => Some("".into()),
            None => None,
        };
        cu.files.borrow_mut().insert(index, path.clone());
        Ok(path.as_deref().map(str::to_string))
    }

    /// A function's name from the attributes of its DIE, following abstract origins and
    /// specifications (into other units too).
    fn name(&self, cu: &CachedUnit<'a>, names: &Names<'a>) -> Result<Option<String>> {
        if let Some(v) = names.linkage.and_then(|v| self.strings.attr(&cu.unit, v).ok()) {
            return Ok(Some(v.to_string_lossy().into_owned()));
        }
        if let Some(v) = names.name.and_then(|v| self.strings.attr(&cu.unit, v).ok()) {
            return Ok(Some(v.to_string_lossy().into_owned()));
        }
        match names.origin {
            Some(origin) => self.name_via(cu, origin, NAME_DEPTH),
            None => Ok(None),
        }
    }

    /// The name of the DIE an abstract-origin or specification attribute points to.
    fn name_via(
        &self,
        cu: &CachedUnit<'a>,
        target: AttributeValue<Reader<'a>>,
        depth: usize,
    ) -> Result<Option<String>> {
        if depth == 0 {
            return Ok(None);
        }
        let (cu, offset) = match target {
            AttributeValue::UnitRef(off) => {
                let same = self.unit_at(cu.offset)?;
                (same, off)
            }
            AttributeValue::DebugInfoRef(DebugInfoOffset(target)) => {
                if target > cu.offset && target < cu.end {
                    let same = self.unit_at(cu.offset)?;
                    let off = to_unit_offset(&same, target).ok_or(gimli::Error::NoEntryAtGivenOffset(target as u64))?;
                    (same, off)
                } else {
                    self.unit_holding(target)?
                }
            }
            // A supplementary file is never loaded (neither does the fallback load one).
            _ => return Ok(None),
        };
        let unit = gimli::UnitRef::new(&self.dwarf, &cu.unit);
        let mut entries = unit.entries_raw(Some(offset))?;
        let abbrev = entries.read_abbreviation()?.ok_or(gimli::Error::NoEntryAtGivenOffset(offset.0 as u64))?;
        let mut name = None;
        let mut next = None;
        for spec in abbrev.attributes() {
            let attr = entries.read_attribute(*spec)?;
            match attr.name() {
                gimli::DW_AT_linkage_name | gimli::DW_AT_MIPS_linkage_name => {
                    if let Ok(v) = self.strings.attr(&cu.unit, attr.value()) {
                        return Ok(Some(v.to_string_lossy().into_owned()));
                    }
                }
                gimli::DW_AT_name => {
                    if let Ok(v) = self.strings.attr(&cu.unit, attr.value()) {
                        name = Some(v);
                    }
                }
                gimli::DW_AT_abstract_origin | gimli::DW_AT_specification => next = Some(attr.value()),
                _ => {}
            }
        }
        if let Some(n) = name {
            return Ok(Some(n.to_string_lossy().into_owned()));
        }
        match next {
            Some(next) => self.name_via(&cu, next, depth - 1),
            None => Ok(None),
        }
    }
}

/// The unit offset of the DIE at `.debug_info` offset `target`, if it lies in `cu`'s entries.
fn to_unit_offset(cu: &CachedUnit<'_>, target: usize) -> Option<UnitOffset<usize>> {
    let rel = target.checked_sub(cu.offset)?;
    (rel >= cu.unit.header.header_size() && target < cu.end).then_some(UnitOffset(rel))
}

/// The naming attributes of a subprogram or inlined-subroutine DIE, resolved only for the DIEs
/// that make frames.
#[derive(Default, Clone, Copy)]
struct Names<'a> {
    linkage: Option<AttributeValue<Reader<'a>>>,
    name: Option<AttributeValue<Reader<'a>>>,
    origin: Option<AttributeValue<Reader<'a>>>,
}

/// The address ranges of a DIE: DW_AT_ranges, or DW_AT_low_pc with DW_AT_high_pc (an address,
/// or a size from low_pc).
#[derive(Default)]
struct Ranges {
    low_pc: Option<u64>,
    high_pc: Option<u64>,
    size: Option<u64>,
    ranges: Option<gimli::RangeListsOffset<usize>>,
}

impl Ranges {
    /// Calls `f(begin, end)` for each non-empty range.
    fn for_each(&self, unit: gimli::UnitRef<'_, Reader<'_>>, mut f: impl FnMut(u64, u64)) -> Result<()> {
        if let Some(offset) = self.ranges {
            let mut list = unit.ranges(offset)?;
            while let Some(r) = list.next()? {
                if r.begin < r.end {
                    f(r.begin, r.end);
                }
            }
        } else if let (Some(low), Some(high)) = (self.low_pc, self.high_pc) {
            if low < high {
                f(low, high);
            }
        } else if let (Some(low), Some(size)) = (self.low_pc, self.size) {
            // A -1 tombstone wraps around and so covers nothing.
            let end = low.wrapping_add(size);
            if low < end {
                f(low, end);
            }
        }
        Ok(())
    }

    fn contains(&self, unit: gimli::UnitRef<'_, Reader<'_>>, probe: u64) -> Result<bool> {
        if let Some(offset) = self.ranges {
            let mut list = unit.ranges(offset)?;
            while let Some(r) = list.next()? {
                if r.begin <= probe && probe < r.end {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        let end = match (self.low_pc, self.high_pc, self.size) {
            (Some(_), Some(high), _) => high,
            // A -1 tombstone wraps around and so covers nothing.
            (Some(low), None, Some(size)) => low.wrapping_add(size),
            _ => return Ok(false),
        };
        let low = self.low_pc.unwrap_or(0);
        Ok(low <= probe && probe < end)
    }
}

/// The range attributes of a unit's root DIE, if it has any.
fn root_ranges(unit: gimli::UnitRef<'_, Reader<'_>>) -> Result<Option<Ranges>> {
    let mut entries = unit.entries_raw(None)?;
    let Some(abbrev) = entries.read_abbreviation()? else { return Ok(None) };
    let mut ranges = Ranges::default();
    let mut names = Names::default();
    for spec in abbrev.attributes() {
        let attr = entries.read_attribute(*spec)?;
        collect_attr(unit, &attr, &mut ranges, &mut names)?;
    }
    let any = ranges.low_pc.is_some() || ranges.ranges.is_some();
    Ok(any.then_some(ranges))
}

/// Reads one attribute into the ranges or names being collected; false if it is neither.
fn collect_attr<'a>(
    unit: gimli::UnitRef<'_, Reader<'a>>,
    attr: &gimli::Attribute<Reader<'a>>,
    ranges: &mut Ranges,
    names: &mut Names<'a>,
) -> Result<bool> {
    match attr.name() {
        gimli::DW_AT_low_pc => match attr.value() {
            AttributeValue::Addr(v) => ranges.low_pc = Some(v),
            AttributeValue::DebugAddrIndex(i) => ranges.low_pc = Some(unit.address(i)?),
            _ => {}
        },
        gimli::DW_AT_high_pc => match attr.value() {
            AttributeValue::Addr(v) => ranges.high_pc = Some(v),
            AttributeValue::DebugAddrIndex(i) => ranges.high_pc = Some(unit.address(i)?),
            AttributeValue::Udata(v) => ranges.size = Some(v),
            _ => {}
        },
        gimli::DW_AT_ranges => ranges.ranges = unit.attr_ranges_offset(attr.value())?,
        gimli::DW_AT_linkage_name | gimli::DW_AT_MIPS_linkage_name => names.linkage = Some(attr.value()),
        gimli::DW_AT_name => names.name = Some(attr.value()),
        gimli::DW_AT_abstract_origin | gimli::DW_AT_specification => names.origin = Some(attr.value()),
        _ => return Ok(false),
    }
    Ok(true)
}

struct Inlined<'a> {
    names: Names<'a>,
    call_file: Option<u64>,
    call_line: u32,
}

struct Function<'a> {
    names: Names<'a>,
    /// Outermost first.
    inlined: Vec<Inlined<'a>>,
}

/// One address range of a subprogram that has code: `function` indexes `FunctionTable::dies`.
/// Laid out as addr2line lays out its own table, see `FunctionTable`.
#[derive(Clone, Copy)]
struct FunctionRange {
    begin: u64,
    end: u64,
    function: usize,
}

/// The DW_TAG_subprogram entries of a unit that have code, and their ranges sorted by start.
///
/// Several subprograms can share one range: the assembler's DWARF for glibc's .S files has an
/// entry per alias (`__kill`, `__GI_kill`, ...). Which one addr2line reports then depends on how
/// its sort and binary search order equal ranges; this table is built from the same ranges in the
/// same order with the same standard-library sort and search, so the pick agrees.
struct FunctionTable {
    dies: Vec<UnitOffset<usize>>,
    ranges: Vec<FunctionRange>,
}

impl FunctionTable {
    fn read(unit: gimli::UnitRef<'_, Reader<'_>>) -> Result<FunctionTable> {
        let mut dies = Vec::new();
        let mut ranges = Vec::new();
        let mut entries = unit.entries_raw(None)?;
        while !entries.is_empty() {
            let offset = entries.next_offset();
            let Some(abbrev) = entries.read_abbreviation()? else { continue };
            if abbrev.tag() != gimli::DW_TAG_subprogram {
                entries.skip_attributes(abbrev.attributes())?;
                continue;
            }
            let mut attrs = Ranges::default();
            let mut names = Names::default();
            for spec in abbrev.attributes() {
                let attr = entries.read_attribute(*spec)?;
                collect_attr(unit, &attr, &mut attrs, &mut names)?;
            }
            let before = ranges.len();
            attrs.for_each(unit, |begin, end| ranges.push(FunctionRange { begin, end, function: dies.len() }))?;
            if ranges.len() > before {
                dies.push(offset);
            }
        }
        ranges.sort_unstable_by_key(|r| r.begin);
        Ok(FunctionTable { dies, ranges })
    }

    fn find(&self, probe: u64) -> Option<UnitOffset<usize>> {
        let i = self
            .ranges
            .binary_search_by(|r| {
                if probe < r.begin {
                    std::cmp::Ordering::Greater
                } else if probe >= r.end {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .ok()?;
        Some(self.dies[self.ranges[i].function])
    }
}

/// The DW_TAG_subprogram whose ranges hold `probe` (see `FunctionTable` for ties), and the chain
/// of DW_TAG_inlined_subroutine entries inside it that hold `probe`.
fn find_function<'a>(
    unit: gimli::UnitRef<'_, Reader<'a>>,
    table: &FunctionTable,
    probe: u64,
) -> Result<Option<Function<'a>>> {
    let Some(offset) = table.find(probe) else { return Ok(None) };
    let mut entries = unit.entries_raw(Some(offset))?;
    let depth = entries.next_depth();
    let abbrev = entries.read_abbreviation()?.ok_or(gimli::Error::NoEntryAtGivenOffset(offset.0 as u64))?;
    let mut ranges = Ranges::default();
    let mut names = Names::default();
    for spec in abbrev.attributes() {
        let attr = entries.read_attribute(*spec)?;
        collect_attr(unit, &attr, &mut ranges, &mut names)?;
    }
    let inlined = find_inlined(unit, &mut entries, depth, probe)?;
    Ok(Some(Function { names, inlined }))
}

/// The inlined subroutines holding `probe` among the descendants of the DIE at `depth` whose
/// children `entries` is about to read: the first holding one at each level, descending into it;
/// nested subprograms are other functions and are skipped.
fn find_inlined<'a>(
    unit: gimli::UnitRef<'_, Reader<'a>>,
    entries: &mut gimli::EntriesRaw<'_, Reader<'a>>,
    depth: isize,
    probe: u64,
) -> Result<Vec<Inlined<'a>>> {
    let mut chain = Vec::new();
    // Only descendants of the innermost match can hold deeper ones.
    let mut scope = depth;
    while !entries.is_empty() && entries.next_depth() > scope {
        let d = entries.next_depth();
        let Some(abbrev) = entries.read_abbreviation()? else { continue };
        match abbrev.tag() {
            gimli::DW_TAG_inlined_subroutine => {
                let mut ranges = Ranges::default();
                let mut names = Names::default();
                let mut call_file = None;
                let mut call_line = 0;
                for spec in abbrev.attributes() {
                    let attr = entries.read_attribute(*spec)?;
                    if collect_attr(unit, &attr, &mut ranges, &mut names)? {
                        continue;
                    }
                    match attr.name() {
                        gimli::DW_AT_call_file => {
                            // DWARF 5 numbers files from 0; before, 0 meant "no file".
                            if let AttributeValue::FileIndex(f) = attr.value() {
                                if f > 0 || unit.header.version() >= 5 {
                                    call_file = Some(f);
                                }
                            }
                        }
                        gimli::DW_AT_call_line => call_line = attr.udata_value().unwrap_or(0) as u32,
                        _ => {}
                    }
                }
                if ranges.contains(unit, probe)? {
                    chain.push(Inlined { names, call_file, call_line });
                    scope = d;
                } else {
                    skip_children(entries, d)?;
                }
            }
            gimli::DW_TAG_subprogram => {
                entries.skip_attributes(abbrev.attributes())?;
                skip_children(entries, d)?;
            }
            _ => entries.skip_attributes(abbrev.attributes())?,
        }
    }
    Ok(chain)
}

/// Skips the descendants of the DIE at `depth` just read.
fn skip_children(entries: &mut gimli::EntriesRaw<'_, Reader<'_>>, depth: isize) -> Result<()> {
    while !entries.is_empty() && entries.next_depth() > depth {
        if let Some(abbrev) = entries.read_abbreviation()? {
            entries.skip_attributes(abbrev.attributes())?;
        }
    }
    Ok(())
}

/// Runs a line program into sorted sequences; rows at the same address keep the last one.
fn read_line_table(program: gimli::IncompleteLineProgram<Reader<'_>>) -> Result<LineRows> {
    let mut sequences = Vec::new();
    let mut rows: Vec<LineRow> = Vec::new();
    let mut program_rows = program.rows();
    while let Some((_, row)) = program_rows.next_row()? {
        if row.end_sequence() {
            if let Some(start) = rows.first().map(|r| r.address) {
                let end = row.address();
                let seq_rows = std::mem::take(&mut rows);
                if start < end {
                    sequences.push(Sequence { start, end, rows: seq_rows });
                }
            }
            continue;
        }
        let r =
            LineRow { address: row.address(), file: row.file_index(), line: row.line().map_or(0, |l| l.get() as u32) };
        match rows.last_mut() {
            Some(last) if last.address == r.address => *last = r,
            _ => rows.push(r),
        }
    }
    sequences.sort_by_key(|s| s.start);
    Ok(LineRows { sequences })
}

/// Appends a path component with '/', or replaces the path when the component is absolute.
fn push_path(path: &mut String, part: &str) {
    let absolute = |p: &str| p.starts_with('/') || p.starts_with('\\') || matches!(p.get(1..3), Some(":/" | ":\\"));
    if absolute(part) {
        *path = part.to_string();
        return;
    }
    let sep = if path.starts_with('\\') || path.get(1..3) == Some(":\\") { '\\' } else { '/' };
    if !path.is_empty() && !path.ends_with(sep) {
        path.push(sep);
    }
    path.push_str(part);
}

#[cfg(test)]
mod tests {
    use super::push_path;

    #[test]
    fn paths_join_like_addr2line() {
        let join = |a: &str, b: &str| {
            let mut p = a.to_string();
            push_path(&mut p, b);
            p
        };
        assert_eq!(join("/build", "src/a.c"), "/build/src/a.c");
        assert_eq!(join("/build/", "a.c"), "/build/a.c");
        assert_eq!(join("/build", "/usr/include/x.h"), "/usr/include/x.h");
        assert_eq!(join("", "a.c"), "a.c");
        assert_eq!(join("C:\\b", "a.c"), "C:\\b\\a.c");
    }
}
