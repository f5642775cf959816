//! Which module holds the interpreter, which version it is, and where the walk starts.

use super::debug_offsets;
use super::error::LayoutError;
use super::layout::Layout;
use super::objects::{Known, ObjectLayout};
use super::version::{self, Version};
use super::walk::Anchors;
use crate::modules::{Module, ModuleSet};
use crate::process::{Memory, MemoryExt, Snapshot};

pub struct Found {
    /// The module's path as the process sees it.
    pub module_path: String,
    pub version: Option<Version>,
    pub layout: Result<Layout, LayoutError>,
    pub anchors: Anchors,
    /// How the version was found when that is worth saying, and what could not be read.
    pub notes: Vec<String>,
    /// Where ordinary objects keep their fields (None for a build this reader does not know,
    /// such as a free-threaded one), and the interpreter's well-known objects.
    pub objects: Option<ObjectLayout>,
    pub known: Known,
}

/// Most bytes of a module's writable data scanned for the version text.
const MAX_SCAN: u64 = 32 << 20;

/// Finds the interpreter: libpython first, then the executable and `python*` files (static builds
/// such as Debian's /usr/bin/python3.11), then any module with a `.PyRuntime` section.
pub fn find(snap: &Snapshot<'_>, modules: &ModuleSet, mem: &dyn Memory) -> Option<Found> {
    let exe = snap.exe.as_deref();
    let mut order: Vec<&Module> = modules.by_name(|n| n.starts_with("libpython")).collect();
    for m in modules.iter() {
        let named = m.name().starts_with("python") || exe == Some(m.path.as_str());
        if named && !order.iter().any(|o| std::ptr::eq(*o, m)) {
            order.push(m);
        }
    }
    for m in modules.iter() {
        if !order.iter().any(|o| std::ptr::eq(*o, m)) && m.elf().is_ok_and(|e| e.section(".PyRuntime").is_some()) {
            order.push(m);
        }
    }
    order.into_iter().find_map(|m| probe(snap, m, mem))
}

