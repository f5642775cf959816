//! The per-unit DWARF lookup (src/symbolize/units.rs) against addr2line's whole-module
//! `Context::find_frames`, on real files: for many addresses of each, every frame's function
//! name (raw, before demangling), file and line must match.
//!
//! Addresses: every 997th byte of `.text`, and for every function symbol in `.text` its start,
//! start + 1, middle and last byte. Files: pyenv's libpython 3.11 and 3.13 (full DWARF 5),
//! the libc debug file from libc6-dbg (zlib-compressed sections), C fixtures built with -O2
//! (inlining), and a zlib-compressed copy of one. A missing file is skipped with a SKIP line.
//!
//! Where the per-unit path declines (no arange covers the address and not every unit has
//! aranges) the symbolizer falls back to addr2line, so that is not a mismatch; such addresses are
//! counted and printed.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use common::skip;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::Command;

use crashcatch::modules::ElfInfo;
use crashcatch::symbolize::units::{IndexMiss, UnitFrame, UnitIndex};
use gimli::{EndianSlice, RunTimeEndian};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

fn context(elf: &ElfInfo) -> addr2line::Context<Reader<'_>> {
    let endian = RunTimeEndian::Little;
    let dwarf = gimli::Dwarf::load(|id: gimli::SectionId| -> Result<Reader<'_>, gimli::Error> {
        let data: &[u8] = match elf.section_data(id.name()) {
            Some(Cow::Borrowed(b)) => b,
            _ => &[],
        };
        Ok(EndianSlice::new(data, endian))
    })
    .expect("gimli loads the sections");
    addr2line::Context::from_dwarf(dwarf).expect("addr2line builds its context")
}

fn addr2line_frames(ctx: &addr2line::Context<Reader<'_>>, probe: u64) -> Result<Vec<UnitFrame>, String> {
    let mut iter = ctx.find_frames(probe).skip_all_loads().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(f) = iter.next().map_err(|e| e.to_string())? {
        let name = f.function.as_ref().map(|n| n.raw_name().unwrap().into_owned());
        let (file, line) = match f.location {
            Some(l) => (l.file.map(str::to_string), l.line),
            None => (None, None),
        };
        out.push(UnitFrame { name, file, line });
    }
    Ok(out)
}

/// The probe addresses of a file: every 997th byte of .text, and each function symbol's start,
/// start + 1, middle and last byte.
fn probes(path: &Path) -> Vec<u64> {
    let data = std::fs::read(path).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let text = file.section_by_name(".text").expect(".text");
    let (lo, hi) = (text.address(), text.address() + text.size());
    let mut v: Vec<u64> = (lo..hi).step_by(997).collect();
    for s in file.symbols() {
        if s.kind() != SymbolKind::Text || s.address() < lo || s.address() >= hi {
            continue;
        }
        let (a, n) = (s.address(), s.size().max(1));
        v.extend([a, a + 1, a + n / 2, a + n - 1]);
    }
    v.sort_unstable();
    v.dedup();
    v
}

struct Outcome {
    probes: usize,
    with_frames: usize,
    inlined: usize,
    declined: usize,
    /// Declined addresses where addr2line does find frames (the fallback then pays for them).
    declined_with_frames: Vec<u64>,
    mismatches: Vec<String>,
}

fn compare(path: &Path) -> Outcome {
    let elf = ElfInfo::open(path).unwrap();
    assert!(elf.has_dwarf(), "{} has no DWARF", path.display());
    let index = UnitIndex::new(&elf).unwrap_or_else(|e| panic!("{}: no per-unit index: {e:?}", path.display()));
    let ctx = context(&elf);
    let probes = probes(path);
    let mut out = Outcome {
        probes: probes.len(),
        with_frames: 0,
        inlined: 0,
        declined: 0,
        declined_with_frames: Vec::new(),
        mismatches: Vec::new(),
    };
    for &p in &probes {
        let expected = addr2line_frames(&ctx, p);
        match (index.find_frames(p), expected) {
            (Err(IndexMiss::NotCovered), want) => {
                out.declined += 1;
                if want.is_ok_and(|w| !w.is_empty()) {
                    out.declined_with_frames.push(p);
                }
            }
            (Ok(got), Ok(want)) if got == want => {
                out.with_frames += usize::from(!got.is_empty());
                out.inlined += usize::from(got.len() > 1);
            }
            (got, want) => {
                if out.mismatches.len() < 20 {
                    out.mismatches.push(format!("{:#x}:\n    units:     {got:?}\n    addr2line: {want:?}", p));
                } else {
                    out.mismatches.push(String::new());
                }
            }
        }
    }
    out
}

