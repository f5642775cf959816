//! A core's PT_NOTE contents: NT_PRSTATUS per thread (its registers), NT_PRPSINFO (the command),
//! NT_SIGINFO (the fatal signal), NT_AUXV and NT_FILE (the mapped files). Every length and count
//! is checked against the note and capped; what cannot be read is left out with a warning.

use crate::process::siginfo::{self, SIGINFO_SIZE};
use crate::process::{Registers, SignalInfo};

pub(crate) const NT_PRSTATUS: u32 = 1;
pub(crate) const NT_PRPSINFO: u32 = 3;
pub(crate) const NT_AUXV: u32 = 6;
pub(crate) const NT_SIGINFO: u32 = 0x5349_4749;
pub(crate) const NT_FILE: u32 = 0x4649_4c45;
/// The notes crashcatch adds to the cores it writes (owner "CRASHCATCH"), of types no other
/// reader knows (gdb's BFD groks note types whatever their owner: 1 would read as
/// NT_PRSTATUS): what was left out, and the process's working folder (the kernel records
/// none; the fingerprint's Python paths are relative to it).
pub(crate) const CRASHCATCH: &[u8] = b"CRASHCATCH";
pub(crate) const NT_CRASHCATCH_OMITTED: u32 = 0x4343_0001;
pub(crate) const NT_CRASHCATCH_CWD: u32 = 0x4343_0002;

/// At most this many bytes of notes are read (a core of 10,000 threads has about 30 MB).
pub(crate) const MAX_NOTE_BYTES: u64 = 256 << 20;
/// At most this many threads, files and auxv entries.
const MAX_THREADS: usize = 1 << 17;
const MAX_FILES: u64 = 1 << 20;
const MAX_AUXV: usize = 256;
const MAX_PATH: usize = 4096;

/// struct elf_prstatus (x86_64): pr_pid at 32, pr_reg (27 words) at 112.
pub(crate) const PRSTATUS_SIZE: usize = 336;
const PR_REG: usize = 112;
/// struct elf_prpsinfo (x86_64 and aarch64): pr_uid at 16, pr_gid at 20, pr_pid at 24, pr_ppid
/// at 28, pr_fname[16] at 40, pr_psargs[80] at 56.
pub(crate) const PRPSINFO_SIZE: usize = 136;

/// One thread's NT_PRSTATUS, with the NT_SIGINFO that followed it.
#[derive(Debug, Clone)]
pub(crate) struct ThreadNote {
    pub tid: i32,
    /// pr_cursig: the signal the thread was stopped or killed by.
    pub cursig: i32,
    pub regs: Registers,
    pub siginfo: Option<SignalInfo>,
}

/// NT_PRPSINFO.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProcessNote {
    pub pid: i32,
    /// pr_uid and pr_gid: whose process it was (its files are opened with these rights).
    pub uid: u32,
    pub gid: u32,
    /// The command's name (comm, 15 characters at most).
    pub fname: String,
    /// The start of its arguments, space-separated (80 bytes at most).
    pub psargs: String,
}

/// One NT_FILE entry: a file mapped at [start, end) from byte `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileNote {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Notes {
    pub threads: Vec<ThreadNote>,
    pub process: Option<ProcessNote>,
    pub files: Vec<FileNote>,
    pub auxv: Vec<(u64, u64)>,
    /// The working folder crashcatch's `--core` recorded (NT_CRASHCATCH_CWD).
    pub working_dir: Option<String>,
    pub warnings: Vec<String>,
}

/// Parses the notes of every PT_NOTE segment's bytes, in order.
pub fn parse(segments: &[Vec<u8>]) -> Notes {
    let mut n = Notes::default();
    for seg in segments {
        for (name, kind, desc) in iterate(seg, &mut n.warnings) {
            // gdb and the kernel name these "CORE"; NT_X86_XSTATE and others are "LINUX".
            if name == CRASHCATCH && kind == NT_CRASHCATCH_CWD {
                n.working_dir = working_dir(desc);
            }
            if name != b"CORE" {
                continue;
            }
            n.add(kind, desc);
        }
    }
    n.files.sort_by_key(|f| f.start);
    n
}

