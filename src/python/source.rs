//! Source lines of Python frames, read from the files as the process sees them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::process::Snapshot;

/// Files larger than this are not read.
pub const MAX_SOURCE_BYTES: u64 = 8 << 20;

#[derive(Default)]
pub struct SourceCache {
    files: HashMap<String, Option<Vec<String>>>,
}

impl SourceCache {
    /// The text of line `line` (1-based) of `file`, trimmed; None for pseudo-files (`<string>`,
    /// `<frozen …>`), unreadable or oversized files, and lines past the end.
    pub fn line(&mut self, snap: &Snapshot<'_>, file: &str, line: u32) -> Option<String> {
        if line == 0 || file.is_empty() || file.starts_with('<') {
            return None;
        }
        let lines = self.files.entry(file.to_string()).or_insert_with(|| load(&resolve(snap, file)?)).as_ref()?;
        let text = lines.get(line as usize - 1)?.trim();
        (!text.is_empty()).then(|| text.to_string())
    }
}

/// Where `file` can be opened from here: absolute paths through the process's root; relative ones
/// (≤3.8 keeps the script name as given) through its working folder, when the snapshot knows it.
fn resolve(snap: &Snapshot<'_>, file: &str) -> Option<PathBuf> {
    if file.starts_with('/') {
        return Some(snap.host_path(file));
    }
    snap.cwd().map(|cwd| cwd.join(file))
}

fn load(path: &Path) -> Option<Vec<String>> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_SOURCE_BYTES {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    Some(String::from_utf8_lossy(&bytes).lines().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ImageMemory;

    #[test]
    fn reads_lines_through_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        std::fs::write(dir.path().join("app/m.py"), "import os\n\n    return view.sum()  \n").unwrap();
        let mem = ImageMemory::new();
        let view = crate::process::SyntheticView { root: Some(dir.path().to_path_buf()), ..Default::default() };
        let snap = Snapshot {
            pid: 1,
            crashed_tid: 1,
            signal: Default::default(),
            exe: None,
            cmdline: vec![],
            maps: vec![],
            threads: vec![],
            memory: &mem,
            view: &view,
        };
        let mut c = SourceCache::default();
        assert_eq!(c.line(&snap, "/app/m.py", 3).as_deref(), Some("return view.sum()"));
        assert_eq!(c.line(&snap, "/app/m.py", 1).as_deref(), Some("import os"));
        assert_eq!(c.line(&snap, "/app/m.py", 2), None);
        assert_eq!(c.line(&snap, "/app/m.py", 9), None);
        assert_eq!(c.line(&snap, "<frozen importlib._bootstrap>", 1), None);
        assert_eq!(c.line(&snap, "/app/missing.py", 1), None);
        assert_eq!(c.line(&snap, "m.py", 1), None);
    }
}
