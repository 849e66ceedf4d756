//! Loading the real data bundled in `datasets/`.

mod common;

use common::{cifar_file, sha256_hex};
use fep_data::{
    Cifar10, DatasetKind, Mnist, Split, bundled_cifar_dir, bundled_mnist_dir, inspect,
    read_cifar_batch, read_idx_images, read_idx_labels,
};

#[test]
fn mnist_subset_counts_labels_and_classes() {
    let dir = bundled_mnist_dir().unwrap();
    let train = Mnist::load_dir(&dir, Split::Train).unwrap();
    let test = Mnist::load_dir(&dir, Split::Test).unwrap();
    assert_eq!(train.len(), 10_000);
    assert_eq!(test.len(), 2_000);
    assert_eq!(train.shape(), [1, 28, 28]);
    assert_eq!(test.shape(), [1, 28, 28]);
    assert_eq!(train.split(), Split::Train);
    assert_eq!(&train.labels()[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(&test.labels()[..5], &[7, 2, 1, 0, 4]);
    assert_eq!(
        train.class_counts(),
        vec![1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    );
    assert_eq!(
        test.class_counts(),
        vec![175, 234, 219, 207, 217, 179, 178, 205, 192, 194]
    );
}

#[test]
fn mnist_subset_pixel_statistics() {
    let dir = bundled_mnist_dir().unwrap();
    let train = Mnist::load_dir(&dir, Split::Train).unwrap().pixel_stats();
    let test = Mnist::load_dir(&dir, Split::Test).unwrap().pixel_stats();
    assert!((train.mean - 0.1311).abs() < 1e-3, "{}", train.mean);
    assert!((test.mean - 0.1209).abs() < 1e-3, "{}", test.mean);
    assert!(
        (train.nonzero_fraction - 0.1916).abs() < 1e-4,
        "{}",
        train.nonzero_fraction
    );
    assert!(
        (test.nonzero_fraction - 0.1805).abs() < 1e-4,
        "{}",
        test.nonzero_fraction
    );
    assert_eq!((train.min, train.max), (0, 255));
}

#[test]
fn idx_readers_report_header_dims() {
    let dir = bundled_mnist_dir().unwrap();
    let images = read_idx_images(dir.join("t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!((images.count, images.height, images.width), (2000, 28, 28));
    assert_eq!(images.pixels.len(), 2000 * 784);
    let labels = read_idx_labels(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(labels.labels.len(), 2000);
}

#[test]
fn raw_and_gzip_files_load_identically_whatever_their_names() {
    // Compression is detected from content: a raw file named .gz and a gzip file without
    // the suffix both load.
    let src = bundled_mnist_dir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let raw_images = common::gunzip(&src.join("t10k-images-idx3-ubyte.gz"));
    let raw_labels = common::gunzip(&src.join("t10k-labels-idx1-ubyte.gz"));
    std::fs::write(tmp.path().join("t10k-images-idx3-ubyte.gz"), &raw_images).unwrap();
    std::fs::copy(
        src.join("t10k-labels-idx1-ubyte.gz"),
        tmp.path().join("t10k-labels-idx1-ubyte"),
    )
    .unwrap();
    let a = Mnist::load_dir(&src, Split::Test).unwrap();
    let b = Mnist::load_dir(tmp.path(), Split::Test).unwrap();
    assert_eq!(a, b);
    assert_eq!(raw_labels.len(), 2008);
}

#[test]
fn cifar_fixture_loads_with_names_and_labels() {
    let dir = bundled_cifar_dir().unwrap();
    let train = Cifar10::load_dir(&dir, Split::Train).unwrap();
    let test = Cifar10::load_dir(&dir, Split::Test).unwrap();
    assert_eq!(train.len(), 15);
    assert_eq!(test.len(), 5);
    assert_eq!(train.shape(), [3, 32, 32]);
    assert_eq!(test.labels(), &[8, 5, 7, 8, 6]);
    assert_eq!(&train.labels()[..3], &[3, 8, 8]);
    assert_eq!(train.class_names()[0], "airplane");
    assert_eq!(train.class_names()[9], "truck");
    // Record 0 (a cat), red plane row 0 as printed from the official test batch.
    assert_eq!(
        &train.image(0).unwrap()[..12],
        &[158, 159, 165, 166, 160, 156, 162, 159, 158, 159, 161, 160]
    );
    assert_eq!(train.class_counts(), vec![2, 2, 0, 2, 0, 1, 3, 1, 2, 2]);
    assert_eq!(test.class_counts(), vec![0, 0, 0, 0, 0, 1, 1, 1, 2, 0]);
}

#[test]
fn cifar_fixture_concatenation_is_the_official_prefix() {
    let mut all = Vec::new();
    let mut labels = Vec::new();
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for name in names {
        let path = cifar_file(name);
        all.extend_from_slice(&std::fs::read(&path).unwrap());
        labels.extend(read_cifar_batch(&path).unwrap().labels);
    }
    assert_eq!(all.len(), 61_460);
    assert_eq!(&labels[..5], &[3, 8, 8, 0, 6]);
    assert_eq!(
        sha256_hex(&all),
        "7a75c7f3d741a45b5f79cc341c8607a874c6f441de815b9d426ace5249b5c733"
    );
    // The same bytes parse as one 20-record batch.
    let joined = fep_data::parse_cifar_batch(&all, "concatenation").unwrap();
    assert_eq!(joined.labels.len(), 20);
}

#[test]
fn cifar_archive_layout_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let nested = tmp.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&nested).unwrap();
    let src = bundled_cifar_dir().unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), nested.join(entry.file_name())).unwrap();
    }
    let test = Cifar10::load_dir(tmp.path(), Split::Test).unwrap();
    assert_eq!(test.labels(), &[8, 5, 7, 8, 6]);
}

#[test]
fn inspect_bundled_folders() {
    let mnist = inspect(bundled_mnist_dir().unwrap()).unwrap();
    assert_eq!(mnist.kind, DatasetKind::Mnist);
    assert_eq!(mnist.splits[0].len, 10_000);
    assert_eq!(mnist.splits[1].len, 2_000);
    assert_eq!(mnist.splits[0].class_counts[1], 1127);
    assert_eq!(mnist.splits[1].first_labels[..5], [7, 2, 1, 0, 4]);
    let text = mnist.to_string();
    assert!(text.contains("19.16 %"), "{text}");
    assert!(text.contains("18.05 %"), "{text}");
    let cifar = inspect(bundled_cifar_dir().unwrap()).unwrap();
    assert_eq!(cifar.kind, DatasetKind::Cifar10);
    assert_eq!(cifar.shape, [3, 32, 32]);
    assert_eq!(cifar.splits[0].channel_means.len(), 3);
    assert!(cifar.to_string().contains("airplane"));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        inspect(empty.path()),
        Err(fep_data::DataError::UnknownLayout { .. })
    ));
}

