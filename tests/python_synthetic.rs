//! The walker over synthetic memory images: every version's layout read back exactly, full 3.11
//! and 3.12 thread walks (entry frames, shims, GIL, tids), the 3.13 `_Py_DebugOffsets` path and a
//! 3.14-shaped one, finalization, and corrupt images.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

use crashcatch::arch::x86_64::Regs as X86Regs;
use crashcatch::process::{ImageMemory, Snapshot, ThreadInfo};
use crashcatch::python::debug_offsets::{self, values_3_13_0, OffsetsRead};
use crashcatch::python::fill_state;
use crashcatch::python::layout::Layout;
use crashcatch::python::synth::{build_image, sample_threads, SynthFrame, SynthOptions, SynthThread};
use crashcatch::python::walk::{walk, walk_until, RawFrame, WalkError, DEADLINE_NOTE};
use crashcatch::report::model::{InterpreterState, PythonState};

fn versions() -> Vec<Layout> {
    [
        (2, 7, 18),
        (3, 6, 15),
        (3, 7, 3),
        (3, 7, 16),
        (3, 8, 18),
        (3, 9, 18),
        (3, 10, 13),
        (3, 11, 7),
        (3, 12, 1),
        (3, 13, 0),
    ]
    .into_iter()
    .map(|(a, b, c)| Layout::for_version(a, b, c).unwrap())
    .collect()
}

/// What the walk must read back of each frame (where the frame and its code are, and the
/// columns, are the image's business).
type Named = (String, String, Option<u32>, bool);

fn expected(t: &SynthThread) -> Vec<Named> {
    t.frames.iter().map(|f| (f.file.clone(), f.function.clone(), Some(f.line as u32), f.entry)).collect()
}

fn named(frames: &[RawFrame]) -> Vec<Named> {
    frames.iter().map(|f| (f.file.clone(), f.function.clone(), f.line, f.entry)).collect()
}

fn snapshot<'m>(mem: &'m ImageMemory, threads: Vec<ThreadInfo>) -> Snapshot<'m> {
    Snapshot {
        pid: 100,
        crashed_tid: 100,
        signal: Default::default(),
        exe: None,
        cmdline: vec![],
        maps: vec![],
        threads,
        memory: mem,
        view: &crashcatch::process::view::DETACHED,
        files: crashcatch::process::TargetFiles::under(std::path::Path::new("/nonexistent-root"), None),
    }
}

fn thread(tid: i32, fs_base: Option<u64>) -> ThreadInfo {
    ThreadInfo { tid, regs: fs_base.map(|f| X86Regs { fs_base: f, ..Default::default() }.into()), ..Default::default() }
}

#[test]
fn every_layout_reads_back_its_own_image() {
    for l in versions() {
        let threads = sample_threads(&l);
        let img = build_image(&l, &threads, &SynthOptions { gil_holder: Some(1), ..Default::default() });
        let w = walk(&img.mem, &l, &img.anchors);
        assert!(w.errors.is_empty(), "{}: {:?}", l.label, w.errors);
        assert_eq!(w.interpreters.len(), 1, "{}", l.label);
        let got = &w.interpreters[0].threads;
        assert_eq!(got.len(), 2, "{}", l.label);
        for (g, t) in got.iter().zip(&threads) {
            assert_eq!(named(&g.frames), expected(t), "{}", l.label);
            assert_eq!(g.thread_id, t.thread_id);
            assert!(g.error.is_none(), "{}: {:?}", l.label, g.error);
        }
        assert!(got[1].holds_gil && !got[0].holds_gil, "{}: GIL", l.label);
        assert_eq!(w.finalizing, None);
    }
}

