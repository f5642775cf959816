//! Which CPython a process runs, read from the process itself.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version {
    pub major: u32,
    pub minor: u32,
    /// None when only the file name was available.
    pub patch: Option<u32>,
    /// Release level and serial from PY_VERSION_HEX (`a1`, `rc2`; empty for final releases).
    pub level: Option<(char, u32)>,
}

impl Version {
    /// From `PY_VERSION_HEX` (`Py_Version`, `_Py_DebugOffsets.version`): 0x030b07f0 is 3.11.7.
    pub(crate) fn from_hex(v: u64) -> Option<Version> {
        let major = ((v >> 24) & 0xff) as u32;
        let minor = ((v >> 16) & 0xff) as u32;
        let patch = ((v >> 8) & 0xff) as u32;
        let level = match (v >> 4) & 0xf {
            0xa => Some(('a', (v & 0xf) as u32)),
            0xb => Some(('b', (v & 0xf) as u32)),
            0xc => Some(('c', (v & 0xf) as u32)),
            0xf => None,
            _ => return None,
        };
        if !(2..=3).contains(&major) || v >> 32 != 0 {
            return None;
        }
        Some(Version { major, minor, patch: Some(patch), level })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(p) = self.patch {
            write!(f, ".{p}")?;
        }
        if let Some((c, n)) = self.level {
            match c {
                'c' => write!(f, "rc{n}")?,
                _ => write!(f, "{c}{n}")?,
            }
        }
        Ok(())
    }
}

/// Finds `"X.Y.Z (…"`, the start of `Py_GetVersion()`'s text (which the interpreter writes into a
/// static buffer at start-up, `sys.version`), in a block of memory. Returns the first match whose
/// major version is 2 or 3.
pub(crate) fn scan_version_string(bytes: &[u8]) -> Option<Version> {
    let n = bytes.len();
    let mut i = 0;
    while i + 6 < n {
        let b = bytes[i];
        if (b == b'2' || b == b'3') && bytes[i + 1] == b'.' && (i == 0 || !is_version_char(bytes[i - 1])) {
            if let Some(v) = parse_at(&bytes[i..]) {
                return Some(v);
            }
        }
        i += 1;
    }
    None
}

fn is_version_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'+'
}

fn digits(s: &[u8], at: &mut usize) -> Option<u32> {
    let start = *at;
    while *at < s.len() && s[*at].is_ascii_digit() && *at - start < 3 {
        *at += 1;
    }
    if *at == start {
        return None;
    }
    std::str::from_utf8(&s[start..*at]).ok()?.parse().ok()
}

fn parse_at(s: &[u8]) -> Option<Version> {
    let mut at = 0;
    let major = digits(s, &mut at)?;
    (s.get(at) == Some(&b'.')).then_some(())?;
    at += 1;
    let minor = digits(s, &mut at)?;
    (s.get(at) == Some(&b'.')).then_some(())?;
    at += 1;
    let patch = digits(s, &mut at)?;
    // Optional pre-release and local suffixes: 3.13.0rc1, 3.12.1+.
    let mut level = None;
    if let Some(&c) = s.get(at) {
        if c == b'a' || c == b'b' || (c == b'r' && s.get(at + 1) == Some(&b'c')) {
            at += if c == b'r' { 2 } else { 1 };
            let serial = digits(s, &mut at)?;
            level = Some((if c == b'r' { 'c' } else { c as char }, serial));
        }
    }
    while s.get(at) == Some(&b'+') {
        at += 1;
    }
    if s.get(at..at + 2) != Some(b" (") {
        return None;
    }
    if !(2..=3).contains(&major) || minor > 99 {
        return None;
    }
    Some(Version { major, minor, patch: Some(patch), level })
}

/// A hint from a file name: `libpython3.11.so.1.0`, `libpython3.6m.so`, `python3.11`,
/// `libpython2.7.so`. Only for when the process itself says nothing.
pub(crate) fn from_file_name(name: &str) -> Option<Version> {
    let rest = name.strip_prefix("libpython").or_else(|| name.strip_prefix("python"))?;
    let mut it = rest.splitn(2, '.');
    let major: u32 = it.next()?.parse().ok()?;
    let minor_str: String = it.next()?.chars().take_while(|c| c.is_ascii_digit()).collect();
    let minor: u32 = minor_str.parse().ok()?;
    (2..=3).contains(&major).then_some(Version { major, minor, patch: None, level: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_versions() {
        let v = Version::from_hex(0x030b07f0).unwrap();
        assert_eq!((v.major, v.minor, v.patch), (3, 11, Some(7)));
        assert_eq!(v.to_string(), "3.11.7");
        assert_eq!(Version::from_hex(0x030d00c1).unwrap().to_string(), "3.13.0rc1");
        assert_eq!(Version::from_hex(0x030e00a3).unwrap().to_string(), "3.14.0a3");
        assert!(Version::from_hex(0x0b07f0).is_none());
        assert!(Version::from_hex(0xdeadbeef_030b07f0).is_none());
    }

    #[test]
    fn version_strings() {
        let s = b"\0\0junk 13.6.1 (x) 3.6.15 (default, Jan  1 2024, 00:00:00) \n[GCC 12.2.0]\0";
        assert_eq!(scan_version_string(s).unwrap().to_string(), "3.6.15");
        assert_eq!(scan_version_string(b"2.7.18 (default, ").unwrap().to_string(), "2.7.18");
        assert_eq!(scan_version_string(b"=3.13.0rc2 (main").unwrap().to_string(), "3.13.0rc2");
        assert_eq!(scan_version_string(b"3.12.1+ (heads").unwrap().to_string(), "3.12.1");
        assert!(scan_version_string(b"3.11.7\0").is_none());
        assert!(scan_version_string(b"%.80s (%.80s) %.80s").is_none());
        assert!(scan_version_string(b"3.11").is_none());
        assert!(scan_version_string(b"v13.11.7 (x").is_none());
    }

    #[test]
    fn file_names() {
        assert_eq!(from_file_name("libpython3.11.so.1.0").unwrap().to_string(), "3.11");
        assert_eq!(from_file_name("libpython3.6m.so.1.0").unwrap().to_string(), "3.6");
        assert_eq!(from_file_name("python2.7").unwrap().to_string(), "2.7");
        assert!(from_file_name("libpython3.so").is_none());
        assert!(from_file_name("libc.so.6").is_none());
    }
}
