//! A deep model in contact with data: the [`ThermodynamicSystem`] of `fep-thermo`.
//!
//! * Functionals and gradients are measured on fixed *probe sets* (held-out examples of
//!   the source and of the target, fixed binarisation, fixed latent noise): deterministic
//!   functions of theta, so finite differences of gradients are Hessian-vector products.
//!   On the data path `p_t = (1 - t) p_0 + t p_1` every functional is the exact mixture
//!   `G_t = (1 - t) G_0 + t G_1` of the two probe values (expectations are linear in p).
//! * Equilibration takes Adam steps on `(1 - t) J(source batch) + t J(target batch)` (an
//!   unbiased estimate of J on `p_t` with both domains in every step, as in the authors'
//!   code) at a fixed learning rate, and returns the Polyak-Ruppert average of the last half
//!   of the iterates (the last quarter): the mean of SGD's stationary distribution, a far less noisy estimate
//!   of the equilibrium than the last iterate.

use std::sync::Arc;

use burn::module::AutodiffModule;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use fep_data::{Binarization, ImageDataset};
use fep_thermo::burn_params::{
    flatten_gradients, flatten_params, flatten_params_on_device, load_params,
};
use fep_thermo::{
    Equilibrium, EquilibriumReport, Functionals, Multipliers, StationarityMonitor,
    StationarityTest, StoppingRule, ThermoError, ThermodynamicSystem, Weights, equilibrate_by_rule,
};

use crate::error::{ModelError, Result};
use crate::model::BatchFunctionals;
pub use crate::probe::ProbeSet;
use crate::train::{Metrics, ShuffledImages, StepReport, Trainer, TrainingData, evaluate};

/// Settings of the equilibration of a [`DeepSystem`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EquilibrationSettings {
    /// Adam learning rate of equilibration steps.
    pub learning_rate: f64,
    /// Binarisation of training batches.
    pub binarization: Binarization,
}

/// Counters of the work a system has done (for compute budgets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct WorkCounters {
    /// Optimiser steps taken by `equilibrate`.
    pub optimizer_steps: u64,
    /// Probe gradients evaluated (each is one forward and backward over the probe).
    pub probe_gradients: u64,
}

/// What a [`DeepSystem`] holds beyond its trainer (model, Adam state, step count) and its
/// fixed data: with both restored ([`DeepSystem::restore`]) the system continues exactly.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SystemState {
    /// The data position t of p_t.
    pub t: f64,
    /// Batches drawn so far from the source and the target training streams.
    pub cursors: [u64; 2],
    /// The work done so far.
    pub work: WorkCounters,
    /// The equilibration learning rate.
    pub learning_rate: f64,
}

/// A [`FepModel`] with its optimiser, training data and probe sets.
pub struct DeepSystem<B: AutodiffBackend> {
    trainer: Trainer<B>,
    source_probe: ProbeSet<B>,
    target_probe: ProbeSet<B>,
    source_data: ShuffledImages,
    target_data: ShuffledImages,
    settings: EquilibrationSettings,
    t: f64,
    cursors: [u64; 2],
    work: WorkCounters,
    gradient_probe_size: Option<usize>,
}

fn thermo_err(e: crate::error::ModelError) -> ThermoError {
    ThermoError::Model(Box::new(e))
}

impl<B: AutodiffBackend> DeepSystem<B> {
    /// A system around a trainer (model, Adam state, seed, batch size, `num_z`).
    /// `source_train`/`target_train` feed equilibration; the probes measure functionals.
    /// Without a target, pass the source twice (t then stays meaningful but inert).
    pub fn new(
        trainer: Trainer<B>,
        source_train: Arc<ImageDataset>,
        target_train: Arc<ImageDataset>,
        source_probe: &ImageDataset,
        target_probe: &ImageDataset,
        settings: EquilibrationSettings,
    ) -> Result<Self> {
        let seed = trainer.config.seed;
        let num_z = trainer.config.num_z;
        let latent = trainer.model().config().latent_dim;
        let device = trainer.device.clone();
        if source_train.shape() != target_train.shape() {
            return Err(crate::error::ModelError::InvalidConfig(format!(
                "source images {:?} and target images {:?} differ in shape",
                source_train.shape(),
                target_train.shape()
            )));
        }
        let shuffled = |dataset: Arc<ImageDataset>, salt: u64| ShuffledImages {
            dataset,
            binarization: settings.binarization,
            seed: seed ^ salt,
        };
        let source_probe = ProbeSet::new(
            source_probe,
            settings.binarization,
            num_z,
            latent,
            seed,
            0,
            &device,
        )?;
        let target_probe = ProbeSet::new(
            target_probe,
            settings.binarization,
            num_z,
            latent,
            seed,
            1,
            &device,
        )?;
        Ok(Self {
            gradient_probe_size: None,
            trainer,
            source_probe,
            target_probe,
            source_data: shuffled(source_train, 0),
            target_data: shuffled(target_train, 0x7A46),
            settings,
            t: 0.0,
            cursors: [0, 0],
            work: WorkCounters::default(),
        })
    }

