//! Synthetic CPython memory images, laid out by a [`Layout`]: interpreter, thread states, frames,
//! code objects, strings and line tables, as the walker expects to find them. For tests and
//! fuzzing (the walker must read them back exactly, and survive any mutation of them).

use super::debug_offsets::{self, DebugOffsets};
use super::layout::{Instr, Layout, LineTable, StringLayout, TopFrame};
use super::linetable::encode;
use super::strings::build;
use super::walk::Anchors;
use crate::process::ImageMemory;

pub(crate) const CODE_TYPE: u64 = 0x1000;
pub(crate) const FRAME_TYPE: u64 = 0x1100;
pub(crate) const STR_TYPE: u64 = 0x1200;
pub(crate) const BYTES_TYPE: u64 = 0x1300;
pub(crate) const NONE_TYPE: u64 = 0x1400;

/// One frame of a synthetic thread.
#[derive(Debug, Clone)]
pub struct SynthFrame {
    /// `co_filename`.
    pub file: String,
    /// The (qualified) name.
    pub function: String,
    /// `co_firstlineno`.
    pub firstlineno: i32,
    /// The line the frame is at; must be ≥ firstlineno for 2.7 (unsigned lnotab).
    pub line: i32,
    /// The outermost frame of one C eval-loop call (3.11+; ≤3.10 frames are all entries).
    pub entry: bool,
}

/// One synthetic thread state.
#[derive(Debug, Clone)]
pub struct SynthThread {
    /// `thread_id`.
    pub thread_id: u64,
    /// `native_thread_id`.
    pub native_thread_id: u64,
    /// Innermost first.
    pub frames: Vec<SynthFrame>,
}

/// What else a synthetic image holds.
#[derive(Debug, Clone, Default)]
pub struct SynthOptions {
    /// Index into the threads of the one holding the GIL.
    pub gil_holder: Option<usize>,
    /// Index of the thread running Py_FinalizeEx.
    pub finalizing: Option<usize>,
    /// Finalization finished: the interpreter list is empty.
    pub finalized: bool,
    /// Write these debug offsets at `_PyRuntime` (3.13+ images).
    pub debug_offsets: Option<DebugOffsets>,
}

/// A synthetic interpreter in memory.
pub struct Image {
    /// Its memory.
    pub mem: ImageMemory,
    /// Where a walk starts.
    pub anchors: Anchors,
    /// `_PyRuntime` (or, before 3.7, the block of globals).
    pub runtime: u64,
    /// The interpreter.
    pub interp: u64,
    /// Thread state addresses, in the order of `threads`.
    pub tstates: Vec<u64>,
}

struct Alloc {
    next: u64,
    mem: ImageMemory,
}

impl Alloc {
    fn zeroed(&mut self, len: u64) -> u64 {
        let a = self.next;
        self.mem.add(a, vec![0u8; len as usize]);
        self.next += (len + 0x40 + 15) & !15;
        a
    }
    fn put(&mut self, bytes: Vec<u8>) -> u64 {
        let a = self.zeroed(bytes.len() as u64);
        self.mem.write(a, &bytes);
        a
    }
    fn obj(&mut self, len: u64, ty: u64, ob_type: u64) -> u64 {
        let a = self.zeroed(len.max(ob_type + 8));
        self.mem.write_u64(a, 1);
        self.mem.write_u64(a + ob_type, ty);
        a
    }
}

fn str_obj(al: &mut Alloc, l: &Layout, s: &str) -> u64 {
    let b = match l.string {
        StringLayout::Unicode { .. } => build::unicode(&l.string, STR_TYPE, s),
        StringLayout::Bytes { .. } => build::py2_str(&l.string, STR_TYPE, s),
    };
    al.put(b)
}

