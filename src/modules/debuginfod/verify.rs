//! The check every debug file from a server or from the cache passes before it is used or
//! kept: an ELF file whose build-id note is the one asked for, holding DWARF or a symbol table.

use std::fs::File;
use std::path::Path;

use crate::modules::{hex, ElfInfo};

/// Build-ids longer than this are refused (elfutils' limit is 64 bytes).
pub const MAX_BUILD_ID: usize = 64;

/// The file as an [`ElfInfo`] when it is the debug file of `build_id`; otherwise why not.
pub fn verify(file: &File, path: &Path, build_id: &[u8]) -> Result<ElfInfo, String> {
    let elf = ElfInfo::open_file(file, path).map_err(|_| "it is not an ELF file".to_string())?;
    match elf.build_id() {
        None => return Err("it has no build-id".into()),
        Some(id) if id != build_id => {
            return Err(format!("its build-id is {}, not {}", short(&hex(id)), short(&hex(build_id))))
        }
        Some(_) => {}
    }
    if !elf.has_dwarf() && !elf.has_symtab() {
        return Err("it holds neither DWARF nor a symbol table".into());
    }
    Ok(elf)
}

/// A build-id for people: the first 12 hex digits are plenty to tell two apart.
pub fn short(hex: &str) -> String {
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
        assert!(e.starts_with("its build-id is "), "{e}");
    }

    #[test]
    fn refuses_what_is_not_elf() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("garbage");
        std::fs::write(&p, b"\x7fELF but not really, just some bytes").unwrap();
        let f = File::open(&p).unwrap();
        assert_eq!(verify(&f, &p, &[1, 2, 3]).err().unwrap(), "it is not an ELF file");
    }
}
