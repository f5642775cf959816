//! Every offset of every per-version layout table against the DWARF of the matching pyenv build
//! (`$(pyenv root)/versions/X.Y.Z/lib/libpython*.so.1.0`, built with -g). Versions that are not
//! installed are skipped with a message; the test fails when none is found.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use gimli::{AttributeValue, EndianSlice, RunTimeEndian, UnitOffset};
use object::{Object, ObjectSection};

use crashcatch::process::ImageMemory;
use crashcatch::python::debug_offsets;
use crashcatch::python::layout::Layout;

type R<'a> = EndianSlice<'a, RunTimeEndian>;

const EXPECTED: &[&str] = &["2.7.18", "3.6.15", "3.7.16", "3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"];

fn pyenv_root() -> PathBuf {
    if let Ok(r) = std::env::var("PYENV_ROOT") {
        return PathBuf::from(r);
    }
    if let Ok(out) = std::process::Command::new("pyenv").arg("root").output() {
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !s.is_empty() {
            return PathBuf::from(s);
        }
    }
    PathBuf::from("/root/.pyenv")
}

fn libpython(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir.join("lib")).ok()?.filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
        let n = p.file_name().unwrap().to_string_lossy();
        n.starts_with("libpython") && n.ends_with(".so.1.0")
    })
}

/// Follows typedefs and qualifiers to a struct or union with members; None for declarations.
fn resolve_struct(unit: &gimli::Unit<R<'_>>, mut off: UnitOffset) -> Option<UnitOffset> {
    for _ in 0..16 {
        let e = unit.entry(off).ok()?;
        match e.tag() {
            gimli::DW_TAG_structure_type | gimli::DW_TAG_union_type => {
                if e.attr_value(gimli::DW_AT_declaration).is_some() {
                    return None;
                }
                return Some(off);
            }
            gimli::DW_TAG_typedef
            | gimli::DW_TAG_const_type
            | gimli::DW_TAG_volatile_type
            | gimli::DW_TAG_atomic_type => match e.attr_value(gimli::DW_AT_type)? {
                AttributeValue::UnitRef(o) => off = o,
                _ => return None,
            },
            _ => return None,
        }
    }
    None
}

fn member_location(e: &gimli::DebuggingInformationEntry<R<'_>>) -> Option<u64> {
    match e.attr_value(gimli::DW_AT_data_member_location) {
        None => Some(0), // union members
        Some(v) => match v {
            AttributeValue::Exprloc(expr) => {
                // DW_OP_plus_uconst N
                let b = expr.0.slice();
                if b.first() == Some(&0x23) {
                    let mut r = EndianSlice::new(&b[1..], RunTimeEndian::Little);
                    gimli::Reader::read_uleb128(&mut r).ok()
                } else {
                    None
                }
            }
            v => v.udata_value(),
        },
    }
}

/// Offset of member `name` in the struct at `st`, looking through anonymous members; also the
/// member's type.
fn find_member(
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &gimli::Unit<R<'_>>,
    st: UnitOffset,
    name: &str,
) -> Option<(u64, Option<UnitOffset>)> {
    let mut tree = unit.entries_tree(Some(st)).ok()?;
    let root = tree.root().ok()?;
    let mut children = root.children();
    while let Ok(Some(child)) = children.next() {
        let e = child.entry();
        if e.tag() != gimli::DW_TAG_member {
            continue;
        }
        let ty = match e.attr_value(gimli::DW_AT_type) {
            Some(AttributeValue::UnitRef(o)) => Some(o),
            _ => None,
        };
        let loc = member_location(e)?;
        match e.attr_value(gimli::DW_AT_name) {
            Some(n) => {
                let n = dwarf.attr_string(unit, n).ok()?;
                if n.slice() == name.as_bytes() {
                    return Some((loc, ty));
                }
            }
            None => {
                // Anonymous struct/union member: its members are ours.
                if let Some(inner) = ty.and_then(|t| resolve_struct(unit, t)) {
                    if let Some((o, t)) = find_member(dwarf, unit, inner, name) {
                        return Some((loc + o, t));
                    }
                }
            }
        }
    }
    None
}

