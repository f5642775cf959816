//! DWARF call frame information per module: `.eh_frame` (through the `.eh_frame_hdr` search
//! table read from the file, one FDE at a time, when there is one; the whole section otherwise),
//! then `.debug_frame` (the module's own or its separate debug file).
//!
//! Section addresses are file addresses (SVMAs), so the base addresses given to gimli are the
//! section headers' `sh_addr` and every look-up converts the runtime pc with the module's bias.
//! Parsed sections are kept per module and the resulting row per looked-up pc, so a deep
//! recursion costs one hash look-up per frame.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::rc::Rc;

use gimli::{
    BaseAddresses, CfaRule, DebugFrame, EhFrame, Encoding, EndianSlice, Expression, FrameDescriptionEntry,
    LittleEndian, RegisterRule, UnwindContext, UnwindSection, Vendor,
};

use super::ehindex::{FdeLookup, HdrIndex};

use crate::arch::{Arch, ArchSpec};
use crate::modules::{ElfInfo, Module};

pub(crate) type Slice<'m> = EndianSlice<'m, LittleEndian>;

/// How to find the canonical frame address.
#[derive(Debug, Clone)]
pub(crate) enum Cfa<'m> {
    RegisterOffset(u16, i64),
    Expression(Expression<Slice<'m>>),
}

/// How to find a caller's register (the DWARF register rules, with expressions resolved to bytes).
#[derive(Debug, Clone)]
pub(crate) enum Rule<'m> {
    Undefined,
    SameValue,
    Offset(i64),
    ValOffset(i64),
    Register(u16),
    Expression(Expression<Slice<'m>>),
    ValExpression(Expression<Slice<'m>>),
    Constant(u64),
}

/// One row of the unwind table, for the registers the unwinder tracks (`ArchSpec::tracked`, and
/// the return address in `ArchSpec::ra_column`).
#[derive(Debug, Clone)]
pub(crate) struct Row<'m> {
    pub cfa: Cfa<'m>,
    /// Rules that differ from the default; the CIE's return-address column is renumbered to the
    /// architecture's `ra_column`.
    pub rules: Vec<(u16, Rule<'m>)>,
    /// The CIE's augmentation says this is a signal trampoline (`S`): the caller was interrupted,
    /// not calling, and its pc is not a return address.
    pub signal: bool,
    pub encoding: Encoding,
    /// The module's load bias, for `DW_OP_addr` in expressions.
    pub bias: u64,
}

struct EhCfi<'m> {
    frame: EhFrame<Slice<'m>>,
    bases: BaseAddresses,
}

struct DebugCfi<'m> {
    frame: DebugFrame<Slice<'m>>,
    bases: BaseAddresses,
}

struct ModuleCfi<'m> {
    spec: &'static dyn ArchSpec,
    bias: u64,
    elf: &'m ElfInfo,
    /// The search table, read from the file as needed.
    index: Option<HdrIndex>,
    /// The whole `.eh_frame`, read only when there is no usable search table.
    eh: OnceCell<Option<EhCfi<'m>>>,
    /// Loaded on first miss in `.eh_frame`: finding it may mean opening a debug file.
    debug: OnceCell<Option<DebugCfi<'m>>>,
}

/// Section bytes that live as long as the module set (decompressed sections are cached by
/// `ElfInfo`, so they are borrowed too).
fn borrowed_section<'m>(elf: &'m ElfInfo, name: &str) -> Option<(&'m [u8], u64)> {
    let addr = elf.section(name)?.addr;
    match elf.section_data(name)? {
        Cow::Borrowed(b) => Some((b, addr)),
        Cow::Owned(_) => None,
    }
}

/// Base addresses for `.eh_frame` bytes at `eh_addr`.
fn eh_bases(elf: &ElfInfo, eh_addr: u64) -> BaseAddresses {
    let mut bases = BaseAddresses::default().set_eh_frame(eh_addr);
    if let Some(t) = elf.section(".text") {
        bases = bases.set_text(t.addr);
    }
    if let Some(g) = elf.section(".got") {
        bases = bases.set_got(g.addr);
    }
    if let Some(h) = elf.section(".eh_frame_hdr") {
        bases = bases.set_eh_frame_hdr(h.addr);
    }
    bases
}

impl<'m> ModuleCfi<'m> {
    fn load(module: &'m Module, spec: &'static dyn ArchSpec) -> Option<ModuleCfi<'m>> {
        let elf = module.elf().ok()?;
        let bias = module.bias()?;
        Some(ModuleCfi { spec, bias, elf, index: HdrIndex::read(elf), eh: OnceCell::new(), debug: OnceCell::new() })
    }

    /// The whole `.eh_frame`, searched in order.
    fn eh(&self) -> Option<&EhCfi<'m>> {
        self.eh
            .get_or_init(|| {
                let elf: &'m ElfInfo = self.elf;
                let (data, addr) = borrowed_section(elf, ".eh_frame")?;
                let mut frame = EhFrame::new(data, LittleEndian);
                frame.set_address_size(8);
                frame.set_vendor(vendor(self.spec));
                Some(EhCfi { frame, bases: eh_bases(elf, addr) })
            })
            .as_ref()
    }

    fn debug(&self) -> Option<&DebugCfi<'m>> {
        self.debug
            .get_or_init(|| {
                let elf: &'m ElfInfo = self.elf;
                let (data, _) = borrowed_section(elf, ".debug_frame")
                    .or_else(|| borrowed_section(elf.debug_file()?, ".debug_frame"))?;
                let mut frame = DebugFrame::new(data, LittleEndian);
                frame.set_address_size(8);
                frame.set_vendor(vendor(self.spec));
                let mut bases = BaseAddresses::default();
                if let Some(t) = elf.section(".text") {
                    bases = bases.set_text(t.addr);
                }
                Some(DebugCfi { frame, bases })
            })
            .as_ref()
    }
}

