//! Why an ELF file could not be read, or is not the one the process mapped ([`ElfError`]).
//! The `Display` of each is the sentence a note carries; the cause (an I/O error, what
//! opening the file as the target failed on, the problem with its headers) is kept.

use std::io;
use std::path::PathBuf;

use crate::process::files::OpenError;

/// Why an ELF file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The file could not be opened.
    #[error("cannot open {}: {source}", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file could not be opened as the target process would open it (`path` as it names it).
    #[error("cannot open {path}: {source}")]
    OpenAsTarget {
        /// The path as the process names it.
        path: String,
        /// Why.
        #[source]
        source: OpenError,
    },
    /// The opened file's metadata could not be read.
    #[error("cannot stat {}: {source}", .path.display())]
    Stat {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A folder, a device, a FIFO: not a regular file.
    #[error("{} is not a regular file", .path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// No ELF magic (`what`: the file, or `in-memory image`).
    #[error("{what} is not an ELF file")]
    NotElf {
        /// The file, or `in-memory image`.
        what: String,
    },
    /// ELF headers that cannot be read as they should.
    #[error("{what} is not a readable ELF file: {problem}")]
    Headers {
        /// The file, or `in-memory image`.
        what: String,
        /// What is wrong with them.
        #[source]
        problem: HeaderProblem,
    },
    /// A module with neither a file this host can open nor bytes in memory.
    #[error("{module} cannot be opened from here")]
    Unreachable {
        /// The module's path as the process sees it.
        module: String,
    },
    /// The file at the module's path is not the one mapped, and the mapped one (through
    /// /proc/PID/map_files) could not be read.
    #[error("{module} was replaced on disk after it was mapped, and the mapped file cannot be read: {source}")]
    ReplacedAndUnreadable {
        /// The module's path as the process sees it.
        module: String,
        /// Why the mapped file could not be read.
        #[source]
        source: Box<ElfError>,
    },
    /// The file at the module's path is not the one mapped (another inode), and there is no
    /// other way to it.
    #[error("{module} was replaced on disk after it was mapped (inode differs)")]
    Replaced {
        /// The module's path as the process sees it.
        module: String,
    },
    /// The file on disk has another build-id than the one the process mapped.
    #[error("{module} on disk is not the file the process mapped (build-id {on_disk} here, {mapped} in memory)")]
    OtherBuildId {
        /// The module's path as the process sees it.
        module: String,
        /// The build-id of the file on disk, in hex.
        on_disk: String,
        /// The build-id in the process's memory, in hex.
        mapped: String,
    },
}

/// What is wrong with an ELF file's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderProblem {
    /// Shorter than an ELF header.
    #[error("too short")]
    TooShort,
    /// Another class or byte order than the one read.
    #[error("not 64-bit little-endian")]
    Not64BitLittleEndian,
    /// More section headers than are believed.
    #[error("too many section headers")]
    TooManySections,
    /// Section headers that reach past the end of the file.
    #[error("section headers out of the file")]
    SectionsOutOfFile,
}
