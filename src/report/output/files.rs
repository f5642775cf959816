//! Writing report files: `DIR/crash-<pid>-<timestamp>.json` and `.txt`, each written under an
//! unpredictable temporary name and renamed where nothing is ([`super::atomic`]), created with
//! O_EXCL|O_NOFOLLOW and mode 0600 (reports hold command lines and paths); a directory
//! crashcatch creates gets mode 0700.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::atomic::{self, Mode, Place};
use super::OutputError;
use crate::report::model::Crash;
use crate::report::render::{Json, Render, Style, Text};

fn write_new(path: &Path, data: &[u8]) -> Result<(), OutputError> {
    write_new_io(path, data).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => OutputError::Exists { path: path.to_path_buf() },
        _ => OutputError::Write { path: path.to_path_buf(), source },
    })
}

fn write_new_io(path: &Path, data: &[u8]) -> std::io::Result<()> {
    atomic::write_file(path, data, Mode::PRIVATE, Place::New)
}

/// `20261125T150412` from the report's RFC 3339 time.
fn stamp(time: &str) -> String {
    time.chars().filter(|c| c.is_ascii_digit() || *c == 'T').take(15).collect()
}

/// Writes the JSON and text reports into `dir`; records their paths in `crash.files` (the one
/// thing about a report that is known only once it is written).
pub fn write_report(crash: &mut Crash, dir: &Path) -> Result<Vec<PathBuf>, OutputError> {
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| OutputError::CreateDir { path: dir.to_path_buf(), source })?;
    }
    let base = format!("{}-{}-{}", crash.kind.as_str(), crash.process.pid, stamp(&crash.time));
    for n in 0..1000 {
        let stem = if n == 0 { base.clone() } else { format!("{base}-{n}") };
        let json = dir.join(format!("{stem}.json"));
        let txt = dir.join(format!("{stem}.txt"));
        if json.symlink_metadata().is_ok() || txt.symlink_metadata().is_ok() {
            continue;
        }
        crash.files = vec![json.display().to_string(), txt.display().to_string()];
        match write_new(&json, Json.render(crash).as_bytes()) {
            Ok(()) => {}
            Err(OutputError::Exists { .. }) => continue,
            Err(e) => {
                crash.files.clear();
                return Err(e);
            }
        }
        let text = Text { style: Style::plain() }.render(crash);
        if let Err(e) = write_new(&txt, text.as_bytes()) {
            crash.files.truncate(1);
            return Err(e);
        }
        return Ok(vec![json, txt]);
    }
    Err(OutputError::TooManyNames { dir: dir.to_path_buf(), stem: base })
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamp_from_time() {
        assert_eq!(super::stamp("2026-11-25T15:04:12.123Z"), "20261125T150412");
    }
}
