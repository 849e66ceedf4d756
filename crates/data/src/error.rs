//! The crate's single error type.
//!
//! Every variant that concerns a file carries its path, so a message such as
//! `…/train-images-idx3-ubyte.gz: header promises 10000 images of 28x28 (7840000 bytes) but the
//! payload has 7839000 bytes` tells the user exactly which file is broken and how.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What an IDX header promises, used to explain a payload of the wrong length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdxPromise {
    /// An image file (`0x00000803`): `count` images of `height` x `width` bytes.
    Images {
        /// Number of images in the header.
        count: u32,
        /// Rows per image.
        height: u32,
        /// Columns per image.
        width: u32,
    },
    /// A label file (`0x00000801`): `count` one-byte labels.
    Labels {
        /// Number of labels in the header.
        count: u32,
    },
}

impl fmt::Display for IdxPromise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdxPromise::Images {
                count,
                height,
                width,
            } => write!(f, "{count} images of {height}x{width}"),
            IdxPromise::Labels { count } => write!(f, "{count} labels"),
        }
    }
}

/// Why one mirror could not deliver one file during [`crate::download::fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorFailure {
    /// The mirror's base URL as listed in the manifest (or given by the caller).
    pub mirror: String,
    /// The full URL that was requested.
    pub url: String,
    /// Human-readable reason (HTTP status, network error, checksum mismatch, ...).
    pub reason: String,
}

impl fmt::Display for MirrorFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.url, self.reason)
    }
}

fn display_path(path: &Path) -> String {
    path.display().to_string()
}

fn fmt_also_tried(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        format!(" (also looked for {})", list.join(", "))
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    list.join(", ")
}

fn list_failures(failures: &[MirrorFailure]) -> String {
    if failures.is_empty() {
        return "no mirror to try".to_string();
    }
    let mut s = format!("tried {} mirror(s):", failures.len());
    for failure in failures {
        s.push_str("\n  - ");
        s.push_str(&failure.to_string());
    }
    s
}

