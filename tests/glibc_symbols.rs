//! The crashcatch binary must load on glibc 2.17, the floor of the manylinux2014 wheels
//! (scripts/build-wheels.sh links them with zig against glibc 2.17's symbols, and fails on a
//! function 2.17 lacks). `make test` does not build those wheels (minutes each), so this test
//! reads the dynamic symbols of the binary built for the tests, with their version
//! requirements (.gnu.version and .gnu.version_r), and names every function it needs from a
//! glibc newer than 2.17.
//!
//! The host's glibc may be newer, and its linker then binds a function to its newest version:
//! glibc 2.32 and 2.34 moved libpthread's and libdl's functions into libc under new versions
//! (pthread_create@GLIBC_2.34), 2.33 exported stat and friends, once inline wrappers of
//! libc_nonshared.a. A symbol above 2.17 is therefore accepted only when the host's own library
//! still defines that function (or, for the stat family, the __xstat call its old wrapper made)
//! at a version up to 2.17, which is what glibc 2.17 had and what zig links against. Weak
//! references (Rust's std looks up getrandom, gettid, statx that way) may be missing at run time
//! and are not requirements.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use object::elf;
use object::read::elf::{FileHeader, Sym};
use object::Endianness;

/// glibc 2.17: manylinux2014 (and aarch64's first glibc).
const FLOOR: [u32; 2] = [2, 17];

/// One undefined dynamic symbol of the binary with its version requirement.
#[derive(Debug)]
struct Import {
    name: String,
    version: String,
    /// The library the version is required from (vn_file), e.g. libc.so.6.
    file: String,
    weak: bool,
}

/// `GLIBC_2.2.5` → [2, 2, 5]; None for other version names.
fn glibc_version(name: &str) -> Option<Vec<u32>> {
    name.strip_prefix("GLIBC_")?.split('.').map(|p| p.parse().ok()).collect()
}

fn above_floor(version: &str) -> bool {
    glibc_version(version).is_some_and(|v| v.as_slice() > FLOOR.as_slice())
}

/// Reads an ELF file's dynamic symbols as (name, version name, vn_file, undefined, weak).
fn dynamic_symbols(path: &Path) -> Vec<(String, String, Option<String>, bool, bool)> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let data = data.as_slice();
    let header = elf::FileHeader64::<Endianness>::parse(data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let endian = header.endian().unwrap();
    let sections = header.sections(endian, data).unwrap();
    let symbols = sections.symbols(endian, data, elf::SHT_DYNSYM).unwrap();
    let Some(versions) = sections.versions(endian, data).unwrap() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (index, sym) in symbols.enumerate().skip(1) {
        let name = String::from_utf8_lossy(sym.name(endian, symbols.strings()).unwrap()).into_owned();
        let version = versions.version(versions.version_index(endian, index).index()).unwrap();
        let Some(version) = version else {
            continue;
        };
        out.push((
            name,
            String::from_utf8_lossy(version.name()).into_owned(),
            version.file().map(|f| String::from_utf8_lossy(f).into_owned()),
            sym.is_undefined(endian),
            sym.st_bind() == elf::STB_WEAK,
        ));
    }
    out
}

fn imports(binary: &Path) -> Vec<Import> {
    dynamic_symbols(binary)
        .into_iter()
        .filter(|s| s.3)
        .map(|(name, version, file, _, weak)| Import { name, version, file: file.unwrap_or_default(), weak })
        .collect()
}

/// Where the host's library of that name is: as loaded into this test process
/// (/proc/self/maps), else beside the loaded libc.so.6.
fn host_library(file: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let loaded: Vec<PathBuf> = maps.lines().filter_map(|l| l.split_whitespace().nth(5)).map(PathBuf::from).collect();
    if let Some(p) = loaded.iter().find(|p| p.file_name().is_some_and(|n| n == file)) {
        return Some(p.clone());
    }
    let libc = loaded.iter().find(|p| p.file_name().is_some_and(|n| n == "libc.so.6"))?;
    Some(libc.with_file_name(file)).filter(|p| p.exists())
}

/// The versions at which a library defines each of its symbols (default and hidden ones).
fn definitions(library: &Path) -> HashMap<String, Vec<String>> {
    let mut defs: HashMap<String, Vec<String>> = HashMap::new();
    for (name, version, _, undefined, _) in dynamic_symbols(library) {
        if !undefined {
            defs.entry(name).or_default().push(version);
        }
    }
    defs
}

