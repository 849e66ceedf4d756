//! A [`DeepSystem`] assembled from a trained checkpoint and the domains of an experiment:
//! the one place where a model, its optimiser, its training data and its probes meet.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use fep_data::{Binarization, Domain, ProbeSplit};
use fep_thermo::Multipliers;
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::error::{ModelError, Result};
use crate::system::{DeepSystem, EquilibrationSettings};
use crate::train::Trainer;

/// How the system around a checkpoint samples, steps and measures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SystemSpec {
    /// Examples per Adam step of each domain.
    pub batch_size: usize,
    /// Adam learning rate of equilibration.
    pub learning_rate: f64,
    /// Seed of the noise, the binarisation and the data order.
    pub seed: u64,
    /// Examples per domain on which functionals are measured (the probe).
    pub probe_size: usize,
    /// The split each probe is drawn from.
    pub probe_split: ProbeSplit,
    /// Examples per domain of the probe used for gradients and Hessian-vector products
    /// (all of the probe where `None`).
    pub gradient_probe_size: Option<usize>,
    /// Binarisation of training batches and probes.
    pub binarization: Binarization,
}

/// A system at the checkpoint's equilibrium and the multipliers it was trained at.
pub struct Assembled<B: AutodiffBackend> {
    /// The system (data position t = 0).
    pub system: DeepSystem<B>,
    /// `(lambda, gamma)` of the checkpoint's training run.
    pub start: Multipliers,
}

/// Loads the checkpoint at `path` into a [`DeepSystem`] that equilibrates on the training
/// splits of `source` and `target` (the source again where `target` is `None`) and measures
/// on their probes.
pub fn system_from_checkpoint<B: AutodiffBackend>(
    path: &Path,
    device: &B::Device,
    source: &Domain,
    target: Option<&Domain>,
    spec: &SystemSpec,
) -> Result<Assembled<B>> {
    if !path.is_file() {
        return Err(ModelError::Checkpoint {
            path: path.to_path_buf(),
            reason: "not found: train one first with `fep train-source` (or `just train-source`), or pass --source".into(),
        });
    }
    let (model, header) = checkpoint::load_model::<B>(path, device)?;
    let arch_shape = header.model.architecture.image_shape();
    if source.train.shape() != arch_shape {
        return Err(ModelError::Checkpoint {
            path: path.to_path_buf(),
            reason: format!(
                "holds a {} model for images {:?}, but the data are {:?}",
                header.model.architecture.name(),
                arch_shape,
                source.train.shape()
            ),
        });
    }
    let mut train = header.train.clone();
    train.batch_size = spec.batch_size;
    train.learning_rate = spec.learning_rate;
    train.seed = spec.seed;
    let start = Multipliers::new(train.lambda, train.gamma);
    let trainer = Trainer::new(model, train, device.clone())?;
    let target = target.unwrap_or(source);
    let mut system = DeepSystem::new(
        trainer,
        source.train.clone(),
        target.train.clone(),
        &source.probe(spec.probe_split, spec.probe_size),
        &target.probe(spec.probe_split, spec.probe_size),
        EquilibrationSettings {
            learning_rate: spec.learning_rate,
            binarization: spec.binarization,
        },
    )?;
    system.set_gradient_probe_size(spec.gradient_probe_size);
    Ok(Assembled { system, start })
}
