//! Property tests: the walker (and the state built from it) over mutated and random memory
//! images never panics and always finishes in bounded time.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

use std::time::{Duration, Instant};

use proptest::prelude::*;

use crashcatch::arch::x86_64::Regs as X86Regs;
use crashcatch::merge::merge_thread;
use crashcatch::process::{ImageMemory, Snapshot, ThreadInfo};
use crashcatch::python::fill_state;
use crashcatch::python::layout::Layout;
use crashcatch::python::synth::{build_image, sample_threads, SynthOptions};
use crashcatch::python::walk::{walk, Anchors};
use crashcatch::report::model::PythonState;

const VERSIONS: &[(u32, u32, u32)] =
    &[(2, 7, 18), (3, 6, 15), (3, 7, 16), (3, 8, 18), (3, 9, 18), (3, 10, 13), (3, 11, 7), (3, 12, 1), (3, 13, 0)];

/// Generous for a debug build: the walk of a sane image takes well under a millisecond.
const TIME_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
enum Mutation {
    Byte {
        region: usize,
        at: usize,
        value: u8,
    },
    Word {
        region: usize,
        at: usize,
        value: u64,
    },
    /// Point a word at (an offset into) another region: cycles, aliasing, type confusion.
    Pointer {
        region: usize,
        at: usize,
        target: usize,
        offset: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>(), any::<u8>()).prop_map(|(region, at, value)| Mutation::Byte {
            region,
            at,
            value
        }),
        (any::<usize>(), any::<usize>(), any::<u64>()).prop_map(|(region, at, value)| Mutation::Word {
            region,
            at,
            value
        }),
        // Edge values: near the top of the address space, negative lengths, huge counts.
        (
            any::<usize>(),
            any::<usize>(),
            prop_oneof![
                Just(u64::MAX),
                Just(u64::MAX - 7),
                Just(u64::MAX - 64),
                Just(i64::MAX as u64),
                Just(1u64 << 31),
                Just(0u64),
                Just(1u64),
                (0u64..512).prop_map(|k| u64::MAX - k)
            ]
        )
            .prop_map(|(region, at, value)| Mutation::Word { region, at, value }),
        (any::<usize>(), any::<usize>(), any::<usize>(), 0usize..256)
            .prop_map(|(region, at, target, offset)| Mutation::Pointer { region, at, target, offset }),
    ]
}

fn apply(mem: &mut ImageMemory, muts: &[Mutation]) {
    let regions: Vec<(u64, usize)> = mem.regions().map(|(a, b)| (a, b.len())).collect();
    for m in muts {
        let (region, at, bytes) = match *m {
            Mutation::Byte { region, at, value } => (region, at, vec![value]),
            Mutation::Word { region, at, value } => (region, at & !7, value.to_le_bytes().to_vec()),
            Mutation::Pointer { region, at, target, offset } => {
                let (ta, tl) = regions[target % regions.len()];
                (region, at & !7, (ta + (offset % tl.max(1)) as u64).to_le_bytes().to_vec())
            }
        };
        let (a, len) = regions[region % regions.len()];
        if len < bytes.len() {
            continue;
        }
        // Words land on 8-byte boundaries, as the fields they overwrite do.
        let off = ((at % (len - bytes.len() + 1)) & !(bytes.len() - 1)) as u64;
        mem.write(a + off, &bytes);
    }
}

fn snapshot(mem: &ImageMemory) -> Snapshot<'_> {
    let regs = |fs| Some(X86Regs { fs_base: fs, ..Default::default() }.into());
    Snapshot {
        pid: 100,
        crashed_tid: 100,
        signal: Default::default(),
        exe: None,
        cmdline: vec![],
        maps: vec![],
        threads: vec![
            ThreadInfo { tid: 100, regs: regs(0x7f00_0000_1000), ..Default::default() },
            ThreadInfo { tid: 101, regs: None, ..Default::default() },
        ],
        memory: mem,
        view: &crashcatch::process::view::DETACHED,
        files: crashcatch::process::TargetFiles::under(std::path::Path::new("/nonexistent"), None),
    }
}

/// Walk, build the state and merge every thread: none of it may panic.
fn exercise(mem: &ImageMemory, l: &Layout, anchors: &Anchors) -> Duration {
    let t0 = Instant::now();
    let w = walk(mem, l, anchors);
    let snap = snapshot(mem);
    let mut st = PythonState::default();
    fill_state(&mut st, &snap, mem, l, &w);
    for i in &st.interpreters {
        for t in &i.threads {
            let _ = merge_thread(vec![], Some(t));
        }
    }
    t0.elapsed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_images_never_panic(v in 0..VERSIONS.len(), gil in proptest::option::of(0usize..2),
                                  fin in proptest::option::of(0usize..2),
                                  muts in proptest::collection::vec(mutation(), 1..24)) {
        let (a, b, c) = VERSIONS[v];
        let l = Layout::for_version(a, b, c).unwrap();
        let threads = sample_threads(&l);
        let mut img = build_image(&l, &threads, &SynthOptions { gil_holder: gil, finalizing: fin, ..Default::default() });
        apply(&mut img.mem, &muts);
        let took = exercise(&img.mem, &l, &img.anchors);
        prop_assert!(took < TIME_LIMIT, "took {took:?}");
    }

    /// An image read with another version's table is garbage to the walker: still no panic.
    #[test]
    fn wrong_layouts_never_panic(v in 0..VERSIONS.len(), w in 0..VERSIONS.len()) {
        let (a, b, c) = VERSIONS[v];
        let built = Layout::for_version(a, b, c).unwrap();
        let (a, b, c) = VERSIONS[w];
        let read = Layout::for_version(a, b, c).unwrap();
        let img = build_image(&built, &sample_threads(&built), &SynthOptions { gil_holder: Some(1), ..Default::default() });
        let mut anchors = img.anchors.clone();
        anchors.runtime = Some(img.runtime);
        anchors.interp_head_ptr = anchors.interp_head_ptr.or(Some(img.runtime));
        let took = exercise(&img.mem, &read, &anchors);
        prop_assert!(took < TIME_LIMIT);
    }

    /// Random bytes everywhere, anchors pointing into them.
    #[test]
    fn random_images_never_panic(v in 0..VERSIONS.len(),
                                 regions in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 8..2048), 1..8),
                                 anchor_sel in proptest::collection::vec((any::<usize>(), any::<usize>()), 6)) {
        let (a, b, c) = VERSIONS[v];
        let l = Layout::for_version(a, b, c).unwrap();
        let mut mem = ImageMemory::new();
        let mut spans = Vec::new();
        for (i, r) in regions.into_iter().enumerate() {
            let at = 0x10000 + (i as u64) * 0x10000;
            spans.push((at, r.len()));
            mem.add(at, r);
        }
        let pick = |k: usize| {
            let (r, o) = anchor_sel[k];
            let (at, len) = spans[r % spans.len()];
            Some(at + (o % len) as u64)
        };
        let anchors = Anchors {
            runtime: pick(0),
            interp_head_ptr: pick(1),
            tstate_current_ptr: pick(2),
            finalizing_ptr: pick(3),
            code_type: pick(4),
            frame_type: pick(5),
        };
        let took = exercise(&mem, &l, &anchors);
        prop_assert!(took < TIME_LIMIT);
        // Without type checks more garbage gets through to the decoders.
        let took = exercise(&mem, &l, &Anchors { code_type: None, frame_type: None, ..anchors });
        prop_assert!(took < TIME_LIMIT);
    }
}
