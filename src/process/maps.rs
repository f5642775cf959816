//! /proc/PID/maps, parsed.

use serde::Serialize;

/// One line of /proc/PID/maps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapping {
    /// Its first address.
    pub start: u64,
    /// The address after its last.
    pub end: u64,
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// A shared mapping (`s`): someone mapped the file as data, not the loader.
    pub shared: bool,
    /// File offset of `start`.
    pub offset: u64,
    /// The file's inode (0 for anonymous memory).
    pub inode: u64,
    /// File path, or a pseudo-name such as `[stack]`, `[heap]`, `[vdso]`; None for anonymous maps.
    pub path: Option<String>,
}

impl Mapping {
    /// Whether `addr` is in it.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
    /// A real file (not `[stack]`, `[vdso]`, anonymous, or a deleted file's memfd).
    pub fn is_file(&self) -> bool {
        matches!(&self.path, Some(p) if p.starts_with('/'))
    }
}

/// Parses the text of /proc/PID/maps. Malformed lines are skipped.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mapping> {
    let mut it = line.splitn(6, ' ');
    let range = it.next()?;
    let perms = it.next()?;
    let offset = it.next()?;
    let _dev = it.next()?;
    let inode = it.next()?;
    let path = it.next().map(|s| s.trim_start()).filter(|s| !s.is_empty());
    let (s, e) = range.split_once('-')?;
    let p = perms.as_bytes();
    if p.len() < 3 {
        return None;
    }
    Some(Mapping {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        read: p[0] == b'r',
        write: p[1] == b'w',
        exec: p[2] == b'x',
        shared: p.get(3) == Some(&b's'),
        offset: u64::from_str_radix(offset, 16).ok()?,
        inode: inode.parse().ok()?,
        path: path.map(str::to_string),
    })
}

/// The mapping holding `addr`, if any (maps are sorted by address).
pub(crate) fn find(maps: &[Mapping], addr: u64) -> Option<&Mapping> {
    let i = maps.partition_point(|m| m.end <= addr);
    maps.get(i).filter(|m| m.contains(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let t = "7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]\n\
                 55d0c0a00000-55d0c0a02000 r--p 00000000 08:01 1234   /usr/bin/cat\n\
                 7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n\
                 7f0000001000-7f0000002000 r-xp 00001000 08:01 99 /tmp/a b (deleted)\n\
                 garbage\n";
        let m = parse_maps(t);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].path.as_deref(), Some("/usr/bin/cat"));
        assert!(m[1].read && !m[1].write && !m[1].exec);
        assert_eq!(m[0].path.as_deref(), Some("[stack]"));
        assert_eq!(m[2].path, None);
        assert_eq!(m[3].path.as_deref(), Some("/tmp/a b (deleted)"));
        assert_eq!(m[3].offset, 0x1000);
        assert!(find(&m, 0x7ffd1fff).is_some());
        assert!(find(&m, 0x7ffd2000).is_none());
    }
}