/// The line table, and the instruction value to store in the frame, for a frame at `line`.
fn line_table(l: &Layout, first: i32, line: i32) -> (Vec<u8>, i64) {
    let delta = line - first;
    match l.code.table {
        LineTable::Lnotab { signed } => {
            // Bytes 0..10 on the first line, then the target line from byte 10; lasti 12.
            // Big deltas are split over extra pairs that advance no bytes.
            assert!(signed || delta >= 0, "2.7 line tables only go forward");
            let (lo, hi) = if signed { (-127, 127) } else { (0, 255) };
            let mut t = vec![10u8, 0];
            let mut rest = delta;
            while rest != 0 {
                let d = rest.clamp(lo, hi);
                t.extend_from_slice(&[0, d as i8 as u8]);
                rest -= d;
            }
            (t, 12)
        }
        LineTable::Linetable310 => {
            // [0,10) first line; zero-length ranges carry big deltas; [10,20) the target line.
            let mut t = vec![10u8, 0];
            let mut rest = delta;
            while !(-127..=127).contains(&rest) {
                let d = rest.clamp(-127, 127);
                t.extend_from_slice(&[0, d as i8 as u8]);
                rest -= d;
            }
            t.extend_from_slice(&[10, rest as i8 as u8]);
            (t, 6) // f_lasti in code units: byte 12
        }
        LineTable::Locations => {
            let mut t = Vec::new();
            encode::location(&mut t, 13, 5, 0); // units 0..5
            encode::location(&mut t, 13, 8, i64::from(delta)); // units 5..13
            (t, 7) // unit 7
        }
    }
}

fn code_obj(al: &mut Alloc, l: &Layout, file: &str, name: &str, first: i32, table: &[u8]) -> u64 {
    let c = &l.code;
    let size = [
        c.filename,
        c.name,
        c.qualname.unwrap_or(0),
        c.linetable,
        c.firstlineno,
        c.code_adaptive.unwrap_or(0),
        c.tlbc.unwrap_or(0),
    ]
    .into_iter()
    .max()
    .unwrap()
        + 64;
    let code = al.obj(size, CODE_TYPE, l.ob_type);
    let f = str_obj(al, l, file);
    // Qualified names carry a class prefix; plain names do not.
    let plain = name.rsplit('.').next().unwrap_or(name);
    let n = str_obj(al, l, plain);
    al.mem.write_u64(code + c.filename, f);
    al.mem.write_u64(code + c.name, n);
    if let Some(q) = c.qualname {
        let qs = str_obj(al, l, name);
        al.mem.write_u64(code + q, qs);
    }
    al.mem.write_u32(code + c.firstlineno, first as u32);
    let t = build::bytes_object(l.bytes, BYTES_TYPE, table);
    let tp = al.put(t);
    al.mem.write_u64(code + c.linetable, tp);
    code
}

/// Sizes of the structures laid out, each big enough for every field the layout names.
struct Sizes {
    tstate: u64,
    frame: u64,
}

impl Sizes {
    fn of(l: &Layout) -> Self {
        let tstate = [l.tstate.next, l.tstate.interp, l.tstate.thread_id, l.tstate.native_thread_id.unwrap_or(0), 80]
            .into_iter()
            .max()
            .unwrap()
            + 64;
        let frame = [
            l.frame.back,
            l.frame.code,
            l.frame.instr,
            l.frame.owner.unwrap_or(0),
            l.frame.is_entry.unwrap_or(0),
            l.frame.tlbc_index.unwrap_or(0),
        ]
        .into_iter()
        .max()
        .unwrap()
            + 64;
        Sizes { tstate, frame }
    }
}

/// What every thread's frames share: the sizes, and the shim frames' code (or None object).
struct FrameKit {
    sizes: Sizes,
    none_obj: u64,
    shim_code: u64,
}

/// `_PyRuntime` (or 2.7–3.6's globals) and the interpreter, linked as `opts` says; the anchors
/// the walker starts from.
fn runtime_and_interpreter(al: &mut Alloc, l: &Layout, opts: &SynthOptions) -> (u64, u64, Anchors) {
    let old = l.major == 2 || l.minor <= 6;
    let rt_size = [l.runtime.interpreters_head, l.runtime.finalizing, l.runtime.initialized, l.runtime.tstate_current]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
        .max(800)
        + 64;
    let runtime = al.zeroed(rt_size);
    if let Some(d) = &opts.debug_offsets {
        al.mem.write(runtime, &debug_offsets::encode(d));
    }
    let interp_size = [l.interp.next, l.interp.threads_head, l.interp.id.unwrap_or(0), l.interp.ceval_gil.unwrap_or(0)]
        .into_iter()
        .max()
        .unwrap()
        + 64;
    let interp = al.zeroed(interp_size);
    if let Some(o) = l.interp.id {
        al.mem.write_u64(interp + o, 0);
    }
    let mut anchors = Anchors { code_type: Some(CODE_TYPE), ..Default::default() };
    if l.frame.is_object {
        anchors.frame_type = Some(FRAME_TYPE);
    }
    let head_var;
    if old {
        head_var = al.zeroed(8);
        anchors.interp_head_ptr = Some(head_var);
        anchors.tstate_current_ptr = Some(al.zeroed(8));
        anchors.finalizing_ptr = Some(al.zeroed(8));
    } else {
        head_var = runtime + l.runtime.interpreters_head.expect("3.7+ layout");
        anchors.runtime = Some(runtime);
        if let Some(o) = l.runtime.initialized {
            al.mem.write_u32(runtime + o, u32::from(!opts.finalized));
        }
    }
    if !opts.finalized {
        al.mem.write_u64(head_var, interp);
    }
    (runtime, interp, anchors)
}

