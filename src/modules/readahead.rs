//! Inflating compressed DWARF sections on a second thread while the report's own thread does the
//! rest (symbol passes, other modules, the first lookups).
//!
//! A distribution's debug files are zlib-compressed and zlib cannot seek: a line number in
//! glibc's `start_thread` needs 4 of the 5.8 MB of its `.debug_info` inflated, and that was half
//! of a report's time. The read-ahead thread starts on the sections the symbolizer will ask for
//! last (`.debug_info`) as soon as the stacks are unwound; the report's thread inflates what it
//! needs first itself, and whoever reaches a stream first advances it (see `inflate.rs`). Each
//! section is read ahead at most [`LIMIT`] bytes and all of them [`TOTAL_LIMIT`], so a huge
//! debug file, or a hundred of them, cost no more memory than a few small ones beyond what the
//! report asks for; the thread stops when the symbolizer is done with it (the handle's drop),
//! after at most one small step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::bytes::ElfBytes;
use super::inflate::{Ahead, Inflater};

/// Bytes of one section inflated ahead of any reader, at most.
pub(crate) const LIMIT: usize = 16 << 20;

/// Bytes the thread inflates in all, at most: many modules with compressed DWARF in one report
/// cost no more memory ahead of need than one large one.
const TOTAL_LIMIT: usize = 32 << 20;

/// How far to read section `name` (of `size` bytes) ahead: [`LIMIT`], or, when the end of
/// what the report needs of `.debug_info` is known, that end for `.debug_info` and the same
/// fraction (plus a tenth and 64 KB) of `.debug_line` and `.debug_abbrev`.
pub(crate) fn limit(name: &str, size: usize, info_end: Option<usize>, info_size: Option<usize>) -> usize {
    let (Some(end), Some(info_size)) = (info_end, info_size.filter(|&s| s > 0)) else { return LIMIT };
    match name {
        ".debug_info" => end.min(LIMIT),
        ".debug_line" | ".debug_abbrev" => {
            let part = (size as u128 * end.min(info_size) as u128 * 11 / (info_size as u128 * 10)) as usize;
            part.saturating_add(64 << 10).min(LIMIT)
        }
        _ => LIMIT,
    }
}

/// Sections read ahead per report, at most (a process with a hundred libraries that each have
/// compressed DWARF and a frame gets the first ones).
const MAX_JOBS: usize = 32;

/// One section to inflate ahead: its stream, the file it is read from, and how far.
pub(crate) struct InflateJob {
    pub inflater: Inflater,
    pub file: Arc<ElfBytes>,
    pub limit: usize,
}

/// The running read-ahead thread; dropping it stops the thread and waits for it.
pub(crate) struct ReadAhead {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ReadAhead {
    /// Starts a thread that works through `jobs` in order. None when there is nothing to do, when
    /// this process may run on one CPU only (the thread would only take turns with the report's),
    /// or when no thread can be started (the work is then done on demand, as without it).
    pub fn start(jobs: Vec<InflateJob>) -> Option<ReadAhead> {
        Self::start_with(jobs, TOTAL_LIMIT)
    }

