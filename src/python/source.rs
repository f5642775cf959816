//! Source lines of Python frames, read from the files as the process itself would read them
//! (its root, its rights, regular files only: see `process::TargetFiles`).
//!
//! The file names come from the process's memory: a hostile one can name the same huge file
//! under thousands of spellings, or thousands of files. So the lines asked for are gathered
//! first, each file is opened once per spelling but read once per (device, inode), only its
//! first `MAX_SOURCE_READ` bytes are looked at, only the lines asked for are kept (each cut to
//! `MAX_LINE_CHARS`), and the whole stays within `MAX_SOURCE_FILES` files and
//! `MAX_SOURCE_TEXT` bytes. What was left out is said in a note.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;

use crate::process::Snapshot;

/// Bytes of one source file looked at; lines past it are left out.
pub const MAX_SOURCE_READ: u64 = 1 << 20;
/// Distinct file names opened per report.
pub const MAX_SOURCE_FILES: usize = 256;
/// Characters kept of one source line.
pub const MAX_LINE_CHARS: usize = 400;
/// Bytes of source text kept per report.
pub const MAX_SOURCE_TEXT: usize = 1 << 20;

/// The lines wanted, by file name as the process spells it.
#[derive(Default)]
pub struct SourceRequests {
    /// In the order first asked for (the first `MAX_SOURCE_FILES` names are kept).
    wanted: Vec<(String, BTreeSet<u32>)>,
    index: HashMap<String, usize>,
}

impl SourceRequests {
    /// Asks for line `line` (1-based) of `file`; pseudo-files (`<string>`, `<frozen …>`) and
    /// line 0 are never asked for.
    pub fn want(&mut self, file: &str, line: u32) {
        if line == 0 || file.is_empty() || file.starts_with('<') {
            return;
        }
        let i = *self.index.entry(file.to_string()).or_insert_with(|| {
            self.wanted.push((file.to_string(), BTreeSet::new()));
            self.wanted.len() - 1
        });
        self.wanted[i].1.insert(line);
    }

    /// Reads every line asked for; `notes` gets what had to be left out.
    pub fn read(self, snap: &Snapshot<'_>, notes: &mut Vec<String>) -> SourceLines {
        let mut names = self.wanted;
        if names.len() > MAX_SOURCE_FILES {
            notes.push(format!(
                "source lines of {} files left out (more than {MAX_SOURCE_FILES} distinct file names)",
                names.len() - MAX_SOURCE_FILES
            ));
            names.truncate(MAX_SOURCE_FILES);
        }
        // Open each spelling, group by the file it really is.
        let mut by_inode: HashMap<(u64, u64), OneFile> = HashMap::new();
        for (name, lines) in names {
            let Ok(file) = snap.files.open(&name) else { continue };
            let Ok(meta) = file.metadata() else { continue };
            let entry = by_inode.entry((meta.dev(), meta.ino())).or_insert_with(|| (file, BTreeSet::new(), Vec::new()));
            entry.1.extend(lines);
            entry.2.push(name);
        }
        let mut out = SourceLines::default();
        let mut budget = MAX_SOURCE_TEXT;
        let mut files: Vec<_> = by_inode.into_values().collect();
        files.sort_by(|a, b| a.2.cmp(&b.2));
        for (file, lines, spellings) in files {
            // A watched read: a file on a hung FUSE or NFS mount is abandoned, never waited on.
            let path = std::path::PathBuf::from(&spellings[0]);
            let Some((found, truncated)) =
                crate::process::blocking::file(&path, || pick_lines(file, &lines, &mut budget))
            else {
                continue;
            };
            if truncated {
                notes.push(format!(
                    "source lines past the first {} KiB of {} left out",
                    MAX_SOURCE_READ >> 10,
                    spellings[0]
                ));
            }
            let i = out.files.len();
            out.files.push(found);
            out.names.extend(spellings.into_iter().map(|n| (n, i)));
        }
        if budget == 0 {
            notes.push(format!("source lines beyond {} KiB of text left out", MAX_SOURCE_TEXT >> 10));
        }
        out
    }
}

/// One file opened: the lines wanted of it, and the names it was asked for by.
type OneFile = (std::fs::File, BTreeSet<u32>, Vec<String>);