#[test]
fn layouts_are_not_interchangeable() {
    // Reading one version's image with a neighbour's table must not give the same stacks: the
    // synthetic test would otherwise prove nothing about the tables.
    let all = versions();
    for pair in all.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        // Some neighbours differ only in where the GIL holder is kept (3.8/3.9, 3.7.3/3.7.4):
        // compare the GIL as well.
        let threads = sample_threads(a);
        let img = build_image(a, &threads, &SynthOptions { gil_holder: Some(1), ..Default::default() });
        let w = walk(&img.mem, b, &img.anchors);
        let same = w.interpreters.first().is_some_and(|i| {
            i.threads.len() == threads.len()
                && i.threads.iter().zip(&threads).all(|(g, t)| named(&g.frames) == expected(t))
                && i.threads[1].holds_gil
        });
        assert!(!same, "{} image read fine with the {} table", a.label, b.label);
    }
}

#[test]
fn full_311_thread_walk() {
    let l = Layout::for_version(3, 11, 7).unwrap();
    let threads = sample_threads(&l);
    let img = build_image(&l, &threads, &SynthOptions { gil_holder: Some(1), ..Default::default() });
    let w = walk(&img.mem, &l, &img.anchors);
    let main = &w.interpreters[0].threads[1];
    let names: Vec<_> = main.frames.iter().map(|f| (f.function.as_str(), f.line.unwrap(), f.entry)).collect();
    assert_eq!(
        names,
        [
            ("fünf", 15, false),
            ("日本語", 400, false),
            ("Outer.method", 24, true),
            ("main", 35, false),
            ("<module>", 38, true)
        ]
    );
    assert_eq!(main.native_thread_id, Some(100));
    assert!(main.holds_gil);
    // 3.11 has no shim frames: where it runs on the C stack is its `_PyCFrame`.
    let cframe = match l.tstate.top_frame {
        crashcatch::python::layout::TopFrame::ViaCFrame { cframe, .. } => cframe,
        crashcatch::python::layout::TopFrame::Direct(_) => unreachable!("3.11 goes through cframe"),
    };
    assert_eq!(
        main.c_stack,
        Some(crashcatch::process::MemoryExt::read_u64(&img.mem, img.tstates[1] + cframe).unwrap())
    );

    // Through fill_state: tids from native_thread_id, the GIL holder's tid, state running.
    let snap = snapshot(&img.mem, vec![thread(100, None), thread(101, None)]);
    let mut st = PythonState::default();
    fill_state(&mut st, &snap, &img.mem, &l, &w);
    let t = &st.interpreters[0].threads;
    assert_eq!((t[0].tid, t[1].tid), (Some(101), Some(100)));
    assert_eq!(st.gil_holder_tid, Some(100));
    assert_eq!(st.state, Some(InterpreterState::Running));
    assert_eq!(t[1].entry, [false, false, true, false, true]);
    assert_eq!(t[1].frames[0].file, "/app/main.py");
}

#[test]
fn the_reports_deadline_stops_every_threads_frames() {
    let l = Layout::for_version(3, 12, 1).unwrap();
    let threads = sample_threads(&l);
    let img = build_image(&l, &threads, &SynthOptions::default());
    let full = walk(&img.mem, &l, &img.anchors);
    let now = std::time::Instant::now();
    // A deadline far ahead changes nothing.
    let later = walk_until(&img.mem, &l, &img.anchors, Some(now + std::time::Duration::from_secs(3600)));
    assert_eq!(format!("{:?}", later.interpreters), format!("{:?}", full.interpreters));
    // One already passed: the threads are still listed, their frames left out, and each says why.
    let spent = walk_until(&img.mem, &l, &img.anchors, Some(now));
    let ts = &spent.interpreters[0].threads;
    assert_eq!(ts.len(), full.interpreters[0].threads.len());
    assert!(full.interpreters[0].threads.iter().all(|t| !t.frames.is_empty()));
    for t in ts {
        assert!(t.frames.is_empty());
        assert_eq!(t.error, Some(WalkError::Deadline));
        assert_eq!(t.error.as_ref().map(ToString::to_string).as_deref(), Some(DEADLINE_NOTE));
    }
}

