//! Test fixtures: a minimal x86_64 ELF shared object written byte by byte, with hand-assembled
//! CFI in `.eh_frame` (+ `.eh_frame_hdr`) or `.debug_frame`, mapped into an `ImageMemory`.

use std::io::Write;
use std::path::PathBuf;

use crate::modules::ModuleSet;
use crate::process::{ImageMemory, Mapping};

pub(crate) fn uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

pub(crate) fn sleb(out: &mut Vec<u8>, mut v: i64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && b & 0x40 == 0) || (v == -1 && b & 0x40 != 0);
        if done {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A few call frame instructions and DWARF operations, assembled.
pub(crate) mod op {
    use super::{sleb, uleb};
    pub(crate) fn def_cfa(reg: u8, off: u64) -> Vec<u8> {
        let mut v = vec![0x0c, reg];
        uleb(&mut v, off);
        v
    }
    pub(crate) fn def_cfa_offset(off: u64) -> Vec<u8> {
        let mut v = vec![0x0e];
        uleb(&mut v, off);
        v
    }
    pub(crate) fn def_cfa_register(reg: u8) -> Vec<u8> {
        vec![0x0d, reg]
    }
    /// Register saved at CFA + off (off a multiple of the data alignment, -8).
    pub fn offset(reg: u8, off: i64) -> Vec<u8> {
        let mut v = vec![0x80 | reg];
        uleb(&mut v, (off / -8) as u64);
        v
    }
    pub(crate) fn advance(delta: u8) -> Vec<u8> {
        vec![0x40 | delta]
    }
    pub fn undefined(reg: u8) -> Vec<u8> {
        vec![0x07, reg]
    }
    pub(crate) fn def_cfa_expression(expr: &[u8]) -> Vec<u8> {
        let mut v = vec![0x0f];
        uleb(&mut v, expr.len() as u64);
        v.extend_from_slice(expr);
        v
    }
    pub(crate) fn expression(reg: u8, expr: &[u8]) -> Vec<u8> {
        let mut v = vec![0x10, reg];
        uleb(&mut v, expr.len() as u64);
        v.extend_from_slice(expr);
        v
    }
    pub(crate) fn val_expression(reg: u8, expr: &[u8]) -> Vec<u8> {
        let mut v = vec![0x16, reg];
        uleb(&mut v, expr.len() as u64);
        v.extend_from_slice(expr);
        v
    }
    /// DW_OP_bregN off
    pub(crate) fn breg(reg: u8, off: i64) -> Vec<u8> {
        let mut v = vec![0x70 + reg];
        sleb(&mut v, off);
        v
    }
    /// DW_OP_const1s c; DW_OP_plus
    pub(crate) fn plus_const(c: i8) -> Vec<u8> {
        vec![0x09, c as u8, 0x22]
    }
    pub(crate) const DEREF: u8 = 0x06;
    pub(crate) fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }
}

pub(crate) struct Cie {
    pub instrs: Vec<u8>,
    pub signal: bool,
}

pub(crate) struct Fde {
    pub start: u64,
    pub len: u64,
    pub cie: usize,
    pub instrs: Vec<u8>,
}

fn pad8(body: &mut Vec<u8>) {
    while (body.len() + 4) % 8 != 0 {
        body.push(0); // DW_CFA_nop
    }
}

