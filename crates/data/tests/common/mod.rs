//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use fep_data::{bundled_cifar_dir, bundled_mnist_dir};

/// Backend used by the tensor tests.
pub type TestBackend = burn_flex::Flex;

/// Path of a file of the bundled MNIST subset.
pub fn mnist_file(name: &str) -> PathBuf {
    bundled_mnist_dir().expect("bundled MNIST").join(name)
}

/// Path of a file of the bundled CIFAR-10 fixture.
pub fn cifar_file(name: &str) -> PathBuf {
    bundled_cifar_dir().expect("bundled CIFAR").join(name)
}

/// Decompressed bytes of a gzip file.
pub fn gunzip(path: &Path) -> Vec<u8> {
    let file = std::fs::File::open(path).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Gzip-compresses bytes.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The first `n` records of the bundled training images as a raw IDX file (header count = n).
pub fn raw_train_images(n: usize) -> Vec<u8> {
    static FULL: OnceLock<Vec<u8>> = OnceLock::new();
    let full = FULL.get_or_init(|| gunzip(&mnist_file("train-images-idx3-ubyte.gz")));
    let mut out = full[..16 + n * 784].to_vec();
    out[4..8].copy_from_slice(&(n as u32).to_be_bytes());
    out
}

/// The first `n` records of the bundled training labels as a raw IDX file.
pub fn raw_train_labels(n: usize) -> Vec<u8> {
    static FULL: OnceLock<Vec<u8>> = OnceLock::new();
    let full = FULL.get_or_init(|| gunzip(&mnist_file("train-labels-idx1-ubyte.gz")));
    let mut out = full[..8 + n].to_vec();
    out[4..8].copy_from_slice(&(n as u32).to_be_bytes());
    out
}

/// Sha256 hex of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
