//! Reading a file crashcatch merges into (pytest's JUnit file), which anyone who can write in
//! its folder may have replaced: opened with O_NOFOLLOW (a symlink is not followed), O_NONBLOCK
//! and O_NOCTTY (a FIFO or a terminal there cannot block or adopt crashcatch), then accepted only
//! if fstat says it is a regular file, and read as bytes up to a cap.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The largest file read (pytest's JUnit file of a very large suite is a few MB).
pub const MAX_BYTES: u64 = 64 << 20;

/// The file as it was read.
#[derive(Debug)]
pub struct Existing {
    pub bytes: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Why the file already at the path cannot be merged into.
#[derive(Debug, thiserror::Error)]
pub enum ExistingFileError {
    #[error("it is a symbolic link")]
    Symlink,
    #[error("it is not a regular file but {0}")]
    NotRegular(&'static str),
    #[error("it is larger than {} MiB", MAX_BYTES >> 20)]
    TooLarge,
    #[error("it could not be read: {0}")]
    Io(#[source] io::Error),
}

fn kind(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => "a FIFO",
        libc::S_IFDIR => "a directory",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFSOCK => "a socket",
        _ => "something else",
    }
}

/// The file at `path`; `None` when there is none.
pub fn read(path: &Path) -> Result<Option<Existing>, ExistingFileError> {
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(ExistingFileError::Symlink),
        Err(e) => return Err(ExistingFileError::Io(e)),
    };
    let meta = f.metadata().map_err(ExistingFileError::Io)?;
    if !meta.file_type().is_file() {
        return Err(ExistingFileError::NotRegular(kind(meta.mode())));
    }
    if meta.len() > MAX_BYTES {
        return Err(ExistingFileError::TooLarge);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // It may grow while it is read: never more than the cap.
    f.take(MAX_BYTES + 1).read_to_end(&mut bytes).map_err(ExistingFileError::Io)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(ExistingFileError::TooLarge);
    }
    Ok(Some(Existing { bytes, mode: meta.mode() & 0o7777, uid: meta.uid(), gid: meta.gid() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.xml");
        assert!(read(&p).unwrap().is_none());
        std::fs::write(&p, b"\xff<x/>").unwrap();
        assert_eq!(read(&p).unwrap().unwrap().bytes, b"\xff<x/>");
        let link = dir.path().join("l.xml");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(matches!(read(&link), Err(ExistingFileError::Symlink)));
        let fifo = dir.path().join("f.xml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(read(&fifo), Err(ExistingFileError::NotRegular("a FIFO"))));
        assert!(matches!(read(dir.path()), Err(ExistingFileError::NotRegular("a directory"))));
    }
}
