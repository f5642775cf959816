//! aarch64 stacks unwound on any machine: stacks recorded from fixtures/aarch64/stack.c (built
//! with Debian's gcc-aarch64-linux-gnu and run under qemu-aarch64 by scripts/aarch64-record.sh:
//! its real `.eh_frame`, frame records and pointer-authenticated return addresses), and
//! synthetic ones for what a recording cannot show (the kernel's signal frame, a call through
//! NULL with the return address still in x30).

use super::elf::{self, Sec};
use crate::arch::aarch64::{Regs, SIGFRAME_X0, SIGRETURN};
use crate::arch::Registers;
use crate::process::ImageMemory;
use crate::symbolize::Symbolizer;
use crate::unwind::Trust;
use crate::unwind::{unwind, FrameAddress, Limits, UnwoundFrame, UnwoundStack};

/// Where the fixture's code is loaded (static, not PIE).
const LOAD: u64 = 0x40_0000;

struct Recording {
    regs: Registers,
    stack: Vec<u8>,
}

fn words(b: &[u8]) -> impl Iterator<Item = u64> + '_ {
    b.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap()))
}

/// The record stack.c writes: magic, x0..x30, sp, pc, the stack's length, then the stack.
fn parse(rec: &[u8]) -> Recording {
    let w: Vec<u64> = words(&rec[..35 * 8]).collect();
    assert_eq!(&rec[..8], b"ccstack1", "not a stack.c recording");
    let mut x = [0u64; 31];
    x.copy_from_slice(&w[1..32]);
    let (sp, pc, len) = (w[32], w[33], w[34] as usize);
    let stack = rec[35 * 8..].to_vec();
    assert_eq!(stack.len(), len, "recording truncated");
    Recording { regs: Registers::Aarch64(Regs { x, sp, pc, ..Default::default() }), stack }
}

/// Unwinds a recording over its own binary; the frames and their function names.
fn unwind_recorded(elf_bytes: &[u8], rec: &[u8]) -> (UnwoundStack, Vec<String>) {
    let r = parse(rec);
    let mut m = elf::map_elf(elf_bytes, LOAD);
    m.memory.add(r.regs.sp(), r.stack.clone());
    let st = unwind(&r.regs, &m.memory, &m.modules, Limits::default());
    let sym = Symbolizer::new(&m.modules);
    let names = st.frames.iter().map(|f| sym.symbolize(f).function.unwrap_or_else(|| "?".into())).collect();
    (st, names)
}

const CALL_CHAIN: [&str; 6] = ["cc_snap", "leaf", "middle", "outer", "start_c", "_start"];

fn check(variant: &str, st: &UnwoundStack, names: &[String], trust_after_leaf: Trust) {
    assert_eq!(names, CALL_CHAIN, "{variant}: {st:#x?}");
    assert!(st.error.is_none(), "{variant}: {:?}", st.error);
    assert_eq!(st.frames[0].trust, Trust::Context);
    // cc_snap has CFI (CFA = sp, return address in x30): its caller has the same sp.
    assert_eq!((st.frames[1].trust, st.frames[1].sp), (Trust::Cfi, st.frames[0].sp), "{variant}");
    for f in &st.frames[2..] {
        assert_eq!(f.trust, trust_after_leaf, "{variant}: {f:#x?}");
        assert!(f.address.is_return_address() && f.address.address() >> 48 == 0, "{variant}: {f:#x?}");
    }
    for pair in st.frames[1..].windows(2) {
        assert!(pair[1].sp > pair[0].sp, "{variant}: sp must grow: {pair:#x?}");
    }
}

#[test]
fn recorded_stack_unwinds_by_cfi() {
    let (st, names) = unwind_recorded(
        include_bytes!("../../../tests/data/aarch64/cfi/stack"),
        include_bytes!("../../../tests/data/aarch64/cfi/stack.rec"),
    );
    check("cfi", &st, &names, Trust::Cfi);
}

#[test]
fn recorded_stack_unwinds_by_frame_records() {
    // No .eh_frame for the C functions: x29's frame records {fp, lr} carry the walk. The last
    // step, from start_c into _start, still uses the frame record.
    let (st, names) = unwind_recorded(
        include_bytes!("../../../tests/data/aarch64/fp/stack"),
        include_bytes!("../../../tests/data/aarch64/fp/stack.rec"),
    );
    check("fp", &st, &names, Trust::FramePointer);
}

#[test]
fn recorded_stack_with_signed_return_addresses() {
    let elf = include_bytes!("../../../tests/data/aarch64/pac/stack");
    let rec = include_bytes!("../../../tests/data/aarch64/pac/stack.rec");
    // The recording really holds signed return addresses (PAC bits above bit 48).
    let r = parse(rec);
    let code = LOAD..LOAD + 0x1000;
    let signed = words(&r.stack).filter(|w| w >> 48 != 0 && code.contains(&(w & ((1 << 48) - 1)))).count();
    assert!(signed >= 3, "expected signed return addresses on the recorded stack");
    let (st, names) = unwind_recorded(elf, rec);
    check("pac", &st, &names, Trust::Cfi);
}

