//! Reading another process's memory, or a synthetic image of it.
//!
//! Everything that looks at a stopped process reads through [`Memory`], so the unwinder and the
//! Python walker can run over an [`ImageMemory`] in tests and fuzzers exactly as over a live process.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// A read that could not be completed: `got` of `len` bytes at `addr` were readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadError {
    pub addr: u64,
    pub len: usize,
    pub got: usize,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.got == 0 {
            write!(f, "memory at {:#x} is not readable", self.addr)
        } else {
            write!(f, "only {} of {} bytes at {:#x} are readable", self.got, self.len, self.addr)
        }
    }
}

impl std::error::Error for ReadError {}

/// Read-only access to an address space.
pub trait Memory {
    /// Copies as many bytes as are readable from `addr` on into `buf` and returns how many.
    /// A short count means the bytes after it could not be read (unmapped or protected).
    fn read_partial(&self, addr: u64, buf: &mut [u8]) -> usize;
}

/// Typed reads over any [`Memory`]; all little-endian (x86_64).
pub trait MemoryExt: Memory {
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let got = self.read_partial(addr, buf);
        if got == buf.len() {
            Ok(())
        } else {
            Err(ReadError { addr, len: buf.len(), got })
        }
    }
    fn read_bytes(&self, addr: u64, len: usize) -> Result<Vec<u8>, ReadError> {
        let mut v = vec![0u8; len];
        self.read_exact(addr, &mut v)?;
        Ok(v)
    }
    fn read_u8(&self, addr: u64) -> Result<u8, ReadError> {
        let mut b = [0u8; 1];
        self.read_exact(addr, &mut b)?;
        Ok(b[0])
    }
    fn read_u16(&self, addr: u64) -> Result<u16, ReadError> {
        let mut b = [0u8; 2];
        self.read_exact(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    fn read_u32(&self, addr: u64) -> Result<u32, ReadError> {
        let mut b = [0u8; 4];
        self.read_exact(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn read_i32(&self, addr: u64) -> Result<i32, ReadError> {
        self.read_u32(addr).map(|v| v as i32)
    }
    fn read_u64(&self, addr: u64) -> Result<u64, ReadError> {
        let mut b = [0u8; 8];
        self.read_exact(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn read_i64(&self, addr: u64) -> Result<i64, ReadError> {
        self.read_u64(addr).map(|v| v as i64)
    }
    /// A NUL-terminated string of at most `max` bytes (lossy UTF-8).
    fn read_cstr(&self, addr: u64, max: usize) -> Result<String, ReadError> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 64];
        let mut a = addr;
        while out.len() < max {
            let got = self.read_partial(a, &mut chunk);
            if got == 0 {
                if out.is_empty() {
                    return Err(ReadError { addr, len: 1, got: 0 });
                }
                break;
            }
            if let Some(p) = chunk[..got].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..p]);
                out.truncate(max);
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
            out.extend_from_slice(&chunk[..got]);
            a = a.wrapping_add(got as u64);
        }
        out.truncate(max);
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

impl<T: Memory + ?Sized> MemoryExt for T {}

/// A synthetic address space: byte regions at addresses. For tests and fuzzing.
#[derive(Default, Clone, Debug)]
pub struct ImageMemory {
    regions: BTreeMap<u64, Vec<u8>>,
}

impl ImageMemory {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds (or overwrites with) a region starting at `addr`. Regions must not overlap.
    pub fn add(&mut self, addr: u64, bytes: Vec<u8>) -> &mut Self {
        self.regions.insert(addr, bytes);
        self
    }
    /// Writes bytes into an existing region (panics if they do not fit: test helper).
    pub fn write(&mut self, addr: u64, bytes: &[u8]) {
        let (&start, region) = self.regions.range_mut(..=addr).next_back().expect("write outside every region");
        let off = (addr - start) as usize;
        region[off..off + bytes.len()].copy_from_slice(bytes);
    }
    pub fn write_u64(&mut self, addr: u64, v: u64) {
        self.write(addr, &v.to_le_bytes())
    }
    pub fn write_u32(&mut self, addr: u64, v: u32) {
        self.write(addr, &v.to_le_bytes())
    }
    pub fn regions(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.regions.iter().map(|(a, v)| (*a, v.as_slice()))
    }
}

impl Memory for ImageMemory {
    fn read_partial(&self, addr: u64, buf: &mut [u8]) -> usize {
        let mut done = 0usize;
        while done < buf.len() {
            let a = addr.wrapping_add(done as u64);
            if a < addr {
                break; // wrapped around
            }
            let Some((&start, region)) = self.regions.range(..=a).next_back() else { break };
            let off = (a - start) as usize;
            if off >= region.len() {
                break;
            }
            let n = (region.len() - off).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&region[off..off + n]);
            done += n;
        }
        done
    }
}

/// A page cache in front of another [`Memory`]: one stopped process is read many times at
/// nearby addresses (stack unwinding, object walks), and each live read is a system call.
pub struct CachedMemory<'a> {
    inner: &'a dyn Memory,
    pages: RefCell<HashMap<u64, Option<Box<[u8]>>>>,
}

const PAGE: u64 = 4096;

impl<'a> CachedMemory<'a> {
    pub fn new(inner: &'a dyn Memory) -> Self {
        CachedMemory { inner, pages: RefCell::new(HashMap::new()) }
    }

    fn with_page<R>(&self, page: u64, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        let mut pages = self.pages.borrow_mut();
        let entry = pages.entry(page).or_insert_with(|| {
            let mut buf = vec![0u8; PAGE as usize].into_boxed_slice();
            let got = self.inner.read_partial(page, &mut buf);
            if got == PAGE as usize {
                Some(buf)
            } else {
                None
            }
        });
        f(entry.as_deref())
    }
}

impl Memory for CachedMemory<'_> {
    fn read_partial(&self, addr: u64, buf: &mut [u8]) -> usize {
        let mut done = 0usize;
        while done < buf.len() {
            let a = match addr.checked_add(done as u64) {
                Some(a) => a,
                None => break,
            };
            let page = a & !(PAGE - 1);
            let off = (a - page) as usize;
            let n = (PAGE as usize - off).min(buf.len() - done);
            let ok = self.with_page(page, |p| match p {
                Some(p) => {
                    buf[done..done + n].copy_from_slice(&p[off..off + n]);
                    true
                }
                None => false,
            });
            if !ok {
                // The page is not wholly readable: ask the backend directly for the remainder.
                return done + self.inner.read_partial(a, &mut buf[done..]);
            }
            done += n;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_reads_across_regions_and_stops_at_holes() {
        let mut m = ImageMemory::new();
        m.add(0x1000, vec![1; 16]).add(0x1010, vec![2; 16]);
        let mut buf = [0u8; 40];
        assert_eq!(m.read_partial(0x1008, &mut buf), 24);
        assert_eq!(&buf[..8], &[1; 8]);
        assert_eq!(&buf[8..24], &[2; 16]);
        assert!(m.read_u64(0x2000).is_err());
        assert_eq!(m.read_partial(u64::MAX - 2, &mut buf), 0);
    }

    #[test]
    fn cached_memory_matches_backend() {
        let mut m = ImageMemory::new();
        let data: Vec<u8> = (0..3 * 4096 + 100).map(|i| (i % 251) as u8).collect();
        m.add(0x10000, data.clone());
        let c = CachedMemory::new(&m);
        for &(addr, len) in &[(0x10000u64, 10usize), (0x10ffc, 8), (0x12fff, 200), (0x13000, 200)] {
            let mut a = vec![0u8; len];
            let mut b = vec![0u8; len];
            assert_eq!(c.read_partial(addr, &mut a), m.read_partial(addr, &mut b));
            assert_eq!(a, b);
        }
    }

    #[test]
    fn cstr() {
        let mut m = ImageMemory::new();
        m.add(0x100, b"hello\0world".to_vec());
        assert_eq!(m.read_cstr(0x100, 100).unwrap(), "hello");
        assert_eq!(m.read_cstr(0x106, 100).unwrap(), "world");
        assert_eq!(m.read_cstr(0x100, 3).unwrap(), "hel");
    }
}