/// Parsed CFI of every module touched so far, and the row found for every pc looked up.
pub(crate) struct CfiCache<'m> {
    spec: &'static dyn ArchSpec,
    modules: HashMap<u64, Option<ModuleCfi<'m>>>,
    rows: HashMap<u64, Option<Rc<Row<'m>>>>,
    ctx: UnwindContext<usize>,
}

impl<'m> CfiCache<'m> {
    pub fn new(arch: Arch) -> Self {
        CfiCache { spec: arch.spec(), modules: HashMap::new(), rows: HashMap::new(), ctx: UnwindContext::new() }
    }

    /// The architecture whose registers the rows are for.
    pub fn arch(&self) -> Arch {
        self.spec.arch()
    }

    /// The unwind row covering runtime address `lookup` (already pc-1 for return addresses).
    pub fn row(&mut self, module: &'m Module, lookup: u64) -> Option<Rc<Row<'m>>> {
        if let Some(r) = self.rows.get(&lookup) {
            return r.clone();
        }
        let mcfi = self.modules.entry(module.start).or_insert_with(|| ModuleCfi::load(module, self.spec));
        let row = match mcfi {
            Some(m) => find_row(m, &mut self.ctx, lookup.wrapping_sub(m.bias)).map(|mut r| {
                r.bias = m.bias;
                Rc::new(r)
            }),
            None => None,
        };
        self.rows.insert(lookup, row.clone());
        row
    }
}

fn find_row<'m>(m: &ModuleCfi<'m>, ctx: &mut UnwindContext<usize>, svma: u64) -> Option<Row<'m>> {
    let mut definitive_miss = false;
    if let Some(index) = &m.index {
        match index.lookup(m.elf, svma) {
            FdeLookup::Found(w) => {
                let mut frame = EhFrame::new(w.bytes, LittleEndian);
                frame.set_address_size(8);
                frame.set_vendor(vendor(m.spec));
                let bases = eh_bases(m.elf, w.base);
                match frame.fde_from_offset(&bases, gimli::EhFrameOffset(w.fde), EhFrame::cie_from_offset) {
                    Ok(fde) if fde.contains(svma) => return row_from_fde(m.spec, &frame, &bases, &fde, ctx, svma),
                    Ok(_) => definitive_miss = true,
                    Err(_) => {} // a damaged entry: fall back to reading .eh_frame in order
                }
            }
            FdeLookup::Missing => definitive_miss = true,
            FdeLookup::Damaged => {}
        }
    }
    if !definitive_miss {
        if let Some(eh) = m.eh() {
            if let Ok(fde) = eh.frame.fde_for_address(&eh.bases, svma, EhFrame::cie_from_offset) {
                return row_from_fde(m.spec, &eh.frame, &eh.bases, &fde, ctx, svma);
            }
        }
    }
    let d = m.debug()?;
    let fde = d.frame.fde_for_address(&d.bases, svma, DebugFrame::cie_from_offset).ok()?;
    row_from_fde(m.spec, &d.frame, &d.bases, &fde, ctx, svma)
}

/// gimli parses `DW_CFA_AARCH64_negate_ra_state` (pointer authentication) only for AArch64.
fn vendor(spec: &dyn ArchSpec) -> Vendor {
    match spec.arch() {
        Arch::Aarch64 => Vendor::AArch64,
        Arch::X86_64 => Vendor::Default,
    }
}

fn row_from_fde<'m, S: UnwindSection<Slice<'m>>>(
    spec: &dyn ArchSpec,
    section: &S,
    bases: &BaseAddresses,
    fde: &FrameDescriptionEntry<Slice<'m>>,
    ctx: &mut UnwindContext<usize>,
    svma: u64,
) -> Option<Row<'m>> {
    let row = fde.unwind_info_for_address(section, bases, ctx, svma).ok()?;
    let ra_column = fde.cie().return_address_register().0;
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => Cfa::RegisterOffset(register.0, *offset),
        CfaRule::Expression(e) => Cfa::Expression(e.get(section).ok()?),
    };
    let mut rules = Vec::new();
    for (reg, rule) in row.registers() {
        let n = if reg.0 == ra_column {
            spec.ra_column() as u16
        } else if reg.0 as usize >= spec.tracked() {
            continue; // a column we do not track (vector registers, pseudo-registers, or rip when RA is elsewhere)
        } else {
            reg.0
        };
        let r = match rule {
            RegisterRule::Undefined => Rule::Undefined,
            RegisterRule::SameValue => Rule::SameValue,
            RegisterRule::Offset(o) => Rule::Offset(*o),
            RegisterRule::ValOffset(o) => Rule::ValOffset(*o),
            RegisterRule::Register(r) => Rule::Register(r.0),
            RegisterRule::Expression(e) => Rule::Expression(e.get(section).ok()?),
            RegisterRule::ValExpression(e) => Rule::ValExpression(e.get(section).ok()?),
            RegisterRule::Constant(c) => Rule::Constant(*c),
            // Vendor-defined: nothing we can compute.
            _ => Rule::Undefined,
        };
        rules.push((n, r));
    }
    Some(Row { cfa, rules, signal: fde.is_signal_trampoline(), encoding: fde.cie().encoding(), bias: 0 })
}
