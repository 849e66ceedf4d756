//! The probe: a fixed batch of examples with fixed latent noise on which a system's
//! functionals are measured ("common random numbers": a deterministic function of the
//! parameters, so that finite differences of its gradients are Hessian-vector products).

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use fep_data::{Binarization, ImageDataset};

use crate::error::Result;
use crate::model::{BatchFunctionals, FepModel};
use crate::noise::PROBE_STREAM;
use crate::train::noise_tensor;

/// A fixed batch with fixed noise on which functionals are measured.
#[derive(Debug, Clone)]
pub struct ProbeSet<B: Backend> {
    pub(crate) images: Tensor<B, 4>,
    pub(crate) labels: Tensor<B, 1, Int>,
    pub(crate) noise: Tensor<B, 3>,
}

impl<B: Backend> ProbeSet<B> {
    /// All of `dataset` as one batch (binarisation of epoch 0) with `num_z` noise draws
    /// keyed by `(seed, stream)`.
    pub fn new(
        dataset: &ImageDataset,
        binarization: Binarization,
        num_z: usize,
        latent: usize,
        seed: u64,
        stream: u64,
        device: &B::Device,
    ) -> Result<Self> {
        let indices: Vec<usize> = (0..dataset.len()).collect();
        let batch = dataset.batch::<B>(&indices, binarization, 0, device)?;
        let noise = noise_tensor(
            seed,
            PROBE_STREAM,
            stream,
            num_z,
            indices.len(),
            latent,
            device,
        );
        Ok(Self {
            images: batch.images,
            labels: batch.labels,
            noise,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.images.dims()[0]
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// R, D, C of every example of the set under its fixed noise.
    pub(crate) fn functionals(&self, model: &FepModel<B>) -> BatchFunctionals<B> {
        model.functionals(self.images.clone(), self.labels.clone(), self.noise.clone())
    }

    /// [`ProbeSet::functionals`] in pieces of at most [`PROBE_CHUNK`] examples (the same
    /// values for a model without batch statistics, e.g. in evaluation mode): a probe of a
    /// whole training split never holds all its activations at once.
    pub(crate) fn functionals_in_chunks(&self, model: &FepModel<B>) -> BatchFunctionals<B> {
        let n = self.len();
        if n <= PROBE_CHUNK {
            return self.functionals(model);
        }
        let parts: Vec<BatchFunctionals<B>> = (0..n)
            .step_by(PROBE_CHUNK)
            .map(|from| {
                let len = PROBE_CHUNK.min(n - from);
                model.functionals(
                    self.images.clone().narrow(0, from, len),
                    self.labels.clone().narrow(0, from, len),
                    self.noise.clone().narrow(1, from, len),
                )
            })
            .collect();
        BatchFunctionals {
            rate: Tensor::cat(parts.iter().map(|p| p.rate.clone()).collect(), 0),
            distortion: Tensor::cat(parts.iter().map(|p| p.distortion.clone()).collect(), 0),
            classification: Tensor::cat(
                parts.iter().map(|p| p.classification.clone()).collect(),
                0,
            ),
            correct: Tensor::cat(parts.iter().map(|p| p.correct.clone()).collect(), 0),
        }
    }
}

/// Examples per forward pass when a probe is measured without gradients.
pub const PROBE_CHUNK: usize = 2048;
