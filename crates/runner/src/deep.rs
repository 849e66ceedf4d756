//! Shared pieces of the deep-model experiments: the `[data]` section of their configs,
//! the source/target domains with their train/validation/test splits, and image grids.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use fep_data::{Binarization, Cifar10, GridOptions, ImageDataset, Mnist, Split};
use fep_models::FepModel;
use serde::{Deserialize, Serialize};

/// Which dataset family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataKind {
    /// MNIST in IDX files.
    Mnist,
    /// CIFAR-10 binary batches.
    Cifar10,
}

/// How images are turned into model inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BinarizationChoice {
    /// Grey levels in [0, 1].
    None,
    /// Threshold at 1/2.
    Static,
    /// Bernoulli(p / 255) afresh each epoch (seeded).
    Dynamic,
}

/// The `[data]` section of a deep experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset family.
    pub kind: DataKind,
    /// Folder with the official files; default: the bundled subset. `--data-dir` overrides.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Classes of the source task.
    pub source_classes: Vec<u8>,
    /// Classes of the target task (transfer experiments).
    #[serde(default)]
    pub target_classes: Option<Vec<u8>>,
    /// Examples per domain held out of the training split as validation (probe) set.
    #[serde(default = "default_validation")]
    pub validation_size: usize,
    /// Keep at most this many training examples per domain (after the hold-out).
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Keep at most this many test examples per domain.
    #[serde(default)]
    pub test_limit: Option<usize>,
    /// Binarisation of the inputs.
    #[serde(default = "default_binarization")]
    pub binarization: BinarizationChoice,
}

fn default_validation() -> usize {
    500
}
fn default_binarization() -> BinarizationChoice {
    BinarizationChoice::Dynamic
}

impl DataConfig {
    /// The binarisation for a run with `seed`.
    pub fn binarization(&self, seed: u64) -> Binarization {
        match self.binarization {
            BinarizationChoice::None => Binarization::None,
            BinarizationChoice::Static => Binarization::Static,
            BinarizationChoice::Dynamic => Binarization::Dynamic { seed },
        }
    }

    /// The data folder: `--data-dir`, else `dir`, else the bundled subset.
    pub fn resolve_dir(&self, override_dir: Option<&Path>) -> Result<PathBuf> {
        if let Some(d) = override_dir {
            return Ok(d.to_path_buf());
        }
        if let Some(d) = &self.dir {
            return Ok(d.clone());
        }
        Ok(match self.kind {
            DataKind::Mnist => fep_data::bundled_mnist_dir()?,
            DataKind::Cifar10 => fep_data::bundled_cifar_dir()?,
        })
    }
}

/// One task's splits.
#[derive(Debug, Clone)]
pub struct Domain {
    /// Classes.
    pub classes: Vec<u8>,
    /// Training examples (the hold-out removed).
    pub train: Arc<ImageDataset>,
    /// Held-out part of the training split.
    pub validation: ImageDataset,
    /// Official test split.
    pub test: ImageDataset,
}

/// Source and (optional) target domains of an experiment.
#[derive(Debug, Clone)]
pub struct Domains {
    /// Folder the data came from.
    pub dir: PathBuf,
    /// The source task.
    pub source: Domain,
    /// The target task, where configured.
    pub target: Option<Domain>,
}

fn load_split(kind: DataKind, dir: &Path, split: Split) -> Result<ImageDataset> {
    Ok(match kind {
        DataKind::Mnist => Mnist::load_dir(dir, split)?,
        DataKind::Cifar10 => Cifar10::load_dir(dir, split)?,
    })
}

