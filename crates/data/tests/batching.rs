//! Burn integration: batches by index, binarisation and class filtering.

mod common;

use common::TestBackend;
use fep_data::{
    Binarization, Cifar10, ImageDataset, Mnist, Split, bundled_cifar_dir, bundled_mnist_dir,
};

fn mnist_test() -> ImageDataset {
    Mnist::load_dir(bundled_mnist_dir().unwrap(), Split::Test).unwrap()
}

fn floats(t: burn::tensor::Tensor<TestBackend, 4>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

#[test]
fn binarisation_static_and_dynamic() {
    let ds = mnist_test().take(200);
    let device = Default::default();
    let all: Vec<usize> = (0..ds.len()).collect();
    let stat = floats(
        ds.batch::<TestBackend>(&all, Binarization::Static, 0, &device)
            .unwrap()
            .images,
    );
    for (x, &p) in stat.iter().zip(ds.images()) {
        assert_eq!(*x, if p as f32 / 255.0 > 0.5 { 1.0 } else { 0.0 });
    }
    let bin = Binarization::Dynamic { seed: 1 };
    let e0 = floats(
        ds.batch::<TestBackend>(&all, bin, 0, &device)
            .unwrap()
            .images,
    );
    let e0_again = floats(
        ds.batch::<TestBackend>(&all, bin, 0, &device)
            .unwrap()
            .images,
    );
    let e1 = floats(
        ds.batch::<TestBackend>(&all, bin, 1, &device)
            .unwrap()
            .images,
    );
    let other_seed = floats(
        ds.batch::<TestBackend>(&all, Binarization::Dynamic { seed: 2 }, 0, &device)
            .unwrap()
            .images,
    );
    assert_eq!(e0, e0_again);
    assert_ne!(e0, e1);
    assert_ne!(e0, other_seed);
    // Order independence: image 5 alone equals image 5 inside the big batch.
    let single = floats(
        ds.batch::<TestBackend>(&[5], bin, 0, &device)
            .unwrap()
            .images,
    );
    assert_eq!(&single[..], &e0[5 * 784..6 * 784]);
    // E[x] = p / 255: the mean of the binary images is close to the grey mean.
    let mean = e0.iter().map(|&x| x as f64).sum::<f64>() / e0.len() as f64;
    let grey = ds.pixel_stats().mean;
    assert!((mean - grey).abs() < 0.01, "{mean} vs {grey}");
    // Zero pixels never turn on, 255 always does.
    for (x, &p) in e0.iter().zip(ds.images()) {
        if p == 0 {
            assert_eq!(*x, 0.0);
        }
        if p == 255 {
            assert_eq!(*x, 1.0);
        }
    }
}

#[test]
fn class_filtering_keeps_labels() {
    let ds = mnist_test();
    let low = ds.filter_classes(&[0, 1, 2, 3, 4]);
    let high = ds.filter_classes(&[5, 6, 7, 8, 9]);
    assert_eq!(low.len() + high.len(), ds.len());
    assert_eq!(low.len(), 175 + 234 + 219 + 207 + 217);
    assert!(low.labels().iter().all(|&l| l <= 4));
    assert!(high.labels().iter().all(|&l| l >= 5));
    assert_eq!(&high.labels()[..3], &[7, 9, 5]);
    // The first "high" example is test image 0 (a 7), pixels unchanged.
    assert_eq!(high.image(0), ds.image(0));
    assert_eq!(high.class_counts()[0], 0);
    assert_eq!(high.class_counts()[7], 205);
}

#[test]
fn cifar_batches_are_planar_rgb() {
    let ds = Cifar10::load_dir(bundled_cifar_dir().unwrap(), Split::Test).unwrap();
    let device = Default::default();
    let batch = ds
        .batch::<TestBackend>(&[0, 4], Binarization::None, 0, &device)
        .unwrap();
    assert_eq!(batch.images.dims(), [2, 3, 32, 32]);
    let labels: Vec<i64> = batch.labels.into_data().iter::<i64>().collect();
    assert_eq!(labels, vec![8, 6]);
}
