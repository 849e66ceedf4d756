//! The events of a download, reported to the caller's progress callback (this crate
//! depends on no terminal UI).

use std::path::PathBuf;

use super::verify::ChecksumMatch;
use crate::error::MirrorFailure;

/// Something that happened during [`fetch`](super::fetch), for progress display.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchEvent {
    /// The file was already present and verified; nothing is downloaded.
    AlreadyPresent {
        /// File name.
        file: String,
        /// Where it is.
        path: PathBuf,
    },
    /// A transfer started (after the server answered).
    Started {
        /// File name.
        file: String,
        /// URL being downloaded.
        url: String,
        /// Bytes already on disk from an earlier attempt (resumed transfer), else 0.
        resumed_from: u64,
        /// Total size if known.
        total: Option<u64>,
    },
    /// More bytes arrived.
    Progress {
        /// File name.
        file: String,
        /// Bytes on disk so far (including any resumed part).
        downloaded: u64,
        /// Total size if known.
        total: Option<u64>,
    },
    /// The download finished and is being verified.
    Verifying {
        /// File name.
        file: String,
    },
    /// One mirror failed; the next one will be tried.
    MirrorFailed {
        /// File name.
        file: String,
        /// What went wrong.
        failure: MirrorFailure,
    },
    /// The file is verified and in place.
    Done {
        /// File name.
        file: String,
        /// Final path.
        path: PathBuf,
        /// Which checksum matched.
        checksum: ChecksumMatch,
    },
    /// An archive member was extracted.
    Unpacked {
        /// Archive name.
        archive: String,
        /// Extracted file.
        path: PathBuf,
    },
}