/// The value of `member` (a dotted path or `sizeof`) for the type at `ty`.
fn measure(dwarf: &gimli::Dwarf<R<'_>>, unit: &gimli::Unit<R<'_>>, ty: UnitOffset, member: &str) -> Option<u64> {
    let st = resolve_struct(unit, ty)?;
    if member == "sizeof" {
        return unit.entry(st).ok()?.attr_value(gimli::DW_AT_byte_size)?.udata_value();
    }
    let mut cur = st;
    let mut total = 0;
    let parts: Vec<&str> = member.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        let (off, t) = find_member(dwarf, unit, cur, p)?;
        total += off;
        if i + 1 < parts.len() {
            cur = resolve_struct(unit, t?)?;
        }
    }
    Some(total)
}

/// (type, member) → value measured in DWARF, for every check of `wanted`.
fn measure_all(
    lib: &Path,
    wanted: &BTreeSet<(&'static str, &'static str)>,
) -> Result<BTreeMap<(&'static str, &'static str), u64>, String> {
    let data = std::fs::read(lib).map_err(|e| format!("{}: {e}", lib.display()))?;
    let obj = object::File::parse(&*data).map_err(|e| e.to_string())?;
    let load = |id: gimli::SectionId| -> Result<Cow<'_, [u8]>, gimli::Error> {
        Ok(obj.section_by_name(id.name()).and_then(|s| s.uncompressed_data().ok()).unwrap_or(Cow::Borrowed(&[])))
    };
    let owned = gimli::DwarfSections::load(load).map_err(|e| e.to_string())?;
    let dwarf = owned.borrow(|s| EndianSlice::new(s, RunTimeEndian::Little));
    let types: BTreeSet<&str> = wanted.iter().map(|w| w.0).collect();
    let mut found = BTreeMap::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next().map_err(|e| e.to_string())? {
        if found.len() == wanted.len() {
            break;
        }
        let unit = dwarf.unit(header).map_err(|e| e.to_string())?;
        let mut entries = unit.entries();
        while let Some(e) = entries.next_dfs().map_err(|e| e.to_string())? {
            if !matches!(e.tag(), gimli::DW_TAG_structure_type | gimli::DW_TAG_typedef | gimli::DW_TAG_union_type) {
                continue;
            }
            let Some(n) = e.attr_value(gimli::DW_AT_name) else { continue };
            let Ok(n) = dwarf.attr_string(&unit, n) else { continue };
            let Ok(n) = std::str::from_utf8(n.slice()) else { continue };
            if !types.contains(n) {
                continue;
            }
            let off = e.offset();
            let todo: Vec<(&'static str, &'static str)> =
                wanted.iter().filter(|w| w.0 == n && !found.contains_key(*w)).copied().collect();
            for w in &todo {
                if let Some(v) = measure(&dwarf, &unit, off, w.1) {
                    found.insert(*w, v);
                }
            }
        }
    }
    Ok(found)
}

fn check_version(root: &Path, ver: &str) -> Result<usize, String> {
    let dir = root.join("versions").join(ver);
    let lib = libpython(&dir).ok_or_else(|| format!("no lib/libpython*.so.1.0 in {}", dir.display()))?;
    let nums: Vec<u32> = ver.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    let layout = Layout::for_version(nums[0], nums[1], nums[2]).ok_or_else(|| format!("no layout table for {ver}"))?;
    let checks = layout.dwarf_checks();
    let wanted: BTreeSet<(&'static str, &'static str)> = checks.iter().map(|c| (c.ty, c.member)).collect();
    let got = measure_all(&lib, &wanted)?;
    let mut errs = Vec::new();
    for c in &checks {
        match got.get(&(c.ty, c.member)) {
            Some(&v) if v == c.value => {}
            Some(&v) => errs.push(format!("{}.{}: table {} but DWARF {}", c.ty, c.member, c.value, v)),
            None => errs.push(format!("{}.{}: not found in DWARF", c.ty, c.member)),
        }
    }
    // 3.13+: the debug offsets compiled into the file must agree with the table as well.
    if nums[0] == 3 && nums[1] >= 13 {
        let data = std::fs::read(&lib).unwrap();
        let obj = object::File::parse(&*data).unwrap();
        let sec = obj.section_by_name(".PyRuntime").ok_or("no .PyRuntime section")?;
        let mut m = ImageMemory::new();
        m.add(0x1000, sec.data().map_err(|e| e.to_string())?.to_vec());
        match debug_offsets::read(&m, 0x1000) {
            Ok(debug_offsets::OffsetsRead::Ok(d)) => {
                let l = d.to_layout().map_err(|e| e.to_string())?;
                if (l.interp.clone(), l.tstate.clone(), l.frame.clone(), l.code.clone(), l.string, l.gil.clone())
                    != (
                        layout.interp.clone(),
                        layout.tstate.clone(),
                        layout.frame.clone(),
                        layout.code.clone(),
                        layout.string,
                        layout.gil.clone(),
                    )
                {
                    errs.push(format!("_Py_DebugOffsets in the file disagree with the table:\n{l:#?}"));
                }
            }
            other => errs.push(format!("_Py_DebugOffsets not read from .PyRuntime: {other:?}")),
        }
    }
    if errs.is_empty() {
        Ok(checks.len())
    } else {
        Err(errs.join("\n"))
    }
}

