//! The bytes of an ELF file, read with bounded `pread`s rather than mapped: a library truncated
//! or rewritten while crashcatch reads it gives a short read (the module degrades, with a note),
//! never a SIGBUS; and only the bytes asked for are copied, so a 50 MB library whose one function
//! is in the report costs kilobytes, not its size in page-cache pages counted in our RSS.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use super::error::ElfError;

/// No single read is larger than this: a section header claiming gigabytes is refused rather
/// than allocated.
pub(crate) const MAX_READ: u64 = 256 << 20;

/// Where an ELF's bytes come from.
pub(crate) enum ElfBytes {
    /// A file on disk, opened once; `len` is its size when opened, `path` names it for the
    /// watchdog (process/blocking.rs).
    File { file: File, len: u64, dev: u64, ino: u64, path: std::path::PathBuf },
    /// Bytes already in memory (the vDSO, tests).
    Owned(Vec<u8>),
}

/// Something bytes can be read from at an offset (a source, or a plain slice in tests).
pub(crate) trait ReadAt {
    /// Fills `buf` from `offset`; false if the bytes are not all there.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> bool;
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> bool {
        let Ok(start) = usize::try_from(offset) else { return false };
        match start.checked_add(buf.len()).and_then(|end| self.get(start..end)) {
            Some(b) => {
                buf.copy_from_slice(b);
                true
            }
            None => false,
        }
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> bool {
        self.as_slice().read_exact_at(offset, buf)
    }
}

impl ElfBytes {
    /// Opens a file crashcatch itself resolved (a host debug file, /proc/PID/map_files: the
    /// very file the process mapped) through the input door: regular files only, never
    /// blocking, a watched read.
    pub fn open(path: &Path) -> Result<ElfBytes, ElfError> {
        let file = crate::process::files::open_regular(path)
            .map_err(|source| ElfError::OpenAsTarget { path: path.display().to_string(), source })?;
        Self::from_file(file, path)
    }

    /// A file a caller already opened (and checked); `path` names it in errors.
    pub(crate) fn from_file(file: File, path: &Path) -> Result<ElfBytes, ElfError> {
        let meta = file.metadata().map_err(|source| ElfError::Stat { path: path.to_path_buf(), source })?;
        if !meta.is_file() {
            return Err(ElfError::NotAFile { path: path.to_path_buf() });
        }
        Ok(ElfBytes::File { file, len: meta.len(), dev: meta.dev(), ino: meta.ino(), path: path.to_path_buf() })
    }

    /// The size (as it was when opened).
    pub fn len(&self) -> u64 {
        match self {
            ElfBytes::File { len, .. } => *len,
            ElfBytes::Owned(v) => v.len() as u64,
        }
    }

    /// (device, inode) of a file source.
    pub(crate) fn identity(&self) -> Option<(u64, u64)> {
        match self {
            ElfBytes::File { dev, ino, .. } => Some((*dev, *ino)),
            ElfBytes::Owned(_) => None,
        }
    }

    /// `len` bytes at `offset`, or None when they are not all in the file (as it was when opened,
    /// and as it is now) or `len` exceeds `MAX_READ`.
    pub fn read(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        if len > MAX_READ || offset.checked_add(len)? > self.len() {
            return None;
        }
        let mut buf = vec![0u8; len as usize];
        self.read_exact_at(offset, &mut buf).then_some(buf)
    }
}

impl ReadAt for ElfBytes {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> bool {
        match self {
            ElfBytes::Owned(v) => v.read_exact_at(offset, buf),
            ElfBytes::File { file, len, path, .. } => {
                if offset.checked_add(buf.len() as u64).map_or(true, |end| end > *len) {
                    return false;
                }
                // read_exact_at retries interrupted and partial reads; end of file before the
                // buffer is full is an error, not a fault. A watched read: a file on a hung
                // mount is abandoned (process/blocking.rs).
                crate::process::blocking::file(path, || file.read_exact_at(buf, offset).is_ok()).unwrap_or(false)
            }
        }
    }
}
