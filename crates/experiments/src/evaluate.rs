//! `evaluate`: any saved model on any data, apart from whatever produced it: R, D, C,
//! -ELBO and accuracy on a split of a set of classes, with `K` fresh noise draws per
//! example and standard errors (`fep_models::measure`).

use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use fep_data::{BinarizationKind, DataConfig, DatasetKind, Domains};
use fep_models::export::{HostTensor, TensorFile, write_file};
use fep_models::measure::{MeasuredBatch, measure_with};
use fep_models::{Measurement, checkpoint};
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::provenance::device_name;

/// The split a model is evaluated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EvalSplit {
    /// The official test split.
    #[default]
    Test,
    /// The training split without the held-out examples.
    Train,
    /// The held-out end of the training split (`validation_size` examples per task).
    Validation,
}

impl std::str::FromStr for EvalSplit {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "test" => Ok(EvalSplit::Test),
            "train" => Ok(EvalSplit::Train),
            "validation" => Ok(EvalSplit::Validation),
            _ => Err(format!("`{s}`: expected test, train or validation")),
        }
    }
}

impl std::fmt::Display for EvalSplit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EvalSplit::Test => "test",
            EvalSplit::Train => "train",
            EvalSplit::Validation => "validation",
        })
    }
}

/// What to evaluate and on what (the options of `fep evaluate`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct EvaluateOptions {
    /// The saved model (any `.ckpt` written by fep).
    #[cfg_attr(feature = "cli", arg(long))]
    pub checkpoint: PathBuf,
    /// Folder with the dataset files (default: the bundled subset); the full MNIST after `fep data fetch mnist`.
    #[cfg_attr(feature = "cli", arg(long))]
    pub data_dir: Option<PathBuf>,
    /// Dataset family (mnist or cifar10).
    #[cfg_attr(feature = "cli", arg(long, default_value = "mnist"))]
    pub kind: DatasetKind,
    /// Classes, comma-separated (default: the source classes the checkpoint records).
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub classes: Option<Vec<u8>>,
    /// Split: test, train or validation (the held-out end of the training split).
    #[cfg_attr(feature = "cli", arg(long, default_value = "test"))]
    pub split: EvalSplit,
    /// Examples per task held out of the training split as validation (as in the experiments).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 500))]
    pub validation_size: usize,
    /// Pool the official training and test images of the classes and deal them again with
    /// this seed, as `[data] resplit_seed` does in the experiments.
    #[cfg_attr(feature = "cli", arg(long))]
    pub resplit_seed: Option<u64>,
    /// Fresh noise draws per example.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 8))]
    pub samples: usize,
    /// Seed of the draws and of the binarisation.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1))]
    pub seed: u64,
    /// Binarisation of the inputs: dynamic (as the experiments train), static or none.
    #[cfg_attr(feature = "cli", arg(long, default_value = "dynamic", value_parser = parse_binarization))]
    pub binarization: BinarizationKind,
    /// Only the first N examples of the split (all where absent).
    #[cfg_attr(feature = "cli", arg(long))]
    pub limit: Option<usize>,
    /// Write the examples' indices and labels, the images fed to the model, the noise drawn
    /// and the per-example R, D, C to this safetensors file (for benchmarks/peers/load_fep.py).
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub dump_inputs: Option<PathBuf>,
}

/// A binarisation by name: dynamic, static or none.
pub fn parse_binarization(s: &str) -> std::result::Result<BinarizationKind, String> {
    match s {
        "dynamic" => Ok(BinarizationKind::Dynamic),
        "static" => Ok(BinarizationKind::Static),
        "none" => Ok(BinarizationKind::None),
        _ => Err(format!("`{s}`: expected dynamic, static or none")),
    }
}

/// The result of `evaluate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateSummary {
    /// R, D, C, -ELBO, accuracy, examples, samples, seed and standard errors.
    #[serde(flatten)]
    pub measurement: Measurement,
    /// The checkpoint evaluated.
    pub checkpoint: PathBuf,
    /// The folder the data came from.
    pub data_dir: PathBuf,
    /// Classes evaluated.
    pub classes: Vec<u8>,
    /// Split evaluated.
    pub split: EvalSplit,
    /// `(lambda, gamma)` of the model: where a process left it, else where it was trained.
    pub multipliers: [f64; 2],
    /// Backend and device.
    pub device: String,
}