#[test]
fn full_312_thread_walk_skips_shims() {
    let l = Layout::for_version(3, 12, 1).unwrap();
    let threads = sample_threads(&l);
    let img = build_image(&l, &threads, &SynthOptions { gil_holder: Some(0), ..Default::default() });
    let w = walk(&img.mem, &l, &img.anchors);
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    let main = &w.interpreters[0].threads[1];
    // Shim frames ("<shim>") are not reported; the frame inside each one is an entry.
    assert!(main.frames.iter().all(|f| f.file != "<shim>"));
    assert_eq!(named(&main.frames), expected(&threads[1]));
    assert!(w.interpreters[0].threads[0].holds_gil, "GIL from interp->ceval.gil");
    assert!(!main.holds_gil);
    // Where it runs on the C stack: the innermost shim frame (the eval loop's own entry frame).
    assert_eq!(main.c_stack, Some(first_shim(&img.mem, &l, img.tstates[1])));
    // Without the shim frames (owner 3 not recognised) the entries would be lost and the
    // trampolines reported: check the owner value matters.
    let mut wrong = l.clone();
    wrong.frame.shim_owners = vec![4];
    let w2 = walk(&img.mem, &wrong, &img.anchors);
    assert!(w2.interpreters[0].threads[1].frames.iter().any(|f| f.file == "<shim>"));
}

#[test]
fn debug_offsets_313_drive_the_walk() {
    let table = Layout::for_version(3, 13, 0).unwrap();
    let threads = sample_threads(&table);
    let opts = SynthOptions { gil_holder: Some(1), debug_offsets: Some(values_3_13_0()), ..Default::default() };
    let img = build_image(&table, &threads, &opts);
    let OffsetsRead::Ok(d) = debug_offsets::read(&img.mem, img.runtime).unwrap() else { panic!("no debug offsets") };
    assert_eq!(d.version, 0x030d00f0);
    let l = d.to_layout().unwrap();
    let w = walk(&img.mem, &l, &img.anchors);
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    for (g, t) in w.interpreters[0].threads.iter().zip(&threads) {
        assert_eq!(named(&g.frames), expected(t));
    }
    assert!(w.interpreters[0].threads[1].holds_gil);
}

/// A 3.14-shaped image: every offset moved away from 3.13's, CSTACK owner 4 and INTERPRETER
/// owner 3 as shims, tagged code references. Only a reader that takes its offsets from
/// `_Py_DebugOffsets` (parsed in the 3.14 shape) walks it.
#[test]
fn debug_offsets_314_shape_drive_the_walk() {
    let mut d = values_3_13_0();
    d.version = 0x030e00f0;
    d.shape = 14;
    d.co_size = 240;
    d.rt_finalizing = 1208;
    d.rt_interpreters_head = 1232;
    d.is_next = 64;
    d.is_threads_head = 96;
    d.is_id = 72;
    d.is_ceval_gil = 128;
    d.is_gil_runtime_state = 200;
    d.is_gil_holder = 208;
    d.is_gil_locked = 216;
    d.ts_current_frame = 88;
    d.ts_thread_id = 168;
    d.ts_native_thread_id = 176;
    d.fr_previous = 16;
    d.fr_executable = 8;
    d.fr_instr_ptr = 64;
    d.fr_owner = 74;
    d.co_filename = 136;
    d.co_name = 144;
    d.co_qualname = 152;
    d.co_linetable = 160;
    d.co_firstlineno = 84;
    d.co_code_adaptive = 232;
    let l = d.to_layout().unwrap();
    assert_eq!((l.major, l.minor), (3, 14));
    assert_eq!(l.frame.shim_owners, [3, 4]);
    let threads = sample_threads(&l);
    let img = build_image(
        &l,
        &threads,
        &SynthOptions { gil_holder: Some(0), debug_offsets: Some(d.clone()), ..Default::default() },
    );
    let OffsetsRead::Ok(read_back) = debug_offsets::read(&img.mem, img.runtime).unwrap() else { panic!() };
    assert_eq!(*read_back, d);
    let w = walk(&img.mem, &read_back.to_layout().unwrap(), &img.anchors);
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    for (g, t) in w.interpreters[0].threads.iter().zip(&threads) {
        assert_eq!(named(&g.frames), expected(t));
    }
    // The static 3.13 table cannot read it.
    let w13 = walk(&img.mem, &Layout::for_version(3, 13, 0).unwrap(), &img.anchors);
    let read_fine = w13.interpreters.first().is_some_and(|i| {
        i.threads.len() == threads.len() && i.threads.iter().zip(&threads).all(|(g, t)| named(&g.frames) == expected(t))
    });
    assert!(!read_fine);
}

