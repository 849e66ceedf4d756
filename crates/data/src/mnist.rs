//! MNIST: loading a folder of IDX files into an [`ImageDataset`].

use std::path::{Path, PathBuf};

use crate::dataset::{ImageDataset, Split, mnist_class_names};
use crate::error::DataError;
use crate::idx::{read_idx_images, read_idx_labels};

/// Loader for MNIST folders laid out like the official distribution.
///
/// A folder holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each optionally gzipped (`.gz`), or
/// the variant names with a dot (`train-images.idx3-ubyte`). Images are 1 channel x height x
/// width with the dimensions taken from the header (28 x 28 for MNIST), labels 0..=9.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mnist;

impl Mnist {
    /// File name stems of the image and label files of a split.
    pub fn file_stems(split: Split) -> (&'static str, &'static str) {
        match split {
            Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        }
    }

    /// The image and label files of `split` in `dir`: the first existing candidate among
    /// `<stem>.gz`, `<stem>`, and the dotted variant, each with and without `.gz`.
    pub fn split_files(
        dir: impl AsRef<Path>,
        split: Split,
    ) -> Result<(PathBuf, PathBuf), DataError> {
        let dir = dir.as_ref();
        let (images, labels) = Self::file_stems(split);
        Ok((find_file(dir, images)?, find_file(dir, labels)?))
    }

    /// Loads one split from `dir`, checking headers, payload lengths, labels and that image
    /// and label counts agree. Either the whole split loads or an error is returned.
    pub fn load_dir(dir: impl AsRef<Path>, split: Split) -> Result<ImageDataset, DataError> {
        let (images_path, labels_path) = Self::split_files(dir, split)?;
        Self::load_files(&images_path, &labels_path, split)
    }

    /// Loads an explicit pair of IDX files (raw or gzip) as `split`.
    pub fn load_files(
        images_path: &Path,
        labels_path: &Path,
        split: Split,
    ) -> Result<ImageDataset, DataError> {
        let images = read_idx_images(images_path)?;
        let labels = read_idx_labels(labels_path)?;
        if images.count != labels.labels.len() {
            return Err(DataError::CountMismatch {
                images_path: images_path.to_path_buf(),
                images: images.count,
                labels_path: labels_path.to_path_buf(),
                labels: labels.labels.len(),
            });
        }
        ImageDataset::new(
            split,
            [1, images.height, images.width],
            images.pixels,
            labels.labels,
            mnist_class_names(),
        )
    }

    /// Whether `dir` looks like an MNIST folder (it has a training image file).
    pub fn is_mnist_dir(dir: impl AsRef<Path>) -> bool {
        find_file(dir.as_ref(), Self::file_stems(Split::Train).0).is_ok()
    }
}

fn candidates(dir: &Path, stem: &str) -> Vec<PathBuf> {
    // "train-images-idx3-ubyte" -> "train-images.idx3-ubyte" (common re-distribution name).
    let dotted = match stem.rfind("-idx") {
        Some(pos) => format!("{}.{}", &stem[..pos], &stem[pos + 1..]),
        None => stem.to_string(),
    };
    vec![
        dir.join(format!("{stem}.gz")),
        dir.join(stem),
        dir.join(format!("{dotted}.gz")),
        dir.join(dotted),
    ]
}

fn find_file(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    let mut tried = candidates(dir, stem);
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let path = tried.remove(0);
    Err(DataError::Missing {
        path,
        also_tried: tried,
    })
}
