//! Free-threaded builds (3.13t, 3.14t, 3.15t), best effort: no such interpreter can be installed
//! here, so the layout is taken from the real headers (sid's libpython3.X-dev, unpacked by
//! `make sid`) compiled with `-DPy_GIL_DISABLED` (fixtures/ft_layout.c), turned into the
//! `_Py_DebugOffsets` such a build publishes, and walked over a synthetic process image. Skipped,
//! visibly, when the headers are absent.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::*;
use crashcatch::python::debug_offsets::{self, values_3_15_2, DebugOffsets, OffsetsRead};
use crashcatch::python::layout::StringLayout;
use crashcatch::python::synth::{build_image, sample_threads, SynthOptions};
use crashcatch::python::walk::walk;

/// `key value` pairs printed by fixtures/ft_layout.c for headers of `version`, free-threaded.
fn measure(version: &str) -> Option<HashMap<String, u64>> {
    let inc = root().join("target/sid/usr/include");
    if !inc.join(format!("python{version}/Python.h")).exists() {
        skip(&format!("free-threaded {version}t layout"), &format!("no headers under {} (make sid)", inc.display()));
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("ft_layout");
    let out = Command::new("gcc")
        .args(["-w", "-DPy_GIL_DISABLED"])
        .arg(format!("-I{}", inc.join(format!("python{version}")).display()))
        .arg(format!("-I{}", inc.display()))
        .arg(fixture_src("ft_layout.c"))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(out.status.success(), "compiling ft_layout.c for {version}t: {}", describe(&out));
    let out = run(Command::new(&exe));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let words: Vec<&str> = text.split_whitespace().collect();
    Some(
        words
            .chunks(2)
            .map(|p| {
                let v = p[1].strip_prefix("0x").map_or_else(|| p[1].parse(), |h| u64::from_str_radix(h, 16)).unwrap();
                (p[0].to_string(), v)
            })
            .collect(),
    )
}

fn ft_case(version: &str, minor: u32) {
    let Some(m) = measure(version) else { return };
    assert_eq!(m["ob_type"], 24, "{m:?}");
    // What a free-threaded build of `version` publishes for the fields the walk reads: the
    // object and string offsets measured above; the interpreter, thread, frame and code offsets
    // of the GIL build, moved (so that nothing works by accident), with tlbc where 3.14+ has it.
    let mut d = DebugOffsets {
        version: (3 << 24) | (u64::from(minor) << 16) | 0xf0,
        free_threaded: true,
        shape: minor,
        ob_size: m["ob_size"],
        ob_type: m["ob_type"],
        bytes_size: m["ob_sval"] + 8,
        bytes_ob_size: m["bytes_ob_size"],
        bytes_ob_sval: m["ob_sval"],
        uni_size: m["compact"] + 8,
        uni_length: m["length"],
        uni_state: m["state"],
        uni_asciiobject_size: m["ascii"],
        uni_compact_size: if minor >= 15 { m["compact"] } else { 0 },
        co_filename: 128,
        co_name: 136,
        co_qualname: 144,
        co_linetable: 152,
        co_firstlineno: 84,
        co_code_adaptive: 232,
        co_size: 240,
        ..values_3_15_2()
    };
    if minor >= 14 {
        d.fr_tlbc_index = 72;
        d.fr_owner = 78;
        d.co_tlbc = 224;
    } else {
        d.fr_owner = 70;
    }
    let img0 = debug_offsets::encode(&d);
    let mut mem = crashcatch::process::ImageMemory::new();
    mem.add(0x1000, img0);
    let OffsetsRead::Ok(read) = debug_offsets::read(&mem, 0x1000).unwrap() else { panic!("{version}t not read") };
    let l = read.to_layout().unwrap();
    let StringLayout::Unicode { kind_bit, .. } = l.string else { panic!() };
    // The state bits the headers set for kind 1, compact, ascii.
    assert_eq!(m["state_bits"], (1 << kind_bit) | (1 << (kind_bit + 3)) | (1 << (kind_bit + 4)), "{version}t: {m:?}");
    assert_eq!(l.frame.tlbc_index.is_some(), minor >= 14);
    let threads = sample_threads(&l);
    let img = build_image(&l, &threads, &SynthOptions { gil_holder: Some(1), ..Default::default() });
    let w = walk(&img.mem, &l, &img.anchors);
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    for (got, t) in w.interpreters[0].threads.iter().zip(&threads) {
        let names: Vec<(&str, Option<u32>)> = got.frames.iter().map(|f| (f.function.as_str(), f.line)).collect();
        let want: Vec<(&str, Option<u32>)> =
            t.frames.iter().map(|f| (f.function.as_str(), Some(f.line as u32))).collect();
        assert_eq!(names, want, "{version}t");
    }
}

#[test]
fn free_threaded_3_13t() {
    ft_case("3.13", 13);
}

#[test]
fn free_threaded_3_14t() {
    ft_case("3.14", 14);
}

#[test]
fn free_threaded_3_15t() {
    ft_case("3.15", 15);
}
