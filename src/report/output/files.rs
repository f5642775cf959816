//! Writing report files: `DIR/crash-<pid>-<timestamp>.json` and `.txt`, through the output
//! door (`super::door`): each created under an unpredictable temporary name, `O_EXCL |
//! O_NOFOLLOW`, mode 0600 (reports hold command lines and paths), and renamed where nothing is.

use std::path::PathBuf;

use super::OutputError;
use crate::door::{FileMode, OutDir, Place};
use crate::report::model::Crash;
use crate::report::render::{Json, Render, Style, Text};

fn write_new(dir: &OutDir, name: &str, data: &[u8]) -> Result<(), OutputError> {
    dir.write(name, data, FileMode::PRIVATE, Place::New).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => OutputError::Exists { path: dir.path_of(name) },
        _ => OutputError::Write { path: dir.path_of(name), source },
    })
}

/// `20261125T150412` from the report's RFC 3339 time.
fn stamp(time: &str) -> String {
    time.chars().filter(|c| c.is_ascii_digit() || *c == 'T').take(15).collect()
}

/// Writes the JSON and text reports into `dir`; records their paths in `crash.files` (the one
/// thing about a report that is known only once it is written).
pub fn write_report(crash: &mut Crash, dir: &OutDir) -> Result<Vec<PathBuf>, OutputError> {
    let base = format!("{}-{}-{}", crash.kind.as_str(), crash.process.pid, stamp(&crash.time));
    for n in 0..1000 {
        let stem = if n == 0 { base.clone() } else { format!("{base}-{n}") };
        let (json, txt) = (format!("{stem}.json"), format!("{stem}.txt"));
        if dir.has(&json) || dir.has(&txt) {
            continue;
        }
        crash.files = vec![dir.path_of(&json).display().to_string(), dir.path_of(&txt).display().to_string()];
        match write_new(dir, &json, Json.render(crash).as_bytes()) {
            Ok(()) => {}
            Err(OutputError::Exists { .. }) => continue,
            Err(e) => {
                crash.files.clear();
                return Err(e);
            }
        }
        let text = Text { style: Style::plain() }.render(crash);
        if let Err(e) = write_new(dir, &txt, text.as_bytes()) {
            crash.files.truncate(1);
            return Err(e);
        }
        return Ok(vec![dir.path_of(&json), dir.path_of(&txt)]);
    }
    Err(OutputError::TooManyNames { dir: dir.path_of(""), stem: base })
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamp_from_time() {
        assert_eq!(super::stamp("2026-11-25T15:04:12.123Z"), "20261125T150412");
    }
}
