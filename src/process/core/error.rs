//! Why a core file could not be read at all (anything less is a note in the report).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CoreError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is empty")]
    Empty { path: PathBuf },
    #[error("{path} is not an ELF core file (nor a gzip- or zstd-compressed one): it starts with {magic}")]
    NotElf { path: PathBuf, magic: String },
    #[error("{path} could not be decompressed ({format}): {why}")]
    Decompress { path: PathBuf, format: &'static str, why: String },
    #[error(
        "{path} decompresses to more than {limit_gb} GB; decompress it yourself (zstd -d / gunzip) and pass the result"
    )]
    TooLarge { path: PathBuf, limit_gb: u64 },
    #[error("{path} is an ELF file but not a core dump (e_type {e_type}): pass the core, and the program with --exe")]
    NotCore { path: PathBuf, e_type: u16 },
    #[error("{path} is a core of another machine or format ({what}); only x86_64 little-endian 64-bit cores are read")]
    Unsupported { path: PathBuf, what: String },
    #[error("{path} is corrupt: {why}")]
    Corrupt { path: PathBuf, why: String },
}
