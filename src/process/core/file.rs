//! The bytes of a core file: the file itself when it is a plain ELF core, or a gzip or zstd
//! stream (systemd-coredump's `.zst` files, `core.gz` artifacts) decompressed into an
//! anonymous temporary file, never into memory; read with bounded preads either way.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::error::CoreError;

/// A decompressed core may be at most this large.
pub(crate) const MAX_DECOMPRESSED: u64 = 16 << 30;

/// How the file on disk was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// An opened core: a file read with preads, and its length.
pub(crate) struct CoreFile {
    pub file: File,
    pub len: u64,
    pub compression: Compression,
}

impl CoreFile {
    /// Reads as many bytes as the file has at `off` (short at its end).
    pub(crate) fn read_at(&self, off: u64, buf: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], off + done as u64) {
                Ok(0) | Err(_) => break,
                Ok(n) => done += n,
            }
        }
        done
    }
}

/// Opens `path`, decompressing it first when it is gzip or zstd.
pub fn open(path: &Path) -> Result<CoreFile, CoreError> {
    // The user names the core: their own rights, but still the door (regular files only,
    // never blocking on a FIFO, a watched read).
    let file = super::super::files::open_regular(path)
        .map_err(|e| CoreError::Open { path: path.into(), source: std::io::Error::other(e.to_string()) })?;
    let mut magic = [0u8; 4];
    let got = file.read_at(&mut magic, 0).map_err(|source| CoreError::Read { path: path.into(), source })?;
    if got == 0 {
        return Err(CoreError::Empty { path: path.into() });
    }
    let compression = match magic {
        [0x7f, b'E', b'L', b'F'] => Compression::None,
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => {
            let magic = magic[..got].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
            return Err(CoreError::NotElf { path: path.into(), magic });
        }
    };
    let file = match compression {
        Compression::None => file,
        Compression::Gzip => decompress(path, compression, flate2::read::MultiGzDecoder::new(file))?,
        Compression::Zstd => decompress(path, compression, ZstdFrames::new(BufReader::new(file)))?,
    };
    let len = file.metadata().map_err(|source| CoreError::Read { path: path.into(), source })?.len();
    Ok(CoreFile { file, len, compression })
}

/// Streams `reader` into an anonymous temporary file, at most [`MAX_DECOMPRESSED`] bytes.
fn decompress(path: &Path, format: Compression, reader: impl Read) -> Result<File, CoreError> {
    let err = |why: String| CoreError::Decompress { path: path.into(), format: format.name(), why };
    let mut out = crate::door::OutDir::open(&std::env::temp_dir(), false)
        .map_err(|e| err(format!("no temporary folder: {e}")))?
        .anonymous()
        .map_err(|e| err(format!("no temporary file: {e}")))?;
    let mut limited = reader.take(MAX_DECOMPRESSED + 1);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(e.to_string())),
        };
        total += n as u64;
        if total > MAX_DECOMPRESSED {
            return Err(CoreError::TooLarge { path: path.into(), limit_gb: MAX_DECOMPRESSED >> 30 });
        }
        out.write_all(&buf[..n]).map_err(|e| err(format!("writing the temporary file: {e}")))?;
    }
    if total == 0 {
        return Err(err("it holds no data".into()));
    }
    Ok(out)
}

/// Every zstd frame of a stream in turn (ruzstd's decoder reads one frame).
struct ZstdFrames<R: BufRead> {
    source: Option<R>,
    frame: Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(source: R) -> Self {
        ZstdFrames { source: Some(source), frame: None }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(frame) = &mut self.frame {
                let n = frame.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                let done = self.frame.take().map(|f| f.into_inner());
                self.source = done;
            }
            let Some(mut source) = self.source.take() else { return Ok(0) };
            if source.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let frame = ruzstd::decoding::StreamingDecoder::new(source)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
            self.frame = Some(frame);
        }
    }
}
