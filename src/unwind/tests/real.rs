//! Unwinding this test's own thread, live: its real code, real CFI, real libc.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

use crate::arch::x86_64::Regs as X86Regs;
use crate::modules::ModuleSet;
use crate::process::live::LiveMemory;
use crate::process::maps::parse_maps;
use crate::process::Registers;
use crate::symbolize::Symbolizer;
use crate::unwind::Trust;
use crate::unwind::{unwind, Limits, UnwoundStack};

pub(crate) fn regs_from_ucontext(uc: &libc::ucontext_t) -> Registers {
    let g = &uc.uc_mcontext.gregs;
    let r = |i: libc::c_int| g[i as usize] as u64;
    X86Regs {
        rax: r(libc::REG_RAX),
        rbx: r(libc::REG_RBX),
        rcx: r(libc::REG_RCX),
        rdx: r(libc::REG_RDX),
        rsi: r(libc::REG_RSI),
        rdi: r(libc::REG_RDI),
        rbp: r(libc::REG_RBP),
        rsp: r(libc::REG_RSP),
        r8: r(libc::REG_R8),
        r9: r(libc::REG_R9),
        r10: r(libc::REG_R10),
        r11: r(libc::REG_R11),
        r12: r(libc::REG_R12),
        r13: r(libc::REG_R13),
        r14: r(libc::REG_R14),
        r15: r(libc::REG_R15),
        rip: r(libc::REG_RIP),
        ..Default::default()
    }
    .into()
}

pub(crate) fn self_modules() -> (LiveMemory, ModuleSet) {
    let pid = std::process::id() as i32;
    let memory = LiveMemory::new(pid);
    let text = std::fs::read_to_string("/proc/self/maps").expect("maps");
    // Other tests in this process map library files whole (MAP_SHARED, `r--s`) to read them;
    // such a mapping can land right below the library's own mappings, and ModuleSet::build
    // would then take it for the library's first segment (wrong bias). Loaded code is never
    // mapped shared, so leave those lines out here.
    let text: String = text
        .lines()
        .filter(|l| l.split_whitespace().nth(1).map_or(true, |p| !p.ends_with('s')))
        .map(|l| format!("{l}\n"))
        .collect();
    let maps = parse_maps(&text);
    let modules =
        ModuleSet::build(&maps, |p| Some(PathBuf::from(p)), &memory, |m| Some(crate::process::live::map_file(pid, m)));
    (memory, modules)
}

/// Unwinds from `regs` in this process and names each frame. `pushed`: one word at [rsp] that is
/// not really in memory (a simulated call).
fn unwind_self(regs: &Registers, pushed: Option<u64>) -> (UnwoundStack, Vec<String>) {
    let (memory, modules) = self_modules();
    let mut top = crate::process::ImageMemory::new();
    if let Some(w) = pushed {
        top.add(regs.sp(), w.to_le_bytes().to_vec());
    }
    let overlay = Overlay { top: &top, rest: &memory };
    let stack = unwind(regs, &overlay, &modules, Limits::default());
    let sym = Symbolizer::new(&modules);
    let names = stack.frames.iter().map(|f| sym.symbolize(f).function.unwrap_or_else(|| "??".into())).collect();
    (stack, names)
}

fn position(names: &[String], what: &str) -> usize {
    names.iter().position(|n| n.ends_with(what)).unwrap_or_else(|| panic!("no frame named {what} in {names:#?}"))
}

/// Where a thread's stack naturally ends: the main thread's _start or a thread's clone.
fn reaches_thread_start(names: &[String]) -> bool {
    let tail: Vec<&str> = names.iter().rev().take(3).map(|s| s.as_str()).collect();
    tail.iter().any(|n| {
        [
            "_start",
            "__libc_start_main",
            "__libc_start_call_main",
            "start_thread",
            "clone",
            "clone3",
            "__clone",
            "__clone3",
            "main",
        ]
        .iter()
        .any(|s| n == s || n.ends_with(&format!("::{s}")))
    })
}

fn describe(stack: &UnwoundStack, names: &[String]) -> String {
    let mut s = String::new();
    for (f, n) in stack.frames.iter().zip(names) {
        s += &format!("{:#x} {:?} ra={} {}\n", f.address.address(), f.trust, f.address.is_return_address(), n);
    }
    s + &format!("error: {:?}\n", stack.error)
}

