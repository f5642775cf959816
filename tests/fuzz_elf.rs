//! Property tests: truncated and mutated copies of a real shared library (the fixtures'
//! libccfix.so, with symbols and DWARF) never make the ELF reader, the symbolizer or the
//! unwinder panic, and each case finishes in bounded time.
//!
//! Each case writes the mutated file to a temporary folder and maps it through a synthetic
//! /proc/PID/maps line, so the same path is taken as for a library of a crashed process:
//! ModuleSet → Module::elf (mmap) → ElfInfo → symbol_for / section_data → Symbolizer (DWARF),
//! and the unwinder reading its .eh_frame.
//!
//! `CRASHCATCH_FUZZ_CASES` sets the number of cases (256 by default); the count run is
//! printed (`fuzz_elf: N cases`), which `make stress` reports.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crashcatch::arch::x86_64::Regs as X86Regs;
use crashcatch::modules::{ElfInfo, ModuleSet};
use crashcatch::process::{ImageMemory, Mapping};
use crashcatch::report::model::Trust;
use crashcatch::symbolize::Symbolizer;
use crashcatch::unwind::{unwind, FrameAddress, Limits, UnwoundFrame};

/// Generous for a debug build; a sane library takes milliseconds.
const TIME_LIMIT: Duration = Duration::from_secs(10);
const BASE: u64 = 0x7f00_0000_0000;
const STACK: u64 = 0x7ffd_0000_0000;

fn cases() -> u32 {
    std::env::var("CRASHCATCH_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256)
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Cut the file at this fraction (per mille) of its length.
    Truncate(u32),
    Byte {
        at: usize,
        value: u8,
    },
    /// An edge value over 8 bytes: offsets, sizes and addresses that overflow.
    Word {
        at: usize,
        value: u64,
    },
    /// Somewhere in the first 4 KiB: ELF header, program headers.
    HeaderByte {
        at: u16,
        value: u8,
    },
    /// Somewhere in the section header table (at the file's end for GNU ld output).
    TailWord {
        back: u16,
        value: u64,
    },
}

fn edge() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX - 7),
        Just(i64::MAX as u64),
        Just(1 << 31),
        Just(1 << 32),
        Just(0xffff),
        any::<u64>(),
        (0u64..0x10000),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (0u32..1000).prop_map(Mutation::Truncate),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Byte { at, value }),
        3 => (any::<usize>(), edge()).prop_map(|(at, value)| Mutation::Word { at, value }),
        3 => (0u16..4096, any::<u8>()).prop_map(|(at, value)| Mutation::HeaderByte { at, value }),
        3 => (1u16..4096, edge()).prop_map(|(back, value)| Mutation::TailWord { back, value }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match *m {
        Mutation::Truncate(pm) => bytes.truncate(len * pm as usize / 1000),
        Mutation::Byte { at, value } => bytes[at % len] = value,
        Mutation::Word { at, value } => {
            let at = at % len;
            for (i, b) in value.to_le_bytes().iter().enumerate() {
                if at + i < len {
                    bytes[at + i] = *b;
                }
            }
        }
        Mutation::HeaderByte { at, value } => {
            let at = at as usize;
            if at < len {
                bytes[at] = value;
            }
        }
        Mutation::TailWord { back, value } => {
            let at = len.saturating_sub(back as usize);
            for (i, b) in value.to_le_bytes().iter().enumerate() {
                if at + i < len {
                    bytes[at + i] = *b;
                }
            }
        }
    }
}

static PARSED: AtomicU64 = AtomicU64::new(0);

const SECTIONS: &[&str] = &[
    ".text",
    ".symtab",
    ".dynsym",
    ".eh_frame",
    ".eh_frame_hdr",
    ".debug_info",
    ".debug_line",
    ".debug_abbrev",
    ".debug_str",
    ".debug_frame",
    ".gnu_debuglink",
    ".note.gnu.build-id",
    ".data",
    ".bss",
    ".nonexistent",
];

