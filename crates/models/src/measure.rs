//! Functionals measured apart from training: every example of a dataset, K independent
//! draws of the latent noise (and of the binarisation, where it is stochastic) per
//! example, with standard errors.
//!
//! With `v_ik` the (R, D, C) of example `i` under draw `k` (n examples, K draws),
//! `m_i = mean_k v_ik` and `m = mean_i m_i` the reported functionals:
//!
//! * `covariance = sum_i (m_i - m)(m_i - m)' / ((n - 1) n)`: the covariance of `m` as an
//!   estimate of the population functionals (a fresh dataset and fresh noise); the
//!   standard errors are the square roots of its diagonal;
//! * `noise_covariance = sum_i W_i / (K n^2)` with `W_i` the within-example covariance of
//!   the K draws: the covariance of `m` as an estimate of the functionals *of this dataset*
//!   (only the noise redrawn), which is what compares two models on the same data.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use fep_data::{Binarization, ImageDataset};
use fep_thermo::Functionals;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::model::FepModel;
use crate::noise::MEASURE_STREAM;
use crate::train::noise_tensor;

/// Standard errors of the measured means.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct StandardErrors {
    /// Of R (nats).
    pub rate: f64,
    /// Of D (nats).
    pub distortion: f64,
    /// Of C (nats).
    pub classification: f64,
}

/// Functionals of a model on a dataset with their errors (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Mean R, D, C over examples and draws (nats per example).
    #[serde(flatten)]
    pub functionals: Functionals,
    /// `R + D`.
    pub neg_elbo: f64,
    /// Fraction of (example, binarisation) pairs whose label the classifier at the
    /// posterior mean predicts.
    pub accuracy: f64,
    /// Examples measured.
    pub examples: usize,
    /// Draws of the noise per example (K).
    pub samples: usize,
    /// Seed of the draws.
    pub seed: u64,
    /// Standard errors (fresh data and fresh noise).
    pub standard_errors: StandardErrors,
    /// Covariance of the means of (R, D, C), fresh data and fresh noise.
    pub covariance: [[f64; 3]; 3],
    /// Covariance of the means of (R, D, C), this data and fresh noise.
    pub noise_covariance: [[f64; 3]; 3],
}

/// Running sums of the per-example statistics.
#[derive(Default)]
struct Moments {
    n: usize,
    sum: [f64; 3],
    outer: [[f64; 3]; 3],
    within: [[f64; 3]; 3],
    correct: f64,
}

impl Moments {
    /// Adds the draws `v[k][i]` of a batch's examples.
    fn add(&mut self, draws: &[Vec<[f64; 3]>]) {
        let k = draws.len();
        let Some(first) = draws.first() else {
            return;
        };
        for i in 0..first.len() {
            let mut mean = [0.0; 3];
            for d in draws {
                for (q, m) in mean.iter_mut().enumerate() {
                    *m += d[i][q] / k as f64;
                }
            }
            for u in 0..3 {
                self.sum[u] += mean[u];
                for v in 0..3 {
                    self.outer[u][v] += mean[u] * mean[v];
                    if k > 1 {
                        let w: f64 = draws
                            .iter()
                            .map(|d| (d[i][u] - mean[u]) * (d[i][v] - mean[v]))
                            .sum();
                        self.within[u][v] += w / (k - 1) as f64;
                    }
                }
            }
        }
        self.n += first.len();
    }
}

fn host(t: Tensor<impl Backend, 1>) -> Result<Vec<f64>> {
    t.into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .map_err(|e| ModelError::Measurement(format!("reading functionals back: {e:?}")))
}

/// One draw of one batch as [`measure_with`] measured it.
pub struct MeasuredBatch<'a, B: Backend> {
    /// The draw (0-based, of `samples`).
    pub draw: usize,
    /// Indices in the dataset of the batch's examples.
    pub indices: &'a [usize],
    /// The images fed to the model, `[n, C, H, W]` (binarised for this draw).
    pub images: &'a Tensor<B, 4>,
    /// The labels `[n]`.
    pub labels: &'a Tensor<B, 1, Int>,
    /// The standard normal noise of the latent sample, `[1, n, L]`.
    pub noise: &'a Tensor<B, 3>,
    /// Per example: R, D, C (nats) under this draw.
    pub values: &'a [[f64; 3]],
    /// Per example: 1 where the classifier at the posterior mean predicts the label, else 0.
    pub correct: &'a [f64],
}