/// The anchors and version of the interpreter in `m`, if it holds one.
fn probe(snap: &Snapshot<'_>, m: &Module, mem: &dyn Memory) -> Option<Found> {
    let mut notes = Vec::new();
    let runtime = m.symbol_address("_PyRuntime").or_else(|| m.section_address(".PyRuntime").map(|s| s.0));
    let interp_head_ptr = if runtime.is_none() {
        m.symbol_address("interp_head").or_else(|| {
            let f = m.symbol_address("PyInterpreterState_Head")?;
            // Stripped builds: the exported accessor tells where the static lives.
            decode_rip_load(mem, f)
        })
    } else {
        None
    };
    if runtime.is_none() && interp_head_ptr.is_none() {
        return None;
    }

    // The version, from the process.
    let mut version = None;
    let mut from_offsets: Option<Result<Layout, LayoutError>> = None;
    let mut published = None;
    if let Some(rt) = runtime {
        let tested = tested_up_to();
        match debug_offsets::read_with(mem, rt, tested, debug_offsets::SHAPES) {
            Ok(debug_offsets::Found::Ok(d)) => {
                version = Version::from_hex(d.version);
                if d.newer_than_tested {
                    notes.push(format!(
                        "CPython {} is newer than the versions this reader was tested with (up to 3.{}): its \
                         stacks were read with the offsets it publishes in _Py_DebugOffsets, parsed as 3.{}'s",
                        version.map(|v| v.to_string()).unwrap_or_else(|| format!("{:#x}", d.version)),
                        tested,
                        d.shape
                    ));
                }
                if d.free_threaded {
                    notes.push(
                        "free-threaded build: read through _Py_DebugOffsets, a build kind not tested against a \
                         live interpreter"
                            .into(),
                    );
                }
                from_offsets = Some(d.to_layout().map_err(LayoutError::from));
                published = Some(d.objects.clone());
            }
            Ok(debug_offsets::Found::Unreadable { version: v, why }) => {
                version = Version::from_hex(v);
                from_offsets = Some(Err(why.into()));
            }
            Ok(debug_offsets::Found::Absent) => {}
            Err(e) => notes.push(e.to_string()),
        }
    }
    if version.is_none() {
        if let Some(a) = m.symbol_address("Py_Version") {
            version = mem.read_u32(a).ok().and_then(|v| Version::from_hex(u64::from(v)));
        }
    }
    if version.is_none() {
        version = scan_module_data(snap, m, mem);
    }
    if version.is_none() {
        version = version::from_file_name(m.name());
        if let Some(v) = version {
            notes.push(format!("the version ({v}) is only a guess from the file name {}", m.name()));
        }
    }

    let layout = match (from_offsets, version) {
        (Some(Ok(mut l)), _) => {
            // Fields the debug offsets do not publish come from the static table of that minor.
            if let Some(t) = Layout::for_version(l.major, l.minor, 0) {
                l.runtime.initialized = t.runtime.initialized;
            }
            Ok(l)
        }
        (Some(Err(e)), _) => Err(e),
        (None, None) => Err(LayoutError::UnknownVersion { module: m.name().to_string() }),
        (None, Some(v)) => {
            if v.major == 3 && v.minor == 7 && v.patch.is_none() {
                notes.push("3.7 patch level unknown: assuming 3.7.4 or later".into());
            }
            Layout::for_version(v.major, v.minor, v.patch.unwrap_or(99))
                .ok_or_else(|| LayoutError::Unsupported { version: v.to_string() })
        }
    };
    let layout = layout.and_then(|l| {
        let old = l.major == 2 || l.minor <= 6;
        let anchor = match (old, runtime, interp_head_ptr) {
            (true, _, None) => "interp_head",
            (false, None, _) => "_PyRuntime",
            _ => return Ok(l),
        };
        Err(LayoutError::NoAnchor { major: l.major, minor: l.minor, anchor, module: m.name().to_string() })
    });
    let old = layout.as_ref().map(|l| l.major == 2 || l.minor <= 6).unwrap_or(false);
    let frames_are_objects = layout.as_ref().map(|l| l.frame.is_object).unwrap_or(false);
    let anchors = Anchors {
        runtime,
        interp_head_ptr,
        tstate_current_ptr: if old { m.symbol_address("_PyThreadState_Current") } else { None },
        finalizing_ptr: if old { m.symbol_address("_Py_Finalizing") } else { None },
        code_type: m.symbol_address("PyCode_Type"),
        frame_type: if frames_are_objects { m.symbol_address("PyFrame_Type") } else { None },
    };
    let (objects, known) = match &layout {
        // Free-threaded builds have larger object headers: their objects are not read.
        Ok(l) if l.ob_type == super::layout::OB_TYPE => {
            (ObjectLayout::new(l.major, l.minor, published.as_ref()), Known::find(m, mem, l.major, l.minor))
        }
        _ => (None, Known::default()),
    };
    Some(Found { module_path: m.path.clone(), version, layout, anchors, notes, objects, known })
}

/// Test hook: `CRASHCATCH_TEST_PYTHON_TESTED_UP_TO=3.N` makes the reader treat every minor
/// version above N as newer than those it was tested with, so that the path a future version
/// takes can be exercised on a real interpreter (tests/python_sid.rs).
fn tested_up_to() -> u32 {
    std::env::var("CRASHCATCH_TEST_PYTHON_TESTED_UP_TO")
        .ok()
        .and_then(|v| v.strip_prefix("3.").and_then(|m| m.parse().ok()))
        .unwrap_or(debug_offsets::NEWEST_TESTED)
}

/// The address a `mov sym(%rip),%rax; ret` function loads from (optionally after `endbr64`):
/// how 3.6's exported `PyInterpreterState_Head` reads the static `interp_head`.
pub fn decode_rip_load(mem: &dyn Memory, func: u64) -> Option<u64> {
    rip_load(mem, func, true)
}

