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
//! - `D = n/2 log(2 pi sigma0^2) + [|(BA - I) L|_F^2 + |Bb + c|^2 + tr(B diag(s) B')] / (2 sigma0^2)`
//! - `C = m/2 log(2 pi sigmac^2) + [|(GA - W) L|_F^2 + tr Psi + |Gb + g|^2 + tr(G diag(s) G')] / (2 sigmac^2)`
//!
//! with `Sxx = L L'` (Cholesky), `W = Syx Sxx^-1` and `Psi = Syy - W Sxx W'`, which equal
//! `tr Sxx - 2 tr(BA Sxx) + tr(BA Sxx A'B')` and `tr Syy - 2 tr(GA Sxy) + tr(GA Sxx A'G')`
//! but are computed without their cancellation: the residual parts are evaluated in the
//! backend's float type (f32) and the constants (`tr Psi`, the log terms) are added in
//! f64, so J is resolved to about 1e-7 of its variable part, which the L-BFGS finish
//! of the equilibration needs.

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::closed_form::JointMoments;
use super::config::{ExactConfig, ExactTrainingConfig};
use crate::burn_params::{flatten_gradients, flatten_params, load_params};
use crate::equilibrium::{Equilibrium, EquilibriumReport, StoppingRule, equilibrate_by_rule};
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
    /// Cholesky factor L of Sxx (n x n).
    chol: Tensor<B, 2>,
    /// Regression W of y on x (m x n).
    regression: Tensor<B, 2>,
    /// `tr Psi`.
    residual_trace: f64,
}

fn matrix_tensor<B: Backend>(m: &nalgebra::DMatrix<f64>, device: &B::Device) -> Tensor<B, 2> {
    let values: Vec<f32> = (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)] as f32))
        .collect();
    Tensor::from_data(TensorData::new(values, [m.nrows(), m.ncols()]), device)
}