/// `.eh_frame` at `addr`; returns the bytes and, per FDE, (start, address of the FDE).
pub(crate) fn eh_frame(addr: u64, cies: &[Cie], fdes: &[Fde]) -> (Vec<u8>, Vec<(u64, u64)>) {
    let mut out = Vec::new();
    let mut cie_offsets = Vec::new();
    for c in cies {
        cie_offsets.push(out.len() as u64);
        let mut body = vec![0, 0, 0, 0, 1];
        body.extend_from_slice(if c.signal { b"zRS\0" } else { b"zR\0" });
        uleb(&mut body, 1);
        sleb(&mut body, -8);
        body.push(16);
        uleb(&mut body, 1);
        body.push(0x1b); // FDE addresses: pcrel | sdata4
        body.extend_from_slice(&c.instrs);
        pad8(&mut body);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
    }
    let mut table = Vec::new();
    for f in fdes {
        let o = out.len() as u64;
        table.push((f.start, addr + o));
        let mut body = Vec::new();
        body.extend_from_slice(&((o + 4 - cie_offsets[f.cie]) as u32).to_le_bytes());
        let begin = f.start as i64 - (addr + o + 8) as i64;
        body.extend_from_slice(&(begin as i32).to_le_bytes());
        body.extend_from_slice(&(f.len as u32).to_le_bytes());
        uleb(&mut body, 0);
        body.extend_from_slice(&f.instrs);
        pad8(&mut body);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    (out, table)
}

/// `.eh_frame_hdr` at `addr` with a sorted search table.
pub(crate) fn eh_frame_hdr(addr: u64, eh_frame_addr: u64, table: &[(u64, u64)]) -> Vec<u8> {
    let mut t = table.to_vec();
    t.sort();
    let mut out = vec![1, 0x1b, 0x03, 0x3b];
    out.extend_from_slice(&((eh_frame_addr as i64 - (addr + 4) as i64) as i32).to_le_bytes());
    out.extend_from_slice(&(t.len() as u32).to_le_bytes());
    for (start, fde) in t {
        out.extend_from_slice(&((start as i64 - addr as i64) as i32).to_le_bytes());
        out.extend_from_slice(&((fde as i64 - addr as i64) as i32).to_le_bytes());
    }
    out
}

/// `.debug_frame` (CIE version 1, absolute 8-byte addresses). Signal CIEs are not expressible.
pub(crate) fn debug_frame(cies: &[Cie], fdes: &[Fde]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut cie_offsets = Vec::new();
    for c in cies {
        cie_offsets.push(out.len() as u32);
        let mut body = vec![0xff, 0xff, 0xff, 0xff, 1, 0];
        uleb(&mut body, 1);
        sleb(&mut body, -8);
        body.push(16);
        body.extend_from_slice(&c.instrs);
        pad8(&mut body);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
    }
    for f in fdes {
        let mut body = Vec::new();
        body.extend_from_slice(&cie_offsets[f.cie].to_le_bytes());
        body.extend_from_slice(&f.start.to_le_bytes());
        body.extend_from_slice(&f.len.to_le_bytes());
        body.extend_from_slice(&f.instrs);
        pad8(&mut body);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
    }
    out
}

pub(crate) struct Sec {
    pub name: &'static str,
    /// Address (and file offset) of an allocated section; None for a non-allocated one.
    pub addr: Option<u64>,
    pub exec: bool,
    pub data: Vec<u8>,
}

/// An ET_DYN file whose single PT_LOAD maps the file at vaddr 0, so file offset = SVMA for
/// allocated sections.
pub(crate) fn build_elf(secs: &[Sec]) -> Vec<u8> {
    let mut file = vec![0u8; 0x1000];
    for s in secs.iter().filter(|s| s.addr.is_some()) {
        let a = s.addr.unwrap() as usize;
        if file.len() < a + s.data.len() {
            file.resize(a + s.data.len(), 0);
        }
        file[a..a + s.data.len()].copy_from_slice(&s.data);
    }
    let load_end = file.len() as u64;
    let mut shstr = vec![0u8];
    let mut headers: Vec<[u8; 64]> = vec![[0; 64]];
    let mut push_sh = |name_off: u32, ty: u32, flags: u64, addr: u64, off: u64, size: u64| {
        let mut h = [0u8; 64];
        h[0..4].copy_from_slice(&name_off.to_le_bytes());
        h[4..8].copy_from_slice(&ty.to_le_bytes());
        h[8..16].copy_from_slice(&flags.to_le_bytes());
        h[16..24].copy_from_slice(&addr.to_le_bytes());
        h[24..32].copy_from_slice(&off.to_le_bytes());
        h[32..40].copy_from_slice(&size.to_le_bytes());
        h[48..56].copy_from_slice(&1u64.to_le_bytes());
        headers.push(h);
    };
    for s in secs {
        let name_off = shstr.len() as u32;
        shstr.extend_from_slice(s.name.as_bytes());
        shstr.push(0);
        match s.addr {
            Some(a) => {
                let flags = 2 | if s.exec { 4 } else { 0 };
                push_sh(name_off, 1, flags, a, a, s.data.len() as u64);
            }
            None => {
                let off = file.len() as u64;
                file.extend_from_slice(&s.data);
                push_sh(name_off, 1, 0, 0, off, s.data.len() as u64);
            }
        }
    }
    let name_off = shstr.len() as u32;
    shstr.extend_from_slice(b".shstrtab\0");
    let off = file.len() as u64;
    file.extend_from_slice(&shstr);
    push_sh(name_off, 3, 0, 0, off, shstr.len() as u64);
    while file.len() % 8 != 0 {
        file.push(0);
    }
    let shoff = file.len() as u64;
    let shnum = headers.len() as u16;
    for h in &headers {
        file.extend_from_slice(h);
    }
    // ELF header
    let mut eh = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    eh.extend_from_slice(&3u16.to_le_bytes()); // ET_DYN
    eh.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    eh.extend_from_slice(&1u32.to_le_bytes());
    eh.extend_from_slice(&0u64.to_le_bytes()); // entry
    eh.extend_from_slice(&64u64.to_le_bytes()); // phoff
    eh.extend_from_slice(&shoff.to_le_bytes());
    eh.extend_from_slice(&0u32.to_le_bytes());
    eh.extend_from_slice(&64u16.to_le_bytes());
    eh.extend_from_slice(&56u16.to_le_bytes());
    eh.extend_from_slice(&1u16.to_le_bytes());
    eh.extend_from_slice(&64u16.to_le_bytes());
    eh.extend_from_slice(&shnum.to_le_bytes());
    eh.extend_from_slice(&(shnum - 1).to_le_bytes());
    // PT_LOAD, R+X, file offset 0 at vaddr 0
    eh.extend_from_slice(&1u32.to_le_bytes());
    eh.extend_from_slice(&5u32.to_le_bytes());
    eh.extend_from_slice(&0u64.to_le_bytes());
    eh.extend_from_slice(&0u64.to_le_bytes());
    eh.extend_from_slice(&0u64.to_le_bytes());
    eh.extend_from_slice(&load_end.to_le_bytes());
    eh.extend_from_slice(&load_end.to_le_bytes());
    eh.extend_from_slice(&0x1000u64.to_le_bytes());
    file[..eh.len()].copy_from_slice(&eh);
    file
}

/// An ELF written to a temporary folder (with, optionally, its separate debug file next to it),
/// mapped r-x at `base` in a ModuleSet and an ImageMemory.
pub(crate) struct Mapped {
    _dir: tempfile::TempDir,
    pub modules: ModuleSet,
    pub memory: ImageMemory,
}

pub(crate) fn map_elf(bytes: &[u8], base: u64) -> Mapped {
    map_elf_with_debug(bytes, None, base)
}

/// `debug`: (file name the main file's `.gnu_debuglink` names, its bytes).
pub(crate) fn map_elf_with_debug(bytes: &[u8], debug: Option<(&str, &[u8])>, base: u64) -> Mapped {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("libsynth.so");
    std::fs::File::create(&path).and_then(|mut f| f.write_all(bytes)).expect("write elf");
    if let Some((name, d)) = debug {
        std::fs::write(dir.path().join(name), d).expect("write debug file");
    }
    let load_len = (bytes.len() as u64 + 0xfff) & !0xfff;
    let maps = vec![Mapping {
        start: base,
        end: base + load_len,
        read: true,
        write: false,
        exec: true,
        shared: false,
        offset: 0,
        inode: 1,
        path: Some(path.to_str().unwrap().to_string()),
    }];
    let mut memory = ImageMemory::new();
    let mut image = bytes.to_vec();
    image.resize(load_len as usize, 0);
    memory.add(base, image);
    let modules = ModuleSet::build(&maps, |p| Some(PathBuf::from(p)), &memory, |_| None);
    Mapped { _dir: dir, modules, memory }
}

/// A `.gnu_debuglink` section naming `file` (the CRC is not checked by the reader).
pub(crate) fn debuglink(file: &str) -> Vec<u8> {
    let mut v = file.as_bytes().to_vec();
    v.push(0);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}
