//! Broken files must give a typed error that names the file, never a panic or partial data.

mod common;

use std::path::{Path, PathBuf};

use common::{gzip, raw_train_images, raw_train_labels};
use fep_data::{
    Cifar10, DataError, Mnist, Split, read_cifar_batch, read_idx_images, read_idx_labels,
};
use proptest::prelude::*;

const N: usize = 100;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn assert_names(err: &DataError, path: &Path) {
    let msg = err.to_string();
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(msg.contains(&*name), "error `{msg}` does not name {name}");
    assert_eq!(err.path(), Some(path), "{msg}");
}

#[test]
fn truncated_image_files() {
    let tmp = tempfile::tempdir().unwrap();
    let good = raw_train_images(N);
    let cases: [(usize, &str); 6] = [
        (2, "inside magic"),
        (10, "inside dims"),
        (15, "one byte short of the header"),
        (16 + 3 * 784 + 17, "mid-payload"),
        (good.len() - 1, "one byte short"),
        (16, "header only"),
    ];
    for (cut, what) in cases {
        let path = write(tmp.path(), "train-images-idx3-ubyte", &good[..cut]);
        let err = read_idx_images(&path).unwrap_err();
        assert_names(&err, &path);
        match (&err, cut) {
            (
                DataError::TruncatedHeader {
                    needed: 16, found, ..
                },
                c,
            ) if c < 16 => {
                assert_eq!(*found, c, "{what}")
            }
            (
                DataError::PayloadLength {
                    expected, found, ..
                },
                c,
            ) => {
                assert_eq!(*expected, (N * 784) as u128, "{what}");
                assert_eq!(*found, (c - 16) as u64, "{what}");
            }
            _ => panic!("{what}: unexpected {err}"),
        }
        // The gzip version of the same truncated bytes fails the same way.
        let gz_path = write(
            tmp.path(),
            "train-images-idx3-ubyte.gz",
            &gzip(&good[..cut]),
        );
        let gz_err = read_idx_images(&gz_path).unwrap_err();
        assert_names(&gz_err, &gz_path);
        assert_eq!(
            std::mem::discriminant(&gz_err),
            std::mem::discriminant(&err),
            "{what}"
        );
    }
}

#[test]
fn truncated_gzip_streams() {
    let tmp = tempfile::tempdir().unwrap();
    let gz = gzip(&raw_train_images(N));
    for cut in [1, 5, 30, gz.len() / 2, gz.len() - 1] {
        let path = write(tmp.path(), "cut.gz", &gz[..cut]);
        let err = read_idx_images(&path).unwrap_err();
        assert_names(&err, &path);
        assert!(
            matches!(
                err,
                DataError::Gzip { .. }
                    | DataError::PayloadLength { .. }
                    | DataError::TruncatedHeader { .. }
            ),
            "cut {cut}: {err}"
        );
    }
}

#[test]
fn payload_length_message_matches_the_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = raw_train_images(N);
    bytes[4..8].copy_from_slice(&10_000u32.to_be_bytes());
    let path = write(tmp.path(), "train-images-idx3-ubyte.gz", &gzip(&bytes));
    let err = read_idx_images(&path).unwrap_err();
    let expected = format!(
        "train-images-idx3-ubyte.gz: header promises 10000 images of 28x28 (7840000 bytes) but the payload has {} bytes",
        N * 784
    );
    assert!(err.to_string().ends_with(&expected), "{err}");
}

#[test]
fn header_count_larger_and_smaller_than_payload() {
    let tmp = tempfile::tempdir().unwrap();
    for (count, found) in [
        (N + 1, N * 784),
        (N - 1, N * 784),
        (u32::MAX as usize, N * 784),
    ] {
        let mut bytes = raw_train_images(N);
        bytes[4..8].copy_from_slice(&(count as u32).to_be_bytes());
        let path = write(tmp.path(), "images.idx", &bytes);
        match read_idx_images(&path).unwrap_err() {
            DataError::PayloadLength {
                expected,
                found: f,
                path: p,
                ..
            } => {
                assert_eq!(expected, count as u128 * 784);
                assert_eq!(f, found as u64);
                assert_eq!(p, path);
            }
            other => panic!("{other}"),
        }
    }
    for (count, found) in [(N + 1, N), (N - 1, N)] {
        let mut bytes = raw_train_labels(N);
        bytes[4..8].copy_from_slice(&(count as u32).to_be_bytes());
        let path = write(tmp.path(), "labels.idx", &bytes);
        let err = read_idx_labels(&path).unwrap_err();
        assert!(
            matches!(err, DataError::PayloadLength { found: f, .. } if f == found as u64),
            "{err}"
        );
        assert!(
            err.to_string().contains(&format!("{count} labels")),
            "{err}"
        );
    }
}