    /// The trainer (model and optimiser).
    pub fn trainer(&self) -> &Trainer<B> {
        &self.trainer
    }

    /// Gradients (and so Hessian-vector products, the predictor's and the corrector's
    /// Newton steps) use only the first `size` examples of each probe (a subsampled
    /// Hessian, as in Hessian-free optimisation); functionals, which the corrector tests
    /// its constraint on, use the rest of the probe, disjoint from them. `None` uses the
    /// whole probe for both.
    pub fn set_gradient_probe_size(&mut self, size: Option<usize>) {
        self.gradient_probe_size = size;
    }

    /// Start a fresh Adam state (as the paper's code does before each training phase).
    pub fn reset_optimizer(&mut self) {
        self.trainer.optimizer = self.trainer.config.adam().init();
    }

    /// The work done so far.
    pub fn work(&self) -> WorkCounters {
        self.work
    }

    /// The state beyond the trainer (see [`SystemState`]).
    pub fn state(&self) -> SystemState {
        SystemState {
            t: self.t,
            cursors: self.cursors,
            work: self.work,
            learning_rate: self.settings.learning_rate,
        }
    }

    /// Puts back a trainer and a state saved from a system built the same way (same data,
    /// probes and settings), for example from a checkpoint of a killed run.
    pub fn restore(&mut self, trainer: Trainer<B>, state: SystemState) -> Result<()> {
        fep_thermo::check_data_position(state.t)
            .map_err(|e| crate::error::ModelError::InvalidConfig(e.to_string()))?;
        self.trainer = trainer;
        self.t = state.t;
        self.cursors = state.cursors;
        self.work = state.work;
        self.settings.learning_rate = state.learning_rate;
        Ok(())
    }

    /// Metrics of the current model on a dataset (fixed evaluation noise).
    pub fn evaluate(&self, dataset: &ImageDataset) -> Result<Metrics> {
        let cfg = &self.trainer.config;
        evaluate(
            &self.trainer.model().valid(),
            dataset,
            self.settings.binarization,
            cfg.num_z,
            cfg.eval_batch_size,
            cfg.seed,
            &self.trainer.device,
        )
    }

    /// The current model measured on every example of `dataset` with `samples` fresh
    /// noise draws per example, with standard errors ([`crate::measure`]).
    pub fn measure(
        &self,
        dataset: &ImageDataset,
        samples: usize,
        seed: u64,
    ) -> Result<crate::measure::Measurement> {
        self.measure_with(dataset, samples, seed, &mut |_| Ok(()))
    }

    /// [`DeepSystem::measure`], with C of every example of `dataset` (its mean over the
    /// draws, in dataset order): what a later measurement on the same examples and draws
    /// is paired with.
    pub fn measure_per_example(
        &self,
        dataset: &ImageDataset,
        samples: usize,
        seed: u64,
    ) -> Result<(crate::measure::Measurement, Vec<f64>)> {
        let mut per_example = vec![0.0; dataset.len()];
        let measurement = self.measure_with(dataset, samples, seed, &mut |b| {
            for (&i, v) in b.indices.iter().zip(b.values) {
                per_example[i] += v[2] / samples as f64;
            }
            Ok(())
        })?;
        Ok((measurement, per_example))
    }

