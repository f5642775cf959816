//! Writing report files: `DIR/crash-<pid>-<timestamp>.json` and `.txt`, each written under a
//! temporary name and renamed, created with O_EXCL|O_NOFOLLOW and mode 0600 (reports hold
//! command lines and paths); a directory crashcatch creates gets mode 0700.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::model::Crash;

fn write_new(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    let res = f.write_all(data).and_then(|_| f.flush());
    drop(f);
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if path.symlink_metadata().is_ok() {
        let _ = std::fs::remove_file(&tmp);
        return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, format!("{} exists", path.display())));
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// `20261125T150412` from the report's RFC 3339 time.
fn stamp(time: &str) -> String {
    time.chars().filter(|c| c.is_ascii_digit() || *c == 'T').take(15).collect()
}

/// Writes the JSON and text reports into `dir`; records their paths in `crash.files`.
pub fn write_report(crash: &mut Crash, dir: &Path) -> Result<Vec<PathBuf>, String> {
    if !dir.exists() {
        DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| e.to_string())?;
    }
    let base = format!("{}-{}-{}", crash.kind, crash.process.pid, stamp(&crash.time));
    for n in 0..1000 {
        let stem = if n == 0 { base.clone() } else { format!("{base}-{n}") };
        let json = dir.join(format!("{stem}.json"));
        let txt = dir.join(format!("{stem}.txt"));
        if json.symlink_metadata().is_ok() || txt.symlink_metadata().is_ok() {
            continue;
        }
        crash.files = vec![json.display().to_string(), txt.display().to_string()];
        match write_new(&json, super::json::render(crash).as_bytes()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                crash.files.clear();
                return Err(e.to_string());
            }
        }
        let text = super::text::render(crash, super::text::Style::plain());
        if let Err(e) = write_new(&txt, text.as_bytes()) {
            crash.files.truncate(1);
            return Err(e.to_string());
        }
        return Ok(vec![json, txt]);
    }
    Err("too many reports with the same name".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamp_from_time() {
        assert_eq!(super::stamp("2026-11-25T15:04:12.123Z"), "20261125T150412");
    }
}