#[test]
fn layout_tables_match_dwarf() {
    let root = pyenv_root();
    let mut present: Vec<String> = std::fs::read_dir(root.join("versions"))
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    present.sort();
    for v in EXPECTED {
        if !present.iter().any(|p| p == v) {
            common::skip(v, &format!("not installed under {}", root.join("versions").display()));
        }
    }
    let mut checked = 0;
    let mut failures = Vec::new();
    for v in &present {
        let nums: Vec<u32> = v.split('.').filter_map(|p| p.parse().ok()).collect();
        if nums.len() != 3 || Layout::for_version(nums[0], nums[1], nums[2]).is_none() {
            common::skip(v, "no layout table for this version");
            continue;
        }
        if libpython(&root.join("versions").join(v)).is_none() {
            common::skip(v, "no shared libpython (not built with --enable-shared)");
            continue;
        }
        match check_version(&root, v) {
            Ok(n) => {
                println!("PASS {v}: {n} offsets match DWARF");
                checked += 1;
            }
            Err(e) => {
                println!("FAIL {v}");
                failures.push(format!("{v}:\n{e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(checked > 0, "no pyenv version found under {}: nothing was checked", root.display());
}

/// Debian sid's stripped interpreters (`make sid`): the `_Py_DebugOffsets` compiled into each
/// executable's `.PyRuntime`, parsed in its version's shape, against the DWARF of its debug file
/// from python3.X-dbg (target/sid-dbg, by build-id). This checks the 3.15 shape (every field this
/// reader takes lands on the member DWARF names) on real builds, not only on the headers.
#[test]
fn sid_debug_offsets_match_dwarf() {
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for v in ["3.13", "3.14", "3.15"] {
        let exe = common::root().join(format!("target/sid/usr/bin/python{v}"));
        let Ok(data) = std::fs::read(&exe) else {
            common::skip(
                &format!("DWARF check of sid python {v}"),
                &format!("{} is missing (make sid)", exe.display()),
            );
            continue;
        };
        let obj = object::File::parse(&*data).unwrap();
        let id = obj.build_id().ok().flatten().expect("a build-id");
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let dbg =
            common::root().join(format!("target/sid-dbg/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..]));
        if !dbg.is_file() {
            common::skip(
                &format!("DWARF check of sid python {v}"),
                &format!("{} is missing (make sid)", dbg.display()),
            );
            continue;
        }
        let sec = obj.section_by_name(".PyRuntime").expect("a .PyRuntime section");
        let mut m = ImageMemory::new();
        m.add(0x1000, sec.data().unwrap().to_vec());
        let layout = match debug_offsets::read(&m, 0x1000) {
            Ok(debug_offsets::OffsetsRead::Ok(d)) => d.to_layout().unwrap(),
            other => {
                failures.push(format!("{v}: _Py_DebugOffsets not read: {other:?}"));
                continue;
            }
        };
        let checks = layout.dwarf_checks();
        let wanted: BTreeSet<(&'static str, &'static str)> = checks.iter().map(|c| (c.ty, c.member)).collect();
        let got = measure_all(&dbg, &wanted).unwrap();
        for c in &checks {
            match got.get(&(c.ty, c.member)) {
                Some(&g) if g == c.value => {}
                Some(&g) => {
                    failures.push(format!("{v}: {}.{}: _Py_DebugOffsets {} but DWARF {g}", c.ty, c.member, c.value))
                }
                None => failures.push(format!("{v}: {}.{}: not found in DWARF", c.ty, c.member)),
            }
        }
        checked.push(format!("{v} ({} offsets)", checks.len()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("sid interpreters checked against DWARF: {checked:?}");
}

/// The debug file of `file` (by build-id, under target/sid-dbg), when there is one.
fn sid_debug_file(file: &Path) -> Option<PathBuf> {
    let data = std::fs::read(file).ok()?;
    let obj = object::File::parse(&*data).ok()?;
    let id = obj.build_id().ok().flatten()?;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let dbg = common::root().join(format!("target/sid-dbg/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..]));
    dbg.is_file().then_some(dbg)
}

/// Each check measured in `file`'s DWARF; the failures.
fn check_in(file: &Path, checks: &[(&'static str, &'static str, u64)], what: &str) -> Vec<String> {
    let wanted: BTreeSet<(&'static str, &'static str)> = checks.iter().map(|c| (c.0, c.1)).collect();
    let got = match measure_all(file, &wanted) {
        Ok(g) => g,
        Err(e) => return vec![format!("{what}: {e}")],
    };
    checks
        .iter()
        .filter_map(|&(ty, member, value)| match got.get(&(ty, member)) {
            Some(&v) if v == value => None,
            Some(&v) => Some(format!("{what}: {ty}.{member}: table {value} but DWARF {v}")),
            None => Some(format!("{what}: {ty}.{member}: not found in DWARF")),
        })
        .collect()
}

/// The asyncio reader's offsets (src/python/asyncio/layout.rs) against the DWARF of libpython
/// and the `_asyncio` extension of each pyenv build (3.11–3.13), and of sid's 3.13, 3.14 and
/// 3.15 with their python3.X-dbg debug files (3.15 builds `_asyncio` into the executable).
#[test]
fn asyncio_layouts_match_dwarf() {
    use crashcatch::python::asyncio::layout::AsyncioLayout;
    let root = pyenv_root();
    let mut failures = Vec::new();
    let mut checked = Vec::new();
    for v in ["3.11.7", "3.12.1", "3.13.0"] {
        let dir = root.join("versions").join(v);
        let minor: u32 = v.split('.').nth(1).unwrap().parse().unwrap();
        let l = AsyncioLayout::for_version(minor).unwrap();
        let (Some(lib), Some(ext)) = (libpython(&dir), asyncio_extension(&dir.join("lib"), minor)) else {
            common::skip(&format!("asyncio DWARF check of {v}"), "not installed under pyenv");
            continue;
        };
        failures.extend(check_in(&lib, &l.dwarf_checks(), v));
        failures.extend(check_in(&ext, &l.dwarf_checks_asyncio(), &format!("{v} _asyncio")));
        checked.push(v.to_string());
    }
    for minor in [13u32, 14, 15] {
        let v = format!("3.{minor}");
        let exe = common::root().join(format!("target/sid/usr/bin/python{v}"));
        let Some(dbg) = sid_debug_file(&exe) else {
            common::skip(&format!("asyncio DWARF check of sid {v}"), "target/sid or target/sid-dbg missing (make sid)");
            continue;
        };
        let l = AsyncioLayout::for_version(minor).unwrap();
        failures.extend(check_in(&dbg, &l.dwarf_checks(), &format!("sid {v}")));
        let ext = asyncio_extension(&common::root().join("target/sid/usr/lib"), minor);
        let ext_dbg = match ext {
            Some(e) => sid_debug_file(&e),
            None => Some(dbg.clone()), // built into the executable
        };
        match ext_dbg {
            Some(d) => failures.extend(check_in(&d, &l.dwarf_checks_asyncio(), &format!("sid {v} _asyncio"))),
            None => failures.push(format!("sid {v}: no debug file for _asyncio")),
        }
        checked.push(format!("sid {v}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(!checked.is_empty(), "no interpreter to check");
    println!("asyncio offsets checked against DWARF: {checked:?}");
}

/// `lib/python3.X/lib-dynload/_asyncio.cpython-3X-*.so` under `lib`.
fn asyncio_extension(lib: &Path, minor: u32) -> Option<PathBuf> {
    let dir = lib.join(format!("python3.{minor}/lib-dynload"));
    std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
        let n = p.file_name().unwrap().to_string_lossy();
        n.starts_with("_asyncio.") && n.ends_with(".so")
    })
}
