//! Locating the data shipped in the repository's `datasets/` folder.
//!
//! `datasets/mnist-subset` holds the first 10,000 training and 2,000 test MNIST records (gzip
//! IDX); `datasets/cifar10-subset` holds 20 real CIFAR-10 test images as a 15/5 stand-in
//! train/test split in the official binary format.

use std::path::{Path, PathBuf};

use crate::error::DataError;

/// Environment variable that, when set, names the `datasets/` folder to use.
pub const DATASETS_DIR_ENV: &str = "FEP_DATASETS_DIR";
/// Sub-folder with the MNIST subset.
pub const MNIST_SUBSET: &str = "mnist-subset";
/// Sub-folder with the CIFAR-10 fixture.
pub const CIFAR_SUBSET: &str = "cifar10-subset";

/// The repository's `datasets/` folder.
///
/// Looked for, in order: `$FEP_DATASETS_DIR`; `datasets/` in the current directory or any of
/// its ancestors (so the workspace root and its sub-folders work); and finally the path the
/// crate was compiled from, `CARGO_MANIFEST_DIR/../../datasets`, so tests and the binary find
/// it from any working directory on the build machine. A candidate counts only if it contains
/// `mnist-subset/`.
pub fn bundled_datasets_dir() -> Result<PathBuf, DataError> {
    let mut tried = Vec::new();
    if let Some(dir) = std::env::var_os(DATASETS_DIR_ENV) {
        let dir = PathBuf::from(dir);
        if is_datasets_dir(&dir) {
            return Ok(dir);
        }
        tried.push(dir);
    }
    if let Ok(cwd) = std::env::current_dir() {
        for ancestor in cwd.ancestors() {
            let dir = ancestor.join("datasets");
            if is_datasets_dir(&dir) {
                return Ok(dir);
            }
            tried.push(dir);
        }
    }
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets");
    if is_datasets_dir(&compiled) {
        return Ok(compiled.canonicalize().unwrap_or(compiled));
    }
    tried.push(compiled);
    Err(DataError::BundledNotFound { tried })
}

/// The bundled MNIST subset (`datasets/mnist-subset`).
pub fn bundled_mnist_dir() -> Result<PathBuf, DataError> {
    sub_dir(MNIST_SUBSET)
}

/// The bundled CIFAR-10 fixture (`datasets/cifar10-subset`).
pub fn bundled_cifar_dir() -> Result<PathBuf, DataError> {
    sub_dir(CIFAR_SUBSET)
}

/// The shipped download manifest (`datasets/manifest.toml`) on disk.
pub fn bundled_manifest_path() -> Result<PathBuf, DataError> {
    let path = bundled_datasets_dir()?.join("manifest.toml");
    if path.is_file() {
        Ok(path)
    } else {
        Err(DataError::Missing {
            path,
            also_tried: Vec::new(),
        })
    }
}

fn sub_dir(name: &str) -> Result<PathBuf, DataError> {
    let dir = bundled_datasets_dir()?.join(name);
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(DataError::Missing {
            path: dir,
            also_tried: Vec::new(),
        })
    }
}

fn is_datasets_dir(dir: &Path) -> bool {
    dir.join(MNIST_SUBSET).is_dir()
}