/// The source classes a checkpoint records (written by `train-source`), if any.
fn recorded_classes(extra: &serde_json::Value) -> Option<Vec<u8>> {
    serde_json::from_value(extra.get("source_classes")?.clone()).ok()
}

/// The multipliers a process recorded with its model (its `lambda`, `gamma`), if any.
fn recorded_multipliers(extra: &serde_json::Value) -> Option<[f64; 2]> {
    Some([
        extra.get("lambda")?.as_f64()?,
        extra.get("gamma")?.as_f64()?,
    ])
}

/// Everything an evaluation fed its model, gathered draw by draw.
struct Inputs {
    /// Examples (N).
    n: usize,
    /// Values per image (C * H * W).
    image_len: usize,
    /// `[C, H, W]`.
    shape: [usize; 3],
    /// Latent dimension (L).
    latent: usize,
    /// `[N]` class labels.
    labels: Vec<i64>,
    /// `[K, N, C, H, W]` images as fed (binarised for draw k).
    images: Vec<f32>,
    /// `[K, N, L]` standard normal noise.
    eps: Vec<f32>,
    /// `[K, N]` R, D, C and 0/1 correctness per example and draw.
    values: [Vec<f32>; 4],
}

impl Inputs {
    fn new(dataset: &fep_data::ImageDataset, samples: usize, latent: usize) -> Self {
        let (n, image_len) = (dataset.len(), dataset.image_len());
        Self {
            n,
            image_len,
            shape: dataset.shape(),
            latent,
            labels: vec![0; n],
            images: vec![0.0; samples * n * image_len],
            eps: vec![0.0; samples * n * latent],
            values: std::array::from_fn(|_| vec![0.0; samples * n]),
        }
    }

    /// Places one batch of one draw (example `i` of the dataset at row `i`).
    fn record<B: burn::tensor::backend::Backend>(
        &mut self,
        b: MeasuredBatch<'_, B>,
    ) -> fep_models::Result<()> {
        let host = |t: burn::tensor::TensorData| {
            t.convert::<f32>().into_vec::<f32>().map_err(|e| {
                fep_models::ModelError::Measurement(format!("reading inputs back: {e:?}"))
            })
        };
        let images = host(b.images.clone().into_data())?;
        let eps = host(b.noise.clone().into_data())?;
        let labels = host(b.labels.clone().float().into_data())?;
        let (k, m, l) = (b.draw, self.image_len, self.latent);
        for (row, &i) in b.indices.iter().enumerate() {
            let at = k * self.n + i;
            self.images[at * m..(at + 1) * m].copy_from_slice(&images[row * m..(row + 1) * m]);
            self.eps[at * l..(at + 1) * l].copy_from_slice(&eps[row * l..(row + 1) * l]);
            self.labels[i] = labels[row] as i64;
            for q in 0..3 {
                self.values[q][at] = b.values[row][q] as f32;
            }
            self.values[3][at] = b.correct[row] as f32;
        }
        Ok(())
    }
}

/// Writes the inputs of an evaluation as safetensors: `indices` and `labels` `[N]` (I64;
/// the index of each example in the evaluated split of the evaluated classes), `images`
/// `[K, N, C, H, W]` (F32, exactly as fed: draw k binarises with epoch k), `eps`
/// `[K, N, L]` (F32: the latent sample of example i in draw k is
/// `mean + exp(log_var / 2) * eps[k, i]`), and fep's per-example `rate`, `distortion`,
/// `classification` and `correct` `[K, N]`; the metadata hold the settings and the
/// measurement (`measurement`, JSON).
fn write_inputs(
    path: &Path,
    inputs: Inputs,
    measurement: &Measurement,
    options: &EvaluateOptions,
    classes: &[u8],
    eval_batch_size: usize,
) -> Result<()> {
    let (k, n) = (options.samples, inputs.n);
    let mut file = TensorFile::default();
    let mut put = |name: &str, t: HostTensor| {
        file.tensors.insert(name.to_string(), t);
    };
    put("indices", HostTensor::i64(vec![n], (0..n as i64).collect()));
    put("labels", HostTensor::i64(vec![n], inputs.labels));
    let mut image_shape = vec![k, n];
    image_shape.extend(inputs.shape);
    put("images", HostTensor::f32(image_shape, inputs.images));
    put(
        "eps",
        HostTensor::f32(vec![k, n, inputs.latent], inputs.eps),
    );
    let [r, d, c, correct] = inputs.values;
    for (name, v) in [
        ("rate", r),
        ("distortion", d),
        ("classification", c),
        ("correct", correct),
    ] {
        put(name, HostTensor::f32(vec![k, n], v));
    }
    let json = |v: serde_json::Value| v.to_string();
    let meta = &mut file.metadata;
    meta.insert("format".into(), "fep-evaluate-inputs-1".into());
    meta.insert(
        "checkpoint".into(),
        options.checkpoint.display().to_string(),
    );
    meta.insert("split".into(), options.split.to_string());
    meta.insert("classes".into(), json(serde_json::json!(classes)));
    meta.insert("samples".into(), k.to_string());
    meta.insert("seed".into(), options.seed.to_string());
    meta.insert("eval_batch_size".into(), eval_batch_size.to_string());
    meta.insert("binarization".into(), format!("{:?}", options.binarization));
    meta.insert("measurement".into(), json(serde_json::json!(measurement)));
    write_file(&file, path).map_err(fep_models::ModelError::from)?;
    Ok(())
}