// ---------------------------------------------------------------------------------------------
// Synthetic: a module of nops with a few `bl` instructions and the sigreturn trampoline.

const BASE: u64 = 0x5555_0000_0000;
const STACK: u64 = 0xffff_f000_0000;
const TRAMP: u64 = 0x1100;
const INTERRUPTED: u64 = 0x1200;
const CALLER_RA: u64 = 0x1304; // after the `bl` at 0x1300
const OUTER_RA: u64 = 0x1404; // after the `bl` at 0x1400
const NOP: u32 = 0xd503_201f;
const BL: u32 = 0x9400_0010;

fn a(svma: u64) -> u64 {
    BASE + svma
}

fn module() -> elf::Mapped {
    let mut text: Vec<u8> = std::iter::repeat_n(NOP.to_le_bytes(), 0x500 / 4).flatten().collect();
    let put = |t: &mut Vec<u8>, at: u64, b: &[u8]| {
        let o = (at - 0x1000) as usize;
        t[o..o + b.len()].copy_from_slice(b);
    };
    put(&mut text, TRAMP, &SIGRETURN);
    put(&mut text, CALLER_RA - 4, &BL.to_le_bytes());
    put(&mut text, OUTER_RA - 4, &BL.to_le_bytes());
    let mut m =
        elf::map_elf(&elf::build_elf(&[Sec { name: ".text", addr: Some(0x1000), exec: true, data: text }]), BASE);
    m.memory.add(STACK, vec![0; 0x4000]);
    m
}

fn regs(pc: u64, sp: u64, fp: u64, lr: u64) -> Registers {
    let mut x = [0u64; 31];
    x[29] = fp;
    x[30] = lr;
    Registers::Aarch64(Regs { x, sp, pc, ..Default::default() })
}

fn f(pc: u64, ra: bool, sp: u64, trust: Trust) -> UnwoundFrame {
    let address = if ra { FrameAddress::return_address(pc).unwrap() } else { FrameAddress::InstructionPointer(pc) };
    UnwoundFrame { address, sp, trust }
}

fn write(mem: &mut ImageMemory, at: u64, v: u64) {
    mem.write_u64(at, v);
}

#[test]
fn through_the_kernel_signal_frame() {
    let mut m = module();
    // At the trampoline, sp is the kernel's rt_sigframe: siginfo, then the ucontext.
    let sf = STACK + 0x100;
    let ctx = sf + SIGFRAME_X0;
    let (fp1, fp2) = (STACK + 0x2000, STACK + 0x2100);
    write(&mut m.memory, ctx + 29 * 8, fp1);
    write(&mut m.memory, ctx + 30 * 8, a(0x1250)); // the interrupted frame's own lr: not used
    write(&mut m.memory, ctx + 31 * 8, STACK + 0x1f00); // sp
    write(&mut m.memory, ctx + 32 * 8, a(INTERRUPTED)); // pc
                                                        // Frame records; the first return address is signed (PAC bits above bit 48).
    write(&mut m.memory, fp1, fp2);
    write(&mut m.memory, fp1 + 8, a(CALLER_RA) | 0x002a_0000_0000_0000);
    write(&mut m.memory, fp2, 0);
    write(&mut m.memory, fp2 + 8, a(OUTER_RA));
    let st = unwind(&regs(a(TRAMP), sf, 0, 0), &m.memory, &m.modules, Limits::default());
    assert_eq!(
        st.frames,
        vec![
            f(a(TRAMP), false, sf, Trust::Context),
            f(a(INTERRUPTED), false, STACK + 0x1f00, Trust::Signal),
            f(a(CALLER_RA), true, fp1 + 16, Trust::FramePointer),
            f(a(OUTER_RA), true, fp2 + 16, Trust::FramePointer),
        ],
        "{st:#x?}"
    );
}

#[test]
fn call_through_null_returns_by_the_link_register() {
    let m = module();
    let sp = STACK + 0x800;
    // pc 0: the return address is in x30, the stack untouched; the caller has the same sp.
    let st = unwind(&regs(0, sp, 0, a(CALLER_RA)), &m.memory, &m.modules, Limits::default());
    assert_eq!(st.frames[..2], [f(0, false, sp, Trust::Context), f(a(CALLER_RA), true, sp, Trust::Scan)], "{st:#x?}");
    // A link register that is not after a call is not believed.
    let st = unwind(&regs(0, sp, 0, a(CALLER_RA + 4)), &m.memory, &m.modules, Limits::default());
    assert!(st.frames.get(1).is_none_or(|f| f.address.address() != a(CALLER_RA + 4)), "{st:#x?}");
}
