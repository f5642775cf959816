//! An existing `--output-dir` must be crashcatch's own: a folder owned by another user, or one
//! others may write to, would let them replace, read or redirect the reports (which hold
//! command lines, paths and source lines). Such a folder is refused, never written into: the
//! report then costs one line on stderr, and the command runs and ends as ever.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Why a folder is not fit for reports, in one line; None when it is (or does not exist yet:
/// crashcatch then creates it, mode 0700). A sticky world-writable folder (/tmp) is refused
/// too: only a folder of one's own is safe.
pub fn refusal(dir: &Path) -> Option<String> {
    let meta = std::fs::metadata(dir).ok()?;
    // SAFETY: geteuid has no arguments.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() {
        return None; // creating the files fails, with its own one line
    }
    if meta.uid() != me {
        return Some(format!(
            "--output-dir {} belongs to uid {}, not to crashcatch's uid {me}: refused",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o002 != 0 {
        return Some(format!(
            "--output-dir {} is writable by others (mode {:o}): refused",
            dir.display(),
            meta.mode() & 0o7777
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn refuses_others_folders() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(refusal(d.path()), None);
        assert_eq!(refusal(&d.path().join("new")), None);
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(refusal(d.path()).unwrap().contains("writable by others"));
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        // SAFETY: geteuid has no arguments.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(d.path(), Some(65534), None).unwrap();
            assert!(refusal(d.path()).unwrap().contains("belongs to uid 65534"));
        }
    }
}
