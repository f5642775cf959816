//! Writes an ELF core file of a stopped process from its [`Snapshot`], as the kernel would:
//! PT_NOTE (NT_PRSTATUS per thread, the crashed one first with its NT_SIGINFO, NT_PRPSINFO,
//! NT_AUXV, NT_FILE) and a PT_LOAD per mapping. Contents are kept for what only memory holds
//! (stacks, writable and anonymous mappings, the vDSO, and each mapped ELF file's first page,
//! which carries its build-id); code and read-only data stay in the files, as with the kernel's
//! default coredump_filter. At most `max_bytes` of contents: stacks first, then ELF headers,
//! then the rest in address order; what did not fit is counted, and said in a CRASHCATCH note.

use std::io::{self, BufWriter, Seek, SeekFrom, Write};

use super::layout::{EM_X86_64, ET_CORE, PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE};
use super::notes::{
    self, CRASHCATCH, NT_AUXV, NT_CRASHCATCH_CWD, NT_CRASHCATCH_OMITTED, NT_FILE, NT_PRPSINFO, NT_PRSTATUS, NT_SIGINFO,
    PRPSINFO_SIZE, PRSTATUS_SIZE,
};
use crate::process::siginfo;
use crate::process::{Mapping, Snapshot};

const PAGE: u64 = 4096;
/// A mapping larger than this is never copied whole (a huge anonymous reservation).
const MAX_MAPPING: u64 = 4 << 30;

/// What a written core holds and leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub bytes: u64,
    pub mappings: usize,
    /// Mappings whose contents did not fit in the budget (wholly or partly), and their bytes.
    pub omitted_mappings: usize,
    pub omitted_bytes: u64,
    /// Bytes that could not be read from the process (written as zeros).
    pub unreadable_bytes: u64,
}

impl Written {
    /// One line for people: what was left out, if anything.
    pub fn summary(&self) -> String {
        let mut s = format!("{} MB, {} mappings", self.bytes.div_ceil(1 << 20), self.mappings);
        if self.omitted_mappings > 0 {
            s += &format!(
                "; the contents of {} mappings ({} MB) were left out to stay under --core-max-mb",
                self.omitted_mappings,
                self.omitted_bytes.div_ceil(1 << 20)
            );
        }
        if self.unreadable_bytes > 0 {
            s += &format!("; {} bytes could not be read and are zeros", self.unreadable_bytes);
        }
        s
    }
}

/// One PT_LOAD as it will be written.
struct Load<'a> {
    map: &'a Mapping,
    /// Bytes of contents written (from `map.start`).
    keep: u64,
}

/// Whether the contents of a mapping belong in the core (what the files do not hold): it is
/// writable, anonymous, shared, or a file mapping the process wrote to (`dirty`: relocations
/// in RELRO pages, which hold the dynamic section and the GOT that gdb needs).
fn wanted(m: &Mapping, dirty: &dyn Fn(&Mapping) -> bool) -> bool {
    let pseudo = matches!(m.path.as_deref(), Some("[vvar]" | "[vvar_vclock]" | "[vsyscall]"));
    m.read && !pseudo && (m.write || !m.is_file() || m.shared || dirty(m))
}

/// Decides how much of each mapping is kept, within `max_bytes`.
fn plan<'a>(snap: &'a Snapshot<'_>, max_bytes: u64, dirty: &dyn Fn(&Mapping) -> bool) -> (Vec<Load<'a>>, Written) {
    let sps: Vec<u64> = snap.threads.iter().filter_map(|t| t.regs.map(|r| r.sp())).collect();
    let mut loads: Vec<Load> = snap.maps.iter().map(|m| Load { map: m, keep: 0 }).collect();
    let mut budget = max_bytes;
    let mut give = |l: &mut Load, want: u64| {
        let want = want.min(l.map.end - l.map.start).min(MAX_MAPPING);
        let n = want.min(budget) & !(PAGE - 1);
        l.keep = l.keep.max(n);
        budget -= n.min(budget);
    };
    // Stacks first, then the first page of each mapped ELF file, then the rest.
    for l in loads.iter_mut().filter(|l| sps.iter().any(|&sp| l.map.contains(sp)) && wanted(l.map, dirty)) {
        give(l, u64::MAX);
    }
    for l in loads.iter_mut().filter(|l| l.map.is_file() && l.map.offset == 0 && l.keep == 0 && l.map.read) {
        give(l, PAGE);
    }
    for l in loads.iter_mut().filter(|l| wanted(l.map, dirty) && l.keep < l.map.end - l.map.start) {
        give(l, u64::MAX);
    }
    let mut w = Written { mappings: loads.len(), ..Default::default() };
    for l in loads.iter().filter(|l| wanted(l.map, dirty)) {
        let size = l.map.end - l.map.start;
        if l.keep < size {
            w.omitted_mappings += 1;
            w.omitted_bytes += size - l.keep;
        }
    }
    (loads, w)
}

