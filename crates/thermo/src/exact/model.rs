//! The linear-Gaussian model as a trainable Burn module, whose R, D and C are the
//! exact expectations over the data's second moments (no sampling noise), so that
//! gradient training, the estimators and the integrators can be checked against
//! the closed forms.
//!
//! Encoder `N(A x + b, diag s)`, prior `N(mu, diag p)`, decoder `N(B z + c, sigma0^2 I)`,
//! "classifier" `N(G z + g, sigmac^2 I)`. For zero-mean data with moments
//! `Sxx`, `Syx`, `Syy`:
//!
//! - `R = 1/2 sum_j [(s_j + (A Sxx A')_jj + (b - mu)_j^2) / p_j - 1 + log p_j - log s_j]`
//! - `D = n/2 log(2 pi sigma0^2) + [tr Sxx - 2 tr(BA Sxx) + tr(BA Sxx A'B') + |Bb + c|^2 + tr(B diag(s) B')] / (2 sigma0^2)`
//! - `C = m/2 log(2 pi sigmac^2) + [tr Syy - 2 tr(GA Sxy) + tr(GA Sxx A'G') + |Gb + g|^2 + tr(G diag(s) G')] / (2 sigmac^2)`

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::closed_form::JointMoments;
use super::config::{ExactConfig, ExactTrainingConfig};
use crate::burn_params::{flatten_gradients, flatten_params, load_params};
use crate::error::{Result, ThermoError};
use crate::system::{Functionals, Multipliers, ThermodynamicSystem, Weights};

/// Parameters of the linear-Gaussian model.
#[derive(Module, Debug)]
pub struct LinearGaussianModel<B: Backend> {
    /// Encoder mean map A (k x n).
    pub encoder_weight: Param<Tensor<B, 2>>,
    /// Encoder mean offset b (k).
    pub encoder_bias: Param<Tensor<B, 1>>,
    /// Encoder log-variances log s (k).
    pub encoder_log_var: Param<Tensor<B, 1>>,
    /// Prior mean mu (k).
    pub prior_mean: Param<Tensor<B, 1>>,
    /// Prior log-variances log p (k).
    pub prior_log_var: Param<Tensor<B, 1>>,
    /// Decoder map B (n x k).
    pub decoder_weight: Param<Tensor<B, 2>>,
    /// Decoder offset c (n).
    pub decoder_bias: Param<Tensor<B, 1>>,
    /// Classifier map G (m x k).
    pub classifier_weight: Param<Tensor<B, 2>>,
    /// Classifier offset g (m).
    pub classifier_bias: Param<Tensor<B, 1>>,
}

/// Data moments as constant tensors.
#[derive(Debug, Clone)]
struct MomentTensors<B: Backend> {
    sxx: Tensor<B, 2>,
    syx: Tensor<B, 2>,
    trace_sxx: f64,
    trace_syy: f64,
}

fn matrix_tensor<B: Backend>(m: &nalgebra::DMatrix<f64>, device: &B::Device) -> Tensor<B, 2> {
    let values: Vec<f32> = (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)] as f32))
        .collect();
    Tensor::from_data(TensorData::new(values, [m.nrows(), m.ncols()]), device)
}

impl<B: Backend> MomentTensors<B> {
    fn new(m: &JointMoments, device: &B::Device) -> Self {
        Self {
            sxx: matrix_tensor(&m.sxx, device),
            syx: matrix_tensor(&m.syx, device),
            trace_sxx: m.sxx.trace(),
            trace_syy: m.syy.trace(),
        }
    }
}