#[test]
fn finalization_marks_other_threads_stale() {
    for l in versions() {
        if l.major == 2 {
            continue; // 2.7 keeps no finalizing thread state
        }
        let threads = sample_threads(&l);
        let img = build_image(&l, &threads, &SynthOptions { finalizing: Some(1), ..Default::default() });
        let w = walk(&img.mem, &l, &img.anchors);
        assert_eq!(w.finalizing, Some(img.tstates[1]), "{}", l.label);
        // Registers give the tid through fs_base (= pthread_t = thread_id).
        let snap =
            snapshot(&img.mem, vec![thread(100, Some(threads[1].thread_id)), thread(101, Some(threads[0].thread_id))]);
        let mut st = PythonState::default();
        fill_state(&mut st, &snap, &img.mem, &l, &w);
        assert_eq!(st.state, Some(InterpreterState::Finalizing), "{}", l.label);
        assert_eq!(st.finalizing_tid, Some(100), "{}", l.label);
        let t = &st.interpreters[0].threads;
        assert!(t[0].frames.iter().all(|f| f.stale), "{}: worker frames must be stale", l.label);
        assert!(t[1].frames.iter().all(|f| !f.stale), "{}: the finalizing thread is current", l.label);
    }
}

#[test]
fn finalized_interpreter() {
    let l = Layout::for_version(3, 11, 7).unwrap();
    let threads = sample_threads(&l);
    let img = build_image(&l, &threads, &SynthOptions { finalizing: Some(1), finalized: true, ..Default::default() });
    let w = walk(&img.mem, &l, &img.anchors);
    assert!(w.interpreters.is_empty());
    let snap = snapshot(&img.mem, vec![thread(100, None), thread(101, None)]);
    let mut st = PythonState::default();
    fill_state(&mut st, &snap, &img.mem, &l, &w);
    assert_eq!(st.state, Some(InterpreterState::Finalized));
    // The finalizing thread state is no longer listed but still maps to its thread.
    assert_eq!(st.finalizing_tid, Some(100));
}

#[test]
fn corrupt_chains_end_in_errors() {
    let l = Layout::for_version(3, 10, 13).unwrap();
    let threads = sample_threads(&l);
    // A frame whose back link points at itself.
    let mut img = build_image(&l, &threads, &SynthOptions::default());
    let ts = img.tstates[0];
    let TopFrameAddr(f) = top_frame(&img.mem, &l, ts);
    img.mem.write_u64(f + l.frame.back, f);
    let w = walk(&img.mem, &l, &img.anchors);
    let err = w.interpreters[0].threads[0].error.clone().unwrap();
    assert_eq!(err, WalkError::FrameLoop(f));
    assert_eq!(err.to_string(), format!("the frame chain loops at {f:#x}"));
    // A thread list that loops.
    let mut img = build_image(&l, &threads, &SynthOptions::default());
    img.mem.write_u64(img.tstates[1] + l.tstate.next, img.tstates[0]);
    let w = walk(&img.mem, &l, &img.anchors);
    assert!(w.errors.iter().any(|e| e.to_string().contains("the thread list loops")), "{:?}", w.errors);
    // A thread state of another interpreter.
    let mut img = build_image(&l, &threads, &SynthOptions::default());
    img.mem.write_u64(img.tstates[1] + l.tstate.interp, 0x1234);
    let w = walk(&img.mem, &l, &img.anchors);
    assert!(w.errors.iter().any(|e| e.to_string().contains("stale or corrupt")), "{:?}", w.errors);
    assert_eq!(w.interpreters[0].threads.len(), 1);
    // A code object of the wrong type.
    let img = build_image(&l, &threads, &SynthOptions::default());
    let mut a = img.anchors.clone();
    a.code_type = Some(0xdead);
    let w = walk(&img.mem, &l, &a);
    assert!(matches!(w.interpreters[0].threads[0].error, Some(WalkError::NoCodeObject { .. })));
    // No anchors at all.
    let w = walk(&img.mem, &l, &Default::default());
    assert!(!w.errors.is_empty());
}

