//! What each native address means: module and offset, symbol (demangled), file:line and inlined
//! frames from DWARF (the module's own, or its separate debug file).

mod strings;
pub mod units;

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;

use gimli::{EndianSlice, RunTimeEndian};

use crate::modules::readahead::ReadAhead;
use crate::modules::{ElfInfo, Module, ModuleSet};
use crate::report::model::{Hex, InlinedFrame, NativeFrame};
use crate::unwind::{FrameAddress, UnwoundFrame};

type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

/// Symbolizes addresses of one process; DWARF is parsed per module on first use and kept.
pub struct Symbolizer<'a> {
    modules: &'a ModuleSet,
    dwarf: RefCell<HashMap<u64, Option<Box<ModuleDwarf<'a>>>>>,
    /// Finished frames by address: many threads of one process wait at the same few places,
    /// and a deep recursion repeats the same return addresses.
    done: RefCell<HashMap<FrameAddress, NativeFrame>>,
    /// Inflating the frames' modules' compressed DWARF on a second thread; stopped with the
    /// symbolizer.
    read_ahead: RefCell<Option<ReadAhead>>,
}

/// (function, file, line) of each frame at an address, innermost first.
type Frames = Vec<(Option<String>, Option<String>, Option<u32>)>;

/// The DWARF of one module: the per-unit index when it has `.debug_aranges`, and addr2line's
/// whole-module context, built only when the index cannot answer.
struct ModuleDwarf<'a> {
    elf: &'a ElfInfo,
    units: Option<units::UnitIndex<'a>>,
    context: OnceCell<Option<Box<addr2line::Context<Reader<'a>>>>>,
}

impl<'a> ModuleDwarf<'a> {
    fn new(elf: &'a ElfInfo) -> Self {
        ModuleDwarf { elf, units: units::UnitIndex::new(elf).ok(), context: OnceCell::new() }
    }

    fn frames(&self, svma: u64) -> Option<Frames> {
        if let Some(index) = &self.units {
            if let Ok(frames) = index.find_frames(svma) {
                return Some(
                    frames
                        .into_iter()
                        .take(65)
                        .map(|f| (f.name.map(|n| demangle(&n).into_owned()), f.file, f.line))
                        .collect(),
                );
            }
        }
        let ctx = self.context.get_or_init(|| load_dwarf(self.elf).map(Box::new));
        let ctx = ctx.as_deref()?;
        let mut iter = ctx.find_frames(svma).skip_all_loads().ok()?;
        let mut found = Frames::new();
        while let Ok(Some(f)) = iter.next() {
            // Through our own demangle: it names what cpp_demangle alone leaves mangled.
            let name = f.function.as_ref().and_then(|n| n.raw_name().ok()).map(|r| demangle(&r).into_owned());
            let (file, line) = match f.location {
                Some(l) => (l.file.map(str::to_string), l.line),
                None => (None, None),
            };
            found.push((name, file, line));
            if found.len() > 64 {
                break;
            }
        }
        Some(found)
    }
}

/// Demangles C++ (`_Z…`) and Rust (legacy and v0) symbol names; other names are returned as is.
pub fn demangle(name: &str) -> Cow<'_, str> {
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        return Cow::Owned(format!("{d:#}"));
    }
    if name.starts_with("_Z") {
        if let Some(s) = cpp_demangle_full(name).or_else(|| cpp_name_only(name)) {
            return Cow::Owned(s);
        }
    }
    Cow::Borrowed(name)
}

/// `.constprop.0.isra.0` → ` [clone .constprop.0] [clone .isra.0]`, as cpp_demangle writes them
/// (a clone is a name and the numbers after it).
fn clone_suffixes(s: &str) -> String {
    let mut groups: Vec<String> = Vec::new();
    for part in s.split('.').filter(|p| !p.is_empty()) {
        match groups.last_mut() {
            Some(g) if part.bytes().all(|b| b.is_ascii_digit()) => g.push_str(&format!(".{part}")),
            _ => groups.push(format!(".{part}")),
        }
    }
    groups.iter().map(|g| format!(" [clone {g}]")).collect()
}

fn cpp_demangle_full(name: &str) -> Option<String> {
    cpp_demangle::Symbol::new(name).ok()?.demangle().ok()
}

/// Longest mangled C++ name tried for [`cpp_name_only`].
const MAX_MANGLED: usize = 4096;