fn note(out: &mut Vec<u8>, name: &[u8], kind: u32, desc: &[u8]) {
    out.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(name);
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(desc);
    out.resize(out.len().next_multiple_of(4), 0);
}

fn prstatus(snap: &Snapshot<'_>, t: &crate::process::ThreadInfo) -> Vec<u8> {
    let mut d = vec![0u8; PRSTATUS_SIZE];
    let crashed = t.tid == snap.crashed_tid;
    // Like the kernel, every thread's pr_cursig is the process's fatal signal (gdb takes the
    // last one it reads as the signal the process terminated with).
    let sig = snap.signal.signo;
    d[0..4].copy_from_slice(&(if crashed { sig } else { 0 }).to_le_bytes());
    // struct elf_siginfo: si_signo, si_code, si_errno.
    d[4..8].copy_from_slice(&(if crashed { snap.signal.code } else { 0 }).to_le_bytes());
    d[12..14].copy_from_slice(&(sig as u16).to_le_bytes());
    d[32..36].copy_from_slice(&t.tid.to_le_bytes());
    d[44..48].copy_from_slice(&snap.pid.to_le_bytes());
    let words = t.regs.as_ref().map(notes::user_regs).unwrap_or([0; 27]);
    for (i, w) in words.iter().enumerate() {
        d[112 + i * 8..120 + i * 8].copy_from_slice(&w.to_le_bytes());
    }
    d[328..332].copy_from_slice(&0u32.to_le_bytes()); // pr_fpvalid: no NT_FPREGSET
    d
}

fn prpsinfo(snap: &Snapshot<'_>, (uid, gid): (u32, u32)) -> Vec<u8> {
    let mut d = vec![0u8; PRPSINFO_SIZE];
    d[1] = b'R';
    d[16..20].copy_from_slice(&uid.to_le_bytes());
    d[20..24].copy_from_slice(&gid.to_le_bytes());
    d[24..28].copy_from_slice(&snap.pid.to_le_bytes());
    let fname = snap.exe.as_deref().and_then(|e| e.rsplit('/').next()).unwrap_or("");
    let n = fname.len().min(15);
    d[40..40 + n].copy_from_slice(&fname.as_bytes()[..n]);
    let args = snap.cmdline.join(" ");
    let n = args.len().min(79);
    d[56..56 + n].copy_from_slice(&args.as_bytes()[..n]);
    d
}

fn file_note(maps: &[Mapping]) -> Vec<u8> {
    let files: Vec<&Mapping> = maps.iter().filter(|m| m.is_file()).collect();
    let mut d = Vec::new();
    d.extend_from_slice(&(files.len() as u64).to_le_bytes());
    d.extend_from_slice(&PAGE.to_le_bytes());
    for m in &files {
        for v in [m.start, m.end, m.offset / PAGE] {
            d.extend_from_slice(&v.to_le_bytes());
        }
    }
    for m in &files {
        d.extend_from_slice(m.path.as_deref().unwrap_or("").as_bytes());
        d.push(0);
    }
    d
}

fn notes_of(snap: &Snapshot<'_>, auxv: &[(u64, u64)], ids: (u32, u32), written: &Written) -> Vec<u8> {
    let mut out = Vec::new();
    let mut threads: Vec<_> = snap.threads.iter().filter(|t| t.regs.is_some()).collect();
    threads.sort_by_key(|t| t.tid != snap.crashed_tid);
    for (i, t) in threads.iter().enumerate() {
        note(&mut out, b"CORE", NT_PRSTATUS, &prstatus(snap, t));
        if i == 0 {
            note(&mut out, b"CORE", NT_PRPSINFO, &prpsinfo(snap, ids));
            if t.tid == snap.crashed_tid && snap.signal.signo != 0 {
                note(&mut out, b"CORE", NT_SIGINFO, &siginfo::encode(&snap.signal));
            }
            let mut a: Vec<u8> =
                auxv.iter().flat_map(|&(k, v)| k.to_le_bytes().into_iter().chain(v.to_le_bytes())).collect();
            a.extend_from_slice(&[0u8; 16]);
            note(&mut out, b"CORE", NT_AUXV, &a);
            note(&mut out, b"CORE", NT_FILE, &file_note(&snap.maps));
        }
    }
    if let Some(cwd) = snap.view.working_dir() {
        note(&mut out, CRASHCATCH, NT_CRASHCATCH_CWD, cwd.as_bytes());
    }
    if written.omitted_mappings > 0 || written.unreadable_bytes > 0 {
        note(&mut out, CRASHCATCH, NT_CRASHCATCH_OMITTED, written.summary().as_bytes());
    }
    out
}