impl Notes {
    fn add(&mut self, kind: u32, desc: &[u8]) {
        match kind {
            NT_PRSTATUS => match prstatus(desc) {
                Some(t) if self.threads.len() < MAX_THREADS => self.threads.push(t),
                Some(_) => {}
                None => self.warnings.push(format!("an NT_PRSTATUS note of {} bytes is too short", desc.len())),
            },
            NT_SIGINFO => match (desc.get(..SIGINFO_SIZE), self.threads.last_mut()) {
                (Some(raw), Some(t)) => t.siginfo = raw.try_into().ok().map(siginfo::decode),
                _ => self.warnings.push("an NT_SIGINFO note could not be read".into()),
            },
            NT_PRPSINFO => self.process = prpsinfo(desc),
            NT_AUXV => {
                self.auxv = desc
                    .chunks_exact(16)
                    .take(MAX_AUXV)
                    .map(|c| (word(c, 0), word(c, 8)))
                    .take_while(|&(t, _)| t != 0)
                    .collect()
            }
            NT_FILE => match files(desc) {
                Ok(f) => self.files = f,
                Err(why) => self.warnings.push(format!("NT_FILE: {why}")),
            },
            _ => {}
        }
    }
}

/// NT_CRASHCATCH_CWD: an absolute path of at most [`MAX_PATH`] bytes, UTF-8, with no NUL
/// (hostile cores included); anything else is not used.
fn working_dir(desc: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(desc).ok()?;
    let text = text.trim_end_matches('\0');
    (text.starts_with('/') && text.len() <= MAX_PATH && !text.contains('\0')).then(|| text.to_string())
}

fn word(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 8).and_then(|s| s.try_into().ok()).map_or(0, u64::from_le_bytes)
}

fn word32(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4).and_then(|s| s.try_into().ok()).map_or(0, u32::from_le_bytes)
}

/// (name without its NUL, type, descriptor) of each note; stops at the first malformed one.
fn iterate<'a>(mut data: &'a [u8], warnings: &mut Vec<String>) -> Vec<(&'a [u8], u32, &'a [u8])> {
    let mut out = Vec::new();
    let pad = |n: usize| n.checked_add(3).map(|v| v & !3);
    while data.len() >= 12 {
        let (namesz, descsz, kind) = (word32(data, 0) as usize, word32(data, 4) as usize, word32(data, 8));
        let name_end = pad(namesz).and_then(|p| p.checked_add(12));
        let desc_end = name_end.and_then(|e| pad(descsz).and_then(|p| e.checked_add(p)));
        let (Some(name_end), Some(desc_end)) = (name_end, desc_end) else { break };
        if desc_end > data.len() || name_end + descsz > data.len() {
            warnings.push(format!(
                "a note of type {kind:#x} claims {descsz} bytes, more than the {} left: the notes end there",
                data.len().saturating_sub(name_end)
            ));
            break;
        }
        let name = &data[12..12 + namesz];
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        out.push((name, kind, &data[name_end..name_end + descsz]));
        data = &data[desc_end..];
    }
    out
}

fn prstatus(d: &[u8]) -> Option<ThreadNote> {
    if d.len() < PR_REG + 27 * 8 {
        return None;
    }
    let r = |i: usize| word(d, PR_REG + i * 8);
    // user_regs_struct: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip
    // cs eflags rsp ss fs_base gs_base ds es fs gs
    let regs = Registers::X86_64(crate::arch::x86_64::Regs {
        r15: r(0),
        r14: r(1),
        r13: r(2),
        r12: r(3),
        rbp: r(4),
        rbx: r(5),
        r11: r(6),
        r10: r(7),
        r9: r(8),
        r8: r(9),
        rax: r(10),
        rcx: r(11),
        rdx: r(12),
        rsi: r(13),
        rdi: r(14),
        orig_rax: r(15),
        rip: r(16),
        eflags: r(18),
        rsp: r(19),
        fs_base: r(21),
        gs_base: r(22),
    });
    let cursig = u16::from_le_bytes([d[12], d[13]]) as i32;
    Some(ThreadNote { tid: word32(d, 32) as i32, cursig, regs, siginfo: None })
}