/// The function's qualified name and template arguments, when the whole symbol does not parse:
/// cpp_demangle 0.5 refuses some expressions GCC mangles into a template function's return
/// type (`std::enable_if<cond>::type` with `sr` names in `cond`, as in Arrow's cast kernels),
/// where c++filt and gdb demangle them. The name (`_Z N…E`) comes first in the symbol and ends
/// with an `E`: the longest such prefix that parses as a function's name (with a `void`
/// return type and no parameters put after it) is the name. Clone suffixes (`.isra.0`) are kept.
fn cpp_name_only(name: &str) -> Option<String> {
    let (core, clones) = match name.find('.') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    };
    if core.len() > MAX_MANGLED {
        return None;
    }
    let cuts = core.char_indices().filter(|&(_, c)| c == 'E').map(|(i, _)| i + 1).collect::<Vec<_>>();
    for &end in cuts.iter().rev() {
        for (tail, prefix) in [("vv", "void "), ("v", "")] {
            let Some(d) = cpp_demangle_full(&format!("{}{tail}", &core[..end])) else { continue };
            let Some(n) = d.strip_prefix(prefix).and_then(|d| d.strip_suffix("()")) else { continue };
            return Some(format!("{n}{}", clone_suffixes(clones)));
        }
    }
    None
}

fn load_dwarf(elf: &ElfInfo) -> Option<addr2line::Context<Reader<'_>>> {
    if !elf.has_dwarf() {
        return None;
    }
    let endian = RunTimeEndian::Little;
    let load = |id: gimli::SectionId| -> Result<Reader<'_>, gimli::Error> {
        use gimli::SectionId::*;
        // Location lists and macros are never needed for file:line: skip reading (and, in
        // distribution debug files, decompressing) them.
        if matches!(id, DebugLoc | DebugLocLists | DebugMacinfo | DebugMacro | DebugTypes | DebugCuIndex | DebugTuIndex)
        {
            return Ok(EndianSlice::new(&[], endian));
        }
        let data: &[u8] = match elf.section_data(id.name()) {
            Some(Cow::Borrowed(b)) => b,
            _ => &[],
        };
        Ok(EndianSlice::new(data, endian))
    };
    let dwarf = gimli::Dwarf::load(load).ok()?;
    addr2line::Context::from_dwarf(dwarf).ok()
}

impl<'a> Symbolizer<'a> {
    pub fn new(modules: &'a ModuleSet) -> Self {
        Symbolizer {
            modules,
            dwarf: RefCell::new(HashMap::new()),
            done: RefCell::new(HashMap::new()),
            read_ahead: RefCell::new(None),
        }
    }

    /// The ELF that holds the DWARF of a module: itself, or its separate debug file.
    fn dwarf_elf(module: &'a Module) -> Option<&'a ElfInfo> {
        let elf = module.elf().ok()?;
        if elf.has_dwarf() {
            Some(elf)
        } else {
            elf.debug_file().filter(|d| d.has_dwarf())
        }
    }

    fn with_dwarf<R>(&self, module: &'a Module, f: impl FnOnce(&ModuleDwarf<'a>) -> R) -> Option<R> {
        let key = module.start;
        let mut cache = self.dwarf.borrow_mut();
        let md = cache.entry(key).or_insert_with(|| Self::dwarf_elf(module).map(|elf| Box::new(ModuleDwarf::new(elf))));
        md.as_deref().map(f)
    }