    /// [`crate::measure::measure_with`] on the current model with the system's
    /// binarisation, evaluation batch size and device.
    fn measure_with(
        &self,
        dataset: &ImageDataset,
        samples: usize,
        seed: u64,
        observe: &mut dyn FnMut(crate::measure::MeasuredBatch<'_, B::InnerBackend>) -> Result<()>,
    ) -> Result<crate::measure::Measurement> {
        crate::measure::measure_with(
            &self.trainer.model().valid(),
            dataset,
            self.settings.binarization,
            samples,
            self.trainer.config.eval_batch_size,
            seed,
            &self.trainer.device,
            observe,
        )
    }

    /// The standard error of C on the probe of p_t as an estimate of C on fresh examples:
    /// `sqrt(sum_d w_d^2 var_d(c_i) / n_d)` over each domain's functional probe (weights
    /// `w = (1 - t, t)`; each example's C is its mean over the probe's fixed draws, which
    /// count as part of the example).
    pub fn probe_classification_se(&self) -> Result<f64> {
        let (source, target) = self.probe_classification_per_example()?;
        let mut variance = 0.0;
        for (w, c) in [(1.0 - self.t, Some(source)), (self.t, target)] {
            let Some(c) = c.filter(|_| w > 0.0) else {
                continue;
            };
            let n = c.len() as f64;
            if c.len() < 2 {
                return Err(ModelError::Measurement(format!(
                    "a probe of {} examples has no standard error",
                    c.len()
                )));
            }
            let mean = c.iter().sum::<f64>() / n;
            let var = c.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
            variance += w * w * var / n;
        }
        Ok(variance.sqrt())
    }

    /// C of every example of the source's functional probe and, where t > 0, of the
    /// target's (each the mean over the probe's fixed draws, in probe order): what a later
    /// measurement on the same probe is paired with.
    pub fn probe_classification_per_example(&self) -> Result<(Vec<f64>, Option<Vec<f64>>)> {
        let model = self.trainer.model().valid();
        let per_example = |probe: &ProbeSet<B>| -> Vec<f64> {
            self.functional_part(probe)
                .functionals_in_chunks(&model)
                .classification
                .into_data()
                .iter::<f64>()
                .collect()
        };
        let target = (self.t > 0.0).then(|| per_example(&self.target_probe));
        Ok((per_example(&self.source_probe), target))
    }

    /// The examples of `probe` on which functionals are measured: those after the gradient
    /// probe's (module docs), on the inner backend.
    fn functional_part(&self, probe: &ProbeSet<B>) -> ProbeSet<B::InnerBackend> {
        let (from, len) = match self.gradient_probe_size {
            Some(k) if k < probe.len() => (k, probe.len() - k),
            _ => (0, probe.len()),
        };
        ProbeSet::<B::InnerBackend> {
            images: probe.images.clone().inner().narrow(0, from, len),
            labels: probe.labels.clone().inner().narrow(0, from, len),
            noise: probe.noise.clone().inner().narrow(1, from, len),
        }
    }

    fn weights_by_domain(&self) -> [(f64, &ProbeSet<B>); 2] {
        [
            (1.0 - self.t, &self.source_probe),
            (self.t, &self.target_probe),
        ]
    }

    /// The next batch of one domain (0 source, 1 target), walking its shuffled epochs.
    fn next_batch(&mut self, domain: usize) -> Result<fep_data::ImageBatch<B>> {
        let bs = self.trainer.config.batch_size;
        let data = if domain == 0 {
            &self.source_data
        } else {
            &self.target_data
        };
        let len = data.len() as u64;
        let take = (bs as u64).min(len);
        let cursor = &mut self.cursors[domain];
        if *cursor % len + take > len {
            *cursor += len - *cursor % len;
        }
        let epoch = *cursor / len;
        let start = (*cursor % len) as usize;
        let positions: Vec<usize> = (start..start + take as usize).collect();
        *cursor += take;
        data.batch::<B>(epoch, &positions, &self.trainer.device)
    }

    /// Take `steps` Adam steps on `(1 - t) J(source batch) + t J(target batch)` at `m`.
    pub fn train_steps(&mut self, m: Multipliers, steps: usize) -> Result<()> {
        self.train_steps_averaged(m, steps, 0)
    }

    /// One Adam step on `(1 - t) J(source batch) + t J(target batch)` at `m`; returns the
    /// minibatch functionals it saw.
    fn train_step(&mut self, m: Multipliers) -> Result<StepReport> {
        let mut parts = Vec::with_capacity(2);
        if self.t < 1.0 {
            parts.push((1.0 - self.t, self.next_batch(0)?));
        }
        if self.t > 0.0 {
            parts.push((self.t, self.next_batch(1)?));
        }
        let report =
            self.trainer
                .step_weighted(parts, m.lambda, m.gamma, self.settings.learning_rate)?;
        self.work.optimizer_steps += 1;
        Ok(report)
    }

    /// As [`DeepSystem::train_steps`], then set the parameters to the mean of the last
    /// `average_last` iterates (none if 0).
    pub fn train_steps_averaged(
        &mut self,
        m: Multipliers,
        steps: usize,
        average_last: usize,
    ) -> Result<()> {
        let mut average = IterateAverage::default();
        for k in 0..steps {
            self.train_step(m)?;
            if average_last > 0 && k + average_last >= steps {
                average.add(self.params_on_device());
            }
        }
        self.load_average(average)
    }

    /// The parameters as one vector on the device, without gradient tracking.
    fn params_on_device(&self) -> Tensor<B::InnerBackend, 1> {
        flatten_params_on_device(&self.trainer.model().valid())
    }

    /// Sets the parameters to an average of iterates (of at least two).
    fn load_average(&mut self, average: IterateAverage<B::InnerBackend>) -> Result<()> {
        if let Some(mean) = average.mean() {
            let model = load_params(self.trainer.model().clone(), &mean)?;
            self.trainer.set_model(model);
        }
        Ok(())
    }

    /// Adam steps until the stationarity test of `test` holds on the minibatch functionals
    /// (or `max_steps` are spent); the parameters are then the mean of the last window's
    /// iterates (Polyak-Ruppert averaging), and R, D, C are measured on the probes.
    pub fn equilibrate_stationary(
        &mut self,
        m: Multipliers,
        test: &StationarityTest,
    ) -> Result<Equilibrium> {
        if test.window < 2 || test.consecutive == 0 || test.max_steps < test.window {
            return Err(ModelError::InvalidConfig(format!(
                "the stationarity test needs window >= 2, consecutive >= 1 and max_steps >= window, got {test:?}"
            )));
        }
        let mut monitor = StationarityMonitor::default();
        let (mut window, mut last_window) = (IterateAverage::default(), None);
        let mut met = false;
        while monitor.steps() < test.max_steps {
            let report = self.train_step(m)?;
            window.add(self.params_on_device());
            met = monitor.push(test, report.functionals);
            if monitor.steps() % test.window == 0 {
                last_window = Some(std::mem::take(&mut window));
            }
            if met {
                break;
            }
        }
        self.load_average(last_window.unwrap_or(window))?;
        let functionals = self.functionals().map_err(ModelError::Thermo)?;
        Ok(Equilibrium {
            functionals,
            report: EquilibriumReport {
                steps: monitor.steps(),
                quasi_newton_iterations: 0,
                criterion: monitor.statistic(),
                met,
            },
        })
    }
}

/// A running sum of parameter vectors, in f64 on the host. Iterates wait on the device
/// and are read in batches (one read per [`IterateAverage::READ_ELEMENTS`] values rather
/// than one per parameter tensor and step); the sum is the same, in the same order.
struct IterateAverage<B: Backend> {
    sum: Option<Vec<f64>>,
    count: usize,
    pending: Vec<Tensor<B, 1>>,
}

impl<B: Backend> Default for IterateAverage<B> {
    fn default() -> Self {
        Self {
            sum: None,
            count: 0,
            pending: Vec::new(),
        }
    }
}

impl<B: Backend> IterateAverage<B> {
    /// Values read to the host at a time.
    const READ_ELEMENTS: usize = 1 << 23;