fn domain(
    name: &'static str,
    classes: &[u8],
    train_all: &ImageDataset,
    test_all: &ImageDataset,
    cfg: &DataConfig,
) -> Result<Domain> {
    if classes.is_empty() {
        bail!("[data] {name}_classes is empty");
    }
    if let Some(&bad) = classes
        .iter()
        .find(|&&c| usize::from(c) >= train_all.num_classes())
    {
        bail!(
            "[data] {name}_classes contains {bad}, but the dataset has {} classes",
            train_all.num_classes()
        );
    }
    let train = train_all.filter_classes(classes);
    let test = test_all.filter_classes(classes);
    // The hold-out is the last `validation_size` examples (the files' order is fixed).
    let hold = cfg.validation_size.min(train.len() / 2);
    let cut = train.len() - hold;
    let validation = train.select(&(cut..train.len()).collect::<Vec<_>>())?;
    let mut train = train.select(&(0..cut).collect::<Vec<_>>())?;
    if let Some(limit) = cfg.train_limit {
        train = train.take(limit);
    }
    let test = match cfg.test_limit {
        Some(limit) => test.take(limit),
        None => test,
    };
    if train.is_empty() || test.is_empty() || validation.is_empty() {
        bail!(
            "{name} domain (classes {classes:?}) is too small: {} train, {} validation, {} test examples",
            train.len(),
            validation.len(),
            test.len()
        );
    }
    Ok(Domain {
        classes: classes.to_vec(),
        train: Arc::new(train),
        validation,
        test,
    })
}

/// Loads the source (and target) domains of `cfg`.
pub fn load_domains(cfg: &DataConfig, override_dir: Option<&Path>) -> Result<Domains> {
    let dir = cfg.resolve_dir(override_dir)?;
    let train_all = load_split(cfg.kind, &dir, Split::Train)
        .with_context(|| format!("loading the training split from {}", dir.display()))?;
    let test_all = load_split(cfg.kind, &dir, Split::Test)
        .with_context(|| format!("loading the test split from {}", dir.display()))?;
    let source = domain("source", &cfg.source_classes, &train_all, &test_all, cfg)?;
    let target = match &cfg.target_classes {
        Some(classes) => Some(domain("target", classes, &train_all, &test_all, cfg)?),
        None => None,
    };
    Ok(Domains {
        dir,
        source,
        target,
    })
}

/// Reads a TOML config into `T`, naming the file in every error.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("invalid config {}: {e}", path.display()))
}

/// Host bytes `[N, C, H, W]` of images in [0, 1].
fn to_bytes<B: Backend>(images: Tensor<B, 4>) -> (Vec<u8>, [usize; 4]) {
    let dims = images.dims();
    let bytes = images
        .into_data()
        .iter::<f64>()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    (bytes, dims)
}

/// Writes a PNG grid of float images `[N, C, H, W]` in [0, 1], `columns` per row.
pub fn write_image_grid<B: Backend>(
    path: &Path,
    images: Tensor<B, 4>,
    columns: usize,
) -> Result<()> {
    let (bytes, [n, c, h, w]) = to_bytes(images);
    let ds = ImageDataset::new(
        Split::Test,
        [c, h, w],
        bytes,
        vec![0; n],
        fep_data::mnist_class_names(),
    )?;
    let options = GridOptions {
        columns,
        ..GridOptions::default()
    };
    fep_data::write_png_grid(path, &ds, &(0..n).collect::<Vec<_>>(), options)?;
    Ok(())
}

/// Reconstructions (originals in odd rows, reconstructions below) and samples from the prior.
pub fn write_model_images<B: Backend>(
    model: &FepModel<B>,
    test: &ImageDataset,
    binarization: Binarization,
    seed: u64,
    dir: &Path,
    device: &B::Device,
) -> Result<(PathBuf, PathBuf)> {
    let columns = 10;
    let n = (2 * columns).min(test.len());
    let idx: Vec<usize> = (0..n).collect();
    let batch = test.batch::<B>(&idx, binarization, 0, device)?;
    let recon = model.reconstruct(batch.images.clone());
    let mut rows = Vec::new();
    for r in 0..n.div_ceil(columns) {
        let len = columns.min(n - r * columns);
        rows.push(batch.images.clone().narrow(0, r * columns, len));
        rows.push(recon.clone().narrow(0, r * columns, len));
    }
    let recon_path = dir.join("reconstructions.png");
    write_image_grid(&recon_path, Tensor::cat(rows, 0), columns)?;
    let latent = model.config().latent_dim;
    let noise =
        fep_models::noise::standard_normal(seed, fep_models::noise::SAMPLE_STREAM, 0, 40 * latent);
    let noise = Tensor::<B, 2>::from_data(TensorData::new(noise, [40, latent]), device);
    let samples_path = dir.join("samples.png");
    write_image_grid(&samples_path, model.sample(noise), columns)?;
    Ok((recon_path, samples_path))
}