/// Until glibc 2.33 these were inline wrappers in libc_nonshared.a around the __xstat calls,
/// which glibc 2.17 exports.
fn old_wrapper_target(name: &str) -> Option<&'static str> {
    Some(match name {
        "stat" => "__xstat",
        "fstat" => "__fxstat",
        "lstat" => "__lxstat",
        "fstatat" => "__fxstatat",
        "stat64" => "__xstat64",
        "fstat64" => "__fxstat64",
        "lstat64" => "__lxstat64",
        "fstatat64" => "__fxstatat64",
        "mknod" => "__xmknod",
        "mknodat" => "__xmknodat",
        _ => return None,
    })
}

/// Whether glibc 2.17 had `name`, judged from the host's library.
fn in_glibc_2_17(defs: &HashMap<String, Vec<String>>, name: &str) -> bool {
    let old = |n: &str| defs.get(n).is_some_and(|vs| vs.iter().any(|v| !above_floor(v) && glibc_version(v).is_some()));
    old(name) || old_wrapper_target(name).is_some_and(old)
}

/// The imports of `binary` that glibc 2.17 cannot satisfy, one line each.
fn newer_than_floor(binary: &Path) -> (usize, Vec<String>) {
    let imports = imports(binary);
    let glibc = imports.iter().filter(|i| glibc_version(&i.version).is_some()).count();
    let mut libraries: HashMap<String, HashMap<String, Vec<String>>> = HashMap::new();
    let mut bad = Vec::new();
    for i in imports.iter().filter(|i| !i.weak && above_floor(&i.version)) {
        let defs = libraries.entry(i.file.clone()).or_insert_with(|| {
            let lib = host_library(&i.file).unwrap_or_else(|| panic!("cannot find the host's {}", i.file));
            definitions(&lib)
        });
        if !in_glibc_2_17(defs, &i.name) {
            bad.push(format!("{}@{} ({})", i.name, i.version, i.file));
        }
    }
    bad.sort();
    (glibc, bad)
}

#[test]
fn binary_needs_no_glibc_newer_than_2_17() {
    if host_library("libc.so.6").is_none() {
        common::skip("binary_needs_no_glibc_newer_than_2_17", "no glibc here (libc.so.6 not loaded)");
        return;
    }
    let binary = common::bin();
    let (glibc, bad) = newer_than_floor(&binary);
    // A reader that found nothing would pass anything.
    assert!(glibc > 20, "{}: only {glibc} versioned glibc imports read", binary.display());
    assert!(
        bad.is_empty(),
        "{} needs {} function(s) that glibc 2.17 (manylinux2014, `make wheels`) lacks; call them as \
         system calls (rustix) instead:\n  {}",
        binary.display(),
        bad.len(),
        bad.join("\n  ")
    );
}

/// The rule itself, on the host's libc: a function added after 2.17 is refused, one that only
/// moved into libc (or gained a new version) is accepted.
#[test]
fn the_rule_tells_new_functions_from_moved_ones() {
    let Some(libc) = host_library("libc.so.6") else {
        common::skip("the_rule_tells_new_functions_from_moved_ones", "no glibc here (libc.so.6 not loaded)");
        return;
    };
    let defs = definitions(&libc);
    let newest = |n: &str| defs.get(n).and_then(|vs| vs.iter().filter_map(|v| glibc_version(v)).max());
    // Present before 2.17 on every glibc.
    for name in ["pthread_create", "fstat64", "__libc_start_main", "memcpy"] {
        if name == "fstat64" && newest(name).is_none() {
            continue; // a glibc before 2.33: fstat64 was libc_nonshared's
        }
        assert!(in_glibc_2_17(&defs, name), "{name} should count as glibc 2.17's");
    }
    // Added in 2.28 and 2.30: on a host that has them, they must be refused.
    for name in ["renameat2", "gettid"] {
        match newest(name) {
            Some(_) => assert!(!in_glibc_2_17(&defs, name), "{name} is newer than glibc 2.17"),
            None => common::skip(
                "the_rule_tells_new_functions_from_moved_ones",
                &format!("no {name} in {}", libc.display()),
            ),
        }
    }
}