fn random_matrix<B: Backend>(
    rng: &mut ChaCha8Rng,
    rows: usize,
    cols: usize,
    scale: f64,
    device: &B::Device,
) -> Tensor<B, 2> {
    let values: Vec<f32> = (0..rows * cols)
        .map(|_| (scale * (rng.random::<f64>() * 2.0 - 1.0)) as f32)
        .collect();
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

impl<B: Backend> LinearGaussianModel<B> {
    /// A seeded initialisation: small random maps, unit variances, zero offsets.
    pub fn init(n: usize, m: usize, latent_dim: usize, seed: u64, device: &B::Device) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let k = latent_dim;
        let zeros = |len| Param::from_tensor(Tensor::<B, 1>::zeros([len], device));
        Self {
            encoder_weight: Param::from_tensor(random_matrix(&mut rng, k, n, 0.5, device)),
            encoder_bias: zeros(k),
            encoder_log_var: zeros(k),
            prior_mean: zeros(k),
            prior_log_var: zeros(k),
            decoder_weight: Param::from_tensor(random_matrix(&mut rng, n, k, 0.5, device)),
            decoder_bias: zeros(n),
            classifier_weight: Param::from_tensor(random_matrix(&mut rng, m, k, 0.5, device)),
            classifier_bias: zeros(m),
        }
    }

    /// R, D, C as scalar tensors, exact in expectation over the moments.
    fn functionals(&self, data: &MomentTensors<B>, sigma0: f64, sigmac: f64) -> [Tensor<B, 1>; 3] {
        let a = self.encoder_weight.val();
        let b = self.encoder_bias.val();
        let log_s = self.encoder_log_var.val();
        let s = log_s.clone().exp();
        let mu = self.prior_mean.val();
        let log_p = self.prior_log_var.val();
        let p = log_p.clone().exp();
        let dec = self.decoder_weight.val();
        let c = self.decoder_bias.val();
        let cls = self.classifier_weight.val();
        let g = self.classifier_bias.val();
        let n = dec.dims()[0] as f64;
        let m = cls.dims()[0] as f64;
        let two_pi = 2.0 * std::f64::consts::PI;

        // Rate.
        let a_sxx = a.clone().matmul(data.sxx.clone()); // k x n
        let enc_var = (a_sxx.clone() * a.clone()).sum_dim(1).squeeze_dim::<1>(1); // (A Sxx A')_jj
        let offset = (b.clone() - mu).powi_scalar(2);
        let rate = ((s.clone() + enc_var + offset) / p - 1.0 + log_p - log_s).sum() * 0.5;

        // Distortion.
        let ba = dec.clone().matmul(a.clone()); // n x n
        let cross = (ba.clone() * data.sxx.clone()).sum();
        let quad = (ba.clone().matmul(data.sxx.clone()) * ba).sum();
        let mean_err = (dec
            .clone()
            .matmul(b.clone().unsqueeze_dim::<2>(1))
            .squeeze_dim::<1>(1)
            + c)
            .powi_scalar(2)
            .sum();
        let noise = (dec.powi_scalar(2) * s.clone().unsqueeze_dim::<2>(0)).sum();
        let distortion = (quad - cross * 2.0 + mean_err + noise + data.trace_sxx)
            / (2.0 * sigma0 * sigma0)
            + 0.5 * n * (two_pi * sigma0 * sigma0).ln();

        // Classification.
        let ga = cls.clone().matmul(a); // m x n
        let cross = (ga.clone() * data.syx.clone()).sum();
        let quad = (ga.clone().matmul(data.sxx.clone()) * ga).sum();
        let mean_err = (cls
            .clone()
            .matmul(b.unsqueeze_dim::<2>(1))
            .squeeze_dim::<1>(1)
            + g)
            .powi_scalar(2)
            .sum();
        let noise = (cls.powi_scalar(2) * s.unsqueeze_dim::<2>(0)).sum();
        let classification = (quad - cross * 2.0 + mean_err + noise + data.trace_syy)
            / (2.0 * sigmac * sigmac)
            + 0.5 * m * (two_pi * sigmac * sigmac).ln();
        [rate, distortion, classification]
    }
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_scalar().elem::<f64>()
}

/// The trainable linear-Gaussian model in contact with a data path between a
/// source and (optionally) a target dataset.
#[derive(Debug)]
pub struct ExactSystem<B: AutodiffBackend> {
    /// Always `Some` between calls: only `run_adam` and `set_params` take the model
    /// out (Burn's optimiser and loader consume it), and both put a model back on
    /// every path before returning, which is the invariant the `expect`s rely on.
    model: Option<LinearGaussianModel<B>>,
    source: JointMoments,
    target: Option<JointMoments>,
    position: f64,
    data: MomentTensors<B>,
    sigma0: f64,
    sigmac: f64,
    training: ExactTrainingConfig,
    device: B::Device,
}

impl<B: AutodiffBackend> ExactSystem<B> {
    /// The system described by a validated configuration, at its seeded initial parameters.
    pub fn from_config(config: &ExactConfig, device: &B::Device) -> Result<Self> {
        config.validate()?;
        let source = config.source_moments()?;
        let target = config.target_moments()?;
        let model = LinearGaussianModel::init(
            source.n(),
            source.m(),
            config.model.latent_dim,
            config.model.seed,
            device,
        );
        Ok(Self {
            data: MomentTensors::new(&source, device),
            model: Some(model),
            source,
            target,
            position: 0.0,
            sigma0: config.model.sigma0,
            sigmac: config.model.sigmac,
            training: config.training,
            device: device.clone(),
        })
    }

