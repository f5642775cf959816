//! Reading report files back (`crashcatch summarize`): the JSON reports of other runs, often
//! downloaded CI artifacts, so untrusted. Folders are walked to a bounded depth without
//! following symbolic links, files are read up to a size cap, and a file that is not a
//! crashcatch report is skipped with a line saying why rather than ending the run.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::model::Crash;

/// Bytes read of one report (a report of 10,000 threads is a few MB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Report files read in all.
pub const MAX_FILES: usize = 10_000;
/// Folder levels walked below each argument (artifact/job/reports/...).
pub const MAX_DEPTH: usize = 6;

/// A report read back, with the path it was read from.
#[derive(Debug)]
pub struct ReadReport {
    pub path: PathBuf,
    pub crash: Crash,
}

/// What reading found: the reports, and a line for each thing skipped.
#[derive(Debug, Default)]
pub struct ReadResult {
    pub reports: Vec<ReadReport>,
    pub skipped: Vec<String>,
    /// Arguments that could not be read at all.
    pub missing: Vec<String>,
}

/// Reads every `*.json` report in `paths` (files, or folders walked), in path order.
pub fn read_reports(paths: &[PathBuf]) -> ReadResult {
    let mut files = Vec::new();
    let mut result = ReadResult::default();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, 0, &mut files, &mut result.skipped),
            Ok(m) if m.is_file() => files.push(p.clone()),
            Ok(_) => result.missing.push(format!("{}: not a file or folder", p.display())),
            Err(e) => result.missing.push(format!("{}: {e}", p.display())),
        }
    }
    files.sort();
    files.dedup();
    if files.len() > MAX_FILES {
        result
            .skipped
            .push(format!("{} report files past the first {MAX_FILES} were not read", files.len() - MAX_FILES));
        files.truncate(MAX_FILES);
    }
    for path in files {
        match read_one(&path) {
            Ok(crash) => result.reports.push(ReadReport { path, crash }),
            Err(why) => result.skipped.push(format!("{}: {why}", path.display())),
        }
    }
    result
}

fn walk(dir: &Path, depth: usize, files: &mut Vec<PathBuf>, skipped: &mut Vec<String>) {
    if depth > MAX_DEPTH {
        skipped.push(format!("{}: deeper than {MAX_DEPTH} folders, not read", dir.display()));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            skipped.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    for entry in entries.flatten() {
        if files.len() > MAX_FILES {
            return;
        }
        let path = entry.path();
        // file_type does not follow symbolic links: a link is neither walked nor read.
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, depth + 1, files, skipped),
            Ok(t) if t.is_file() && path.extension().is_some_and(|e| e == "json") => files.push(path),
            _ => {}
        }
    }
}

fn read_one(path: &Path) -> Result<Crash, String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut data = Vec::new();
    f.take(MAX_FILE_BYTES + 1).read_to_end(&mut data).map_err(|e| e.to_string())?;
    if data.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("larger than {} MB, not read", MAX_FILE_BYTES >> 20));
    }
    let crash: Crash = serde_json::from_slice(&data)
        .map_err(|e| format!("not a crashcatch report ({})", first_words(&e.to_string())))?;
    if crash.tool.name != "crashcatch" {
        return Err("not a crashcatch report (tool.name)".into());
    }
    Ok(crash)
}

fn first_words(s: &str) -> String {
    s.chars().take(120).map(|c| if c.is_control() { ' ' } else { c }).collect()
}