    /// Gets ready for these frames: starts inflating their modules' compressed DWARF on a
    /// second thread (in the order the modules first appear), then looks up the symbols of all
    /// of them, one pass over each module's symbol tables for all of its addresses (instead of
    /// one pass per address).
    pub fn prepare<'f>(&self, frames: impl IntoIterator<Item = &'f UnwoundFrame>) {
        let mut by_module: Vec<(&'a Module, Vec<u64>)> = Vec::new();
        let mut index: HashMap<u64, usize> = HashMap::new();
        for raw in frames {
            let lookup = raw.address.lookup_pc();
            let Some(module) = self.modules.find(lookup) else { continue };
            let Some(svma) = module.to_svma(lookup) else { continue };
            let i = *index.entry(module.start).or_insert_with(|| {
                by_module.push((module, Vec::new()));
                by_module.len() - 1
            });
            by_module[i].1.push(svma);
        }
        let jobs = by_module.iter().flat_map(|(m, svmas)| self.read_ahead_jobs(m, svmas)).collect();
        *self.read_ahead.borrow_mut() = ReadAhead::start(jobs);
        for (module, svmas) in by_module {
            if let Ok(elf) = module.elf() {
                elf.prefetch_symbols(&svmas);
            }
        }
    }

    /// What to inflate ahead for these addresses of `module`: nothing when its DWARF is not
    /// compressed; else its compressed sections, as deep as its `.debug_aranges` says the
    /// addresses need (building the module's unit index, which reads that section, now).
    fn read_ahead_jobs(&self, module: &'a Module, svmas: &[u64]) -> Vec<crate::modules::readahead::Job> {
        let Some(elf) = Self::dwarf_elf(module).filter(|e| e.has_compressed_dwarf()) else { return Vec::new() };
        let info_end = self.with_dwarf(module, |md| md.units.as_ref().and_then(|u| u.info_end(svmas))).flatten();
        elf.read_ahead_jobs(info_end)
    }

    /// A native frame for one unwound address.
    pub fn symbolize(&self, raw: &UnwoundFrame) -> NativeFrame {
        let key = raw.address;
        if let Some(f) = self.done.borrow().get(&key) {
            return NativeFrame { trust: raw.trust, ..f.clone() };
        }
        let frame = self.symbolize_uncached(raw);
        self.done.borrow_mut().insert(key, frame.clone());
        frame
    }

    fn symbolize_uncached(&self, raw: &UnwoundFrame) -> NativeFrame {
        let pc = raw.address.address();
        let mut frame = NativeFrame::at(pc, raw.trust);
        let lookup = raw.address.lookup_pc();
        let Some(module) = self.modules.find(lookup) else { return frame };
        frame.module = Some(module.path.clone());
        let Some(svma) = module.to_svma(lookup) else { return frame };
        // module_offset is relative to the module's first mapping: what `addr2line -e` and
        // gdb's `info symbol` accept for a PIE or shared library.
        frame.module_offset = module.to_svma(pc).map(Hex);
        if let Ok(elf) = module.elf() {
            if let Some(sym) = elf.symbol_for(svma) {
                frame.function = Some(demangle(&sym.name).into_owned());
                frame.function_offset = Some(Hex(svma - sym.addr + (pc - lookup)));
            }
        }
        self.with_dwarf(module, |md| {
            let Some(mut found) = md.frames(svma) else { return };
            // Innermost first; the last is the real (outermost) function at this address.
            if let Some((name, file, line)) = found.pop() {
                // The symbol table's name is kept when there is one (it has the `.cold`/`.isra`
                // suffixes the merge looks for); DWARF's source-level name fills the gap.
                if frame.function.is_none() {
                    frame.function = name;
                }
                frame.file = file;
                frame.line = line;
            }
            frame.inlined = found
                .into_iter()
                .map(|(name, file, line)| InlinedFrame { function: name.unwrap_or_else(|| "??".into()), file, line })
                .collect();
        });
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::demangle;

    /// pyarrow's stacks (scalar_cast_string.cc): a function template in an anonymous namespace
    /// whose return type is an `enable_if` of `::value` expressions; the exact shape g++ emits
    /// for it (compiled from a copy of its declaration): cpp_demangle refuses the whole symbol.
    #[test]
    fn arrows_cast_kernels_are_demangled() {
        let arrow = "_ZN5arrow7compute8internal12_GLOBAL__N_122BinaryToBinaryCastExecINS_10StringTypeENS_15LargeBinaryTypeEEENSt9enable_ifIXaaaasrNS_19is_base_binary_typeIT0_EE5valuesrNS7_IT_EE5valuentsrSt7is_sameISA_NS_19FixedSizeBinaryTypeEE5valueENS_6StatusEE4typeEPNS_13KernelContextERKNS_8ExecSpanEPNS_10ExecResultE";
        let want = "arrow::compute::internal::(anonymous namespace)::BinaryToBinaryCastExec<arrow::StringType, arrow::LargeBinaryType>";
        assert_eq!(demangle(arrow), want);
        assert_eq!(demangle(&format!("{arrow}.isra.0")), format!("{want} [clone .isra.0]"));
        // Garbage after _Z stays as it is.
        assert_eq!(demangle("_Zxyz"), "_Zxyz");
        assert_eq!(demangle(&format!("_Z{}", "E".repeat(5000))), format!("_Z{}", "E".repeat(5000)));
    }

    #[test]
    fn demangles_cpp_and_rust_and_leaves_c_alone() {
        assert_eq!(demangle("_ZN3foo3barEi"), "foo::bar(int)");
        assert_eq!(
            demangle("_ZNSt6vectorIiSaIiEE9push_backERKi"),
            "std::vector<int, std::allocator<int> >::push_back(int const&)"
        );
        // Rust legacy and v0 manglings, without the hash.
        assert_eq!(demangle("_ZN4core9panicking5panic17h0123456789abcdefE"), "core::panicking::panic");
        assert_eq!(demangle("_RNvCs1234_7mycrate3foo"), "mycrate::foo");
        assert_eq!(demangle("PyEval_EvalCode"), "PyEval_EvalCode");
        assert_eq!(demangle("_PyEval_EvalFrameDefault.cold"), "_PyEval_EvalFrameDefault.cold");
        assert_eq!(demangle("_ZN3foo3barEi.isra.0"), "foo::bar(int) [clone .isra.0]");
    }
}