/// The lines numbered in `wanted` of the first `MAX_SOURCE_READ` bytes of `file`, trimmed and
/// cut; true as well when some wanted line lay past what was read.
fn pick_lines(file: std::fs::File, wanted: &BTreeSet<u32>, budget: &mut usize) -> (HashMap<u32, Line>, bool) {
    let mut found = HashMap::new();
    let last = wanted.iter().next_back().copied().unwrap_or(0);
    let mut reader = BufReader::new(file.take(MAX_SOURCE_READ));
    let mut buf = Vec::new();
    let mut n = 0u32;
    while n < last {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return (found, n < last && reader.into_inner().limit() == 0),
            Ok(_) => n += 1,
        }
        if !wanted.contains(&n) {
            continue;
        }
        let indent = buf.iter().take_while(|b| matches!(b, b' ' | b'\t' | b'\x0c')).count();
        let text = String::from_utf8_lossy(&buf);
        let text: String = text.trim().chars().take(MAX_LINE_CHARS).collect();
        if text.is_empty() || text.len() > *budget {
            continue;
        }
        *budget -= text.len();
        found.insert(n, (text, indent as u32));
    }
    (found, false)
}

/// A line as shown (trimmed, cut) and the bytes of indentation trimmed from its start.
type Line = (String, u32);

/// The lines read: each file once (by line number), and the names it was asked for by.
#[derive(Default)]
pub struct SourceLines {
    files: Vec<HashMap<u32, Line>>,
    names: HashMap<String, usize>,
}

impl SourceLines {
    pub fn line(&self, file: &str, line: u32) -> Option<String> {
        self.line_and_indent(file, line).map(|(l, _)| l)
    }

    /// The line and the bytes of indentation trimmed from it (where its text starts in the file's line).
    pub fn line_and_indent(&self, file: &str, line: u32) -> Option<(String, u32)> {
        self.files.get(*self.names.get(file)?)?.get(&line).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{ImageMemory, TargetFiles};

    fn snap<'m>(mem: &'m ImageMemory, root: &std::path::Path) -> Snapshot<'m> {
        Snapshot {
            pid: 1,
            crashed_tid: 1,
            signal: Default::default(),
            exe: None,
            cmdline: vec![],
            maps: vec![],
            threads: vec![],
            memory: mem,
            view: &crate::process::view::DETACHED,
            files: TargetFiles::under(root, None),
        }
    }

    #[test]
    fn reads_lines_through_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        std::fs::write(dir.path().join("app/m.py"), "import os\n\n    return view.sum()  \n").unwrap();
        let mem = ImageMemory::new();
        let snap = snap(&mem, dir.path());
        let mut r = SourceRequests::default();
        for (f, l) in [("/app/m.py", 3), ("/app/m.py", 1), ("/app/m.py", 2), ("/app/m.py", 9)] {
            r.want(f, l);
        }
        r.want("<frozen importlib._bootstrap>", 1);
        r.want("/app/missing.py", 1);
        r.want("m.py", 1);
        r.want("/../../app/./m.py", 3);
        let mut notes = vec![];
        let c = r.read(&snap, &mut notes);
        assert_eq!(c.line("/app/m.py", 3).as_deref(), Some("return view.sum()"));
        assert_eq!(c.line("/app/m.py", 1).as_deref(), Some("import os"));
        assert_eq!(c.line("/../../app/./m.py", 3).as_deref(), Some("return view.sum()"));
        assert_eq!(c.line("/app/m.py", 2), None);
        assert_eq!(c.line("/app/m.py", 9), None);
        assert_eq!(c.line("<frozen importlib._bootstrap>", 1), None);
        assert_eq!(c.line("/app/missing.py", 1), None);
        assert_eq!(c.line("m.py", 1), None);
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn a_huge_file_under_many_names_is_read_once_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let line = "x = 1 # ".to_string() + &"y".repeat(2000) + "\n";
        std::fs::write(dir.path().join("big.py"), line.repeat(4096)).unwrap();
        let mem = ImageMemory::new();
        let snap = snap(&mem, dir.path());
        let mut r = SourceRequests::default();
        let name = |i: usize| format!("/{}big.py", "./".repeat(i));
        for i in 0..2000 {
            r.want(&name(i), 1 + i as u32);
        }
        r.want(&name(0), 600);
        let mut notes = vec![];
        let c = r.read(&snap, &mut notes);
        assert_eq!(c.line(&name(0), 1).map(|l| l.len()), Some(MAX_LINE_CHARS));
        assert!(c.line(&name(255), 256).is_some());
        // Only the first MiB is read: line 600 (at 1.2 MB) is not there; the 257th name is not
        // opened at all.
        assert!(c.line(&name(0), 600).is_none());
        assert!(c.line(&name(256), 257).is_none());
        assert!(notes.iter().any(|n| n.contains("more than 256")), "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("past the first 1024 KiB")), "{notes:?}");
        assert_eq!(c.files.len(), 1);
        assert_eq!(c.names.len(), MAX_SOURCE_FILES);
    }
}
