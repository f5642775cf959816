//! Compressed ELF sections (SHF_COMPRESSED, zlib) inflated on demand, front to back.
//!
//! A reader that needs only the start of a section (one unit of `.debug_info`) asks for a prefix
//! of it; the stream is inflated just far enough. The output buffer is allocated once at the
//! section's full uncompressed size but left untouched, so memory is only committed for the bytes
//! actually inflated, and it never moves: slices of the prefix handed out earlier stay valid while
//! later calls write bytes after them. It is allocated zeroed (for a large buffer, fresh zero pages
//! from the kernel: nothing to clear, nothing resident until written), so the inflater writes into
//! initialised memory without clearing it first.

use std::alloc::{self, Layout};
use std::cell::{Cell, RefCell};
use std::ptr::NonNull;

use flate2::{Decompress, FlushDecompress, Status};

use super::source::ReadAt;

/// Bytes inflated per step beyond what was asked for, so many small requests do not each pay for
/// a call into the inflater.
const STEP: usize = 256 << 10;

/// Compressed bytes read from the file per step.
const INPUT_CHUNK: usize = 256 << 10;

/// Deflate never expands more than about 1032:1; a header claiming more is corrupt, and would
/// otherwise make us reserve an absurd buffer.
const MAX_RATIO: u64 = 1100;

pub struct Inflater {
    /// `cap` bytes from the global allocator; `..filled` initialised and never written again.
    buf: NonNull<u8>,
    cap: usize,
    filled: Cell<usize>,
    /// The compressed stream's file range (read from the file passed in on every call).
    input: (usize, usize),
    /// None once the stream ended or failed.
    state: RefCell<Option<Decompress>>,
    failed: Cell<bool>,
}

impl Inflater {
    /// An inflater for the zlib stream at `input` (file offset, length) that decompresses to
    /// `size` bytes. None when the size is implausible or cannot be reserved.
    pub fn new(input: (usize, usize), size: u64) -> Option<Inflater> {
        if size == 0 || size > (input.1 as u64).saturating_mul(MAX_RATIO).saturating_add(1 << 16) {
            return None;
        }
        let cap = usize::try_from(size).ok()?;
        let layout = Layout::array::<u8>(cap).ok()?;
        // SAFETY: `layout` has a non-zero size.
        let buf = NonNull::new(unsafe { alloc::alloc_zeroed(layout) })?;
        Some(Inflater {
            buf,
            cap,
            filled: Cell::new(0),
            input,
            state: RefCell::new(Some(Decompress::new(true))),
            failed: Cell::new(false),
        })
    }

    /// The uncompressed size.
    pub fn size(&self) -> usize {
        self.cap
    }

    /// How many bytes are inflated so far.
    pub fn inflated(&self) -> usize {
        self.filled.get()
    }

    /// At least the first `want` bytes (all of them if `want` exceeds the size), inflating
    /// further from `file` (the whole ELF, read in chunks) as needed. None if the stream is corrupt or ends
    /// short of the size its header claimed.
    pub fn prefix<'s, R: ReadAt + ?Sized>(&'s self, file: &R, want: usize) -> Option<&'s [u8]> {
        let want = want.min(self.cap);
        if self.filled.get() < want {
            self.inflate_to(file, want);
        }
        if self.failed.get() && self.filled.get() < want {
            return None;
        }
        // SAFETY: the first `filled` bytes were initialised by `inflate_to` and are never written
        // again; the buffer lives (and stays put) as long as `self`.
        Some(unsafe { std::slice::from_raw_parts(self.buf.as_ptr(), self.filled.get()) })
    }

    fn inflate_to<R: ReadAt + ?Sized>(&self, file: &R, want: usize) {
        let Ok(mut state) = self.state.try_borrow_mut() else { return };
        let Some(z) = state.as_mut() else { return };
        let mut chunk = Vec::new();
        let target = want.saturating_add(STEP).min(self.cap);
        while self.filled.get() < want {
            let start = self.filled.get();
            let len = target - start;
            // SAFETY: `start + len <= cap`: this range is inside the allocation (zeroed, so
            // initialised), past every slice handed out so far (those end at `start`), and only
            // this call (holding the state's borrow) writes to it.
            let out = unsafe { std::slice::from_raw_parts_mut(self.buf.as_ptr().add(start), len) };
            let consumed = z.total_in() as usize;
            // The next compressed bytes: a short read (the file shrank) fails the stream.
            let n = self.input.1.saturating_sub(consumed).min(INPUT_CHUNK);
            chunk.resize(n, 0);
            let at = self.input.0.saturating_add(consumed) as u64;
            if n > 0 && !file.read_exact_at(at, &mut chunk) {
                self.fail(&mut state);
                return;
            }
            let before = z.total_out();
            let status = z.decompress(&chunk, out, FlushDecompress::None);
            let produced = (z.total_out() - before) as usize;
            self.filled.set(start + produced.min(len));
            match status {
                Ok(Status::StreamEnd) => {
                    if self.filled.get() < self.cap {
                        self.fail(&mut state);
                    } else {
                        *state = None;
                    }
                    return;
                }
                Ok(_) if produced > 0 || (z.total_in() as usize) > consumed => {}
                _ => {
                    self.fail(&mut state);
                    return;
                }
            }
        }
        if self.filled.get() == self.cap {
            *state = None;
        }
    }

    fn fail(&self, state: &mut Option<Decompress>) {
        self.failed.set(true);
        *state = None;
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; no slice of it outlives `self`.
        unsafe { alloc::dealloc(self.buf.as_ptr(), Layout::array::<u8>(self.cap).expect("valid in new")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::ZlibEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn compressed(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn prefixes_grow_and_earlier_slices_stay_valid() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let z = compressed(&data);
        let mut file = vec![0xAAu8; 100];
        file.extend_from_slice(&z);
        let inf = Inflater::new((100, z.len()), data.len() as u64).unwrap();
        let a = inf.prefix(&file, 10).unwrap();
        assert!(a.len() >= 10 && a.len() < data.len(), "inflated {} bytes for 10", a.len());
        let b = inf.prefix(&file, 1_000_000).unwrap();
        assert!(b.len() >= 1_000_000);
        assert_eq!(a, &data[..a.len()]);
        let c = inf.prefix(&file, usize::MAX).unwrap();
        assert_eq!(c, &data[..]);
        assert_eq!(b, &data[..b.len()]);
        assert_eq!(inf.inflated(), data.len());
    }

    #[test]
    fn corrupt_or_short_streams_fail() {
        let data = vec![7u8; 500_000];
        let mut z = compressed(&data);
        // Claims more than the stream holds.
        let inf = Inflater::new((0, z.len()), data.len() as u64 + 10).unwrap();
        assert!(inf.prefix(&z, usize::MAX).is_none());
        // Garbage in the middle of the stream.
        let n = z.len();
        for b in &mut z[n / 3..] {
            *b = 0xff;
        }
        let inf = Inflater::new((0, z.len()), data.len() as u64).unwrap();
        assert!(inf.prefix(&z, usize::MAX).is_none());
        // An input range outside the file.
        let inf = Inflater::new((10, 1 << 20), 100).unwrap();
        assert!(inf.prefix(&z, 1).is_none());
        // Absurd sizes are refused up front.
        assert!(Inflater::new((0, 10), u64::MAX).is_none());
        assert!(Inflater::new((0, 10), 0).is_none());
    }
}
