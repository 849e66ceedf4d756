//! Training to equilibrium at (lambda, gamma): Adam on `J = R + lambda D + gamma C`,
//! a learning-rate schedule, optional gradient clipping, and evaluation of R, D, C,
//! accuracy and the negative ELBO on fixed noise.
//!
//! Every random choice is keyed by the seed and a counter: the latent noise of step k by
//! `(seed, k)`, the shuffle and the dynamic binarisation of epoch e by `(seed, e)`. A run
//! is therefore a function of its seed, and a run resumed from an end-of-epoch checkpoint
//! continues exactly as the uninterrupted run would have.

use std::sync::Arc;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use fep_data::{Binarization, ImageBatch, ImageDataset};
use fep_thermo::Functionals;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::model::FepModel;
use crate::noise::{EVAL_STREAM, TRAIN_STREAM, permutation, standard_normal};

mod step;

use step::StepAccumulation;

/// Learning rate as a function of progress.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum LrSchedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Cosine decay from the base rate to `final_fraction` of it over the run.
    Cosine {
        /// Final rate as a fraction of the base rate.
        final_fraction: f64,
    },
    /// Multiply by `factor` every `every_epochs` epochs.
    Step {
        /// Epochs between decays.
        every_epochs: u64,
        /// Decay factor.
        factor: f64,
    },
}

/// Settings of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Multiplier of D.
    pub lambda: f64,
    /// Multiplier of C.
    pub gamma: f64,
    /// Passes over the training data.
    pub epochs: u64,
    /// Examples per optimiser step.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Adam's base learning rate.
    #[serde(default = "default_lr")]
    pub learning_rate: f64,
    /// Learning-rate schedule.
    #[serde(default)]
    pub schedule: LrSchedule,
    /// Clip the gradient's global L2 norm to this value (none if absent).
    #[serde(default)]
    pub grad_clip_norm: Option<f64>,
    /// Latent samples per example for D, C (and a Monte Carlo rate).
    #[serde(default = "default_num_z")]
    pub num_z: usize,
    /// Seed of initialisation, shuffling, binarisation and noise.
    pub seed: u64,
    /// Examples per evaluation batch.
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    /// Split each batch into forward/backward passes of at most this many examples and
    /// accumulate their gradients before the one Adam step: the same loss and gradient
    /// (up to summation order) with a smaller working set; the CPU kernels run faster at
    /// 64 than at 128 (docs/PERFORMANCE.md). Changes BatchNorm statistics, so leave it
    /// unset for `mnist-paper`.
    #[serde(default)]
    pub micro_batch: Option<usize>,
}

fn default_batch() -> usize {
    64
}
fn default_lr() -> f64 {
    1e-3
}
fn default_num_z() -> usize {
    1
}
fn default_eval_batch() -> usize {
    500
}

impl TrainConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::InvalidConfig(m));
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return bad(format!(
                "lambda must be finite and >= 0, got {}",
                self.lambda
            ));
        }
        if !(self.gamma.is_finite() && self.gamma >= 0.0) {
            return bad(format!("gamma must be finite and >= 0, got {}", self.gamma));
        }
        if self.batch_size == 0 || self.eval_batch_size == 0 {
            return bad("batch sizes must be positive".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning_rate must be positive, got {}",
                self.learning_rate
            ));
        }
        if self.num_z == 0 || self.num_z > 256 {
            return bad(format!("num_z must be in 1..=256, got {}", self.num_z));
        }
        if let Some(c) = self.grad_clip_norm
            && !(c.is_finite() && c > 0.0)
        {
            return bad(format!("grad_clip_norm must be positive, got {c}"));
        }
        match self.schedule {
            LrSchedule::Cosine { final_fraction } if !(0.0..=1.0).contains(&final_fraction) => bad(
                format!("cosine final_fraction must be in [0, 1], got {final_fraction}"),
            ),
            LrSchedule::Step {
                every_epochs: 0, ..
            } => bad("step schedule needs every_epochs >= 1".into()),
            _ => Ok(()),
        }
    }

    /// The learning rate of a step in `epoch` at fraction `progress` of the run.
    pub fn learning_rate_at(&self, epoch: u64, progress: f64) -> f64 {
        match self.schedule {
            LrSchedule::Constant => self.learning_rate,
            LrSchedule::Cosine { final_fraction } => {
                let c = 0.5 * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos());
                self.learning_rate * (final_fraction + (1.0 - final_fraction) * c)
            }
            LrSchedule::Step {
                every_epochs,
                factor,
            } => self.learning_rate * factor.powi((epoch / every_epochs) as i32),
        }
    }

    /// Adam with the configured clipping.
    pub fn adam(&self) -> AdamConfig {
        AdamConfig::new().with_grad_clipping(
            self.grad_clip_norm
                .map(|c| GradientClippingConfig::Norm(c as f32)),
        )
    }
}

