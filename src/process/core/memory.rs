//! A core's memory: the bytes of its PT_LOAD segments, and for file-backed ranges the core
//! left out (the kernel's default coredump_filter keeps only the first page of each mapped
//! ELF file), the bytes of the mapped file itself, opened here (under the sysroot).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::file::CoreFile;
use super::layout::ProgramHeader;
use super::notes::FileNote;
use crate::process::Memory;

/// At most this many mapped files are kept open at once.
const MAX_OPEN_FILES: usize = 256;

pub struct CoreMemory {
    core: CoreFile,
    /// PT_LOAD segments, sorted by address.
    segments: Vec<ProgramHeader>,
    /// NT_FILE entries, sorted by address.
    files: Vec<FileNote>,
    /// Where each mapped file can be read here, None when it cannot (or must not: its build-id
    /// differs from the one the process mapped).
    host: HashMap<String, Option<PathBuf>>,
    open: RefCell<HashMap<String, Option<File>>>,
}

impl CoreMemory {
    pub fn new(core: CoreFile, mut segments: Vec<ProgramHeader>, files: Vec<FileNote>) -> Self {
        segments.sort_by_key(|s| s.vaddr);
        CoreMemory { core, segments, files, host: HashMap::new(), open: RefCell::new(HashMap::new()) }
    }

    /// Says where the file the process mapped as `path` is read from here (None: nowhere).
    pub fn set_host_file(&mut self, path: &str, host: Option<PathBuf>) {
        self.host.insert(path.to_string(), host);
    }

    pub fn segments(&self) -> &[ProgramHeader] {
        &self.segments
    }

    pub fn core_len(&self) -> u64 {
        self.core.len
    }

    /// Bytes the core holds of a segment at `addr` (0 when it holds none there).
    fn read_core(&self, seg: &ProgramHeader, addr: u64, buf: &mut [u8]) -> usize {
        let rel = addr - seg.vaddr;
        if rel >= seg.filesz {
            return 0;
        }
        let n = (buf.len() as u64).min(seg.filesz - rel) as usize;
        let Some(off) = seg.offset.checked_add(rel) else { return 0 };
        self.core.read_at(off, &mut buf[..n])
    }

    /// Bytes of the file mapped at `addr`, when the core left them out.
    fn read_file(&self, addr: u64, buf: &mut [u8]) -> usize {
        let i = self.files.partition_point(|f| f.end <= addr);
        let Some(f) = self.files.get(i).filter(|f| f.start <= addr && addr < f.end) else { return 0 };
        let Some(Some(host)) = self.host.get(&f.path) else { return 0 };
        let n = (buf.len() as u64).min(f.end - addr) as usize;
        let mut open = self.open.borrow_mut();
        if open.len() >= MAX_OPEN_FILES && !open.contains_key(&f.path) {
            open.clear();
        }
        let file = open.entry(f.path.clone()).or_insert_with(|| crate::process::files::open_regular(host).ok());
        let Some(file) = file else { return 0 };
        let off = f.offset.saturating_add(addr - f.start);
        let mut done = 0;
        while done < n {
            match file.read_at(&mut buf[done..n], off + done as u64) {
                Ok(0) | Err(_) => break,
                Ok(k) => done += k,
            }
        }
        done
    }

    fn segment(&self, addr: u64) -> Option<&ProgramHeader> {
        let i = self.segments.partition_point(|s| s.end() <= addr);
        self.segments.get(i).filter(|s| s.vaddr <= addr && addr < s.end())
    }
}

impl Memory for CoreMemory {
    fn read_partial(&self, addr: u64, buf: &mut [u8]) -> usize {
        let mut done = 0usize;
        while done < buf.len() {
            let Some(a) = addr.checked_add(done as u64) else { break };
            let Some(seg) = self.segment(a) else { break };
            let want = ((seg.end() - a) as usize).min(buf.len() - done);
            let chunk = &mut buf[done..done + want];
            let mut got = self.read_core(seg, a, chunk);
            if got < want {
                got += self.read_file(a + got as u64, &mut chunk[got..]);
            }
            done += got;
            if got < want {
                break;
            }
        }
        done
    }
}
