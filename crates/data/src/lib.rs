//! Data layer of the free-energy representation-learning project.
//!
//! * Readers for MNIST (IDX format, raw or gzip: [`read_idx_images`], [`read_idx_labels`],
//!   [`Mnist::load_dir`]) and CIFAR-10 (binary batches: [`read_cifar_batch`],
//!   [`Cifar10::load_dir`]). They validate everything against the bytes present and fail with
//!   a typed [`DataError`] naming the file; they never panic and never return partial data.
//! * [`ImageDataset`]: labelled `u8` images in `[n, channels, height, width]` order, with
//!   class filtering, statistics, and Burn's [`burn::data::dataset::Dataset`] trait.
//! * [`Binarization`] of pixels `p`: grey levels `p/255`, a static threshold `p/255 > 0.5`, or
//!   seeded per-epoch Bernoulli sampling `x ~ Bernoulli(p/255)`.
//! * [`ImageBatch`]: Burn batches `images: [B, C, H, W]` floats and `labels: [B]` ints, by
//!   index ([`ImageDataset::batch`]).
//! * [`domains`]: the `[data]` section of an experiment ([`DataConfig`]) and its source /
//!   target [`Domains`] with train / validation / test splits.
//! * [`download`]: manifest-driven, resumable, verified download with mirror fallback, and
//!   [`atomic_write`] for crash-safe file output.
//! * [`inspect()`] and [`grid::write_png_grid`] for looking at a dataset folder.
//! * [`bundled_mnist_dir`] / [`bundled_cifar_dir`]: the real data shipped in `datasets/`.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod atomic;
mod batch;
mod binarize;
pub mod bundled;
pub mod cifar;
mod dataset;
pub mod domains;
pub mod download;
mod error;
pub mod grid;
pub mod idx;
mod input;
pub mod inspect;
pub mod mnist;

pub use atomic::{atomic_write, atomic_write_with};
pub use batch::ImageBatch;
pub use binarize::Binarization;
pub use bundled::{bundled_cifar_dir, bundled_datasets_dir, bundled_mnist_dir};
pub use cifar::{Cifar10, CifarBatch, parse_cifar_batch, read_cifar_batch};
pub use dataset::{DatasetKind, ImageDataset, ImageItem, PixelStats, Split, mnist_class_names};
pub use domains::{BinarizationKind, DataConfig, Domain, Domains, ProbeSplit};
pub use download::{FetchEvent, FetchReport, Manifest, fetch, verify_file};
pub use error::{DataError, IdxPromise, MirrorFailure};
pub use grid::{GridOptions, write_png_grid};
pub use idx::{
    IdxImages, IdxLabels, parse_idx_images, parse_idx_labels, read_idx_images, read_idx_labels,
};
pub use inspect::{Inspection, detect_kind, inspect, load_dataset};
pub use mnist::Mnist;