/// A source of training batches indexed by epoch and position.
pub trait TrainingData {
    /// Examples per epoch.
    fn len(&self) -> usize;
    /// Whether there are no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The batch of positions `positions` (of `0..len`) of epoch `epoch`.
    fn batch<B: Backend>(
        &self,
        epoch: u64,
        positions: &[usize],
        device: &B::Device,
    ) -> Result<ImageBatch<B>>;
}

/// A labelled image set, shuffled each epoch by `(seed, epoch)`.
#[derive(Debug, Clone)]
pub struct ShuffledImages {
    /// The examples.
    pub dataset: Arc<ImageDataset>,
    /// Binarisation applied per epoch.
    pub binarization: Binarization,
    /// Shuffle seed.
    pub seed: u64,
}

impl TrainingData for ShuffledImages {
    fn len(&self) -> usize {
        self.dataset.len()
    }

    fn batch<B: Backend>(
        &self,
        epoch: u64,
        positions: &[usize],
        device: &B::Device,
    ) -> Result<ImageBatch<B>> {
        let order = permutation(self.seed, epoch, self.dataset.len());
        let indices: Vec<usize> = positions.iter().map(|&p| order[p]).collect();
        Ok(self
            .dataset
            .batch(&indices, self.binarization, epoch, device)?)
    }
}

/// R, D, C, accuracy and `-ELBO = R + D` averaged over a dataset (nats per example).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// R, D, C averaged over the dataset.
    #[serde(flatten)]
    pub functionals: Functionals,
    /// Fraction of examples whose label the classifier at the posterior mean predicts.
    pub accuracy: f64,
    /// `R + D`.
    pub neg_elbo: f64,
    /// Number of examples averaged.
    pub examples: usize,
}

impl Metrics {
    /// `t`-weighted combination `(1 - t) a + t b` (accuracy and counts too).
    pub fn mix(a: &Metrics, b: &Metrics, t: f64) -> Metrics {
        let m = |x: f64, y: f64| (1.0 - t) * x + t * y;
        let (fa, fb) = (&a.functionals, &b.functionals);
        Metrics {
            functionals: Functionals {
                rate: m(fa.rate, fb.rate),
                distortion: m(fa.distortion, fb.distortion),
                classification: m(fa.classification, fb.classification),
            },
            accuracy: m(a.accuracy, b.accuracy),
            neg_elbo: m(a.neg_elbo, b.neg_elbo),
            examples: a.examples + b.examples,
        }
    }

    /// `J = R + lambda D + gamma C`.
    pub fn lagrangian(&self, lambda: f64, gamma: f64) -> f64 {
        self.functionals
            .lagrangian(fep_thermo::Multipliers::new(lambda, gamma))
    }
}

/// Sums of per-example functionals, read to the host once per batch.
#[derive(Default)]
struct Accumulator {
    rate: f64,
    distortion: f64,
    classification: f64,
    correct: f64,
    n: usize,
}

impl Accumulator {
    fn add<B: Backend>(&mut self, f: &crate::model::BatchFunctionals<B>) {
        let n = f.rate.dims()[0];
        let sums = Tensor::cat(
            vec![
                f.rate.clone().sum(),
                f.distortion.clone().sum(),
                f.classification.clone().sum(),
                f.correct.clone().float().sum(),
            ],
            0,
        )
        .into_data();
        let v: Vec<f64> = sums.iter::<f64>().collect();
        self.rate += v[0];
        self.distortion += v[1];
        self.classification += v[2];
        self.correct += v[3];
        self.n += n;
    }

