//! The generators themselves, shared by scripts/gen-docs/main.rs and tests/cli_docs.rs.

use std::io;
use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// The shells completions are written for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// `crashcatch.1` and `crashcatch-<mode>.1` for every mode, in `dir` (made if missing).
pub fn man_pages(cmd: clap::Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(cmd.clone(), dir)?;
    let mut names = vec![PathBuf::from("crashcatch.1")];
    names.extend(cmd.get_subcommands().map(|s| PathBuf::from(format!("crashcatch-{}.1", s.get_name()))));
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

/// `crashcatch.bash`, `_crashcatch` (zsh) and `crashcatch.fish`, in `dir` (made if missing).
pub fn completions(mut cmd: clap::Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    SHELLS.iter().map(|&shell| clap_complete::generate_to(shell, &mut cmd, "crashcatch", dir)).collect()
}