type Out = Vec<(UnwoundStack, Vec<String>)>;

#[inline(never)]
fn ctx_a(out: &mut Out, null_call: bool) {
    ctx_b(out, null_call);
    black_box(out);
}

#[inline(never)]
fn ctx_b(out: &mut Out, null_call: bool) {
    ctx_c(out, null_call);
    black_box(out);
}

#[inline(never)]
fn ctx_c(out: &mut Out, null_call: bool) {
    // SAFETY: a zeroed ucontext_t is a valid buffer for getcontext to fill.
    let mut uc: libc::ucontext_t = unsafe { std::mem::zeroed() };
    // SAFETY: uc is a live, writable ucontext_t.
    let rc = unsafe { libc::getcontext(&mut uc) };
    assert_eq!(rc, 0);
    // Still inside ctx_c: the frames above the saved stack pointer are intact.
    let mut regs = regs_from_ucontext(&uc);
    if null_call {
        // As if ctx_c had called address 0 instead of getcontext: pc 0, return address pushed.
        let Registers::X86_64(r) = &mut regs else { unreachable!("x86_64 registers") };
        let ra = r.rip;
        r.rip = 0;
        r.rsp -= 8;
        out.push(unwind_self(&regs, Some(ra)));
    } else {
        out.push(unwind_self(&regs, None));
    }
    black_box(&uc);
}

#[test]
fn unwinds_its_own_thread_to_the_thread_start() {
    let mut out = Vec::new();
    ctx_a(&mut out, false);
    let (stack, names) = out.pop().unwrap();
    let text = describe(&stack, &names);
    eprintln!("{text}");
    assert_eq!(stack.error, None, "{text}");
    assert_eq!(stack.frames[0].trust, Trust::Context);
    let (c, b, a) = (position(&names, "ctx_c"), position(&names, "ctx_b"), position(&names, "ctx_a"));
    assert!(c == 0 && c < b && b < a, "{text}");
    assert!(stack.frames[1..].iter().all(|f| f.trust == Trust::Cfi && f.address.is_return_address()), "{text}");
    assert!(reaches_thread_start(&names), "{text}");
    // Stack pointers go up.
    assert!(stack.frames.windows(2).all(|w| w[0].sp < w[1].sp), "{text}");
}

// ---- through a real signal frame -----------------------------------------------------------

static UC: AtomicPtr<libc::ucontext_t> = AtomicPtr::new(std::ptr::null_mut());
static TO_HELPER: AtomicI32 = AtomicI32::new(-1);
static FROM_HELPER: AtomicI32 = AtomicI32::new(-1);

/// Saves its context, tells the helper thread, and waits (blocked in read, async-signal-safe)
/// until the helper has unwound this thread.
#[inline(never)]
extern "C" fn sig_handler(_sig: libc::c_int) {
    let uc = UC.load(Ordering::SeqCst);
    // SAFETY: UC points to a leaked ucontext_t; getcontext, write and read are async-signal-safe.
    unsafe {
        libc::getcontext(uc);
        let b = 1u8;
        libc::write(TO_HELPER.load(Ordering::SeqCst), &b as *const u8 as *const libc::c_void, 1);
        let mut r = 0u8;
        libc::read(FROM_HELPER.load(Ordering::SeqCst), &mut r as *mut u8 as *mut libc::c_void, 1);
    }
}

#[inline(never)]
fn sig_a() {
    sig_b();
    black_box(());
}

#[inline(never)]
fn sig_b() {
    // SAFETY: raising a signal whose handler was installed by the test.
    unsafe { libc::raise(libc::SIGUSR1) };
    black_box(());
}