    fn finish(&self) -> Metrics {
        let n = self.n.max(1) as f64;
        let (r, d) = (self.rate / n, self.distortion / n);
        Metrics {
            functionals: Functionals {
                rate: r,
                distortion: d,
                classification: self.classification / n,
            },
            accuracy: self.correct / n,
            neg_elbo: r + d,
            examples: self.n,
        }
    }
}

/// Noise tensor `[num_z, n, latent]` for key `(seed, stream, counter)`.
pub fn noise_tensor<B: Backend>(
    seed: u64,
    stream: u64,
    counter: u64,
    num_z: usize,
    n: usize,
    latent: usize,
    device: &B::Device,
) -> Tensor<B, 3> {
    let values = standard_normal(seed, stream, counter, num_z * n * latent);
    Tensor::from_data(TensorData::new(values, [num_z, n, latent]), device)
}

/// Evaluates a model on every example of `dataset`, in order, with the fixed evaluation
/// noise of `seed` and the binarisation of epoch 0: a deterministic function of the
/// parameters.
pub fn evaluate<B: Backend>(
    model: &FepModel<B>,
    dataset: &ImageDataset,
    binarization: Binarization,
    num_z: usize,
    batch_size: usize,
    seed: u64,
    device: &B::Device,
) -> Result<Metrics> {
    let latent = model.config().latent_dim;
    let mut acc = Accumulator::default();
    let indices: Vec<usize> = (0..dataset.len()).collect();
    for (b, chunk) in indices.chunks(batch_size.max(1)).enumerate() {
        let batch: ImageBatch<B> = dataset.batch(chunk, binarization, 0, device)?;
        let noise = noise_tensor(
            seed,
            EVAL_STREAM,
            b as u64,
            num_z,
            chunk.len(),
            latent,
            device,
        );
        let f = model.functionals(batch.images, batch.labels, noise);
        acc.add(&f);
    }
    Ok(acc.finish())
}

/// What one optimiser step saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Steps taken so far (including this one).
    pub step: u64,
    /// Epoch of the step.
    pub epoch: u64,
    /// Batch mean of J before the update.
    pub loss: f64,
    /// Batch means of R, D, C before the update.
    pub functionals: Functionals,
    /// Learning rate used.
    pub learning_rate: f64,
}

/// Position of a run: completed optimiser steps and epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps taken.
    pub step: u64,
    /// Completed epochs.
    pub epoch: u64,
}

/// The Adam optimiser of a model.
pub type ModelOptimizer<B> = OptimizerAdaptor<Adam, FepModel<B>, B>;

/// A model with its optimiser and position: everything a checkpoint holds.
pub struct Trainer<B: AutodiffBackend> {
    /// The model being trained (taken out only while the optimiser consumes it).
    model: Option<FepModel<B>>,
    /// Its Adam state.
    pub optimizer: ModelOptimizer<B>,
    /// Steps and epochs done.
    pub state: TrainState,
    /// The run's settings.
    pub config: TrainConfig,
    /// Device of the model.
    pub device: B::Device,
}

impl<B: AutodiffBackend> Trainer<B> {
    /// A trainer around `model` with fresh Adam state.
    pub fn new(model: FepModel<B>, config: TrainConfig, device: B::Device) -> Result<Self> {
        config.validate()?;
        let optimizer = config.adam().init();
        Ok(Self {
            model: Some(model),
            optimizer,
            state: TrainState::default(),
            config,
            device,
        })
    }

    /// The model.
    pub fn model(&self) -> &FepModel<B> {
        self.model
            .as_ref()
            .expect("the model is only absent inside an optimiser step")
    }

    /// Replace the model (the optimiser state is kept; parameter ids must match).
    pub fn set_model(&mut self, model: FepModel<B>) {
        self.model = Some(model);
    }

    /// Optimiser steps per epoch of `data` (incomplete last batches are dropped).
    pub fn steps_per_epoch(&self, data: &impl TrainingData) -> usize {
        data.len() / self.config.batch_size
    }

    /// One Adam step on `J = R + lambda D + gamma C` for `batch`, with the training noise
    /// of the current step. Fails, without updating, if the loss is not finite.
    pub fn step(
        &mut self,
        batch: ImageBatch<B>,
        lambda: f64,
        gamma: f64,
        learning_rate: f64,
    ) -> Result<StepReport> {
        self.step_weighted(vec![(1.0, batch)], lambda, gamma, learning_rate)
    }

