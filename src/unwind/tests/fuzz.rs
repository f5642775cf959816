//! Random registers and random stacks: the unwinder must neither panic nor run away.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::real::{self_modules, Overlay};
use super::synth::{self, a, CfiKind, STACK};
use crate::arch::x86_64::Regs as X86Regs;
use crate::modules::ModuleSet;
use crate::process::{ImageMemory, Memory, Registers};
use crate::unwind::Trust;
use crate::unwind::{unwind, Limits};

const LIMITS: Limits = Limits { max_frames: 1_000, keep_top: 20, keep_bottom: 10, deadline: None };

/// A word that is sometimes interesting: one of `addrs` (+ a small offset), a stack address, or noise.
fn word(addrs: Vec<u64>, stack: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => (proptest::sample::select(addrs), 0u64..3).prop_map(|(a, o)| a + o),
        3 => (0u64..0x2000).prop_map(move |o| stack + o * 8),
        1 => Just(0u64),
        2 => any::<u64>(),
    ]
}

thread_local!(static DEEPEST: std::cell::Cell<u64> = const { std::cell::Cell::new(0) });

fn check(regs: &Registers, memory: &dyn Memory, modules: &ModuleSet) -> Result<(), TestCaseError> {
    let st = unwind(regs, memory, modules, LIMITS);
    DEEPEST.with(|d| d.set(d.get().max(st.frames.len() as u64 + st.elided.map_or(0, |e| e.1))));
    prop_assert!(!st.frames.is_empty());
    prop_assert!(st.frames.len() <= LIMITS.keep_top + LIMITS.keep_bottom);
    prop_assert_eq!(st.frames[0].address.address(), regs.pc());
    prop_assert_eq!(st.frames[0].trust, Trust::Context);
    let total = st.frames.len() as u64 + st.elided.map_or(0, |(_, n)| n);
    prop_assert!(total <= LIMITS.max_frames as u64);
    if let Some((at, n)) = st.elided {
        prop_assert_eq!(at, LIMITS.keep_top);
        prop_assert!(n > 0);
    }
    Ok(())
}

/// Random stack contents: noise, or a repeating (word, `pattern`) recursion, with chosen words
/// placed at random slots.
fn stack_words(words: impl Strategy<Value = u64>, pattern: u64) -> impl Strategy<Value = Vec<u64>> {
    let noise = proptest::collection::vec(any::<u64>(), 0..0x1000);
    let recursion = proptest::collection::vec(any::<u64>(), 0..0x1000).prop_map(move |mut v| {
        v.iter_mut().skip(1).step_by(2).for_each(|w| *w = pattern);
        v
    });
    (prop_oneof![noise, recursion], proptest::collection::vec((any::<proptest::sample::Index>(), words), 0..256))
        .prop_map(|(mut noise, placed)| {
            if !noise.is_empty() {
                for (i, w) in placed {
                    let at = i.index(noise.len());
                    noise[at] = w;
                }
            }
            noise
        })
}

fn stack_of(words: &[u64], at: u64) -> ImageMemory {
    let mut m = ImageMemory::new();
    m.add(at, words.iter().flat_map(|w| w.to_le_bytes()).collect());
    m
}

#[test]
fn random_stacks_over_the_synthetic_module() {
    let m = synth::module(CfiKind::EhFrameHdr);
    let interesting: Vec<u64> = [
        synth::LEAF_RA,
        synth::FRAMED_RA,
        synth::FRAMED_RA_INDIRECT,
        synth::EXPR_RA,
        synth::START_RA,
        synth::NOCFI_RA,
        synth::LOOP_RA,
        synth::REC_RA,
        synth::TRAMP,
        synth::SIGCFI + 1,
        synth::LEAF + 0x20,
        synth::FRAMED + 0x20,
    ]
    .iter()
    .map(|&s| a(s))
    .collect();
    let stack = STACK + 0x20000;
    let strategy = (
        stack_words(word(interesting.clone(), stack), a(synth::REC_RA)),
        word(interesting.clone(), stack),
        (0u64..0x800).prop_map(move |o| stack + o * 4),
        word(interesting, stack),
        any::<[u64; 6]>(),
    );
    let mut runner = TestRunner::new(Config { cases: 256, failure_persistence: None, ..Config::default() });
    runner
        .run(&strategy, |(words, rip, rsp, rbp, other)| {
            let top = stack_of(&words, stack);
            let memory = Overlay { top: &top, rest: &m.memory };
            let regs = X86Regs {
                rip,
                rsp,
                rbp,
                rbx: other[0],
                r12: other[1],
                r13: other[2],
                r14: other[3],
                r15: other[4],
                rax: other[5],
                ..Default::default()
            }
            .into();
            check(&regs, &memory, &m.modules)
        })
        .unwrap();
    // The recursion pattern must have produced stacks deep enough to exercise elision and the limit.
    assert!(DEEPEST.with(|d| d.get()) > (LIMITS.keep_top + LIMITS.keep_bottom) as u64);
}

#[test]
fn random_stacks_over_this_process_modules() {
    let (live, modules) = self_modules();
    // Code addresses of this binary and of libc.
    let mut code: Vec<u64> = vec![
        random_stacks_over_this_process_modules as *const () as usize as u64,
        check as *const () as usize as u64,
        unwind as *const () as usize as u64,
        libc::getpid as *const () as usize as u64,
        libc::raise as *const () as usize as u64,
        libc::read as *const () as usize as u64,
    ];
    // Plus some real return addresses: the frames of this very thread.
    // SAFETY: zeroed ucontext_t is a valid buffer for getcontext.
    let mut uc: libc::ucontext_t = unsafe { std::mem::zeroed() };
    // SAFETY: uc is writable.
    unsafe { libc::getcontext(&mut uc) };
    let here = unwind(&super::real::regs_from_ucontext(&uc), &live, &modules, Limits::default());
    code.extend(here.frames.iter().map(|f| f.address.address()));
    let stack = 0x6fff_0000_0000u64;
    let pattern = code[code.len() / 2];
    let strategy = (
        stack_words(word(code.clone(), stack), pattern),
        word(code.clone(), stack),
        (0u64..0x800).prop_map(move |o| stack + o * 8),
        word(code, stack),
        any::<[u64; 5]>(),
    );
    let mut runner = TestRunner::new(Config { cases: 96, failure_persistence: None, ..Config::default() });
    runner
        .run(&strategy, |(words, rip, rsp, rbp, other)| {
            let top = stack_of(&words, stack);
            let memory = Overlay { top: &top, rest: &live };
            let regs = X86Regs {
                rip,
                rsp,
                rbp,
                rbx: other[0],
                r12: other[1],
                r13: other[2],
                r14: other[3],
                r15: other[4],
                ..Default::default()
            }
            .into();
            check(&regs, &memory, &modules)
        })
        .unwrap();
}
