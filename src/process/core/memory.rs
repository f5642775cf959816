//! A core's memory: the bytes of its PT_LOAD segments, and for file-backed ranges the core
//! left out (the kernel's default coredump_filter keeps only the first page of each mapped
//! ELF file; gdb's gcore writes no segment at all for a library's code), the bytes of the
//! mapped file itself, opened through the door (under the sysroot,
//! with the process's rights) and read as a watched read (process/blocking.rs).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use super::layout::Segment;
use super::notes::FileNote;
use super::source::CoreFile;
use crate::process::Memory;

/// At most this many mapped files are kept open (each is opened once, when the core is read).
const MAX_OPEN_FILES: usize = 256;

pub struct CoreMemory {
    core: CoreFile,
    /// PT_LOAD segments, sorted by address.
    segments: Vec<Segment>,
    /// NT_FILE entries, sorted by address.
    files: Vec<FileNote>,
    /// Each mapped file, opened through the door (process/core/mod.rs), None when it cannot be
    /// read (or must not: its build-id differs from the one the process mapped).
    host: HashMap<String, Option<File>>,
}

impl CoreMemory {
    pub fn new(core: CoreFile, mut segments: Vec<Segment>, mut files: Vec<FileNote>) -> Self {
        segments.sort_by_key(|s| s.vaddr);
        files.sort_by_key(|f| f.start);
        CoreMemory { core, segments, files, host: HashMap::new() }
    }

    /// Gives the file the process mapped as `path`, opened (None: it cannot be read). At most
    /// [`MAX_OPEN_FILES`] are kept open; the others are not read.
    pub fn set_host_file(&mut self, path: &str, host: Option<File>) {
        let open = self.host.values().filter(|f| f.is_some()).count();
        let host = host.filter(|_| open < MAX_OPEN_FILES);
        self.host.insert(path.to_string(), host);
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn core_len(&self) -> u64 {
        self.core.len
    }

    /// Bytes the core holds of a segment at `addr` (0 when it holds none there).
    fn read_core(&self, seg: &Segment, addr: u64, buf: &mut [u8]) -> usize {
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
        let Some(f) = self.file_at(addr) else { return 0 };
        let Some(Some(file)) = self.host.get(&f.path) else { return 0 };
        let n = (buf.len() as u64).min(f.end - addr) as usize;
        let off = f.offset.saturating_add(addr - f.start);
        // A watched read: a file on a hung mount is abandoned, never waited on.
        crate::process::blocking::file(std::path::Path::new(&f.path), || {
            let mut done = 0;
            while done < n {
                match file.read_at(&mut buf[done..n], off + done as u64) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => done += k,
                }
            }
            done
        })
        .unwrap_or(0)
    }

    /// The NT_FILE entry that maps `addr`.
    fn file_at(&self, addr: u64) -> Option<&FileNote> {
        let i = self.files.partition_point(|f| f.end <= addr);
        self.files.get(i).filter(|f| f.start <= addr && addr < f.end)
    }

    fn segment(&self, addr: u64) -> Option<&Segment> {
        let i = self.segments.partition_point(|s| s.end() <= addr);
        self.segments.get(i).filter(|s| s.vaddr <= addr && addr < s.end())
    }
}

impl Memory for CoreMemory {
    fn read_partial(&self, addr: u64, buf: &mut [u8]) -> usize {
        let mut done = 0usize;
        while done < buf.len() {
            let Some(a) = addr.checked_add(done as u64) else { break };
            let (want, mut got);
            if let Some(seg) = self.segment(a) {
                want = ((seg.end() - a) as usize).min(buf.len() - done);
                let chunk = &mut buf[done..done + want];
                got = self.read_core(seg, a, chunk);
                if got < want {
                    got += self.read_file(a + got as u64, &mut chunk[got..]);
                }
            } else {
                // No segment at all (gcore leaves a library's code out): the file, up to the
                // next segment or the end of its mapping.
                let Some(f) = self.file_at(a) else { break };
                let next = self.segments.get(self.segments.partition_point(|s| s.vaddr <= a)).map(|s| s.vaddr);
                let stop = next.map_or(f.end, |n| n.min(f.end));
                want = ((stop - a) as usize).min(buf.len() - done);
                got = self.read_file(a, &mut buf[done..done + want]);
            }
            done += got;
            if got < want {
                break;
            }
        }
        done
    }
}
