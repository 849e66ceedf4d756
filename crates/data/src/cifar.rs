//! CIFAR-10 "binary version" reader.
//!
//! A batch file is a sequence of 3073-byte records with no header: one label byte (0..=9),
//! then the 1024 red, 1024 green and 1024 blue bytes of a 32 x 32 image, each plane row-major.
//! The number of records is the file size / 3073. The training split is `data_batch_1.bin` ..
//! `data_batch_5.bin` in that order, the test split `test_batch.bin`; `batches.meta.txt` lists
//! the ten class names, one per line.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::dataset::{ImageDataset, Split};
use crate::error::DataError;
use crate::idx::check_labels;
use crate::input;

/// Bytes per CIFAR-10 record: 1 label + 3 x 32 x 32 pixels.
pub const CIFAR_RECORD_LEN: usize = 1 + CIFAR_IMAGE_LEN;
/// Pixel bytes per CIFAR-10 image (3 planes of 32 x 32).
pub const CIFAR_IMAGE_LEN: usize = 3 * 32 * 32;
/// Number of CIFAR-10 classes.
pub const CIFAR_CLASSES: usize = 10;
/// The official CIFAR-10 class names, indexed by label.
pub const CIFAR_CLASS_NAMES: [&str; CIFAR_CLASSES] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
/// The training batch files, in load order.
pub const CIFAR_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch file.
pub const CIFAR_TEST_FILE: &str = "test_batch.bin";
/// The class-name file.
pub const CIFAR_META_FILE: &str = "batches.meta.txt";
/// Folder name inside the official archive.
pub const CIFAR_ARCHIVE_DIR: &str = "cifar-10-batches-bin";

/// The records of one CIFAR-10 batch file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarBatch {
    /// `labels.len() * 3072` bytes: per image the R, G and B planes, 32 x 32 row-major.
    pub images: Vec<u8>,
    /// One label (0..=9) per record.
    pub labels: Vec<u8>,
}

/// Reads one CIFAR-10 binary batch file (gzip-compressed copies are accepted too).
pub fn read_cifar_batch(path: impl AsRef<Path>) -> Result<CifarBatch, DataError> {
    let path = path.as_ref();
    let mut input = input::open(path)?;
    let mut bytes = Vec::new();
    if let Err(e) = input.read_to_end(&mut bytes) {
        return Err(input.error(e));
    }
    parse_cifar_batch(&bytes, path)
}

/// Parses the bytes of a CIFAR-10 binary batch (uncompressed); `name` is used in errors.
pub fn parse_cifar_batch(bytes: &[u8], name: impl AsRef<Path>) -> Result<CifarBatch, DataError> {
    let path = name.as_ref();
    if bytes.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    if !bytes.len().is_multiple_of(CIFAR_RECORD_LEN) {
        return Err(DataError::CifarSize {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
        });
    }
    let n = bytes.len() / CIFAR_RECORD_LEN;
    let mut images = Vec::with_capacity(n * CIFAR_IMAGE_LEN);
    let mut labels = Vec::with_capacity(n);
    for record in bytes.chunks_exact(CIFAR_RECORD_LEN) {
        labels.push(record[0]);
        images.extend_from_slice(&record[1..]);
    }
    check_labels(&labels, CIFAR_CLASSES, path)?;
    Ok(CifarBatch { images, labels })
}

/// Reads `batches.meta.txt`: exactly ten non-empty lines (surrounding whitespace ignored).
pub fn read_cifar_class_names(path: impl AsRef<Path>) -> Result<Vec<String>, DataError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if names.len() != CIFAR_CLASSES {
        return Err(DataError::ClassNames {
            path: path.to_path_buf(),
            expected: CIFAR_CLASSES,
            found: names.len(),
        });
    }
    Ok(names)
}

/// Loader for a CIFAR-10 binary folder.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cifar10;

impl Cifar10 {
    /// The folder holding the batch files: `dir` itself, or `dir/cifar-10-batches-bin` when
    /// only that has them (the layout of the unpacked official archive).
    pub fn batches_dir(dir: impl AsRef<Path>) -> PathBuf {
        let dir = dir.as_ref();
        let nested = dir.join(CIFAR_ARCHIVE_DIR);
        if !dir.join(CIFAR_TRAIN_FILES[0]).is_file() && nested.join(CIFAR_TRAIN_FILES[0]).is_file()
        {
            nested
        } else {
            dir.to_path_buf()
        }
    }

    /// The batch files of `split` in load order.
    pub fn split_files(dir: impl AsRef<Path>, split: Split) -> Vec<PathBuf> {
        let dir = Self::batches_dir(dir);
        match split {
            Split::Train => CIFAR_TRAIN_FILES.iter().map(|f| dir.join(f)).collect(),
            Split::Test => vec![dir.join(CIFAR_TEST_FILE)],
        }
    }

    /// Loads `split` from `dir`: all five training batches (in order) or the test batch, and
    /// the class names from `batches.meta.txt` if present (else [`CIFAR_CLASS_NAMES`]).
    pub fn load_dir(dir: impl AsRef<Path>, split: Split) -> Result<ImageDataset, DataError> {
        let dir = Self::batches_dir(dir);
        let meta = dir.join(CIFAR_META_FILE);
        let class_names = if meta.is_file() {
            read_cifar_class_names(&meta)?
        } else {
            CIFAR_CLASS_NAMES.iter().map(|s| s.to_string()).collect()
        };
        let files = Self::split_files(&dir, split);
        // Check that every file exists before reading any, so the error names the first gap.
        if let Some(missing) = files.iter().find(|f| !f.is_file()) {
            return Err(DataError::Missing {
                path: missing.clone(),
                also_tried: Vec::new(),
            });
        }
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for file in &files {
            let batch = read_cifar_batch(file)?;
            images.extend_from_slice(&batch.images);
            labels.extend_from_slice(&batch.labels);
        }
        ImageDataset::new(split, [3, 32, 32], images, labels, class_names)
    }

    /// Whether `dir` looks like a CIFAR-10 binary folder (it has `data_batch_1.bin`).
    pub fn is_cifar_dir(dir: impl AsRef<Path>) -> bool {
        Self::batches_dir(dir).join(CIFAR_TRAIN_FILES[0]).is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_errors() {
        assert!(matches!(
            parse_cifar_batch(&[], "a"),
            Err(DataError::Empty { .. })
        ));
        let e = parse_cifar_batch(&[0; 3074], "b.bin").unwrap_err();
        assert!(matches!(e, DataError::CifarSize { size: 3074, .. }));
        assert!(e.to_string().contains("b.bin"), "{e}");
    }

    #[test]
    fn label_error_names_record() {
        let mut bytes = vec![0u8; 3 * CIFAR_RECORD_LEN];
        bytes[2 * CIFAR_RECORD_LEN] = 10;
        let e = parse_cifar_batch(&bytes, "c.bin").unwrap_err();
        assert!(matches!(
            e,
            DataError::LabelOutOfRange {
                index: 2,
                label: 10,
                ..
            }
        ));
    }
}