/// Every failure of the data layer: reading, validating, batching, downloading, writing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file does not exist.
    #[error("{}: file not found{}", display_path(.path), fmt_also_tried(.also_tried))]
    Missing {
        /// The file that was looked for first.
        path: PathBuf,
        /// Alternative names that were tried as well (may be empty).
        also_tried: Vec<PathBuf>,
    },
    /// An operating-system error while reading or writing the file.
    #[error("{}: {source}", display_path(.path))]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file has zero bytes (or a gzip stream that decompresses to nothing).
    #[error("{}: file is empty", display_path(.path))]
    Empty {
        /// The file concerned.
        path: PathBuf,
    },
    /// The file starts with the gzip magic `1f 8b` but is not a valid, complete gzip stream.
    #[error("{}: corrupt or truncated gzip stream: {source}", display_path(.path))]
    Gzip {
        /// The file concerned.
        path: PathBuf,
        /// The decoder's error.
        source: io::Error,
    },
    /// The file ends before the IDX header is complete.
    #[error(
        "{}: truncated IDX header: need {needed} bytes, file has {found}",
        display_path(.path)
    )]
    TruncatedHeader {
        /// The file concerned.
        path: PathBuf,
        /// Header bytes required (4 magic bytes + 4 per dimension).
        needed: usize,
        /// Bytes actually present.
        found: usize,
    },
    /// The IDX magic number is not the one expected for this kind of file.
    #[error(
        "{}: IDX magic is {found:#010x}, expected {expected:#010x}{}",
        display_path(.path),
        magic_hint(*.found)
    )]
    BadMagic {
        /// The file concerned.
        path: PathBuf,
        /// Magic found in the file (big-endian u32).
        found: u32,
        /// Magic required (`0x00000803` for images, `0x00000801` for labels).
        expected: u32,
    },
    /// The IDX dimensions are unusable (a zero dimension, or a product that overflows).
    #[error("{}: invalid IDX dimensions {dims:?}: {reason}", display_path(.path))]
    InvalidDims {
        /// The file concerned.
        path: PathBuf,
        /// Dimensions read from the header.
        dims: Vec<u32>,
        /// What is wrong with them.
        reason: &'static str,
    },
    /// The payload after the IDX header is shorter or longer than the header promises.
    #[error(
        "{}: header promises {promised} ({expected} bytes) but the payload has {found} bytes",
        display_path(.path)
    )]
    PayloadLength {
        /// The file concerned.
        path: PathBuf,
        /// What the header promised.
        promised: IdxPromise,
        /// Payload bytes implied by the header.
        expected: u128,
        /// Payload bytes actually present.
        found: u64,
    },
    /// A label is not a valid class index.
    #[error(
        "{}: record {index} has label {label}, expected 0..={}",
        display_path(.path),
        .num_classes - 1
    )]
    LabelOutOfRange {
        /// The file concerned.
        path: PathBuf,
        /// Record (0-based) with the bad label.
        index: usize,
        /// The label found.
        label: u8,
        /// Number of classes (labels must be below this).
        num_classes: usize,
    },
    /// Image and label files hold different numbers of records.
    #[error(
        "{}: {images} images but {}: {labels} labels",
        display_path(.images_path),
        display_path(.labels_path)
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Number of images in it.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Number of labels in it.
        labels: usize,
    },
    /// A CIFAR-10 binary file whose size is not a positive multiple of 3073 bytes.
    #[error(
        "{}: CIFAR-10 binary size {size} bytes is not a multiple of the 3073-byte record \
         ({} whole records + {} bytes)",
        display_path(.path),
        .size / 3073,
        .size % 3073
    )]
    CifarSize {
        /// The file concerned.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// A class-name list (`batches.meta.txt`) with the wrong number of names.
    #[error(
        "{}: expected {expected} class names (one per line), found {found}",
        display_path(.path)
    )]
    ClassNames {
        /// The file concerned.
        path: PathBuf,
        /// Names required.
        expected: usize,
        /// Non-empty lines found.
        found: usize,
    },
    /// Two image collections that must have the same shape do not.
    #[error("{what}: shape {found:?} (channels, height, width) does not match {expected:?}")]
    ShapeMismatch {
        /// What was being combined.
        what: String,
        /// The shape required.
        expected: [usize; 3],
        /// The shape found.
        found: [usize; 3],
    },
    /// An index past the end of a dataset.
    #[error("index {index} is out of range for a dataset of {len} examples")]
    IndexOutOfRange {
        /// The index requested.
        index: usize,
        /// The dataset length.
        len: usize,
    },
    /// An argument outside its domain (for example a mixture weight outside [0, 1]).
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
    /// The bundled `datasets/` folder could not be located.
    #[error("bundled datasets not found; looked in: {}", list_paths(.tried))]
    BundledNotFound {
        /// Every folder that was tried.
        tried: Vec<PathBuf>,
    },
    /// A folder holds neither MNIST IDX files nor CIFAR-10 binary batches.
    #[error(
        "{}: no MNIST (train-images-idx3-ubyte[.gz]) or CIFAR-10 (data_batch_1.bin) files found",
        display_path(.dir)
    )]
    UnknownLayout {
        /// The folder concerned.
        dir: PathBuf,
    },
    /// PNG encoding failed.
    #[error("{}: PNG encoding failed: {source}", display_path(.path))]
    Png {
        /// The file being written.
        path: PathBuf,
        /// The encoder's error.
        source: png::EncodingError,
    },
    /// The download manifest could not be parsed or is inconsistent.
    #[error("{origin}: invalid download manifest: {reason}")]
    Manifest {
        /// Where the manifest came from (a path or "bundled manifest").
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A dataset name that the manifest does not list.
    #[error("dataset `{name}` is not in the download manifest (known: {known})")]
    UnknownDataset {
        /// The name asked for.
        name: String,
        /// Comma-separated names that are listed.
        known: String,
    },
    /// No mirror delivered a file with a valid checksum.
    #[error("could not download {file}: {}", list_failures(.failures))]
    AllMirrorsFailed {
        /// The file name.
        file: String,
        /// One entry per attempt, in order.
        failures: Vec<MirrorFailure>,
    },
    /// A file's checksums match none of those in the manifest.
    #[error("{}: checksum mismatch: {details}", display_path(.path))]
    ChecksumMismatch {
        /// The file concerned.
        path: PathBuf,
        /// Expected and computed values.
        details: String,
    },
    /// A downloaded archive could not be unpacked.
    #[error("{}: cannot unpack archive: {reason}", display_path(.archive))]
    Unpack {
        /// The archive concerned.
        archive: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

fn magic_hint(found: u32) -> &'static str {
    match found {
        0x0000_0803 => " (this is an IDX image file)",
        0x0000_0801 => " (this is an IDX label file)",
        _ => "",
    }
}

impl DataError {
    /// Wraps an I/O error for `path`, turning "not found" into [`DataError::Missing`].
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if source.kind() == io::ErrorKind::NotFound {
            DataError::Missing {
                path,
                also_tried: Vec::new(),
            }
        } else {
            DataError::Io { path, source }
        }
    }

    /// The file this error is about, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            DataError::Missing { path, .. }
            | DataError::Io { path, .. }
            | DataError::Empty { path }
            | DataError::Gzip { path, .. }
            | DataError::TruncatedHeader { path, .. }
            | DataError::BadMagic { path, .. }
            | DataError::InvalidDims { path, .. }
            | DataError::PayloadLength { path, .. }
            | DataError::LabelOutOfRange { path, .. }
            | DataError::CifarSize { path, .. }
            | DataError::ClassNames { path, .. }
            | DataError::Png { path, .. }
            | DataError::ChecksumMismatch { path, .. } => Some(path),
            DataError::CountMismatch { images_path, .. } => Some(images_path),
            DataError::UnknownLayout { dir } => Some(dir),
            DataError::Unpack { archive, .. } => Some(archive),
            DataError::ShapeMismatch { .. }
            | DataError::IndexOutOfRange { .. }
            | DataError::InvalidArgument { .. }
            | DataError::BundledNotFound { .. }
            | DataError::Manifest { .. }
            | DataError::UnknownDataset { .. }
            | DataError::AllMirrorsFailed { .. } => None,
        }
    }
}
