//! Compressed ELF sections (SHF_COMPRESSED, zlib) inflated on demand, front to back, by the
//! reader that needs them or ahead of it by a second thread (see `readahead.rs`).
//!
//! A reader that needs only the start of a section (one unit of `.debug_info`) asks for a prefix
//! of it; the stream is inflated just far enough. The output buffer is allocated once at the
//! section's full uncompressed size but left untouched, so memory is only committed for the bytes
//! actually inflated, and it never moves: slices of the prefix handed out earlier stay valid while
//! later calls write bytes after them. It is allocated zeroed (for a large buffer, fresh zero pages
//! from the kernel: nothing to clear, nothing resident until written), so the inflater writes into
//! initialised memory without clearing it first.
//!
//! The stream sits behind a mutex: whoever holds it (the reader, or the read-ahead thread between
//! two of its steps) inflates the next bytes; `filled` is published after they are written, and
//! bytes below it are never written again, so readers take slices of `..filled` without the lock.

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use flate2::{Decompress, FlushDecompress, Status};

use super::bytes::ReadAt;

/// Bytes inflated per step beyond what was asked for, so many small requests do not each pay for
/// a call into the inflater.
const STEP: usize = 256 << 10;

/// Bytes the read-ahead thread inflates per hold of the stream: small, so a reader waiting for
/// the same stream, or a cancel, waits little.
pub(crate) const READAHEAD_STEP: usize = 64 << 10;

/// Compressed bytes read from the file per step.
const INPUT_CHUNK: usize = 256 << 10;

/// Deflate never expands more than about 1032:1; a header claiming more is corrupt, and would
/// otherwise make us reserve an absurd buffer.
const MAX_RATIO: u64 = 1100;

/// One compressed section. Cloning shares the stream and the buffer (the read-ahead thread holds
/// a clone); the buffer is freed with the last clone.
#[derive(Clone)]
pub(crate) struct Inflater {
    shared: Arc<Shared>,
}

struct Shared {
    /// `cap` bytes from the global allocator; `..filled` initialised and never written again.
    buf: NonNull<u8>,
    cap: usize,
    filled: AtomicUsize,
    /// The compressed stream's file range (read from the file passed in on every call).
    input: (usize, usize),
    /// None once the stream ended or failed.
    stream: Mutex<Option<Stream>>,
    failed: AtomicBool,
    /// Readers waiting for the stream: the read-ahead thread leaves it to them.
    readers: AtomicUsize,
}

type LockResult<'a> = Result<MutexGuard<'a, Option<Stream>>, PoisonError<MutexGuard<'a, Option<Stream>>>>;

struct Stream {
    z: Decompress,
    chunk: Vec<u8>,
}

// SAFETY: the buffer is written only by the holder of `stream`'s lock, only at `filled` and
// beyond, and `filled` is raised (Release) after the bytes are written; other threads read only
// bytes below a `filled` they loaded (Acquire). Everything else is atomics or behind the mutex.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

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
        let stream = Stream { z: Decompress::new(true), chunk: Vec::new() };
        Some(Inflater {
            shared: Arc::new(Shared {
                buf,
                cap,
                filled: AtomicUsize::new(0),
                input,
                stream: Mutex::new(Some(stream)),
                failed: AtomicBool::new(false),
                readers: AtomicUsize::new(0),
            }),
        })
    }

    /// The uncompressed size.
    pub fn size(&self) -> usize {
        self.shared.cap
    }

    /// How many bytes are inflated so far.
    pub(crate) fn inflated(&self) -> usize {
        self.shared.filled.load(Ordering::Acquire)
    }

    /// At least the first `want` bytes (all of them if `want` exceeds the size), inflating
    /// further from `file` (the whole ELF, read in chunks) as needed. None if the stream is corrupt or ends
    /// short of the size its header claimed.
    pub fn prefix<'s, R: ReadAt + ?Sized>(&'s self, file: &R, want: usize) -> Option<&'s [u8]> {
        let s = &*self.shared;
        let want = want.min(s.cap);
        if s.filled.load(Ordering::Acquire) < want {
            s.readers.fetch_add(1, Ordering::AcqRel);
            let guard = s.stream.lock();
            s.readers.fetch_sub(1, Ordering::AcqRel);
            s.advance(guard, file, want, want.saturating_add(STEP));
        }
        let filled = s.filled.load(Ordering::Acquire);
        if filled < want && s.failed.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: the first `filled` bytes were initialised before `filled` was published and are
        // never written again; the buffer lives (and stays put) as long as `self.shared`.
        Some(unsafe { std::slice::from_raw_parts(s.buf.as_ptr(), filled) })
    }

    /// One step of inflating ahead of the readers, up to `limit` bytes: for the read-ahead
    /// thread, which never waits for the stream: a reader that wants it gets it.
    pub(crate) fn step_ahead<R: ReadAt + ?Sized>(&self, file: &R, limit: usize) -> Ahead {
        let s = &*self.shared;
        let limit = limit.min(s.cap);
        let filled = s.filled.load(Ordering::Acquire);
        if filled >= limit || s.failed.load(Ordering::Acquire) {
            return Ahead::Done;
        }
        if s.readers.load(Ordering::Acquire) > 0 {
            return Ahead::Busy;
        }
        let guard = match s.stream.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::Poisoned(p)) => Err(p),
            Err(TryLockError::WouldBlock) => return Ahead::Busy,
        };
        let want = (filled + READAHEAD_STEP).min(limit);
        s.advance(guard, file, want, want);
        if s.filled.load(Ordering::Acquire) < limit && !s.failed.load(Ordering::Acquire) {
            Ahead::More
        } else {
            Ahead::Done
        }
    }
}

