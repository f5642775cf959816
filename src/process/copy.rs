//! A copy of the target's memory, taken page by page as the read phase reads it: the fourth
//! kind of process memory (next to a live process, a core and a synthetic image).
//!
//! The read phase reads through a [`CopyingMemory`] whose source is the live process: every
//! page it touches is kept in a [`PageCopy`]. Once the read phase is over the process may run
//! again, and the analysis reads the same [`CopyingMemory`] with its source cut off
//! ([`CopyingMemory::freeze`]): it sees the memory as it was at the stop, and a page the read
//! phase never read is simply not readable. The copy is shared by every attempt of one capture
//! (capture/worker.rs), so an attempt started after another one got stuck does not read again
//! what the first one read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::memory::Memory;

const PAGE: u64 = 4096;

/// Pages at most kept (256 MiB): a report that needs more is cut there, with reads failing.
const MAX_PAGES: usize = 65536;

type Page = Option<Arc<[u8]>>;

/// The pages read so far, each either its bytes or `None` (not readable at the stop).
#[derive(Debug, Default)]
pub struct PageCopy {
    pages: Mutex<HashMap<u64, Page>>,
}

impl PageCopy {
    pub fn new() -> Arc<PageCopy> {
        Arc::new(PageCopy::default())
    }

    fn get(&self, page: u64) -> Option<Page> {
        self.pages.lock().unwrap_or_else(|p| p.into_inner()).get(&page).cloned()
    }

    fn put(&self, page: u64, bytes: Page) {
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        if pages.len() < MAX_PAGES {
            pages.insert(page, bytes);
        }
    }

    /// How many pages are kept (readable or not).
    pub fn len(&self) -> usize {
        self.pages.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads the copy first, then (until frozen) the source, keeping every page it reads.
pub struct CopyingMemory<'a> {
    source: Option<&'a dyn Memory>,
    copy: Arc<PageCopy>,
    frozen: AtomicBool,
}

impl<'a> CopyingMemory<'a> {
    /// `source` None: the copy alone (an attempt made after the process ran again).
    pub fn new(source: Option<&'a dyn Memory>, copy: Arc<PageCopy>) -> Self {
        CopyingMemory { source, copy, frozen: AtomicBool::new(false) }
    }

    /// From now on only the copy is read.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::Release);
    }

    fn page(&self, page: u64) -> Page {
        if let Some(p) = self.copy.get(page) {
            return p;
        }
        let source = self.source.filter(|_| !self.frozen.load(Ordering::Acquire))?;
        let mut buf = vec![0u8; PAGE as usize];
        let got = source.read_partial(page, &mut buf);
        let bytes: Page = (got == buf.len()).then(|| Arc::from(buf));
        self.copy.put(page, bytes.clone());
        bytes
    }
}

impl Memory for CopyingMemory<'_> {
    fn read_partial(&self, addr: u64, buf: &mut [u8]) -> usize {
        let mut done = 0usize;
        while done < buf.len() {
            let Some(a) = addr.checked_add(done as u64) else { break };
            let page = a & !(PAGE - 1);
            let off = (a - page) as usize;
            let n = (PAGE as usize - off).min(buf.len() - done);
            match self.page(page) {
                Some(p) => buf[done..done + n].copy_from_slice(&p[off..off + n]),
                None => break,
            }
            done += n;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{ImageMemory, MemoryExt};

    #[test]
    fn the_copy_keeps_what_was_read_and_only_that() {
        let mut m = ImageMemory::new();
        m.add(0x10000, (0..3 * 4096).map(|i| (i % 251) as u8).collect());
        let copy = PageCopy::new();
        let c = CopyingMemory::new(Some(&m), copy.clone());
        assert_eq!(c.read_u64(0x10ffc).unwrap(), m.read_u64(0x10ffc).unwrap());
        assert!(c.read_u64(0x20000).is_err());
        assert_eq!(copy.len(), 3); // two pages read, one unreadable
        c.freeze();
        assert_eq!(c.read_u64(0x10ffc).unwrap(), m.read_u64(0x10ffc).unwrap());
        assert!(c.read_u64(0x12000).is_err(), "never read before the freeze");
        // Another attempt over the same copy, with no source.
        let again = CopyingMemory::new(None, copy);
        assert_eq!(again.read_u64(0x11000).unwrap(), m.read_u64(0x11000).unwrap());
    }
}