fn check(label: &str, path: &Path) {
    if !path.exists() {
        skip(label, &format!("{} is missing", path.display()));
        return;
    }
    let o = compare(path);
    eprintln!(
        "{label}: {} addresses, {} with frames ({} with inlined frames), {} declined (fall back to addr2line; {} of them have frames there{}), {} mismatches",
        o.probes,
        o.with_frames,
        o.inlined,
        o.declined,
        o.declined_with_frames.len(),
        if o.declined_with_frames.is_empty() {
            String::new()
        } else {
            format!(", e.g. {:x?}", &o.declined_with_frames[..o.declined_with_frames.len().min(4)])
        },
        o.mismatches.len()
    );
    assert!(
        o.mismatches.is_empty(),
        "{label} ({}): {} addresses differ from addr2line, first ones:\n{}",
        path.display(),
        o.mismatches.len(),
        o.mismatches.iter().filter(|m| !m.is_empty()).cloned().collect::<Vec<_>>().join("\n")
    );
    // The comparison means something only if the file has DWARF frames to compare.
    assert!(o.with_frames > o.probes / 4, "{label}: only {} of {} addresses have frames", o.with_frames, o.probes);
}

fn pyenv_root() -> PathBuf {
    std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".pyenv"))
}

#[test]
fn libpython311_matches_addr2line() {
    check("libpython3.11", &pyenv_root().join("versions/3.11.7/lib/libpython3.11.so.1.0"));
}

#[test]
fn libpython313_matches_addr2line() {
    check("libpython3.13", &pyenv_root().join("versions/3.13.0/lib/libpython3.13.so.1.0"));
}

/// The libc6-dbg debug file of this machine's libc, by build-id.
#[test]
fn libc_debug_file_matches_addr2line() {
    let libc = Path::new("/lib/x86_64-linux-gnu/libc.so.6");
    let debug = ElfInfo::open(libc).ok().and_then(|e| e.debug_file().and_then(|d| d.path.clone()));
    match debug {
        Some(d) => check("libc debug file", &d),
        None => skip("libc debug file", &format!("none found for {} (apt-get install libc6-dbg)", libc.display())),
    }
}

#[test]
fn fixtures_match_addr2line() {
    use common::Variant;
    for (variant, name) in [
        (Variant::Nofp, "libccfix.so"),
        (Variant::Nofp, "null_deref"),
        (Variant::Nofp, "thread_crash"),
        (Variant::Fp, "recursion"),
        (Variant::Splitdebug, "abort_assert.debug"),
    ] {
        check(&format!("fixture {}/{name}", variant.dir()), &common::fixture(variant, name));
    }
}

/// A fixture with zlib-compressed debug sections (objcopy), so the on-demand inflation is
/// exercised even where libc6-dbg is not installed.
#[test]
fn compressed_fixture_matches_addr2line() {
    let src = common::fixture(common::Variant::Nofp, "libccfix.so");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("libccfix-z.so");
    let ok = Command::new("objcopy")
        .arg("--compress-debug-sections=zlib")
        .arg(&src)
        .arg(&out)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        skip("compressed fixture", "objcopy --compress-debug-sections=zlib failed or is missing");
        return;
    }
    let elf = ElfInfo::open(&out).unwrap();
    assert!(elf.section(".debug_info").is_some_and(|s| s.compressed), "objcopy did not compress .debug_info");
    check("compressed fixture", &out);
}