/// Measures `model` on `dataset` as `options` say, writing the inputs and noise it used
/// where `options.dump_inputs` names a file.
fn measure_dataset<B: burn::tensor::backend::Backend>(
    model: &fep_models::FepModel<B>,
    dataset: &fep_data::ImageDataset,
    options: &EvaluateOptions,
    classes: &[u8],
    batch_size: usize,
    device: &B::Device,
) -> Result<Measurement> {
    let binarization = options.binarization.with_seed(options.seed);
    let (samples, seed) = (options.samples, options.seed);
    let mut inputs = options
        .dump_inputs
        .as_ref()
        .map(|_| Inputs::new(dataset, samples, model.config().latent_dim));
    let measurement = measure_with(
        model,
        dataset,
        binarization,
        samples,
        batch_size,
        seed,
        device,
        &mut |b| inputs.as_mut().map_or(Ok(()), |i| i.record(b)),
    )?;
    let (Some(out), Some(inputs)) = (&options.dump_inputs, inputs) else {
        return Ok(measurement);
    };
    write_inputs(out, inputs, &measurement, options, classes, batch_size)?;
    eprintln!(
        "wrote the inputs and noise of the evaluation to {}",
        out.display()
    );
    Ok(measurement)
}

/// Evaluates the model of a checkpoint on backend B.
pub fn evaluate<B: AutodiffBackend>(
    device: &B::Device,
    options: &EvaluateOptions,
) -> Result<EvaluateSummary> {
    let path: &Path = &options.checkpoint;
    let (model, header) = checkpoint::load_model::<B>(path, device)?;
    let classes = match &options.classes {
        Some(c) => c.clone(),
        None => recorded_classes(&header.extra).ok_or_else(|| {
            invalid(format!(
                "{} records no classes: pass --classes (for example 5,6,7,8,9)",
                path.display()
            ))
        })?,
    };
    let data = DataConfig {
        kind: options.kind,
        dir: None,
        source_classes: classes.clone(),
        target_classes: None,
        validation_size: options.validation_size,
        train_limit: None,
        test_limit: None,
        resplit_seed: options.resplit_seed,
        binarization: options.binarization,
    };
    let domains = Domains::load(&data, options.data_dir.as_deref())?;
    let d = &domains.source;
    let dataset = match options.split {
        EvalSplit::Test => &d.test,
        EvalSplit::Train => d.train.as_ref(),
        EvalSplit::Validation => &d.validation,
    };
    let limited;
    let dataset = match options.limit {
        Some(n) => {
            limited = dataset.take(n);
            &limited
        }
        None => dataset,
    };
    let batch_size = header.train.eval_batch_size;
    let measurement = measure_dataset(
        &model.valid(),
        dataset,
        options,
        &classes,
        batch_size,
        device,
    )?;
    Ok(EvaluateSummary {
        measurement,
        checkpoint: options.checkpoint.clone(),
        data_dir: domains.dir.clone(),
        classes,
        split: options.split,
        multipliers: recorded_multipliers(&header.extra)
            .unwrap_or([header.train.lambda, header.train.gamma]),
        device: device_name::<B>(device),
    })
}
