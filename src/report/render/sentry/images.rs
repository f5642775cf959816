//! `debug_meta.images`: every ELF module of the report with a build-id, so the tracker's own
//! symbolication (its symbol servers, uploaded debug files) can name what crashcatch could not.
//!
//! Sentry's developer documentation, "Debug Meta Interface", ELF images
//! (develop.sentry.dev/sdk/event-payloads/debugmeta/, getsentry/develop
//! src/docs/sdk/event-payloads/debugmeta.mdx): `code_id` is the hex of the `NT_GNU_BUILD_ID`
//! note, and "the debug identifier is the little-endian UUID representation of the first
//! 16-bytes of that identifier", its example being code id
//! `f1c3bcc0 2798 65fe 3058 404b2831d9e6 4135386c` → debug id
//! `c0bcc3f1-9827-fe65-3058-404b2831d9e6`: the first three fields (4, 2, 2 bytes) byte-swapped,
//! the rest as it is, no age appended (age 0). A build-id shorter than 16 bytes is padded with
//! zeros, as Sentry's symbolic does.

use std::collections::BTreeMap;

use super::event::DebugImage;
use crate::report::model::{Crash, Frame, Hex};

/// At most this many images per event (a process with more modules is rare; the frames'
/// modules are kept first).
pub const MAX_IMAGES: usize = 1000;

/// The debug id of an ELF build-id given in hex; `None` when it is not hex.
pub fn debug_id(build_id_hex: &str) -> Option<String> {
    let bytes = decode_hex(build_id_hex)?;
    if bytes.is_empty() {
        return None;
    }
    let mut b = [0u8; 16];
    let n = bytes.len().min(16);
    b[..n].copy_from_slice(&bytes[..n]);
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 || s.len() > 256 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// The images of the report's modules that have a build-id; `image_vmaddr` where a frame in the
/// module shows the file address its first mapping stands for (a non-PIE program's 0x400000).
pub fn images(crash: &Crash, arch: &'static str) -> Vec<DebugImage> {
    let vmaddrs = vmaddrs(crash);
    let mut out = Vec::new();
    for m in &crash.modules {
        let Some(id) = m.build_id.as_deref() else { continue };
        let Some(debug_id) = debug_id(id) else { continue };
        if m.end.0 <= m.base.0 {
            continue;
        }
        out.push(DebugImage {
            ty: "elf",
            code_id: id.to_ascii_lowercase(),
            debug_id,
            code_file: m.path.clone(),
            debug_file: m.debug_file.clone(),
            image_addr: Hex(m.base.0).to_string(),
            image_size: m.end.0 - m.base.0,
            image_vmaddr: vmaddrs.get(&m.base.0).filter(|v| **v != 0).map(|v| Hex(*v).to_string()),
            arch,
        });
    }
    if out.len() > MAX_IMAGES {
        let used = used_bases(crash);
        out.sort_by_key(|i| !used.contains(&i.image_addr));
        out.truncate(MAX_IMAGES);
    }
    out
}

/// Per module base: the file address at the base, from any frame in the module (a frame's
/// `module_offset` is the file address of its address).
fn vmaddrs(crash: &Crash) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for t in &crash.threads {
        for f in &t.frames {
            let Frame::Native(n) = f else { continue };
            let Some(off) = n.module_offset else { continue };
            let Some(m) = crash.modules.iter().find(|m| m.base.0 <= n.address.0 && n.address.0 < m.end.0) else {
                continue;
            };
            out.entry(m.base.0).or_insert(off.0.wrapping_sub(n.address.0 - m.base.0));
        }
    }
    out
}

fn used_bases(crash: &Crash) -> Vec<String> {
    let mut used = Vec::new();
    for t in &crash.threads {
        for n in t.native_frames() {
            if let Some(m) = crash.modules.iter().find(|m| m.base.0 <= n.address.0 && n.address.0 < m.end.0) {
                used.push(Hex(m.base.0).to_string());
            }
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_id_as_sentry_documents_it() {
        // Both examples of develop.sentry.dev's Debug Meta Interface.
        assert_eq!(
            debug_id("f1c3bcc0279865fe3058404b2831d9e64135386c").as_deref(),
            Some("c0bcc3f1-9827-fe65-3058-404b2831d9e6")
        );
        assert_eq!(
            debug_id("68220ae2c65d65c1b6aaa12fa6765a6ec2f5f434").as_deref(),
            Some("e20a2268-5dc6-c165-b6aa-a12fa6765a6e")
        );
        // Short build-ids (lld's --build-id=fast) are padded with zeros.
        assert_eq!(debug_id("0102030405060708").as_deref(), Some("04030201-0605-0807-0000-000000000000"));
        assert_eq!(debug_id("xyz"), None);
        assert_eq!(debug_id(""), None);
    }
}
