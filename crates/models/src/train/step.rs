//! The sums of one weighted optimiser step ([`Trainer::step_weighted`]): the weighted
//! batch means of R, D, C read to the host, and the gradient of the weighted loss
//! accumulated over the parts and their micro-batches. The values are read once, after
//! every backward pass of the step is queued (a read before it would make the host wait
//! for each forward pass on an asynchronous device).
//!
//! [`Trainer::step_weighted`]: super::Trainer::step_weighted

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
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
    /// `[scale R, scale D, scale C]` of every chunk added, on the device (without graph).
    pending: Vec<Tensor<<B as AutodiffBackend>::InnerBackend, 1>>,
    /// The gradient of the weighted loss over what was added.
    accumulator: GradientsAccumulator<FepModel<B>>,
}

impl<B: AutodiffBackend> StepAccumulation<B> {
    /// An empty step on `J = R + lambda D + gamma C`.
    pub(super) fn new(lambda: f64, gamma: f64) -> Self {
        Self {
            lambda,
            gamma,
            pending: Vec::new(),
            accumulator: GradientsAccumulator::new(),
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

    /// Adds one chunk at `scale`: `scale * sum over the chunk` of R, D and C to the values
    /// read at the end, and the gradient of `scale * sum (R + lambda D + gamma C)` to the
    /// accumulator.
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
        self.pending
            .push(Tensor::cat(vec![r.clone(), d.clone(), c.clone()], 0).inner());
        let loss = r + d.mul_scalar(self.lambda) + c.mul_scalar(self.gamma);
        let grads = GradientsParams::from_grads(loss.backward(), model);
        self.accumulator.accumulate(model, grads);
    }

    /// The weighted means `[R, D, C]` of the step (summed on the host in f64, chunk by
    /// chunk in the order added) and the gradient of the weighted loss for the optimiser;
    /// `None` when nothing was added.
    pub(super) fn finish(mut self) -> Option<([f64; 3], GradientsParams)> {
        if self.pending.is_empty() {
            return None;
        }
        let grads = self.accumulator.grads();
        let host = read_all(std::mem::take(&mut self.pending));
        let mut sums = [0.0; 3];
        for chunk in host.chunks(3) {
            for (acc, v) in sums.iter_mut().zip(chunk) {
                *acc += v;
            }
        }
        Some((sums, grads))
    }
}

/// The values of `tensors`, concatenated, in one read.
fn read_all<B: Backend>(tensors: Vec<Tensor<B, 1>>) -> Vec<f64> {
    Tensor::cat(tensors, 0).into_data().iter::<f64>().collect()
}