    fn model(&self) -> &LinearGaussianModel<B> {
        self.model
            .as_ref()
            .expect("model is always present between calls")
    }

    /// The moments of the current data distribution p_t.
    pub fn moments(&self) -> JointMoments {
        match &self.target {
            Some(target) => JointMoments::mix(&self.source, target, self.position),
            None => self.source.clone(),
        }
    }

    /// Optimiser settings.
    pub fn training(&self) -> ExactTrainingConfig {
        self.training
    }

    /// Equilibrate from the initial parameters with the configured number of steps.
    pub fn train(&mut self, multipliers: Multipliers) -> Result<Functionals> {
        let steps = self.training.initial_steps;
        let lr = self.training.learning_rate;
        self.run_adam(multipliers, steps, lr)
    }

    /// Adam with the learning rate decaying exponentially from `lr0` to
    /// `final_learning_rate` over `steps`.
    fn run_adam(
        &mut self,
        multipliers: Multipliers,
        steps: usize,
        lr0: f64,
    ) -> Result<Functionals> {
        let mut model = self.model.take().expect("model present");
        let mut optimizer = AdamConfig::new().init::<B, LinearGaussianModel<B>>();
        let lr1 = self.training.final_learning_rate.min(lr0);
        let decay = if steps > 1 {
            (lr1 / lr0).ln() / (steps - 1) as f64
        } else {
            0.0
        };
        for step in 0..steps {
            let [r, d, c] = model.functionals(&self.data, self.sigma0, self.sigmac);
            let loss = r + d * multipliers.lambda + c * multipliers.gamma;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(lr0 * (decay * step as f64).exp(), model, grads);
        }
        self.model = Some(model);
        let f = self.functionals()?;
        f.check_finite(multipliers)?;
        Ok(f)
    }
}

impl<B: AutodiffBackend> ThermodynamicSystem for ExactSystem<B> {
    fn num_params(&self) -> usize {
        self.model().num_params()
    }

    fn params(&self) -> Result<Vec<f64>> {
        Ok(flatten_params(self.model()))
    }

    fn set_params(&mut self, theta: &[f64]) -> Result<()> {
        let model = self.model.take().expect("model present");
        let fallback = model.clone();
        match load_params(model, theta) {
            Ok(m) => {
                self.model = Some(m);
                Ok(())
            }
            Err(e) => {
                self.model = Some(fallback);
                Err(e)
            }
        }
    }

    fn data_position(&self) -> f64 {
        self.position
    }

    fn set_data_position(&mut self, t: f64) -> Result<()> {
        if !(0.0..=1.0).contains(&t) {
            return Err(ThermoError::InvalidConfig(format!(
                "data position must lie in [0, 1], got {t}"
            )));
        }
        if t != 0.0 && self.target.is_none() {
            return Err(ThermoError::InvalidConfig(
                "this exact problem has no [target] dataset to move towards".into(),
            ));
        }
        self.position = t;
        self.data = MomentTensors::new(&self.moments(), &self.device);
        Ok(())
    }

    fn functionals(&mut self) -> Result<Functionals> {
        let [r, d, c] = self
            .model()
            .functionals(&self.data, self.sigma0, self.sigmac);
        Ok(Functionals {
            rate: scalar(r),
            distortion: scalar(d),
            classification: scalar(c),
        })
    }

    fn gradient(&mut self, weights: Weights) -> Result<(Functionals, Vec<f64>)> {
        let model = self.model();
        let [r, d, c] = model.functionals(&self.data, self.sigma0, self.sigmac);
        let f = Functionals {
            rate: scalar(r.clone()),
            distortion: scalar(d.clone()),
            classification: scalar(c.clone()),
        };
        let loss = r * weights.rate + d * weights.distortion + c * weights.classification;
        let grads = loss.backward();
        Ok((f, flatten_gradients(model, &grads)))
    }

    /// Warm-started Adam from the current parameters, learning rate decaying from
    /// `warm_learning_rate` to `final_learning_rate`.
    fn equilibrate(&mut self, multipliers: Multipliers, steps: usize) -> Result<Functionals> {
        let lr = self.training.warm_learning_rate;
        self.run_adam(multipliers, steps, lr)
    }
}