#[test]
fn png_grids_of_real_images() {
    let tmp = tempfile::tempdir().unwrap();
    let mnist = Mnist::load_dir(bundled_mnist_dir().unwrap(), Split::Test).unwrap();
    let path = tmp.path().join("mnist.png");
    let opts = fep_data::GridOptions {
        columns: 4,
        padding: 2,
        scale: 1,
        background: 0,
    };
    fep_data::write_png_grid(&path, &mnist, &[0, 1, 2, 3, 4, 5], opts).unwrap();
    let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    assert_eq!((info.width, info.height), (4 * 30 + 2, 2 * 30 + 2));
    // Tile 0 starts at (2, 2) and equals test image 0, row by row.
    let image = mnist.image(0).unwrap();
    for y in 0..28 {
        let row = &buf[(2 + y) * info.width as usize + 2..][..28];
        assert_eq!(row, &image[y * 28..(y + 1) * 28]);
    }
    let cifar = Cifar10::load_dir(bundled_cifar_dir().unwrap(), Split::Train).unwrap();
    let path = tmp.path().join("cifar.png");
    fep_data::write_png_grid(&path, &cifar, &[0, 1, 2], Default::default()).unwrap();
    let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
    let info = decoder.read_info().unwrap().info().clone();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    // Only the PNG itself is left in the folder (the write was atomic).
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
}