/// What one read-ahead step left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ahead {
    /// More to inflate up to the limit.
    More,
    /// A reader holds or wants the stream: try again later.
    Busy,
    /// The limit is reached, or the stream ended or failed.
    Done,
}

impl Shared {
    /// With the stream's lock (`guard`), inflates until `filled >= want` (writing up to
    /// `target`), or the stream ends or fails.
    fn advance<R: ReadAt + ?Sized>(&self, guard: LockResult<'_>, file: &R, want: usize, target: usize) {
        // A thread that panicked while holding the stream left it in an unknown state.
        let Ok(mut guard) = guard else {
            self.failed.store(true, Ordering::Release);
            return;
        };
        let target = target.max(want).min(self.cap);
        while self.filled.load(Ordering::Acquire) < want {
            let Some(stream) = guard.as_mut() else { return };
            match self.step(file, stream, target) {
                Progress::More => {}
                Progress::Ended => {
                    *guard = None;
                    return;
                }
                Progress::Failed => {
                    self.failed.store(true, Ordering::Release);
                    *guard = None;
                    return;
                }
            }
        }
        if self.filled.load(Ordering::Acquire) == self.cap {
            *guard = None;
        }
    }

    /// One call into the inflater, writing at `filled` up to `target`.
    fn step<R: ReadAt + ?Sized>(&self, file: &R, stream: &mut Stream, target: usize) -> Progress {
        let start = self.filled.load(Ordering::Acquire);
        let len = target.saturating_sub(start);
        if len == 0 {
            return Progress::More;
        }
        // SAFETY: `start + len <= cap`: this range is inside the allocation (zeroed, so
        // initialised), past every slice handed out so far (those end at or below `start`), and
        // only the holder of the stream's lock (the caller) writes to it.
        let out = unsafe { std::slice::from_raw_parts_mut(self.buf.as_ptr().add(start), len) };
        let z = &mut stream.z;
        let consumed = z.total_in() as usize;
        // The next compressed bytes: a short read (the file shrank) fails the stream.
        let n = self.input.1.saturating_sub(consumed).min(INPUT_CHUNK);
        stream.chunk.resize(n, 0);
        let at = self.input.0.saturating_add(consumed) as u64;
        if n > 0 && !file.read_exact_at(at, &mut stream.chunk) {
            return Progress::Failed;
        }
        let before = z.total_out();
        let status = z.decompress(&stream.chunk, out, FlushDecompress::None);
        let produced = (z.total_out() - before) as usize;
        self.filled.store(start + produced.min(len), Ordering::Release);
        match status {
            Ok(Status::StreamEnd) if self.filled.load(Ordering::Acquire) < self.cap => Progress::Failed,
            Ok(Status::StreamEnd) => Progress::Ended,
            Ok(_) if produced > 0 || (z.total_in() as usize) > consumed => Progress::More,
            _ => Progress::Failed,
        }
    }
}

/// How far one step of inflating got.
enum Progress {
    More,
    Ended,
    Failed,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: allocated in `Inflater::new` with this layout; no slice of it outlives the last
        // `Inflater` holding this.
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