/// The address a `mov sym(%rip),%eax; ret` function loads a 32-bit value from (optionally after
/// `endbr64`): how 2.7's exported `Py_IsInitialized` reads the static `initialized`.
pub fn decode_rip_load32(mem: &dyn Memory, func: u64) -> Option<u64> {
    rip_load(mem, func, false)
}

fn rip_load(mem: &dyn Memory, func: u64, wide: bool) -> Option<u64> {
    let mut b = [0u8; 12];
    mem.read_exact(func, &mut b).ok()?;
    let mut at = if b[..4] == [0xf3, 0x0f, 0x1e, 0xfa] { 4 } else { 0 };
    if wide {
        if b[at] != 0x48 {
            return None;
        }
        at += 1;
    }
    let i = &b[at..];
    if i[0] != 0x8b || i[1] != 0x05 || i[6] != 0xc3 {
        return None;
    }
    let disp = i32::from_le_bytes([i[2], i[3], i[4], i[5]]);
    Some((func + at as u64 + 6).wrapping_add(disp as i64 as u64))
}

/// Looks for `Py_GetVersion()`'s text in the module's writable data (file-backed and the
/// anonymous `.bss` mapping right after it).
fn scan_module_data(snap: &Snapshot<'_>, m: &Module, mem: &dyn Memory) -> Option<Version> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for mm in m.mappings().iter().filter(|mm| mm.write && mm.read) {
        ranges.push((mm.start, mm.end));
        if let Some(next) = snap.maps.iter().find(|n| n.start == mm.end && n.path.is_none() && n.read) {
            ranges.push((next.start, next.end));
        }
    }
    let mut budget = MAX_SCAN;
    const CHUNK: u64 = 1 << 20;
    for (start, end) in ranges {
        let mut a = start;
        while a < end && budget > 0 {
            // Overlap chunks so a string across a boundary is still seen.
            let len = (end - a).min(CHUNK + 64).min(budget);
            let mut buf = vec![0u8; len as usize];
            let got = mem.read_partial(a, &mut buf);
            buf.truncate(got);
            if let Some(v) = version::scan_version_string(&buf) {
                return Some(v);
            }
            budget = budget.saturating_sub(len);
            a += CHUNK;
            if got == 0 {
                break;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ImageMemory;

    #[test]
    fn decodes_interp_head_loads() {
        let mut m = ImageMemory::new();
        // 3.6.15's PyInterpreterState_Head at 0x174b90: mov 0x18a349(%rip),%rax; ret
        m.add(0x174b90, vec![0x48, 0x8b, 0x05, 0x49, 0xa3, 0x18, 0x00, 0xc3, 0x0f, 0x1f, 0x84, 0]);
        assert_eq!(decode_rip_load(&m, 0x174b90), Some(0x2feee0));
        m.add(0x1000, vec![0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x8b, 0x05, 0xfc, 0xff, 0xff, 0xff, 0xc3]);
        assert_eq!(decode_rip_load(&m, 0x1000), Some(0x1000 + 11 - 4));
        m.add(0x2000, vec![0x55; 12]);
        assert_eq!(decode_rip_load(&m, 0x2000), None);
        // 2.7.18's Py_IsInitialized at 0x117510: mov 0xe0332(%rip),%eax; ret
        m.add(0x117510, vec![0x8b, 0x05, 0x32, 0x03, 0x0e, 0x00, 0xc3, 0, 0, 0, 0, 0]);
        assert_eq!(decode_rip_load32(&m, 0x117510), Some(0x1f7848));
        assert_eq!(decode_rip_load(&m, 0x117510), None);
        assert_eq!(decode_rip_load32(&m, 0x174b90), None, "a 64-bit load is not a 32-bit one");
        assert_eq!(decode_rip_load(&m, 0x3000), None);
    }
}