/// Registers in x86_64's user_regs_struct order (for writing NT_PRSTATUS); zeros for another
/// architecture's registers (core files are read and written for x86_64 only).
pub(crate) fn user_regs(r: &Registers) -> [u64; 27] {
    let mut w = [0u64; 27];
    let Registers::X86_64(r) = r else { return w };
    let vals = [
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx, r.rsi, r.rdi,
        r.orig_rax, r.rip,
    ];
    w[..17].copy_from_slice(&vals);
    w[17] = 0x33; // cs
    w[18] = r.eflags;
    w[19] = r.rsp;
    w[20] = 0x2b; // ss
    w[21] = r.fs_base;
    w[22] = r.gs_base;
    w
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn prpsinfo(d: &[u8]) -> Option<ProcessNote> {
    if d.len() < PRPSINFO_SIZE {
        return None;
    }
    Some(ProcessNote {
        pid: word32(d, 24) as i32,
        uid: word32(d, 16),
        gid: word32(d, 20),
        fname: c_string(&d[40..56]),
        psargs: c_string(&d[56..136]).trim_end().to_string(),
    })
}

/// Why the NT_FILE note (the mapped files) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum FileNoteError {
    #[error("{count} entries (at most {MAX_FILES} are read)")]
    TooMany { count: u64 },
    #[error("{count} entries do not fit in its {len} bytes")]
    DoesNotFit { count: u64, len: usize },
    #[error("only {found} of {count} paths")]
    MissingPaths { found: usize, count: u64 },
}

/// NT_FILE: count, page size, count × (start, end, offset in pages), then count paths.
fn files(d: &[u8]) -> Result<Vec<FileNote>, FileNoteError> {
    let count = word(d, 0);
    let page = word(d, 8);
    if count > MAX_FILES {
        return Err(FileNoteError::TooMany { count });
    }
    let table_end = count
        .checked_mul(24)
        .and_then(|t| t.checked_add(16))
        .filter(|&e| e <= d.len() as u64)
        .ok_or(FileNoteError::DoesNotFit { count, len: d.len() })? as usize;
    let mut names = d[table_end..].split(|&c| c == 0);
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let e = 16 + i * 24;
        let Some(name) = names.next() else { return Err(FileNoteError::MissingPaths { found: i, count }) };
        let name = &name[..name.len().min(MAX_PATH)];
        let (start, end) = (word(d, e), word(d, e + 8));
        if end <= start {
            continue; // an empty or inverted range: nothing is mapped there
        }
        out.push(FileNote {
            start,
            end,
            offset: word(d, e + 16).saturating_mul(page),
            path: String::from_utf8_lossy(name).into_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(name);
        v.push(0);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(desc);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn hostile_notes_end_with_a_warning() {
        let mut seg = note(b"CORE", NT_AUXV, &[6, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0]);
        // A note that claims 4 GB.
        seg.extend_from_slice(&5u32.to_le_bytes());
        seg.extend_from_slice(&u32::MAX.to_le_bytes());
        seg.extend_from_slice(&NT_PRSTATUS.to_le_bytes());
        seg.extend_from_slice(b"CORE\0\0\0\0");
        let n = parse(&[seg]);
        assert_eq!(n.auxv, vec![(6, 4096)]);
        assert!(n.threads.is_empty());
        assert_eq!(n.warnings.len(), 1, "{:?}", n.warnings);
        // NT_FILE whose count overflows.
        let mut f = vec![0xffu8; 8];
        f.extend_from_slice(&4096u64.to_le_bytes());
        let n = parse(&[note(b"CORE", NT_FILE, &f)]);
        assert!(n.files.is_empty() && n.warnings.len() == 1);
        let mut f = 3u64.to_le_bytes().to_vec();
        f.extend_from_slice(&4096u64.to_le_bytes());
        let n = parse(&[note(b"CORE", NT_FILE, &f)]);
        assert!(n.files.is_empty() && n.warnings.len() == 1, "{:?}", n.warnings);
    }
}