/// Where a frame's instruction is: a byte or unit offset, or a pointer into the code's bytecode
/// (a thread's own copy of it in free-threaded 3.14+).
fn write_instr(al: &mut Alloc, l: &Layout, fr: u64, code: u64, instr: i64) {
    match l.frame.instr_kind {
        Instr::LastiBytes | Instr::LastiUnits => al.mem.write_u32(fr + l.frame.instr, instr as u32),
        Instr::Pointer => {
            let own = code + l.code.code_adaptive.unwrap();
            let start = match (l.frame.tlbc_index, l.code.tlbc) {
                // Free-threaded 3.14+: this thread runs its own copy of the bytecode,
                // entry 1 of the code's `_PyCodeArray` (entry 0 is `co_code_adaptive`).
                (Some(ti), Some(ct)) => {
                    let copy = al.zeroed(64);
                    let array = al.zeroed(24);
                    al.mem.write_u64(array, 2);
                    al.mem.write_u64(array + 8, own);
                    al.mem.write_u64(array + 16, copy);
                    al.mem.write_u64(code + ct, array);
                    al.mem.write_u32(fr + ti, 1);
                    copy
                }
                _ => own,
            };
            al.mem.write_u64(fr + l.frame.instr, start + 2 * instr as u64)
        }
    }
}

/// One frame (and the shim frame outside it when it is an entry), linked to `back`; returns
/// the innermost of them.
fn frame(al: &mut Alloc, l: &Layout, kit: &FrameKit, f: &SynthFrame, mut back: u64) -> u64 {
    let fr_size = kit.sizes.frame;
    if !l.frame.shim_owners.is_empty() && f.entry {
        // The C eval loop's own frame sits just outside its first Python frame.
        let s = al.zeroed(fr_size);
        al.mem.write_u64(s + l.frame.back, back);
        let exe = if l.minor >= 13 || l.major > 3 { kit.none_obj } else { kit.shim_code };
        al.mem.write_u64(s + l.frame.code, exe | u64::from(l.frame.code_tagged));
        al.mem.write(s + l.frame.owner.unwrap(), &[*l.frame.shim_owners.last().unwrap()]);
        back = s;
    }
    let (table, instr) = line_table(l, f.firstlineno, f.line);
    let code = code_obj(al, l, &f.file, &f.function, f.firstlineno, &table);
    let fr = if l.frame.is_object { al.obj(fr_size, FRAME_TYPE, l.ob_type) } else { al.zeroed(fr_size) };
    al.mem.write_u64(fr + l.frame.back, back);
    // 3.14 tags stack references in their low bit.
    al.mem.write_u64(fr + l.frame.code, code | u64::from(l.frame.code_tagged));
    write_instr(al, l, fr, code, instr);
    if let Some(o) = l.frame.is_entry {
        al.mem.write(fr + o, &[u8::from(f.entry)]);
    }
    fr
}

/// One thread state of `interp` with its frames.
fn thread_state(al: &mut Alloc, l: &Layout, kit: &FrameKit, interp: u64, th: &SynthThread) -> u64 {
    let ts = al.zeroed(kit.sizes.tstate);
    al.mem.write_u64(ts + l.tstate.interp, interp);
    al.mem.write_u64(ts + l.tstate.thread_id, th.thread_id);
    if let Some(o) = l.tstate.native_thread_id {
        al.mem.write_u64(ts + o, th.native_thread_id);
    }
    // Frames, outermost first, so each one's back link is known.
    let mut back = 0u64;
    for f in th.frames.iter().rev() {
        back = frame(al, l, kit, f, back);
    }
    match l.tstate.top_frame {
        TopFrame::Direct(o) => al.mem.write_u64(ts + o, back),
        TopFrame::ViaCFrame { cframe, current_frame } => {
            let cf = al.zeroed(32);
            al.mem.write_u64(cf + current_frame, back);
            al.mem.write_u64(ts + cframe, cf);
        }
    }
    ts
}

