//! The complete official MNIST, when a copy is available locally (ignored by default).
//!
//! Run with `FEP_MNIST_FULL_DIR=/path/to/mnist cargo test -p fep-data --test full_mnist --
//! --ignored`. The folder must hold the four IDX files and a `SHA256SUMS.txt` whose lines
//! read `<sha256 of .gz>  <name>  decompressed-sha256 <hex>  decompressed-md5 <hex>`.

mod common;

use std::path::PathBuf;

use fep_data::download::ChecksumMatch;
use fep_data::{DatasetKind, Manifest, Mnist, Split, verify_file};

fn full_dir() -> PathBuf {
    std::env::var_os("FEP_MNIST_FULL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/datasets/mnist-full"))
}

#[test]
#[ignore = "needs the full MNIST in $FEP_MNIST_FULL_DIR (default /work/shared/datasets/mnist-full)"]
fn full_mnist_loads_and_matches_official_checksums() {
    let dir = full_dir();
    let train = Mnist::load_dir(&dir, Split::Train).unwrap();
    let test = Mnist::load_dir(&dir, Split::Test).unwrap();
    assert_eq!(train.len(), 60_000);
    assert_eq!(test.len(), 10_000);
    assert_eq!(train.shape(), [1, 28, 28]);
    assert_eq!(&train.labels()[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(&test.labels()[..5], &[7, 2, 1, 0, 4]);
    // Values documented in datasets/mnist-subset/README.md for the full set.
    assert!((train.pixel_stats().mean - 0.1307).abs() < 1e-3);
    assert!((test.pixel_stats().mean - 0.1325).abs() < 1e-3);

    let sums = std::fs::read_to_string(dir.join("SHA256SUMS.txt")).unwrap();
    let manifest = Manifest::bundled().unwrap();
    let entries = &manifest.dataset(DatasetKind::Mnist).unwrap().files;
    let mut checked = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let name = fields[1];
        let pos = fields
            .iter()
            .position(|f| *f == "decompressed-sha256")
            .unwrap();
        let expected = fields[pos + 1];
        let content = common::gunzip(&dir.join(name));
        assert_eq!(common::sha256_hex(&content), expected, "{name}");
        // The shipped manifest accepts these files through their decompressed content.
        let entry = entries.iter().find(|e| e.name == name).unwrap();
        assert_eq!(entry.content_sha256.as_deref(), Some(expected));
        let matched = verify_file(dir.join(name), entry).unwrap();
        assert!(
            matches!(
                matched,
                ChecksumMatch::ContentSha256 | ChecksumMatch::Sha256 | ChecksumMatch::Md5
            ),
            "{name}: {matched:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, 4);
}
