//! The sums of one weighted optimiser step ([`Trainer::step_weighted`]): the weighted
//! batch means of R, D, C read to the host, and the gradient of the weighted loss
//! accumulated over the parts and their micro-batches.
//!
//! [`Trainer::step_weighted`]: super::Trainer::step_weighted

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor};
use fep_data::ImageBatch;

use crate::model::FepModel;

/// One weighted step in progress: `sum_k w_k J(batch_k)` with
/// `J = mean R + lambda mean D + gamma mean C`, its three terms summed on the host and its
/// gradient accumulated, chunk by chunk.
pub(super) struct StepAccumulation<B: AutodiffBackend> {
    /// Multiplier of D in the loss.
    lambda: f64,
    /// Multiplier of C in the loss.
    gamma: f64,
    /// `sum_k w_k mean R`, `sum_k w_k mean D`, `sum_k w_k mean C` over what was added.
    sums: [f64; 3],
    /// The gradient of the weighted loss over what was added.
    accumulator: GradientsAccumulator<FepModel<B>>,
    /// Whether any chunk was added.
    any: bool,
}

impl<B: AutodiffBackend> StepAccumulation<B> {
    /// An empty step on `J = R + lambda D + gamma C`.
    pub(super) fn new(lambda: f64, gamma: f64) -> Self {
        Self {
            lambda,
            gamma,
            sums: [0.0; 3],
            accumulator: GradientsAccumulator::new(),
            any: false,
        }
    }

    /// Adds `w` times the batch means over the part `batch` of `n > 0` examples, with its
    /// noise `[num_z, n, latent]`, in consecutive chunks of at most `chunk` examples (the
    /// whole part in one pass when `chunk >= n`).
    pub(super) fn add_part(
        &mut self,
        model: &FepModel<B>,
        w: f64,
        batch: ImageBatch<B>,
        noise: Tensor<B, 3>,
        chunk: usize,
    ) {
        let n = batch.indices.len();
        let mut start = 0;
        while start < n {
            let len = chunk.min(n - start);
            let (images, labels, eps) = if len == n {
                (batch.images.clone(), batch.labels.clone(), noise.clone())
            } else {
                (
                    batch.images.clone().narrow(0, start, len),
                    batch.labels.clone().narrow(0, start, len),
                    noise.clone().narrow(1, start, len),
                )
            };
            // This chunk's share of w * mean over the part: w / n * sum over the chunk.
            self.add_chunk(model, images, labels, eps, w / n as f64);
            start += len;
        }
    }

    /// Adds one chunk at `scale`: `scale * sum over the chunk` of R, D and C to the host
    /// sums, and the gradient of `scale * sum (R + lambda D + gamma C)` to the accumulator.
    fn add_chunk(
        &mut self,
        model: &FepModel<B>,
        images: Tensor<B, 4>,
        labels: Tensor<B, 1, Int>,
        eps: Tensor<B, 3>,
        scale: f64,
    ) {
        let f = model.functionals(images, labels, eps);
        let r = f.rate.sum().mul_scalar(scale);
        let d = f.distortion.sum().mul_scalar(scale);
        let c = f.classification.sum().mul_scalar(scale);
        let host: Vec<f64> = Tensor::cat(vec![r.clone(), d.clone(), c.clone()], 0)
            .into_data()
            .iter::<f64>()
            .collect();
        for (acc, v) in self.sums.iter_mut().zip(&host) {
            *acc += v;
        }
        let loss = r + d.mul_scalar(self.lambda) + c.mul_scalar(self.gamma);
        let grads = GradientsParams::from_grads(loss.backward(), model);
        self.accumulator.accumulate(model, grads);
        self.any = true;
    }

    /// The weighted means `[R, D, C]` of the step, or `None` when nothing was added.
    pub(super) fn sums(&self) -> Option<[f64; 3]> {
        self.any.then_some(self.sums)
    }

    /// The gradient of the weighted loss, for the optimiser.
    pub(super) fn grads(mut self) -> GradientsParams {
        self.accumulator.grads()
    }
}