/// Measures a model on every example of `dataset` with `samples` independent draws per
/// example (draw k: noise keyed by `(seed, k)`, binarisation of epoch k), in batches.
pub fn measure<B: Backend>(
    model: &FepModel<B>,
    dataset: &ImageDataset,
    binarization: Binarization,
    samples: usize,
    batch_size: usize,
    seed: u64,
    device: &B::Device,
) -> Result<Measurement> {
    let mut ignore = |_: MeasuredBatch<'_, B>| Ok(());
    measure_with(
        model,
        dataset,
        binarization,
        samples,
        batch_size,
        seed,
        device,
        &mut ignore,
    )
}

/// [`measure`], showing `observe` every batch of every draw: its inputs, its noise and the
/// per-example values (to record exactly what was measured).
#[allow(clippy::too_many_arguments)]
pub fn measure_with<B: Backend>(
    model: &FepModel<B>,
    dataset: &ImageDataset,
    binarization: Binarization,
    samples: usize,
    batch_size: usize,
    seed: u64,
    device: &B::Device,
    observe: &mut dyn FnMut(MeasuredBatch<'_, B>) -> Result<()>,
) -> Result<Measurement> {
    if samples == 0 {
        return Err(ModelError::Measurement(
            "needs at least one noise draw per example (samples >= 1)".into(),
        ));
    }
    if dataset.is_empty() {
        return Err(ModelError::Measurement("the dataset is empty".into()));
    }
    let latent = model.config().latent_dim;
    let indices: Vec<usize> = (0..dataset.len()).collect();
    let chunks: Vec<&[usize]> = indices.chunks(batch_size.max(1)).collect();
    let mut moments = Moments::default();
    for (b, chunk) in chunks.iter().enumerate() {
        let mut draws = Vec::with_capacity(samples);
        for k in 0..samples {
            let batch = dataset.batch::<B>(chunk, binarization, k as u64, device)?;
            let counter = (k * chunks.len() + b) as u64;
            let noise = noise_tensor(
                seed,
                MEASURE_STREAM,
                counter,
                1,
                chunk.len(),
                latent,
                device,
            );
            let f = model.functionals(batch.images.clone(), batch.labels.clone(), noise.clone());
            let (r, d, c) = (host(f.rate)?, host(f.distortion)?, host(f.classification)?);
            let correct = host(f.correct.float())?;
            moments.correct += correct.iter().sum::<f64>() / samples as f64;
            let values: Vec<[f64; 3]> = (0..r.len()).map(|i| [r[i], d[i], c[i]]).collect();
            observe(MeasuredBatch {
                draw: k,
                indices: chunk,
                images: &batch.images,
                labels: &batch.labels,
                noise: &noise,
                values: &values,
                correct: &correct,
            })?;
            draws.push(values);
        }
        moments.add(&draws);
    }
    Ok(moments.finish(samples, seed))
}

impl Moments {
    /// The measurement of the accumulated draws (module docs).
    fn finish(self, samples: usize, seed: u64) -> Measurement {
        let n = self.n as f64;
        let mean = self.sum.map(|s| s / n);
        let mut covariance = [[0.0; 3]; 3];
        let mut noise_covariance = [[0.0; 3]; 3];
        for u in 0..3 {
            for v in 0..3 {
                let spread = (self.outer[u][v] - n * mean[u] * mean[v]) / (n - 1.0).max(1.0);
                covariance[u][v] = spread / n;
                noise_covariance[u][v] = if samples > 1 {
                    self.within[u][v] / (samples as f64 * n * n)
                } else {
                    // One draw cannot separate noise from data: the bound with both.
                    spread / n
                };
            }
        }
        let functionals = Functionals {
            rate: mean[0],
            distortion: mean[1],
            classification: mean[2],
        };
        Measurement {
            functionals,
            neg_elbo: mean[0] + mean[1],
            accuracy: self.correct / n,
            examples: self.n,
            samples,
            seed,
            standard_errors: StandardErrors {
                rate: covariance[0][0].max(0.0).sqrt(),
                distortion: covariance[1][1].max(0.0).sqrt(),
                classification: covariance[2][2].max(0.0).sqrt(),
            },
            covariance,
            noise_covariance,
        }
    }
}
