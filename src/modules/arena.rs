//! An append-only store of byte buffers that hands out slices living as long as the store:
//! section bytes and CFI windows read on demand, borrowed by DWARF and CFI readers for the rest
//! of the report.

use std::cell::RefCell;

#[derive(Default)]
pub(crate) struct Arena {
    /// Boxed slices never move or shrink once pushed, and are only dropped with the arena.
    buffers: RefCell<Vec<Box<[u8]>>>,
}

impl Arena {
    /// Keeps `bytes` and returns them, borrowed for as long as the arena lives.
    pub fn keep(&self, bytes: Vec<u8>) -> &[u8] {
        let boxed = bytes.into_boxed_slice();
        let (ptr, len) = (boxed.as_ptr(), boxed.len());
        self.buffers.borrow_mut().push(boxed);
        // SAFETY: the box's heap allocation does not move when the Vec of boxes grows, is never
        // mutated, and is dropped only with `self`, which the returned borrow cannot outlive.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }

    /// Keeps `bytes` and returns their index for `get`.
    pub(crate) fn keep_indexed(&self, bytes: Vec<u8>) -> usize {
        self.keep(bytes);
        self.buffers.borrow().len() - 1
    }

    /// The buffer kept at `index`.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let buffers = self.buffers.borrow();
        let b = buffers.get(index)?;
        let (ptr, len) = (b.as_ptr(), b.len());
        // SAFETY: as in `keep`: the boxed bytes neither move nor change while `self` lives.
        Some(unsafe { std::slice::from_raw_parts(ptr, len) })
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.buffers.borrow().iter().map(|b| b.len()).sum()
    }
}
