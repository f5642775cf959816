//! The check every debug file from a server or from the cache passes before it is used or
//! kept: an ELF file whose build-id note is the one asked for, holding DWARF or a symbol table.

use std::fs::File;
use std::path::Path;

use crate::modules::{hex, ElfError, ElfInfo};

/// Build-ids longer than this are refused (elfutils' limit is 64 bytes).
pub(crate) const MAX_BUILD_ID: usize = 64;

/// Why a file is not the debug file asked for.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VerifyError {
    #[error("it is not an ELF file")]
    NotElf(#[source] ElfError),
    #[error("it has no build-id")]
    NoBuildId,
    #[error("its build-id is {}, not {}", short(.got), short(.wanted))]
    OtherBuildId { got: String, wanted: String },
    #[error("it holds neither DWARF nor a symbol table")]
    NoDebugInfo,
}

/// The file as an [`ElfInfo`] when it is the debug file of `build_id`; otherwise why not.
pub(crate) fn verify(file: &File, path: &Path, build_id: &[u8]) -> Result<ElfInfo, VerifyError> {
    let elf = ElfInfo::open_file(file, path).map_err(VerifyError::NotElf)?;
    match elf.build_id() {
        None => return Err(VerifyError::NoBuildId),
        Some(id) if id != build_id => return Err(VerifyError::OtherBuildId { got: hex(id), wanted: hex(build_id) }),
        Some(_) => {}
    }
    if !elf.has_dwarf() && !elf.has_symtab() {
        return Err(VerifyError::NoDebugInfo);
    }
    Ok(elf)
}

/// A build-id for people: the first 12 hex digits are plenty to tell two apart.
pub(crate) fn short(hex: &str) -> String {
    if hex.len() > 16 {
        format!("{}…", &hex[..12])
    } else {
        hex.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current_exe() -> (File, std::path::PathBuf) {
        let p = std::env::current_exe().unwrap();
        (File::open(&p).unwrap(), p)
    }

    #[test]
    fn accepts_the_right_build_id_and_refuses_others() {
        let (f, p) = current_exe();
        let id = ElfInfo::open(&p).unwrap().build_id().map(<[u8]>::to_vec);
        let Some(id) = id else { return }; // a toolchain that writes no build-id: nothing to compare
        assert!(verify(&f, &p, &id).is_ok());
        let mut other = id.clone();
        other[0] ^= 0xff;
        let e = verify(&f, &p, &other).err().unwrap();
        assert!(matches!(&e, VerifyError::OtherBuildId { wanted, .. } if *wanted == hex(&other)), "{e:?}");
        assert!(e.to_string().starts_with("its build-id is "), "{e}");
    }

    #[test]
    fn refuses_what_is_not_elf() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("garbage");
        std::fs::write(&p, b"\x7fELF but not really, just some bytes").unwrap();
        let f = File::open(&p).unwrap();
        let e = verify(&f, &p, &[1, 2, 3]).err().unwrap();
        assert_eq!(e.to_string(), "it is not an ELF file");
        // Why it is not, kept: its headers are cut short.
        assert!(matches!(&e, VerifyError::NotElf(ElfError::Headers { .. })), "{e:?}");
    }
}