#[test]
fn wrong_magic() {
    let tmp = tempfile::tempdir().unwrap();
    // A label file where images are expected, and vice versa.
    let labels = write(tmp.path(), "swapped-images", &raw_train_labels(N));
    let err = read_idx_images(&labels).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadMagic {
                found: 0x801,
                expected: 0x803,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, &labels);
    let images = write(tmp.path(), "swapped-labels", &raw_train_images(N));
    assert!(matches!(
        read_idx_labels(&images).unwrap_err(),
        DataError::BadMagic {
            found: 0x803,
            expected: 0x801,
            ..
        }
    ));
    let mut bytes = raw_train_images(N);
    bytes[2] = 0x0d; // float data
    let path = write(tmp.path(), "float-images", &bytes);
    assert!(matches!(
        read_idx_images(&path).unwrap_err(),
        DataError::BadMagic { found: 0x0d03, .. }
    ));
    let path = write(tmp.path(), "text.txt", b"hello world, this is not IDX");
    assert!(matches!(
        read_idx_images(&path).unwrap_err(),
        DataError::BadMagic { .. }
    ));
}

#[test]
fn zero_dimensions() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = raw_train_images(N);
    bytes[8..12].copy_from_slice(&0u32.to_be_bytes());
    let path = write(tmp.path(), "zero-rows", &bytes);
    assert!(matches!(
        read_idx_images(&path).unwrap_err(),
        DataError::InvalidDims { .. }
    ));
    let path = write(tmp.path(), "zero-count", &raw_train_labels(0));
    assert!(matches!(
        read_idx_labels(&path).unwrap_err(),
        DataError::InvalidDims { .. }
    ));
}

#[test]
fn label_out_of_range() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = raw_train_labels(N);
    bytes[8 + 42] = 10;
    let path = write(tmp.path(), "train-labels-idx1-ubyte", &bytes);
    let err = read_idx_labels(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                index: 42,
                label: 10,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, &path);
    assert!(err.to_string().contains("record 42 has label 10"), "{err}");
}

#[test]
fn image_label_count_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "train-images-idx3-ubyte", &raw_train_images(N));
    write(
        tmp.path(),
        "train-labels-idx1-ubyte",
        &raw_train_labels(N - 1),
    );
    let err = Mnist::load_dir(tmp.path(), Split::Train).unwrap_err();
    match &err {
        DataError::CountMismatch { images, labels, .. } => {
            assert_eq!((*images, *labels), (N, N - 1))
        }
        other => panic!("{other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("train-images-idx3-ubyte") && msg.contains("train-labels-idx1-ubyte"),
        "{msg}"
    );
}

#[test]
fn garbage_gzip_empty_and_missing_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut garbage = vec![0x1f, 0x8b];
    garbage.extend((0..500u32).map(|i| (i * 7919 % 251) as u8));
    let path = write(tmp.path(), "garbage.gz", &garbage);
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, DataError::Gzip { .. }), "{err}");
    assert_names(&err, &path);

    // Valid gzip header, corrupt deflate body.
    let mut gz = gzip(&raw_train_labels(N));
    let mid = gz.len() / 2;
    for b in &mut gz[12..mid] {
        *b ^= 0x5a;
    }
    let path = write(tmp.path(), "flipped.gz", &gz);
    let err = read_idx_labels(&path).unwrap_err();
    assert_names(&err, &path);

    let path = write(tmp.path(), "empty", &[]);
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, DataError::Empty { .. }), "{err}");
    assert_names(&err, &path);
    // An empty gzip stream is empty too.
    let path = write(tmp.path(), "empty.gz", &gzip(&[]));
    assert!(matches!(
        read_idx_labels(&path).unwrap_err(),
        DataError::Empty { .. }
    ));

    let path = tmp.path().join("does-not-exist.gz");
    let err = read_idx_labels(&path).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    assert_names(&err, &path);

    let err = Mnist::load_dir(tmp.path().join("no-such-dir"), Split::Test).unwrap_err();
    assert!(
        err.to_string().contains("t10k-images-idx3-ubyte.gz"),
        "{err}"
    );

    // A directory where a file is expected.
    let err = read_idx_images(tmp.path()).unwrap_err();
    assert_eq!(err.path(), Some(tmp.path()));
}

