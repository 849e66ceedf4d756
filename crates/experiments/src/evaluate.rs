//! `evaluate`: any saved model on any data, apart from whatever produced it: R, D, C,
//! -ELBO and accuracy on a split of a set of classes, with `K` fresh noise draws per
//! example and standard errors (`fep_models::measure`).

use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use fep_data::{BinarizationKind, DataConfig, DatasetKind, Domains};
use fep_models::{Measurement, checkpoint, measure};
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

/// What to evaluate and on what.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluateOptions {
    /// The checkpoint.
    pub checkpoint: PathBuf,
    /// Folder with the dataset files (default: the bundled subset).
    pub data_dir: Option<PathBuf>,
    /// Dataset family.
    pub kind: DatasetKind,
    /// Classes (default: the checkpoint's source classes).
    pub classes: Option<Vec<u8>>,
    /// The split.
    pub split: EvalSplit,
    /// Examples held out of the training split as validation (as in the experiments).
    pub validation_size: usize,
    /// Noise draws per example.
    pub samples: usize,
    /// Seed of the draws (and of the binarisation).
    pub seed: u64,
    /// Binarisation of the inputs.
    pub binarization: BinarizationKind,
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
        binarization: options.binarization,
    };
    let domains = Domains::load(&data, options.data_dir.as_deref())?;
    let d = &domains.source;
    let dataset = match options.split {
        EvalSplit::Test => &d.test,
        EvalSplit::Train => d.train.as_ref(),
        EvalSplit::Validation => &d.validation,
    };
    let measurement = measure(
        &model.valid(),
        dataset,
        options.binarization.with_seed(options.seed),
        options.samples,
        header.train.eval_batch_size,
        options.seed,
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
