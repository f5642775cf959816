//! Why an ELF file could not be read, or is not the one the process mapped ([`ElfError`]).
//! The `Display` of each is the sentence a note carries; the cause (an I/O error, what
//! opening the file as the target failed on, the problem with its headers) is kept.

use std::io;
use std::path::PathBuf;

use crate::process::files::OpenError;

/// Why an ELF file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("cannot open {}: {source}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file could not be opened as the target process would open it (`path` as it names it).
    #[error("cannot open {path}: {source}")]
    OpenAsTarget {
        path: String,
        #[source]
        source: OpenError,
    },
    #[error("cannot stat {}: {source}", .path.display())]
    Stat {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a regular file", .path.display())]
    NotAFile { path: PathBuf },
    /// No ELF magic (`what`: the file, or `in-memory image`).
    #[error("{what} is not an ELF file")]
    NotElf { what: String },
    #[error("{what} is not a readable ELF file: {problem}")]
    Headers {
        what: String,
        #[source]
        problem: HeaderProblem,
    },
    /// A module with neither a file this host can open nor bytes in memory.
    #[error("{module} cannot be opened from here")]
    Unreachable { module: String },
    #[error("{module} was replaced on disk after it was mapped, and the mapped file cannot be read: {source}")]
    ReplacedAndUnreadable {
        module: String,
        #[source]
        source: Box<ElfError>,
    },
    #[error("{module} was replaced on disk after it was mapped (inode differs)")]
    Replaced { module: String },
    #[error("{module} on disk is not the file the process mapped (build-id {on_disk} here, {mapped} in memory)")]
    OtherBuildId { module: String, on_disk: String, mapped: String },
}

/// What is wrong with an ELF file's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderProblem {
    #[error("too short")]
    TooShort,
    #[error("not 64-bit little-endian")]
    Not64BitLittleEndian,
    #[error("too many section headers")]
    TooManySections,
    #[error("section headers out of the file")]
    SectionsOutOfFile,
}
