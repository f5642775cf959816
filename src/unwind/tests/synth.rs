//! Unwinding synthetic stacks over a hand-made module whose functions and CFI are known exactly.

use super::elf::{self, op, Cie, Fde, Mapped, Sec};
use crate::arch::x86_64::Regs as X86Regs;
use crate::arch::x86_64::{SIGRETURN, UC_GREGS};
use crate::arch::{Arch, MAX_DWARF};
use crate::process::{ImageMemory, Registers};
use crate::unwind::step::{State, Step, Stepper};
use crate::unwind::{cfi, unwind, FrameAddress, Limits, UnwindStop, UnwoundFrame, UnwoundStack};
use crate::unwind::{Trust, UnwindErrorKind};

pub(crate) const BASE: u64 = 0x5555_0000_0000;
pub(crate) const STACK: u64 = 0x7ffe_0000_0000;

// Functions of the synthetic module (file addresses).
pub(crate) const LEAF: u64 = 0x1000; // CFA = rsp+8
pub(crate) const FRAMED: u64 = 0x1040; // push rbp; mov rsp,rbp: CFA = rbp+16 from +4
pub(crate) const EXPR: u64 = 0x1080; // everything by DWARF expressions
pub(crate) const START: u64 = 0x10c0; // return address undefined: outermost
pub(crate) const NOCFI: u64 = 0x1100; // no FDE at all
pub(crate) const TRAMP: u64 = 0x1141; // mov $15,%rax; syscall (a nop before it), no FDE
pub(crate) const SIGCFI: u64 = 0x1180; // 'S' CIE, glibc-style expressions over the ucontext
pub(crate) const LOOP: u64 = 0x1200; // CFA = rsp: never moves
pub(crate) const REC: u64 = 0x1240; // CFA = rsp+16 from its first byte

// Return addresses: right after a call instruction in each function.
pub(crate) const LEAF_RA: u64 = LEAF + 0x15;
pub(crate) const FRAMED_RA: u64 = FRAMED + 0x15;
pub(crate) const FRAMED_RA_INDIRECT: u64 = FRAMED + 0x22; // after `ff d0`
pub(crate) const EXPR_RA: u64 = EXPR + 0x15;
pub(crate) const START_RA: u64 = START + 0x15;
pub(crate) const NOCFI_RA: u64 = NOCFI + 0x15;
pub(crate) const LOOP_RA: u64 = LOOP + 0x15;
pub(crate) const REC_RA: u64 = REC + 0x15;