#[test]
fn cifar_corruptions() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read(common::cifar_file("test_batch.bin")).unwrap();
    let path = write(tmp.path(), "short.bin", &good[..good.len() - 1]);
    let err = read_cifar_batch(&path).unwrap_err();
    assert!(
        matches!(err, DataError::CifarSize { size: 15364, .. }),
        "{err}"
    );
    assert_names(&err, &path);
    let path = write(tmp.path(), "empty.bin", &[]);
    assert!(matches!(
        read_cifar_batch(&path).unwrap_err(),
        DataError::Empty { .. }
    ));
    let mut bad = good.clone();
    bad[3 * 3073] = 200;
    let path = write(tmp.path(), "label.bin", &bad);
    let err = read_cifar_batch(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                index: 3,
                label: 200,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("record 3"), "{err}");

    // A folder missing one training batch: an error naming it, not a partial dataset.
    let dir = tmp.path().join("cifar");
    std::fs::create_dir(&dir).unwrap();
    for name in [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ] {
        std::fs::copy(common::cifar_file(name), dir.join(name)).unwrap();
    }
    let err = Cifar10::load_dir(&dir, Split::Train).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("data_batch_3.bin"), "{err}");
    // A class-name file with the wrong number of names.
    std::fs::copy(
        common::cifar_file("data_batch_3.bin"),
        dir.join("data_batch_3.bin"),
    )
    .unwrap();
    std::fs::write(dir.join("batches.meta.txt"), "cat\ndog\n").unwrap();
    let err = Cifar10::load_dir(&dir, Split::Train).unwrap_err();
    assert!(
        matches!(err, DataError::ClassNames { found: 2, .. }),
        "{err}"
    );
    std::fs::remove_file(dir.join("batches.meta.txt")).unwrap();
    assert_eq!(Cifar10::load_dir(&dir, Split::Train).unwrap().len(), 15);
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Insert { at: usize, byte: u8 },
    Delete { at: usize },
    Truncate { at: usize },
    SetU32 { at: usize, value: u32 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Delete { at }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        // Header words: magic and dims, to reach the size checks with wild values.
        (0usize..4, any::<u32>()).prop_map(|(w, value)| Mutation::SetU32 { at: 4 * w, value }),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    match *m {
        Mutation::Flip { at, mask } if len > 0 => bytes[at % len] ^= mask,
        Mutation::Insert { at, byte } => bytes.insert(at % (len + 1), byte),
        Mutation::Delete { at } if len > 0 => {
            bytes.remove(at % len);
        }
        Mutation::Truncate { at } => bytes.truncate(at % (len + 1)),
        Mutation::SetU32 { at, value } if at + 4 <= len => {
            bytes[at..at + 4].copy_from_slice(&value.to_be_bytes())
        }
        _ => {}
    }
}

fn check_images(bytes: &[u8], name: &str) {
    match fep_data::parse_idx_images(bytes, name) {
        Ok(images) => {
            assert_eq!(
                images.pixels.len(),
                images.count * images.height * images.width
            );
        }
        Err(e) => assert!(e.to_string().contains(name), "{e}"),
    }
}

fn check_labels(bytes: &[u8], name: &str) {
    match fep_data::parse_idx_labels(bytes, name) {
        Ok(labels) => assert!(labels.labels.iter().all(|&l| l <= 9)),
        Err(e) => assert!(e.to_string().contains(name), "{e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_raw_files_never_panic(mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut images = raw_train_images(N);
        let mut labels = raw_train_labels(N);
        for m in &mutations {
            mutate(&mut images, m);
            mutate(&mut labels, m);
        }
        check_images(&images, "mutated-images");
        check_labels(&labels, "mutated-labels");
        // CIFAR parsing of the same junk must not panic either.
        let _ = fep_data::parse_cifar_batch(&images, "mutated-cifar");
    }

    #[test]
    fn mutated_gzip_files_never_panic(mutations in prop::collection::vec(mutation(), 1..4)) {
        let mut gz_images = gzip(&raw_train_images(20));
        let mut gz_labels = gzip(&raw_train_labels(N));
        for m in &mutations {
            mutate(&mut gz_images, m);
            mutate(&mut gz_labels, m);
        }
        check_images(&gz_images, "mutated-images.gz");
        check_labels(&gz_labels, "mutated-labels.gz");
    }
}

#[test]
fn loaded_data_is_all_or_nothing() {
    // A file with a bad label at the very end yields no dataset at all.
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "t10k-images-idx3-ubyte", &raw_train_images(N));
    let mut labels = raw_train_labels(N);
    *labels.last_mut().unwrap() = 255;
    write(tmp.path(), "t10k-labels-idx1-ubyte", &labels);
    let err = Mnist::load_dir(tmp.path(), Split::Test).unwrap_err();
    assert!(
        matches!(err, DataError::LabelOutOfRange { index: 99, .. }),
        "{err}"
    );
}