impl<B: Backend> MomentTensors<B> {
    fn new(m: &JointMoments, device: &B::Device) -> Result<Self> {
        let chol = m.sxx.clone().cholesky().ok_or_else(|| {
            ThermoError::InvalidConfig("covariance of x is not positive definite".into())
        })?;
        let (w, residual_trace) = m.regression()?;
        Ok(Self {
            chol: matrix_tensor(&chol.l(), device),
            regression: matrix_tensor(&w, device),
            residual_trace,
        })
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

    /// R, D, C, exact in expectation over the moments, as the parameter-dependent parts
    /// (scalar tensors) and the constants to add to them (f64).
    fn functionals(
        &self,
        data: &MomentTensors<B>,
        sigma0: f64,
        sigmac: f64,
    ) -> ([Tensor<B, 1>; 3], [f64; 3]) {
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
        // (A Sxx A')_jj = sum_i (A L)_ji^2.
        let enc_var = a
            .clone()
            .matmul(data.chol.clone())
            .powi_scalar(2)
            .sum_dim(1)
            .squeeze_dim::<1>(1);
        let offset = (b.clone() - mu).powi_scalar(2);
        let rate = ((s.clone() + enc_var + offset) / p - 1.0 + log_p - log_s).sum() * 0.5;

        // Distortion: the variable part.
        let n_dim = dec.dims()[0];
        let device = dec.device();
        let ba = dec.clone().matmul(a.clone()); // n x n
        let residual = (ba - Tensor::eye(n_dim, &device)).matmul(data.chol.clone());
        let mean_err = (dec
            .clone()
            .matmul(b.clone().unsqueeze_dim::<2>(1))
            .squeeze_dim::<1>(1)
            + c)
            .powi_scalar(2)
            .sum();
        let noise = (dec.powi_scalar(2) * s.clone().unsqueeze_dim::<2>(0)).sum();
        let distortion =
            (residual.powi_scalar(2).sum() + mean_err + noise) / (2.0 * sigma0 * sigma0);

        // Classification: the variable part.
        let ga = cls.clone().matmul(a); // m x n
        let residual = (ga - data.regression.clone()).matmul(data.chol.clone());
        let mean_err = (cls
            .clone()
            .matmul(b.unsqueeze_dim::<2>(1))
            .squeeze_dim::<1>(1)
            + g)
            .powi_scalar(2)
            .sum();
        let noise = (cls.powi_scalar(2) * s.unsqueeze_dim::<2>(0)).sum();
        let classification =
            (residual.powi_scalar(2).sum() + mean_err + noise) / (2.0 * sigmac * sigmac);
        let constants = [
            0.0,
            0.5 * n * (two_pi * sigma0 * sigma0).ln(),
            0.5 * m * (two_pi * sigmac * sigmac).ln()
                + data.residual_trace / (2.0 * sigmac * sigmac),
        ];
        ([rate, distortion, classification], constants)
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
            data: MomentTensors::new(&source, device)?,
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

    /// Equilibrate from the current (typically the initial) parameters: `initial_steps`
    /// cold Adam steps (learning rate `learning_rate`), then the configured rule
    /// ([`ExactTrainingConfig::equilibrium_rule`]) with warm steps and its finish.
    pub fn train(&mut self, multipliers: Multipliers) -> Result<Equilibrium> {
        let rule = self.training.equilibrium_rule();
        self.train_until(multipliers, &rule)
    }

    /// `initial_steps` cold Adam steps, then [`ThermodynamicSystem::equilibrate_until`]
    /// with `rule`; the report counts the cold steps too.
    pub fn train_until(
        &mut self,
        multipliers: Multipliers,
        rule: &StoppingRule,
    ) -> Result<Equilibrium> {
        let steps = self.training.initial_steps;
        let lr = self.training.learning_rate;
        self.run_adam(multipliers, steps, lr)?;
        let eq = self.equilibrate_until(multipliers, rule)?;
        Ok(Equilibrium {
            functionals: eq.functionals,
            report: EquilibriumReport::unmeasured(steps).then(eq.report),
        })
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
            let ([r, d, c], _) = model.functionals(&self.data, self.sigma0, self.sigmac);
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
        crate::system::check_data_position(t)?;
        if t != 0.0 && self.target.is_none() {
            return Err(ThermoError::InvalidConfig(
                "this exact problem has no [target] dataset to move towards".into(),
            ));
        }
        self.position = t;
        self.data = MomentTensors::new(&self.moments(), &self.device)?;
        Ok(())
    }

    fn functionals(&mut self) -> Result<Functionals> {
        let ([r, d, c], k) = self
            .model()
            .functionals(&self.data, self.sigma0, self.sigmac);
        Ok(Functionals {
            rate: scalar(r) + k[0],
            distortion: scalar(d) + k[1],
            classification: scalar(c) + k[2],
        })
    }

    fn gradient(&mut self, weights: Weights) -> Result<(Functionals, Vec<f64>)> {
        let model = self.model();
        let ([r, d, c], k) = model.functionals(&self.data, self.sigma0, self.sigmac);
        let f = Functionals {
            rate: scalar(r.clone()) + k[0],
            distortion: scalar(d.clone()) + k[1],
            classification: scalar(c.clone()) + k[2],
        };
        let loss = r * weights.rate + d * weights.distortion + c * weights.classification;
        let grads = loss.backward();
        Ok((f, flatten_gradients(model, &grads)))
    }

    /// Fixed steps or the gradient-norm rule ([`equilibrate_by_rule`]).
    fn equilibrate_until(
        &mut self,
        multipliers: Multipliers,
        rule: &StoppingRule,
    ) -> Result<Equilibrium> {
        equilibrate_by_rule(self, multipliers, rule)
    }

    /// Warm-started Adam from the current parameters, learning rate decaying from
    /// `warm_learning_rate` to `final_learning_rate`.
    fn equilibrate(&mut self, multipliers: Multipliers, steps: usize) -> Result<Functionals> {
        let lr = self.training.warm_learning_rate;
        self.run_adam(multipliers, steps, lr)
    }
}