    fn start_with(mut jobs: Vec<InflateJob>, total_limit: usize) -> Option<ReadAhead> {
        jobs.truncate(MAX_JOBS);
        if jobs.is_empty() || std::thread::available_parallelism().map_or(true, |n| n.get() < 2) {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // Signals stay blocked in it (see quiet_thread).
        let thread = crate::process::quiet_thread::spawn_sized("crashcatch-inflate", Some(256 << 10), move || {
            run(&jobs, &flag, total_limit)
        })
        .ok()?;
        Some(ReadAhead { stop, thread: Some(thread) })
    }
}

/// One step at a time on the first job (in the given order, which is the priority) that has
/// more to do and whose stream no reader wants; when readers hold every stream left, wait a
/// moment. `.debug_info` comes first: it is the longest stream and the one a look-up needs
/// deepest (measured against taking the least advanced section first: 16.3 against 18.7 ms
/// for a report on the pyarrow crash, see BENCHMARKS.md).
fn run(jobs: &[InflateJob], stop: &AtomicBool, total_limit: usize) {
    let mut done = vec![false; jobs.len()];
    let mut total = 0usize;
    while !stop.load(Ordering::Relaxed) && total < total_limit {
        let mut stepped = false;
        let mut left = false;
        for (job, done) in jobs.iter().zip(done.iter_mut()).filter(|(_, d)| !**d) {
            left = true;
            let before = job.inflater.inflated();
            match job.inflater.step_ahead(&*job.file, job.limit) {
                Ahead::More => {}
                Ahead::Done => *done = true,
                Ahead::Busy => continue,
            }
            // Bytes a reader inflated meanwhile count too: the cap is on memory, not on work.
            total = total.saturating_add(job.inflater.inflated().saturating_sub(before));
            stepped = true;
            break;
        }
        if !left {
            return;
        }
        if !stepped {
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // A panic on that thread (caught here as Err) poisoned the stream it held: readers
            // of that section see it as failed and degrade.
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::inflate::READAHEAD_STEP;
    use super::*;
    use flate2::write::ZlibEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn section(n: u32) -> (Vec<u8>, Vec<u8>) {
        let data: Vec<u8> = (0..n).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(&data).unwrap();
        (data, e.finish().unwrap())
    }

    #[test]
    fn limits_follow_the_depth_needed_in_debug_info() {
        assert_eq!(limit(".debug_info", 100 << 20, None, Some(100 << 20)), LIMIT);
        assert_eq!(limit(".debug_info", 6_000_000, Some(4_000_000), Some(6_000_000)), 4_000_000);
        // 2/3 of .debug_info: 2/3 of .debug_line, plus a tenth of that and 64 KB.
        assert_eq!(limit(".debug_line", 1_200_000, Some(4_000_000), Some(6_000_000)), 880_000 + 65_536);
        assert_eq!(limit(".debug_abbrev", 1_200_000, Some(4_000_000), Some(6_000_000)), 880_000 + 65_536);
        assert_eq!(limit(".debug_rnglists", 1_200_000, Some(4_000_000), Some(6_000_000)), LIMIT);
        // Absurd values stay within the per-section limit.
        assert_eq!(limit(".debug_line", usize::MAX, Some(usize::MAX), Some(1)), LIMIT);
        assert_eq!(limit(".debug_line", 10, Some(5), Some(0)), LIMIT);
    }

    fn two_cpus() -> bool {
        std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
    }

    #[test]
    fn reads_ahead_up_to_the_limit_and_readers_get_the_same_bytes() {
        let (data, z) = section(3_000_000);
        let file = Arc::new(ElfBytes::Owned(z.clone()));
        let inf = Inflater::new((0, z.len()), data.len() as u64).unwrap();
        let limit = 1_000_000;
        let ra = ReadAhead::start(vec![InflateJob { inflater: inf.clone(), file: file.clone(), limit }]);
        assert_eq!(ra.is_some(), two_cpus());
        if let Some(ra) = ra {
            // The thread reaches its limit and stops there, whatever a reader does meanwhile.
            let a = inf.prefix(&*file, 10).unwrap().to_vec();
            assert_eq!(a, data[..a.len()]);
            while inf.inflated() < limit {
                std::thread::yield_now();
            }
            drop(ra);
            let n = inf.inflated();
            assert!(n < limit + READAHEAD_STEP + (256 << 10), "read ahead {n} bytes for a limit of {limit}");
        }
        assert_eq!(inf.prefix(&*file, usize::MAX).unwrap(), &data[..]);
    }

    #[test]
    fn all_sections_together_stop_at_the_total_limit() {
        let (data, z) = section(1_000_000);
        let file = Arc::new(ElfBytes::Owned(z.clone()));
        let infs: Vec<Inflater> = (0..6).map(|_| Inflater::new((0, z.len()), data.len() as u64).unwrap()).collect();
        let jobs =
            infs.iter().map(|i| InflateJob { inflater: i.clone(), file: file.clone(), limit: usize::MAX }).collect();
        let Some(ra) = ReadAhead::start_with(jobs, 2_500_000) else { return };
        // The thread ends by itself at the total limit.
        let t = ra.thread.as_ref().unwrap();
        while !t.is_finished() {
            std::thread::yield_now();
        }
        let total: usize = infs.iter().map(Inflater::inflated).sum();
        assert!((2_500_000..2_500_000 + READAHEAD_STEP).contains(&total), "{total}");
        // In order: the first two sections whole, the third in part, the rest untouched.
        assert_eq!(infs[0].inflated(), data.len());
        assert_eq!(infs[5].inflated(), 0);
    }

    #[test]
    fn a_reader_and_the_thread_on_the_same_stream_agree() {
        for _ in 0..20 {
            let (data, z) = section(2_000_000);
            let file = Arc::new(ElfBytes::Owned(z.clone()));
            let inf = Inflater::new((0, z.len()), data.len() as u64).unwrap();
            let ra =
                ReadAhead::start(vec![InflateJob { inflater: inf.clone(), file: file.clone(), limit: usize::MAX }]);
            let mut want = 1;
            while want < data.len() {
                let p = inf.prefix(&*file, want).unwrap();
                assert!(p.len() >= want);
                assert_eq!(p, &data[..p.len()]);
                want = want * 3 + 7;
            }
            drop(ra);
            assert_eq!(inf.prefix(&*file, usize::MAX).unwrap(), &data[..]);
        }
    }

    #[test]
    fn stopping_mid_stream_leaves_the_rest_to_readers_and_corrupt_streams_fail() {
        let (data, z) = section(4_000_000);
        let file = Arc::new(ElfBytes::Owned(z.clone()));
        let inf = Inflater::new((0, z.len()), data.len() as u64).unwrap();
        drop(ReadAhead::start(vec![InflateJob { inflater: inf.clone(), file: file.clone(), limit: usize::MAX }]));
        assert_eq!(inf.prefix(&*file, usize::MAX).unwrap(), &data[..]);

        let mut bad = z.clone();
        let n = bad.len();
        for b in &mut bad[n / 3..] {
            *b = 0xff;
        }
        let file = Arc::new(ElfBytes::Owned(bad.clone()));
        let inf = Inflater::new((0, bad.len()), data.len() as u64).unwrap();
        let ra = ReadAhead::start(vec![InflateJob { inflater: inf.clone(), file: file.clone(), limit: usize::MAX }]);
        while ra.is_some() && inf.step_ahead(&*file, usize::MAX) != Ahead::Done {}
        drop(ra);
        assert!(inf.prefix(&*file, usize::MAX).is_none());
        // What was inflated before the stream failed is still handed out (its start is right;
        // bytes inflated from the damaged part before deflate noticed are not checked, as for
        // any other untrusted DWARF).
        let p = inf.prefix(&*file, 1000).unwrap();
        assert!(p.len() >= 1000 && p[..1000] == data[..1000]);
    }
}