struct TopFrameAddr(u64);
fn top_frame(mem: &ImageMemory, l: &Layout, ts: u64) -> TopFrameAddr {
    use crashcatch::process::MemoryExt;
    match l.tstate.top_frame {
        crashcatch::python::layout::TopFrame::Direct(o) => TopFrameAddr(mem.read_u64(ts + o).unwrap()),
        crashcatch::python::layout::TopFrame::ViaCFrame { cframe, current_frame } => {
            TopFrameAddr(mem.read_u64(mem.read_u64(ts + cframe).unwrap() + current_frame).unwrap())
        }
    }
}

/// The first shim frame from a thread state's top frame outwards.
fn first_shim(mem: &ImageMemory, l: &Layout, ts: u64) -> u64 {
    use crashcatch::process::MemoryExt;
    let mut f = top_frame(mem, l, ts).0;
    while !l.frame.shim_owners.contains(&mem.read_u8(f + l.frame.owner.unwrap()).unwrap()) {
        f = mem.read_u64(f + l.frame.back).unwrap();
    }
    f
}

#[test]
fn deep_recursion_is_capped() {
    let l = Layout::for_version(3, 12, 1).unwrap();
    let frames: Vec<SynthFrame> = (0..5000)
        .map(|i| SynthFrame {
            file: "/r.py".into(),
            function: "rec".into(),
            firstlineno: 1,
            line: 2,
            entry: i % 50 == 49,
        })
        .collect();
    let img = build_image(&l, &[SynthThread { thread_id: 1, native_thread_id: 1, frames }], &SynthOptions::default());
    let w = walk(&img.mem, &l, &img.anchors);
    let t = &w.interpreters[0].threads[0];
    assert!(t.frames.len() <= 4096);
    assert_eq!(t.error, Some(WalkError::TooManyFrames));
    assert_eq!(t.error.as_ref().unwrap().to_string(), "more than 4096 frames: stopped there");
}

/// An unreadable qualified name falls back to the plain name; when that fails too, the error
/// keeps both causes: the qualified name's (with the address and how much was readable) and
/// the fallback's own.
#[test]
fn unreadable_names_keep_their_causes() {
    use crashcatch::process::{MemoryExt, ReadError};
    use crashcatch::python::error::StringError;
    let l = Layout::for_version(3, 11, 7).unwrap();
    let threads = sample_threads(&l);
    let mut img = build_image(&l, &threads, &SynthOptions::default());
    let TopFrameAddr(f) = top_frame(&img.mem, &l, img.tstates[0]);
    let code = img.mem.read_u64(f + l.frame.code).unwrap() & !3;
    img.mem.write_u64(code + l.code.qualname.unwrap(), 0xdead_0000);
    img.mem.write_u64(code + l.code.name, 0);
    let w = walk(&img.mem, &l, &img.anchors);
    let err = w.interpreters[0].threads[0].error.clone().unwrap();
    let WalkError::Qualname { qualname, fallback } = &err else { panic!("{err:?}") };
    let StringError::Read { what: "string", source: ReadError { addr, len: 8, got: 0 } } = qualname else {
        panic!("{qualname:?}")
    };
    assert!((0xdead_0000..0xdead_0100).contains(addr), "{addr:#x}");
    assert_eq!(**fallback, WalkError::String { what: "co_name", source: StringError::NullString });
    assert_eq!(err.to_string(), format!("co_qualname: string: memory at {addr:#x} is not readable"));
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("co_name: NULL string"));
}