fn exercise(bytes: &[u8], path: &PathBuf, probes: &[u64], stack: &[u64]) -> Result<(), TestCaseError> {
    let t0 = Instant::now();
    // The reader on its own.
    if let Ok(elf) = ElfInfo::from_bytes(bytes.to_vec(), None) {
        PARSED.fetch_add(1, Ordering::Relaxed);
        for &p in probes {
            let _ = elf.symbol_for(p);
        }
        for s in SECTIONS {
            let _ = elf.section_data(s);
            let _ = elf.section(s);
        }
        let _ = elf.symbol_address("ccfix_crash");
        let _ = elf.build_id();
        let _ = elf.debug_file_candidates();
        let _ = elf.min_load_vaddr();
        let _ = elf.segment_for_offset(0x1000);
    }
    // As a mapped library of a process: module, symbolizer, unwinder.
    std::fs::write(path, bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let span = ((bytes.len() as u64 + 0xfff) & !0xfff).max(0x1000);
    let maps = vec![
        Mapping {
            start: BASE,
            end: BASE + span,
            read: true,
            write: false,
            exec: false,
            shared: false,
            offset: 0,
            inode: 42,
            path: Some(path.display().to_string()),
        },
        Mapping {
            start: BASE + span,
            end: BASE + 2 * span,
            read: true,
            write: false,
            exec: true,
            shared: false,
            offset: 0x1000,
            inode: 42,
            path: Some(path.display().to_string()),
        },
    ];
    let mut mem = ImageMemory::new();
    mem.add(STACK, stack.iter().flat_map(|w| w.to_le_bytes()).collect());
    let modules = ModuleSet::build(&maps, |p| Some(PathBuf::from(p)), &mem, |_| None);
    let sym = Symbolizer::new(&modules);
    for &p in probes {
        for pc in [BASE.wrapping_add(p), BASE + span + (p % span)] {
            let address = match FrameAddress::return_address(pc) {
                Some(ra) if p % 2 == 1 => ra,
                _ => FrameAddress::InstructionPointer(pc),
            };
            let _ = sym.symbolize(&UnwoundFrame { address, sp: STACK, trust: Trust::Cfi });
        }
        let regs = X86Regs {
            rip: BASE + span + (p % span),
            rsp: STACK + (p % 64) * 8,
            rbp: STACK + 0x100,
            ..Default::default()
        }
        .into();
        let st =
            unwind(&regs, &mem, &modules, Limits { max_frames: 256, keep_top: 20, keep_bottom: 10, deadline: None });
        prop_assert!(!st.frames.is_empty());
    }
    let took = t0.elapsed();
    prop_assert!(took < TIME_LIMIT, "took {took:?}");
    Ok(())
}

#[test]
fn mutated_libraries_never_panic() {
    let lib = common::fixture(common::Variant::Fp, "libccfix.so");
    let original = std::fs::read(&lib).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("libccfix.so");
    // Addresses worth probing: every symbol of the intact file, and the edges.
    let intact = ElfInfo::from_bytes(original.clone(), None).unwrap();
    let mut addrs: Vec<u64> = (0..0x4000u64).step_by(0x40).filter(|&a| intact.symbol_for(a).is_some()).collect();
    addrs.extend([0, 1, 0xfff, 0x1000, u64::MAX, u64::MAX - 1]);
    let n = cases();
    let ran = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config { cases: n, failure_persistence: None, ..Config::default() });
    let strategy = (
        proptest::collection::vec(mutation(), 1..16),
        proptest::collection::vec(proptest::sample::select(addrs), 1..8),
        proptest::collection::vec(
            prop_oneof![Just(0u64), any::<u64>(), (0u64..0x4000).prop_map(|o| BASE + 0x1000 + o)],
            0..256,
        ),
    );
    runner
        .run(&strategy, |(muts, probes, stack)| {
            let mut bytes = original.clone();
            for m in &muts {
                apply(&mut bytes, m);
            }
            ran.fetch_add(1, Ordering::Relaxed);
            exercise(&bytes, &path, &probes, &stack)
        })
        .unwrap();
    eprintln!(
        "fuzz_elf: mutated libccfix.so: {} cases ({} still parsed as ELF, any test)",
        ran.load(Ordering::Relaxed),
        PARSED.load(Ordering::Relaxed)
    );
}

/// The same over the system's libc: big, with .gnu_debuglink and many symbols. Truncations and
/// header damage only (the file is copied per case).
#[test]
fn truncated_libc_never_panics() {
    let Some(libc_path) =
        ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    else {
        eprintln!("truncated_libc: no libc.so.6 found; skipped");
        return;
    };
    let original = std::fs::read(&libc_path).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("libc.so.6");
    let n = (cases() / 8).max(8);
    let ran = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config { cases: n, failure_persistence: None, ..Config::default() });
    let strategy = (
        proptest::collection::vec(
            prop_oneof![
                (0u32..1000).prop_map(Mutation::Truncate),
                (0u16..4096, any::<u8>()).prop_map(|(at, value)| Mutation::HeaderByte { at, value }),
                (1u16..4096, edge()).prop_map(|(back, value)| Mutation::TailWord { back, value }),
            ],
            1..6,
        ),
        proptest::collection::vec(0u64..0x200000, 1..6),
    );
    runner
        .run(&strategy, |(muts, probes)| {
            let mut bytes = original.clone();
            for m in &muts {
                apply(&mut bytes, m);
            }
            ran.fetch_add(1, Ordering::Relaxed);
            exercise(&bytes, &path, &probes, &[])
        })
        .unwrap();
    eprintln!("fuzz_elf: truncated/damaged libc.so.6: {} cases", ran.load(Ordering::Relaxed));
}

/// Found by the property test above: a symbol size of u64::MAX (in .symtab, near the file's
/// end) overflowed `addr + size` in the symbol look-up.
#[test]
fn huge_symbol_size_regression() {
    let lib = common::fixture(common::Variant::Fp, "libccfix.so");
    let mut bytes = std::fs::read(&lib).unwrap();
    apply(&mut bytes, &Mutation::TailWord { back: 2887, value: u64::MAX });
    let tmp = tempfile::tempdir().unwrap();
    exercise(&bytes, &tmp.path().join("libccfix.so"), &[0x1000, 0x1100, 0x1234], &[]).unwrap();
}