    /// One Adam step on `sum_k w_k J(batch_k)`: for the mixture `p_t` the weights
    /// `(1 - t, t)` on a source and a target batch give an unbiased estimate of `J` on
    /// `p_t` with both domains in every step (as in the authors' code). Part k of step s
    /// draws its noise from the key `(seed, 4 s + k)`.
    pub fn step_weighted(
        &mut self,
        parts: Vec<(f64, ImageBatch<B>)>,
        lambda: f64,
        gamma: f64,
        learning_rate: f64,
    ) -> Result<StepReport> {
        let latent = self.model().config().latent_dim;
        let micro = self.config.micro_batch.filter(|&m| m > 0);
        let mut step = StepAccumulation::new(lambda, gamma);
        for (k, (w, batch)) in parts.into_iter().enumerate() {
            let n = batch.indices.len();
            if w == 0.0 || n == 0 {
                continue;
            }
            let noise = noise_tensor(
                self.config.seed,
                TRAIN_STREAM,
                4 * self.state.step + k as u64,
                self.config.num_z,
                n,
                latent,
                &self.device,
            );
            step.add_part(self.model(), w, batch, noise, micro.unwrap_or(n).min(n));
        }
        let Some(([rate, distortion, classification], grads)) = step.finish() else {
            return Err(ModelError::InvalidConfig(
                "a training step needs at least one batch with positive weight".into(),
            ));
        };
        let j = rate + lambda * distortion + gamma * classification;
        self.ensure_finite([
            ("rate", rate),
            ("distortion", distortion),
            ("classification loss", classification),
            ("loss", j),
        ])?;
        let model = self.model.take().expect("model present");
        self.model = Some(self.optimizer.step(learning_rate, model, grads));
        self.state.step += 1;
        Ok(StepReport {
            step: self.state.step,
            epoch: self.state.epoch,
            loss: j,
            functionals: Functionals {
                rate,
                distortion,
                classification,
            },
            learning_rate,
        })
    }

    /// [`ModelError::NonFinite`] at the current step and epoch for the first of the named
    /// `values` that is not finite; `Ok` when all are.
    fn ensure_finite(&self, values: [(&str, f64); 4]) -> Result<()> {
        for (what, value) in values {
            if !value.is_finite() {
                return Err(ModelError::NonFinite {
                    step: self.state.step,
                    epoch: self.state.epoch,
                    what: what.into(),
                    value,
                });
            }
        }
        Ok(())
    }

    /// One pass over `data` at the run's (lambda, gamma) and schedule; `total_epochs` is
    /// the length of the run for the schedule. Returns the mean batch J of the epoch.
    pub fn train_epoch(
        &mut self,
        data: &impl TrainingData,
        total_epochs: u64,
        mut on_step: impl FnMut(&StepReport),
    ) -> Result<f64> {
        let (lambda, gamma) = (self.config.lambda, self.config.gamma);
        let steps = self.steps_per_epoch(data);
        if steps == 0 {
            return Err(ModelError::InvalidConfig(format!(
                "the training set has {} examples, fewer than one batch of {}",
                data.len(),
                self.config.batch_size
            )));
        }
        let epoch = self.state.epoch;
        let bs = self.config.batch_size;
        let mut total = 0.0;
        for k in 0..steps {
            let positions: Vec<usize> = (k * bs..(k + 1) * bs).collect();
            let batch = data.batch::<B>(epoch, &positions, &self.device)?;
            let progress = (epoch as f64 + k as f64 / steps as f64) / total_epochs.max(1) as f64;
            let lr = self.config.learning_rate_at(epoch, progress);
            let report = self.step(batch, lambda, gamma, lr)?;
            total += report.loss;
            on_step(&report);
        }
        self.state.epoch += 1;
        Ok(total / steps as f64)
    }

    /// Evaluation of the current parameters (no gradient tracking).
    pub fn evaluate(&self, dataset: &ImageDataset, binarization: Binarization) -> Result<Metrics> {
        let inner = self.model().valid();
        evaluate(
            &inner,
            dataset,
            binarization,
            self.config.num_z,
            self.config.eval_batch_size,
            self.config.seed,
            &self.device,
        )
    }
}