pub(crate) fn a(svma: u64) -> u64 {
    BASE + svma
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CfiKind {
    EhFrameHdr,
    EhFrame,
    DebugFrame,
    /// `.debug_frame` only in a separate debug file found through `.gnu_debuglink`.
    SeparateDebugFrame,
}

fn text() -> Vec<u8> {
    let mut t = vec![0x90u8; 0x300];
    for f in [LEAF, FRAMED, EXPR, START, NOCFI, LOOP, REC] {
        let at = (f + 0x10 - 0x1000) as usize;
        t[at..at + 5].copy_from_slice(&[0xe8, 0, 0, 0, 0]);
    }
    let at = (FRAMED_RA_INDIRECT - 2 - 0x1000) as usize;
    t[at..at + 2].copy_from_slice(&[0xff, 0xd0]);
    let at = (TRAMP - 0x1000) as usize;
    t[at..at + 9].copy_from_slice(&SIGRETURN);
    t
}

fn cfi() -> (Vec<Cie>, Vec<Fde>) {
    let cie0 = Cie { instrs: op::cat(&[op::def_cfa(7, 8), op::offset(16, -8)]), signal: false };
    let cie_sig = Cie { instrs: vec![], signal: true };
    let fde = |start, instrs| Fde { start, len: 0x40, cie: 0, instrs };
    let mut fdes = vec![
        fde(LEAF, vec![]),
        fde(
            FRAMED,
            op::cat(&[
                op::advance(1),
                op::def_cfa_offset(16),
                op::offset(6, -16),
                op::advance(3),
                op::def_cfa_register(6),
            ]),
        ),
        fde(
            EXPR,
            op::cat(&[
                op::def_cfa_expression(&op::breg(7, 16)),
                op::expression(16, &op::plus_const(-8)),
                op::expression(6, &op::plus_const(-16)),
                op::val_expression(3, &op::breg(3, 1)),
            ]),
        ),
        fde(START, op::undefined(16)),
        fde(LOOP, op::def_cfa_offset(0)),
        fde(REC, op::def_cfa_offset(16)),
    ];
    // Like glibc's __restore_rt: the frame's sp is the ucontext; every register is in gregs.
    let g = |slot: i64| UC_GREGS as i64 + slot * 8;
    fdes.push(Fde {
        start: SIGCFI,
        len: 0x40,
        cie: 1,
        instrs: op::cat(&[
            op::def_cfa_expression(&op::cat(&[op::breg(7, g(15)), vec![op::DEREF]])),
            op::expression(16, &op::breg(7, g(16))),
            op::expression(6, &op::breg(7, g(10))),
            op::expression(3, &op::breg(7, g(11))),
        ]),
    });
    (vec![cie0, cie_sig], fdes)
}

/// The synthetic module, with its CFI in the given sections, and an empty stack region.
pub(crate) fn module(kind: CfiKind) -> Mapped {
    let (cies, mut fdes) = cfi();
    let mut secs = vec![Sec { name: ".text", addr: Some(0x1000), exec: true, data: text() }];
    let eh_addr = 0x2000;
    let hdr_addr = 0x2800;
    match kind {
        CfiKind::EhFrameHdr | CfiKind::EhFrame => {
            let (eh, table) = elf::eh_frame(eh_addr, &cies, &fdes);
            assert!(eh.len() < 0x800);
            secs.push(Sec { name: ".eh_frame", addr: Some(eh_addr), exec: false, data: eh });
            if kind == CfiKind::EhFrameHdr {
                let hdr = elf::eh_frame_hdr(hdr_addr, eh_addr, &table);
                secs.push(Sec { name: ".eh_frame_hdr", addr: Some(hdr_addr), exec: false, data: hdr });
            }
        }
        CfiKind::DebugFrame => {
            fdes.retain(|f| f.cie == 0);
            secs.push(Sec { name: ".debug_frame", addr: None, exec: false, data: elf::debug_frame(&cies[..1], &fdes) });
        }
        CfiKind::SeparateDebugFrame => {
            fdes.retain(|f| f.cie == 0);
            let debug = elf::build_elf(&[
                Sec { name: ".debug_frame", addr: None, exec: false, data: elf::debug_frame(&cies[..1], &fdes) },
                Sec { name: ".debug_info", addr: None, exec: false, data: vec![0; 16] },
            ]);
            secs.push(Sec { name: ".gnu_debuglink", addr: None, exec: false, data: elf::debuglink("libsynth.debug") });
            let mut m = elf::map_elf_with_debug(&elf::build_elf(&secs), Some(("libsynth.debug", &debug)), BASE);
            m.memory.add(STACK, vec![0; 0x10000]);
            return m;
        }
    }
    let mut m = elf::map_elf(&elf::build_elf(&secs), BASE);
    m.memory.add(STACK, vec![0; 0x10000]);
    m
}

pub(crate) fn regs(rip: u64, rsp: u64, rbp: u64) -> Registers {
    X86Regs { rip, rsp, rbp, ..Default::default() }.into()
}

fn run(m: &Mapped, r: &Registers) -> UnwoundStack {
    unwind(r, &m.memory, &m.modules, Limits::default())
}

fn f(pc: u64, ra: bool, sp: u64, trust: Trust) -> UnwoundFrame {
    let address = if ra { FrameAddress::return_address(pc).unwrap() } else { FrameAddress::InstructionPointer(pc) };
    UnwoundFrame { address, sp, trust }
}

const S: u64 = STACK + 0x1000;

/// leaf (CFA=rsp+8) -> framed (CFA=rbp+16) -> expr (expressions) -> start (RA undefined).
fn cfi_chain(kind: CfiKind) {
    let mut m = module(kind);
    let mem = &mut m.memory;
    mem.write_u64(S, a(FRAMED_RA));
    mem.write_u64(S + 0x40, S + 0x60); // framed's saved rbp
    mem.write_u64(S + 0x48, a(EXPR_RA));
    mem.write_u64(S + 0x50, 0xdead0); // expr's saved rbp
    mem.write_u64(S + 0x58, a(START_RA));
    let st = run(&m, &regs(a(LEAF + 0x20), S, S + 0x40));
    assert_eq!(st.error, None, "{kind:?}");
    assert_eq!(
        st.frames,
        vec![
            f(a(LEAF + 0x20), false, S, Trust::Context),
            f(a(FRAMED_RA), true, S + 8, Trust::Cfi),
            f(a(EXPR_RA), true, S + 0x50, Trust::Cfi),
            f(a(START_RA), true, S + 0x60, Trust::Cfi),
        ],
        "{kind:?}"
    );
    assert_eq!(st.elided, None);
}

#[test]
fn threads_sharing_one_cache_unwind_as_each_alone() {
    use crate::unwind::{unwind_with, UnwindCache};
    let mut m = module(CfiKind::EhFrameHdr);
    let mem = &mut m.memory;
    mem.write_u64(S, a(FRAMED_RA));
    mem.write_u64(S + 0x40, S + 0x60);
    mem.write_u64(S + 0x48, a(EXPR_RA));
    mem.write_u64(S + 0x50, 0xdead0);
    mem.write_u64(S + 0x58, a(START_RA));
    let r = regs(a(LEAF + 0x20), S, S + 0x40);
    let alone = run(&m, &r);
    assert_eq!(alone.frames.len(), 4);
    let mut cache = UnwindCache::new(Arch::X86_64);
    // The second thread at the same places is answered from the rows the first one found.
    for _ in 0..3 {
        let shared = unwind_with(&r, &m.memory, &m.modules, Limits::default(), &mut cache);
        assert_eq!(shared.frames, alone.frames);
        assert_eq!(shared.error, alone.error);
    }
    // A cache for another architecture is not used (and does no harm).
    let mut other = UnwindCache::new(Arch::Aarch64);
    assert_eq!(unwind_with(&r, &m.memory, &m.modules, Limits::default(), &mut other).frames, alone.frames);
}

#[test]
fn cfi_chain_through_eh_frame_hdr() {
    cfi_chain(CfiKind::EhFrameHdr);
}

#[test]
fn cfi_chain_through_eh_frame_without_hdr() {
    cfi_chain(CfiKind::EhFrame);
}

#[test]
fn cfi_chain_through_debug_frame() {
    cfi_chain(CfiKind::DebugFrame);
}

#[test]
fn cfi_chain_through_debug_frame_of_separate_debug_file() {
    cfi_chain(CfiKind::SeparateDebugFrame);
}

#[test]
fn expression_rules_compute_registers() {
    let mut m = module(CfiKind::EhFrameHdr);
    m.memory.write_u64(S + 8, a(START_RA));
    m.memory.write_u64(S, 0x1234_5670);
    let modules = &m.modules;
    let mut cache = cfi::CfiCache::new(Arch::X86_64);
    let mut w = Stepper { spec: Arch::X86_64.spec(), memory: &m.memory, modules, cfi: &mut cache };
    let mut regs = [None; MAX_DWARF];
    regs[7] = Some(S);
    regs[3] = Some(41);
    regs[6] = Some(7);
    regs[0] = Some(99);
    let cur = State { regs, address: FrameAddress::return_address(a(EXPR_RA)).unwrap(), trust: Trust::Cfi };
    let Ok(Step::Caller(next)) = w.step(&cur) else { panic!("no caller") };
    assert_eq!(next.address, FrameAddress::return_address(a(START_RA)).unwrap());
    assert_eq!(next.regs[7], Some(S + 16), "rsp = CFA");
    assert_eq!(next.regs[6], Some(0x1234_5670), "rbp = [CFA-16]");
    assert_eq!(next.regs[3], Some(42), "rbx = rbx+1 (val_expression)");
    assert_eq!(next.regs[0], None, "rax is clobbered by calls");
    // Without rbx, only rbx is lost; the frame still unwinds.
    let mut cur2 = cur;
    cur2.regs[3] = None;
    let Ok(Step::Caller(next)) = w.step(&cur2) else { panic!("no caller") };
    assert_eq!((next.address.address(), next.regs[3]), (a(START_RA), None));
}

#[test]
fn frame_pointer_chain_where_there_is_no_cfi() {
    let mut m = module(CfiKind::EhFrameHdr);
    let mem = &mut m.memory;
    mem.write_u64(S + 0x20, S + 0x40);
    mem.write_u64(S + 0x28, a(NOCFI_RA));
    mem.write_u64(S + 0x40, S + 0x80);
    mem.write_u64(S + 0x48, a(FRAMED_RA_INDIRECT));
    mem.write_u64(S + 0x88, a(START_RA));
    let st = run(&m, &regs(a(NOCFI + 0x20), S, S + 0x20));
    assert_eq!(st.error, None);
    assert_eq!(
        st.frames,
        vec![
            f(a(NOCFI + 0x20), false, S, Trust::Context),
            f(a(NOCFI_RA), true, S + 0x30, Trust::FramePointer),
            f(a(FRAMED_RA_INDIRECT), true, S + 0x50, Trust::FramePointer),
            f(a(START_RA), true, S + 0x90, Trust::Cfi),
        ]
    );
}

#[test]
fn zero_frame_pointer_ends_a_stack_without_cfi() {
    let mut m = module(CfiKind::EhFrameHdr);
    m.memory.write_u64(S + 0x20, 0);
    m.memory.write_u64(S + 0x28, a(NOCFI_RA));
    let st = run(&m, &regs(a(NOCFI + 0x20), S, S + 0x20));
    assert_eq!(st.error, None);
    assert_eq!(st.frames.len(), 2);
}

#[test]
fn call_through_null_pointer_takes_return_address_at_rsp() {
    let mut m = module(CfiKind::EhFrameHdr);
    m.memory.write_u64(S, a(LEAF_RA));
    m.memory.write_u64(S + 8, a(START_RA));
    for bad_pc in [0, 0x1234, STACK + 0x10] {
        let st = run(&m, &regs(bad_pc, S, 0));
        assert_eq!(st.error, None);
        assert_eq!(
            st.frames,
            vec![
                f(bad_pc, false, S, Trust::Context),
                f(a(LEAF_RA), true, S + 8, Trust::Scan),
                f(a(START_RA), true, S + 16, Trust::Cfi),
            ]
        );
    }
}

#[test]
fn scanning_finds_a_return_address_after_a_call() {
    let mut m = module(CfiKind::EhFrameHdr);
    let mem = &mut m.memory;
    mem.write_u64(S, 5);
    mem.write_u64(S + 8, a(LEAF + 0x21)); // code, but not after a call
    mem.write_u64(S + 16, BASE + 0x90_0000); // not code
    mem.write_u64(S + 24, a(EXPR_RA));
    mem.write_u64(S + 40, a(START_RA));
    // rbp is not a frame pointer (unaligned), so the scan is the only way on.
    let st = run(&m, &regs(a(NOCFI + 0x20), S, 0x1233));
    assert_eq!(st.error, None);
    assert_eq!(
        st.frames,
        vec![
            f(a(NOCFI + 0x20), false, S, Trust::Context),
            f(a(EXPR_RA), true, S + 32, Trust::Scan),
            f(a(START_RA), true, S + 48, Trust::Cfi),
        ]
    );
}

#[test]
fn indirect_call_forms_are_recognised() {
    let mut m = module(CfiKind::EhFrameHdr);
    m.memory.write_u64(S + 8, a(FRAMED_RA_INDIRECT));
    m.memory.write_u64(S + 0x100, a(START_RA)); // framed's [rbp+8]; rbp is unknown after a scan
    let st = run(&m, &regs(a(NOCFI + 0x20), S, 0x1233));
    assert_eq!(st.frames[1], f(a(FRAMED_RA_INDIRECT), true, S + 16, Trust::Scan));
}

fn write_gregs(mem: &mut ImageMemory, uc: u64, rip: u64, rsp: u64, rbp: u64) {
    // gregs: R8..R15, RDI, RSI, RBP, RBX, RDX, RAX, RCX, RSP, RIP
    for slot in 0..17u64 {
        mem.write_u64(uc + UC_GREGS + slot * 8, 0x1000 + slot);
    }
    mem.write_u64(uc + UC_GREGS + 10 * 8, rbp);
    mem.write_u64(uc + UC_GREGS + 15 * 8, rsp);
    mem.write_u64(uc + UC_GREGS + 16 * 8, rip);
}

#[test]
fn signal_frame_by_trampoline_bytes_restores_the_interrupted_registers() {
    let mut m = module(CfiKind::EhFrameHdr);
    // The handler runs on an alternate stack above the interrupted one.
    let hs = STACK + 0x8000;
    let r = STACK + 0x100;
    m.memory.write_u64(hs, a(TRAMP));
    write_gregs(&mut m.memory, hs + 8, a(FRAMED + 0x20), r, r + 0x30);
    m.memory.write_u64(r + 0x30, 0);
    m.memory.write_u64(r + 0x38, a(START_RA));
    let st = run(&m, &regs(a(LEAF + 0x20), hs, 0));
    assert_eq!(st.error, None);
    assert_eq!(
        st.frames,
        vec![
            f(a(LEAF + 0x20), false, hs, Trust::Context),
            f(a(TRAMP), false, hs + 8, Trust::Cfi),
            f(a(FRAMED + 0x20), false, r, Trust::Signal),
            f(a(START_RA), true, r + 0x40, Trust::Cfi),
        ]
    );
}

#[test]
fn signal_frame_by_cfi_augmentation() {
    let mut m = module(CfiKind::EhFrameHdr);
    let hs = STACK + 0x8000;
    let r = STACK + 0x100;
    m.memory.write_u64(hs, a(SIGCFI + 1));
    write_gregs(&mut m.memory, hs + 8, a(FRAMED + 0x20), r, r + 0x30);
    m.memory.write_u64(r + 0x38, a(START_RA));
    let st = run(&m, &regs(a(LEAF + 0x20), hs, 0));
    assert_eq!(st.error, None);
    assert_eq!(
        st.frames,
        vec![
            f(a(LEAF + 0x20), false, hs, Trust::Context),
            f(a(SIGCFI + 1), true, hs + 8, Trust::Cfi),
            f(a(FRAMED + 0x20), false, r, Trust::Signal),
            f(a(START_RA), true, r + 0x40, Trust::Cfi),
        ]
    );
}

#[test]
fn zero_return_address_ends_the_stack() {
    let m = module(CfiKind::EhFrameHdr);
    let st = run(&m, &regs(a(LEAF + 0x20), S, 0));
    assert_eq!((st.frames.len(), st.error), (1, None));
}

#[test]
fn stack_pointer_that_does_not_move_is_an_error() {
    let mut m = module(CfiKind::EhFrameHdr);
    m.memory.write_u64(S - 8, a(LOOP_RA));
    let st = run(&m, &regs(a(LOOP + 0x20), S, 0));
    assert_eq!(st.frames.len(), 1);
    let e = st.error.expect("an error");
    assert!(matches!(e, UnwindStop::StackPointerNotIncreasing { .. }), "{e:?}");
    assert!(e.to_string().contains("did not increase"), "{e}");
}

#[test]
fn unreadable_stack_is_an_error() {
    let m = module(CfiKind::EhFrameHdr);
    let st = run(&m, &regs(a(LEAF + 0x20), 0x1000, 0));
    assert_eq!(st.frames.len(), 1);
    let e = st.error.expect("an error");
    assert_eq!(e.kind(), UnwindErrorKind::ReadFailed, "{e:?}");
    assert!(e.to_string().contains("not readable"), "{e}");
}

/// `n` frames of REC (16-byte frames), then START: n + 2 frames in all.
fn recursion(n: u64) -> (Mapped, Registers, u64) {
    let mut m = module(CfiKind::EhFrameHdr);
    let s = STACK + 0x20000;
    let mut words = vec![0u8; (16 * (n + 2) + 64) as usize];
    let mut put = |addr: u64, v: u64| {
        let o = (addr - s) as usize;
        words[o..o + 8].copy_from_slice(&v.to_le_bytes());
    };
    for i in 0..n {
        put(s + 16 * i + 8, a(REC_RA));
    }
    put(s + 16 * n + 8, a(START_RA));
    m.memory.add(s, words);
    (m, regs(a(REC + 0x20), s, 0), s)
}

#[test]
fn hundred_thousand_frames_are_elided_in_the_middle() {
    let n = 100_000u64;
    let (m, r, s) = recursion(n);
    let limits = Limits::default();
    let st = unwind(&r, &m.memory, &m.modules, limits);
    assert_eq!(st.error, None);
    let total = n + 2;
    let kept = (limits.keep_top + limits.keep_bottom) as u64;
    assert_eq!(st.frames.len() as u64, kept);
    assert_eq!(st.elided, Some((limits.keep_top, total - kept)));
    assert_eq!(st.frames[0], f(a(REC + 0x20), false, s, Trust::Context));
    for (i, fr) in st.frames[1..limits.keep_top].iter().enumerate() {
        assert_eq!(*fr, f(a(REC_RA), true, s + 16 * (i as u64 + 1), Trust::Cfi));
    }
    // The bottom frames are the last ones, in order, ending at START.
    let bottom = &st.frames[limits.keep_top..];
    for (j, fr) in bottom.iter().enumerate() {
        let index = total - limits.keep_bottom as u64 + j as u64; // frame number in the full stack
        let pc = if index == total - 1 { a(START_RA) } else { a(REC_RA) };
        assert_eq!(*fr, f(pc, true, s + 16 * index, Trust::Cfi), "bottom frame {j}");
    }
}

#[test]
fn frame_limit_stops_with_an_error_and_keeps_both_ends() {
    let (m, r, _) = recursion(5_000);
    let limits = Limits { max_frames: 1_000, keep_top: 10, keep_bottom: 5, deadline: None };
    let st = unwind(&r, &m.memory, &m.modules, limits);
    assert_eq!(st.error, Some(UnwindStop::FrameLimit { limit: 1_000 }));
    assert_eq!(st.error.map(|e| e.to_string()).unwrap_or_default(), "stopped after 1000 frames (the frame limit)");
    assert_eq!(st.frames.len(), 15);
    assert_eq!(st.elided, Some((10, 985)));
    assert!(st.frames.iter().skip(1).all(|f| f.address.address() == a(REC_RA)));
}

/// A deadline already passed: the stack still gets its first `DEADLINE_EVERY` frames, then
/// stops with the kind that says why.
#[test]
fn a_spent_deadline_stops_with_its_own_error() {
    let (m, r, _) = recursion(1_000);
    let limits = Limits { deadline: Some(std::time::Instant::now()), ..Limits::default() };
    let st = unwind(&r, &m.memory, &m.modules, limits);
    let e = st.error.expect("an error");
    assert_eq!(e, UnwindStop::Deadline { frames: crate::unwind::DEADLINE_EVERY });
    assert_eq!(e.kind(), UnwindErrorKind::BudgetSpent);
    assert_eq!(e.to_string(), "stopped after 256 frames: the report's time budget was spent");
}

#[test]
fn tiny_limits() {
    let (m, r, _) = recursion(20);
    let st = unwind(&r, &m.memory, &m.modules, Limits { max_frames: 100, keep_top: 0, keep_bottom: 3, deadline: None });
    assert_eq!(st.frames.len(), 3);
    assert_eq!(st.elided, Some((0, 19)));
    assert_eq!(st.frames[2].address.address(), a(START_RA));
    let st = unwind(&r, &m.memory, &m.modules, Limits { max_frames: 100, keep_top: 4, keep_bottom: 0, deadline: None });
    assert_eq!(st.frames.len(), 4);
    assert_eq!(st.elided, Some((4, 18)));
    let st =
        unwind(&r, &m.memory, &m.modules, Limits { max_frames: 100, keep_top: 30, keep_bottom: 30, deadline: None });
    assert_eq!((st.frames.len(), st.elided), (22, None));
}
