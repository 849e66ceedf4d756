//! Models that leave fep and come back: a model as a safetensors file in the names and
//! layouts of PyTorch (`fep export`), and a file of that form as a fep model or checkpoint
//! (`fep import`).
//!
//! The file holds every parameter and BatchNorm running statistic as F32 under its
//! `state_dict` key of the PyTorch networks of `benchmarks/peers` ([`names`] has the table
//! and the layout rules: `nn.Linear` weights are the transpose of Burn's, convolutions and
//! BatchNorm match), and the model's configuration in the file's metadata ([`metadata`]).
//! Export then import is the identity on every tensor, bit for bit: the values are copied
//! as f32 and the only rearrangement is a transpose, undone on the way back.
//! `benchmarks/peers/load_fep.py` builds the PyTorch network from the metadata and computes
//! R, D, C and accuracy as fep does.

pub mod error;
pub mod file;
pub mod metadata;
pub mod names;
mod tensors;

use std::path::Path;

use burn::tensor::backend::{AutodiffBackend, Backend};

pub use error::ExportError;
pub use file::{HostData, HostTensor, TensorFile, read_file, write_file};
pub use metadata::{ExportMetadata, FORMAT};
pub use tensors::{load_torch_tensors, to_torch_tensors};

use crate::checkpoint;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::model::FepModel;
use crate::train::{TrainConfig, Trainer};

/// The safetensors content of `model` with `metadata` (whose `model` must be the model's
/// configuration).
pub fn model_file<B: Backend>(
    model: &FepModel<B>,
    metadata: &ExportMetadata,
) -> std::result::Result<TensorFile, ExportError> {
    Ok(TensorFile {
        tensors: to_torch_tensors(model)?,
        metadata: metadata.to_map(),
    })
}

/// A model from the content of a safetensors file (`path` names it in errors): built from
/// the `model` entry of the metadata, every tensor checked and loaded.
pub fn model_from_file<B: Backend>(
    file: TensorFile,
    path: &Path,
    device: &B::Device,
) -> Result<(FepModel<B>, ExportMetadata)> {
    let metadata = ExportMetadata::from_map(&file.metadata, path)?;
    let model = FepModel::<B>::new(&metadata.model, device)?;
    let model = load_torch_tensors(model, file.tensors, path)?;
    Ok((model, metadata))
}

/// `fep export`: writes the model of the checkpoint at `checkpoint` to `out` as
/// safetensors; returns the metadata written.
pub fn export_checkpoint<B: AutodiffBackend>(
    checkpoint: &Path,
    out: &Path,
    device: &B::Device,
) -> Result<ExportMetadata> {
    let (model, header) = checkpoint::load_model::<B>(checkpoint, device)?;
    let metadata = ExportMetadata::from_header(&header);
    write_file(&model_file(&model, &metadata)?, out)?;
    Ok(metadata)
}

/// How `fep import` writes the checkpoint.
#[derive(Debug, Clone)]
pub struct ImportSettings {
    /// The model the run's config describes; refused if the file holds another.
    pub model: ModelConfig,
    /// The run settings stored in the checkpoint (what `train-source --resume` continues
    /// with and where a process `--source` starts).
    pub train: TrainConfig,
    /// Free-form fields of the checkpoint header (e.g. `source_classes`); the file's
    /// `lambda`, `gamma` and the path imported from are added.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `fep import`: the model of the safetensors file `file` as a checkpoint at `out`, at
/// position zero with a fresh Adam state; returns the file's metadata.
pub fn import_to_checkpoint<B: AutodiffBackend>(
    file: &Path,
    settings: ImportSettings,
    out: &Path,
    device: &B::Device,
) -> Result<ExportMetadata> {
    let (model, metadata) = model_from_file::<B>(read_file(file)?, file, device)?;
    if metadata.model != settings.model {
        return Err(ModelError::InvalidConfig(format!(
            "{} holds a model {:?}, the config describes {:?}",
            file.display(),
            metadata.model,
            settings.model
        )));
    }
    let trainer = Trainer::new(model, settings.train, device.clone())?;
    let mut extra = settings.extra;
    extra.insert("lambda".into(), metadata.lambda.into());
    extra.insert("gamma".into(), metadata.gamma.into());
    extra.insert("imported_from".into(), file.display().to_string().into());
    extra.insert(
        "imported_fep_version".into(),
        metadata.fep_version.clone().into(),
    );
    checkpoint::save(&trainer, out, serde_json::Value::Object(extra))?;
    Ok(metadata)
}