    fn add(&mut self, theta: Tensor<B, 1>) {
        let n = theta.dims()[0];
        self.pending.push(theta);
        self.count += 1;
        if self.pending.len() * n >= Self::READ_ELEMENTS {
            self.read_pending();
        }
    }

    /// Adds the waiting iterates to the host sum, in the order they came.
    fn read_pending(&mut self) {
        let Some(n) = self.pending.first().map(|t| t.dims()[0]) else {
            return;
        };
        let values: Vec<f64> = Tensor::cat(std::mem::take(&mut self.pending), 0)
            .into_data()
            .iter::<f64>()
            .collect();
        for theta in values.chunks(n) {
            match &mut self.sum {
                None => self.sum = Some(theta.to_vec()),
                Some(acc) => acc.iter_mut().zip(theta).for_each(|(a, b)| *a += b),
            }
        }
    }

    /// The mean, where there are at least two iterates.
    fn mean(mut self) -> Option<Vec<f64>> {
        self.read_pending();
        let count = self.count as f64;
        self.sum.filter(|_| self.count > 1).map(|mut acc| {
            acc.iter_mut().for_each(|a| *a /= count);
            acc
        })
    }
}

fn host_means<B: Backend>(f: &BatchFunctionals<B>) -> [f64; 3] {
    let v: Vec<f64> = Tensor::cat(
        vec![
            f.rate.clone().mean(),
            f.distortion.clone().mean(),
            f.classification.clone().mean(),
        ],
        0,
    )
    .into_data()
    .iter::<f64>()
    .collect();
    [v[0], v[1], v[2]]
}

impl<B: AutodiffBackend> ThermodynamicSystem for DeepSystem<B> {
    fn num_params(&self) -> usize {
        use burn::module::Module;
        self.trainer.model().num_params()
    }