/// The GIL holder and the finalizing thread, as `opts` says.
fn mark_threads(al: &mut Alloc, l: &Layout, img: &Image, opts: &SynthOptions) {
    if let Some(h) = opts.gil_holder {
        let t = img.tstates[h];
        if let Some(p) = img.anchors.tstate_current_ptr {
            al.mem.write_u64(p, t);
        } else if let Some(o) = l.runtime.tstate_current {
            al.mem.write_u64(img.runtime + o, t);
        }
        if let Some(o) = l.interp.ceval_gil {
            let gil = al.zeroed(64);
            al.mem.write_u32(gil + l.gil.locked, 1);
            al.mem.write_u64(gil + l.gil.last_holder, t);
            al.mem.write_u64(img.interp + o, gil);
        }
    }
    if let Some(f) = opts.finalizing {
        let t = img.tstates[f];
        if let Some(p) = img.anchors.finalizing_ptr {
            al.mem.write_u64(p, t);
        } else if let Some(o) = l.runtime.finalizing {
            al.mem.write_u64(img.runtime + o, t);
        }
    }
}

/// Lays out one interpreter with `threads` (the first is the newest, as CPython lists them).
pub fn build_image(l: &Layout, threads: &[SynthThread], opts: &SynthOptions) -> Image {
    let mut al = Alloc { next: 0x10_0000, mem: ImageMemory::new() };
    for t in [CODE_TYPE, FRAME_TYPE, STR_TYPE, BYTES_TYPE, NONE_TYPE] {
        al.mem.add(t, vec![0u8; 0x80]);
    }
    let none_obj = al.obj(16, NONE_TYPE, l.ob_type);
    let (runtime, interp, anchors) = runtime_and_interpreter(&mut al, l, opts);
    let sizes = Sizes::of(l);
    let shim_code = code_obj(&mut al, l, "<shim>", "<interpreter trampoline>", 0, &[]);
    let kit = FrameKit { sizes, none_obj, shim_code };
    let tstates: Vec<u64> = threads.iter().map(|th| thread_state(&mut al, l, &kit, interp, th)).collect();
    for w in tstates.windows(2) {
        al.mem.write_u64(w[0] + l.tstate.next, w[1]);
    }
    if let Some(&first) = tstates.first() {
        al.mem.write_u64(interp + l.interp.threads_head, first);
    }
    al.mem.write_u64(interp + l.interp.next, 0);
    let mut img = Image { mem: ImageMemory::new(), anchors, runtime, interp, tstates };
    mark_threads(&mut al, l, &img, opts);
    img.mem = al.mem;
    img
}

/// A small two-thread process: `main` nests four calls (with a class method and non-ASCII names
/// where the version allows them), `worker` two. Entry flags follow what CPython 3.11+ does for
/// Python-to-Python calls (only the outermost frame of each C call is an entry).
pub fn sample_threads(l: &Layout) -> Vec<SynthThread> {
    let py2 = l.major == 2;
    let modern = l.major == 3 && l.minor >= 11;
    let file = "/app/main.py".to_string();
    let f = |function: &str, first: i32, line: i32, entry: bool| SynthFrame {
        file: file.clone(),
        function: function.to_string(),
        firstlineno: first,
        line,
        entry: entry || !modern,
    };
    let (fuenf, nihongo) = if py2 { ("fuenf", "nihongo") } else { ("fünf", "日本語") };
    let method = if modern { "Outer.method" } else { "method" };
    let main = SynthThread {
        thread_id: 0x7f00_0000_1000,
        native_thread_id: 100,
        frames: vec![
            f(fuenf, 14, 15, false),
            f(nihongo, 18, 400, false), // a long jump: several table entries
            f(method, 23, 24, true),    // called from C (an entry)
            f("main", 27, 35, false),
            f("<module>", 1, 38, true),
        ],
    };
    let worker = SynthThread {
        thread_id: 0x7f00_0000_2000,
        native_thread_id: 101,
        frames: vec![f("worker_inner", 6, 8, false), f("worker", 11, 12, true)],
    };
    vec![worker, main]
}
