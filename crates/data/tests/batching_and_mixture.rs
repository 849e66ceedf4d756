//! Burn integration: the Dataset and Batcher traits, binarisation, and the mixture p_t.

mod common;

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use common::TestBackend;
use fep_data::{
    Binarization, Cifar10, ImageBatcher, ImageDataset, MixtureDataset, Mnist, Split,
    bundled_cifar_dir, bundled_mnist_dir,
};

fn mnist_test() -> ImageDataset {
    Mnist::load_dir(bundled_mnist_dir().unwrap(), Split::Test).unwrap()
}

fn floats(t: burn::tensor::Tensor<TestBackend, 4>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

#[test]
fn batcher_trait_builds_float_images_and_int_labels() {
    let ds = mnist_test();
    let device = Default::default();
    let batcher = ImageBatcher::for_dataset(&ds, Binarization::None);
    let items: Vec<_> = (0..4).map(|i| ds.get(i).unwrap()).collect();
    let batch = Batcher::<TestBackend, _, _>::batch(&batcher, items, &device);
    assert_eq!(batch.images.dims(), [4, 1, 28, 28]);
    assert_eq!(batch.labels.dims(), [4]);
    let labels: Vec<i64> = batch.labels.into_data().iter::<i64>().collect();
    assert_eq!(labels, vec![7, 2, 1, 0]);
    let pixels = floats(batch.images);
    assert!(pixels.iter().all(|&x| (0.0..=1.0).contains(&x)));
    let expected: Vec<f32> = ds
        .image(0)
        .unwrap()
        .iter()
        .map(|&p| p as f32 / 255.0)
        .collect();
    assert_eq!(&pixels[..784], &expected[..]);
    assert_eq!(batch.indices, vec![0, 1, 2, 3]);
}

#[test]
fn direct_batches_match_the_batcher() {
    let ds = mnist_test();
    let device = Default::default();
    let bin = Binarization::Dynamic { seed: 9 };
    let batcher = ImageBatcher::for_dataset(&ds, bin);
    batcher.set_epoch(3);
    let indices = [17usize, 3, 1999];
    let direct = ds.batch::<TestBackend>(&indices, bin, 3, &device).unwrap();
    let via_helper = batcher
        .batch_indices::<TestBackend>(&ds, &indices, &device)
        .unwrap();
    let items = indices.iter().map(|&i| ds.get(i).unwrap()).collect();
    let via_trait: fep_data::ImageBatch<TestBackend> = batcher.batch(items, &device);
    let a = floats(direct.images);
    assert_eq!(a, floats(via_helper.images));
    assert_eq!(a, floats(via_trait.images));
    assert!(a.iter().all(|&x| x == 0.0 || x == 1.0));
    // Clones share the epoch.
    let clone = batcher.clone();
    clone.set_epoch(4);
    assert_eq!(batcher.epoch(), 4);
    // Out of range is an error, not a panic.
    assert!(ds.batch::<TestBackend>(&[2000], bin, 0, &device).is_err());
    // An empty index list gives an empty batch.
    let empty = ds.batch::<TestBackend>(&[], bin, 0, &device).unwrap();
    assert_eq!(empty.images.dims(), [0, 1, 28, 28]);
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

fn mixture(t: f64, seed: u64, len: usize) -> MixtureDataset {
    let ds = mnist_test();
    let source = Arc::new(ds.filter_classes(&[0, 1, 2, 3, 4]));
    let target = Arc::new(ds.filter_classes(&[5, 6, 7, 8, 9]));
    MixtureDataset::new(source, target, len, t, seed).unwrap()
}

#[test]
fn mixture_fraction_follows_t() {
    let n = 20_000;
    for t in [0.1, 0.25, 0.5, 0.9] {
        let m = mixture(t, 7, n);
        let frac = m.target_fraction();
        // 5 standard deviations of a binomial share.
        let tol = 5.0 * (t * (1.0 - t) / n as f64).sqrt();
        assert!((frac - t).abs() < tol, "t={t}: {frac}");
        // Labels agree with the origin: digits >= 5 come from the target.
        for i in 0..200 {
            let draw = m.draw(i).unwrap();
            let item = m.get(i).unwrap();
            assert_eq!(draw.from_target, item.label >= 5);
        }
    }
}

#[test]
fn mixture_extremes_and_reproducibility() {
    let m0 = mixture(0.0, 1, 5_000);
    assert!(m0.draws().iter().all(|d| !d.from_target));
    let m1 = mixture(1.0, 1, 5_000);
    assert!(m1.draws().iter().all(|d| d.from_target));
    assert_eq!(mixture(0.3, 5, 1000).draws(), mixture(0.3, 5, 1000).draws());
    assert_ne!(mixture(0.3, 5, 1000).draws(), mixture(0.3, 6, 1000).draws());

    let mut m = mixture(0.3, 5, 1000);
    let epoch0 = m.draws();
    m.set_epoch(1);
    let epoch1 = m.draws();
    assert_ne!(epoch0, epoch1);
    m.set_epoch(0);
    assert_eq!(
        m.draws(),
        epoch0,
        "an epoch is reproducible from (seed, epoch, t)"
    );

    // Changing t between epochs; the draws are coupled across t.
    m.set_t(0.6).unwrap();
    let higher = m.draws();
    for (a, b) in epoch0.iter().zip(&higher) {
        if a.from_target {
            assert_eq!(a, b, "raising t keeps every target draw");
        }
    }
    assert!(m.target_fraction() > 0.45);
    assert!(m.set_t(1.5).is_err());
    assert!(m.set_t(f64::NAN).is_err());
    assert_eq!(m.t(), 0.6);
}

#[test]
fn mixture_batches_and_errors() {
    let m = mixture(0.5, 3, 64);
    let device = Default::default();
    let positions: Vec<usize> = (0..64).collect();
    let batch = m
        .batch::<TestBackend>(&positions, Binarization::Static, &device)
        .unwrap();
    assert_eq!(batch.images.dims(), [64, 1, 28, 28]);
    let labels: Vec<i64> = batch.labels.into_data().iter::<i64>().collect();
    let expected: Vec<i64> = (0..64).map(|i| m.get(i).unwrap().label as i64).collect();
    assert_eq!(labels, expected);
    assert!(
        m.batch::<TestBackend>(&[64], Binarization::None, &device)
            .is_err()
    );
    // Different shapes cannot be mixed.
    let cifar = Arc::new(Cifar10::load_dir(bundled_cifar_dir().unwrap(), Split::Test).unwrap());
    let mnist = Arc::new(mnist_test());
    assert!(MixtureDataset::new(mnist, cifar, 10, 0.5, 0).is_err());
}

#[test]
fn works_with_burn_data_loader() {
    use burn::data::dataloader::DataLoaderBuilder;
    let ds = mnist_test().take(100);
    let batcher = ImageBatcher::for_dataset(&ds, Binarization::Dynamic { seed: 5 });
    let loader = DataLoaderBuilder::<TestBackend, _, _>::new(batcher.clone())
        .batch_size(32)
        .num_workers(2)
        .build(ds.clone());
    let mut seen = Vec::new();
    for batch in loader.iter() {
        let batch: fep_data::ImageBatch<TestBackend> = batch;
        assert_eq!(batch.images.dims()[1..], [1, 28, 28]);
        // Dynamic binarisation is keyed by example index, so workers and batch composition
        // do not matter: each row equals the direct batch of that example.
        let direct = ds
            .batch::<TestBackend>(
                &batch.indices,
                batcher.binarization(),
                0,
                &Default::default(),
            )
            .unwrap();
        assert_eq!(floats(batch.images), floats(direct.images));
        seen.extend(batch.indices);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
    // A Mixture epoch also feeds the loader.
    let m = mixture(0.5, 1, 50);
    let loader = DataLoaderBuilder::<TestBackend, _, _>::new(ImageBatcher::new(
        Binarization::Static,
        m.shape(),
    ))
    .batch_size(16)
    .build(m);
    let rows: usize = loader
        .iter()
        .map(|b: fep_data::ImageBatch<TestBackend>| b.indices.len())
        .sum();
    assert_eq!(rows, 50);
}