/// What a core is written from: a stopped process, its auxiliary vector, and which of its
/// file mappings it wrote to (the kernel knows; /proc/PID/smaps says so as `Anonymous:`).
pub(crate) struct CoreInput<'a> {
    pub snap: &'a Snapshot<'a>,
    pub auxv: &'a [(u64, u64)],
    pub dirty: &'a dyn Fn(&Mapping) -> bool,
    /// The process's (filesystem) uid and gid, recorded as NT_PRPSINFO's pr_uid and pr_gid:
    /// `crashcatch core` opens the files the core names with these rights.
    pub ids: (u32, u32),
}

/// Writes the core of a stopped process into `out` (a new, empty file).
pub(crate) fn write_core<W: Write + Seek>(src: &CoreInput<'_>, max_bytes: u64, out: W) -> io::Result<Written> {
    let (snap, auxv) = (src.snap, src.auxv);
    let (loads, mut written) = plan(snap, max_bytes, src.dirty);
    // The unreadable count is only known after copying: reserve the CRASHCATCH note's room by
    // writing the notes last, at a fixed place, sized for the longest summary.
    let phnum = 1 + loads.len();
    let notes_off = 64 + 56 * phnum as u64;
    let reserve =
        notes_of(snap, auxv, src.ids, &Written { omitted_mappings: 1, unreadable_bytes: u64::MAX, ..written.clone() })
            .len() as u64
            + 256;
    let mut data_off = (notes_off + reserve).next_multiple_of(PAGE);
    let mut w = BufWriter::with_capacity(1 << 20, out);
    let mut phdrs = Vec::with_capacity(phnum);
    let mut offsets = Vec::with_capacity(loads.len());
    for l in &loads {
        offsets.push(data_off);
        data_off += l.keep;
    }
    // Contents.
    let mut buf = vec![0u8; 1 << 20];
    for (l, &off) in loads.iter().zip(&offsets) {
        w.seek(SeekFrom::Start(off))?;
        let mut done = 0u64;
        while done < l.keep {
            let n = (l.keep - done).min(buf.len() as u64) as usize;
            let got = snap.memory.read_partial(l.map.start + done, &mut buf[..n]);
            buf[got..n].fill(0);
            written.unreadable_bytes += (n - got) as u64;
            w.write_all(&buf[..n])?;
            done += n as u64;
        }
    }
    let notes = notes_of(snap, auxv, src.ids, &written);
    let note_len = (notes.len() as u64).min(reserve);
    phdrs.push(phdr(PT_NOTE, 0, notes_off, 0, note_len, 0));
    for (l, &off) in loads.iter().zip(&offsets) {
        let m = l.map;
        let flags = (m.read as u32 * PF_R) | (m.write as u32 * PF_W) | (m.exec as u32 * PF_X);
        phdrs.push(phdr(PT_LOAD, flags, off, m.start, l.keep, m.end - m.start));
    }
    w.seek(SeekFrom::Start(0))?;
    w.write_all(&header(phnum))?;
    for p in &phdrs {
        w.write_all(p)?;
    }
    w.write_all(&notes[..note_len as usize])?;
    w.flush()?;
    written.bytes = data_off;
    Ok(written)
}

fn header(phnum: usize) -> [u8; 64] {
    let mut h = [0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // ELFCLASS64
    h[5] = 1; // little-endian
    h[6] = 1; // EV_CURRENT
    h[16..18].copy_from_slice(&ET_CORE.to_le_bytes());
    h[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    h[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    h[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    h[56..58].copy_from_slice(&(phnum.min(0xffff) as u16).to_le_bytes());
    h[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    h
}

fn phdr(kind: u32, flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> [u8; 56] {
    let mut p = [0u8; 56];
    p[0..4].copy_from_slice(&kind.to_le_bytes());
    p[4..8].copy_from_slice(&flags.to_le_bytes());
    p[8..16].copy_from_slice(&offset.to_le_bytes());
    p[16..24].copy_from_slice(&vaddr.to_le_bytes());
    p[32..40].copy_from_slice(&filesz.to_le_bytes());
    p[40..48].copy_from_slice(&memsz.to_le_bytes());
    p[48..56].copy_from_slice(&(if kind == PT_LOAD { PAGE } else { 4 }).to_le_bytes());
    p
}