    fn params(&self) -> fep_thermo::Result<Vec<f64>> {
        Ok(flatten_params(self.trainer.model()))
    }

    fn set_params(&mut self, theta: &[f64]) -> fep_thermo::Result<()> {
        let model = load_params(self.trainer.model().clone(), theta)?;
        self.trainer.set_model(model);
        Ok(())
    }

    fn data_position(&self) -> f64 {
        self.t
    }

    fn set_data_position(&mut self, t: f64) -> fep_thermo::Result<()> {
        fep_thermo::check_data_position(t)?;
        self.t = t;
        Ok(())
    }

    fn functionals(&mut self) -> fep_thermo::Result<Functionals> {
        let model = self.trainer.model().valid();
        let mut out = Functionals::default();
        for (w, probe) in self.weights_by_domain() {
            if w == 0.0 {
                continue;
            }
            let [r, d, c] = host_means(&self.functional_part(probe).functionals_in_chunks(&model));
            out.rate += w * r;
            out.distortion += w * d;
            out.classification += w * c;
        }
        Ok(out)
    }

    fn gradient(&mut self, weights: Weights) -> fep_thermo::Result<(Functionals, Vec<f64>)> {
        let model = self.trainer.model();
        let mut out = Functionals::default();
        let mut loss: Option<Tensor<B, 1>> = None;
        for (w, probe) in self.weights_by_domain() {
            if w == 0.0 {
                continue;
            }
            let f = match self.gradient_probe_size {
                Some(k) if k < probe.len() => ProbeSet {
                    images: probe.images.clone().narrow(0, 0, k),
                    labels: probe.labels.clone().narrow(0, 0, k),
                    noise: probe.noise.clone().narrow(1, 0, k),
                }
                .functionals(model),
                _ => probe.functionals(model),
            };
            let [r, d, c] = host_means(&f);
            out.rate += w * r;
            out.distortion += w * d;
            out.classification += w * c;
            let term = f
                .weighted(weights.rate, weights.distortion, weights.classification)
                .mul_scalar(w);
            loss = Some(match loss {
                None => term,
                Some(l) => l + term,
            });
        }
        let loss = loss.expect("at least one domain has positive weight");
        let grads = loss.backward();
        self.work.probe_gradients += 1;
        Ok((out, flatten_gradients(model, &grads)))
    }

    fn equilibrate(&mut self, m: Multipliers, steps: usize) -> fep_thermo::Result<Functionals> {
        self.train_steps_averaged(m, steps, steps / 4)
            .map_err(thermo_err)?;
        self.functionals()
    }

    /// The stationarity test runs on the minibatch functionals of the Adam steps
    /// ([`DeepSystem::equilibrate_stationary`]); the other rules use the generic default.
    fn equilibrate_until(
        &mut self,
        m: Multipliers,
        rule: &StoppingRule,
    ) -> fep_thermo::Result<Equilibrium> {
        match rule {
            StoppingRule::Stationary(test) => {
                self.equilibrate_stationary(m, test).map_err(thermo_err)
            }
            _ => equilibrate_by_rule(self, m, rule),
        }
    }
}