#[test]
fn unwinds_through_a_real_signal_frame() {
    let mut to = [0; 2];
    let mut from = [0; 2];
    // SAFETY: plain pipe creation and sigaction with a handler that only uses signal-safe calls.
    unsafe {
        assert_eq!(libc::pipe(to.as_mut_ptr()), 0);
        assert_eq!(libc::pipe(from.as_mut_ptr()), 0);
    }
    TO_HELPER.store(to[1], Ordering::SeqCst);
    FROM_HELPER.store(from[0], Ordering::SeqCst);
    // SAFETY: zeroed ucontext_t is a valid buffer.
    UC.store(Box::into_raw(Box::new(unsafe { std::mem::zeroed::<libc::ucontext_t>() })), Ordering::SeqCst);
    let (wait_fd, wake_fd) = (to[0], from[1]);
    let helper = std::thread::spawn(move || {
        let mut b = 0u8;
        // SAFETY: reading one byte from our pipe.
        unsafe { libc::read(wait_fd, &mut b as *mut u8 as *mut libc::c_void, 1) };
        // SAFETY: the handler filled the context and is blocked until we write.
        let regs = regs_from_ucontext(unsafe { &*UC.load(Ordering::SeqCst) });
        let result = unwind_self(&regs, None);
        // SAFETY: writing one byte to our pipe.
        unsafe { libc::write(wake_fd, &b as *const u8 as *const libc::c_void, 1) };
        result
    });
    // SAFETY: installs, then restores, a handler for SIGUSR1, which nothing else in the tests uses.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = sig_handler as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, &mut old), 0);
    }
    sig_a();
    // SAFETY: restoring the previous disposition; closing our pipes.
    unsafe {
        libc::sigaction(libc::SIGUSR1, &old, std::ptr::null_mut());
        for fd in [to[0], to[1], from[0], from[1]] {
            libc::close(fd);
        }
    }
    let (stack, names) = helper.join().unwrap();
    let text = describe(&stack, &names);
    eprintln!("{text}");
    assert_eq!(stack.error, None, "{text}");
    let h = position(&names, "sig_handler");
    let sig = stack.frames.iter().position(|f| f.trust == Trust::Signal).unwrap_or_else(|| panic!("{text}"));
    let (b, a) = (position(&names, "sig_b"), position(&names, "sig_a"));
    assert!(h < sig && sig < b && b < a, "{text}");
    // The frame before the signal frame is the sigreturn trampoline, not entered by a call.
    assert!(
        !stack.frames[sig - 1].address.is_return_address() && !stack.frames[sig].address.is_return_address(),
        "{text}"
    );
    assert!(reaches_thread_start(&names), "{text}");
}

/// A frame-0 pc of 0, as after a call through a NULL function pointer: the caller is found at
/// [rsp], and CFI takes over from there.
#[test]
fn null_function_pointer_call_in_a_live_thread() {
    let mut out = Vec::new();
    ctx_a(&mut out, true);
    let (stack, names) = out.pop().unwrap();
    let text = describe(&stack, &names);
    assert_eq!(stack.error, None, "{text}");
    assert_eq!((stack.frames[0].address.address(), stack.frames[0].trust), (0, Trust::Context), "{text}");
    assert_eq!((stack.frames[1].trust, stack.frames[1].address.is_return_address()), (Trust::Scan, true), "{text}");
    let (c, b, a) = (position(&names, "ctx_c"), position(&names, "ctx_b"), position(&names, "ctx_a"));
    assert!(c == 1 && c < b && b < a, "{text}");
    assert!(stack.frames[2..].iter().all(|f| f.trust == Trust::Cfi), "{text}");
    assert!(reaches_thread_start(&names), "{text}");
}

/// Memory that reads `top` where it has bytes and `rest` elsewhere, byte by byte: a read that
/// starts below one of `top`'s regions (a page-sized read of the unwinder's page cache) still
/// sees `top`'s bytes, not what the live stack holds there now.
pub(crate) struct Overlay<'a> {
    pub top: &'a crate::process::ImageMemory,
    pub rest: &'a dyn crate::process::Memory,
}

impl crate::process::Memory for Overlay<'_> {
    fn read_partial(&self, addr: u64, buf: &mut [u8]) -> usize {
        let mut n = self.rest.read_partial(addr, buf);
        let want_end = addr.saturating_add(buf.len() as u64);
        let mut regions: Vec<(u64, &[u8])> = self.top.regions().collect();
        regions.sort_by_key(|r| r.0);
        for (start, bytes) in regions {
            let end = start.saturating_add(bytes.len() as u64);
            let (lo, hi) = (start.max(addr), end.min(want_end));
            if lo >= hi {
                continue;
            }
            let (b0, b1) = ((lo - addr) as usize, (hi - addr) as usize);
            buf[b0..b1].copy_from_slice(&bytes[(lo - start) as usize..(hi - start) as usize]);
            // A region that starts inside (or right at the end of) what was read extends it.
            if b0 <= n {
                n = n.max(b1);
            }
        }
        n
    }
}
