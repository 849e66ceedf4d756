//! The model `(e, d, c, m)`: encoder, decoder, classifier on z and prior, and its
//! functionals per example.

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::config::{ModelConfig, PriorKind};
use crate::error::Result;
use crate::likelihood::{mean_image, negative_log_likelihood};
use crate::networks::{Classifier, Decoder, Encoder};
use crate::prior::{MixturePrior, VampPrior, kl_standard_normal, posterior_log_density};

/// Encoder `e(z|x)`, decoder `d(x|z)`, linear classifier `c(y|z)` and prior `m(z)`.
#[derive(Module, Debug)]
pub struct FepModel<B: Backend> {
    /// `e(z|x)`.
    pub encoder: Encoder<B>,
    /// Network of `d(x|z)`.
    pub decoder: Decoder<B>,
    /// `c(y|z)`: softmax of the classifier's logits.
    pub classifier: Classifier<B>,
    /// Parameters of a mixture-of-Gaussians prior, if that is the prior.
    pub mixture_prior: Option<MixturePrior<B>>,
    /// Pseudo-inputs of a VampPrior, if that is the prior.
    pub vamp_prior: Option<VampPrior<B>>,
    config: ModelConfig,
}

/// Per-example functionals of a batch (nats), each `[N]`, averaged over the latent samples.
#[derive(Debug, Clone)]
pub struct BatchFunctionals<B: Backend> {
    /// `KL(e(z|x) || m(z))` (closed form or Monte Carlo).
    pub rate: Tensor<B, 1>,
    /// `-log d(x|z)`.
    pub distortion: Tensor<B, 1>,
    /// `-log c(y|z)`.
    pub classification: Tensor<B, 1>,
    /// 1 where the classifier at the posterior mean predicts the label, else 0.
    pub correct: Tensor<B, 1, Int>,
}

impl<B: Backend> BatchFunctionals<B> {
    /// `J = mean(R) + lambda mean(D) + gamma mean(C)` over the batch, a scalar tensor.
    pub fn lagrangian(&self, lambda: f64, gamma: f64) -> Tensor<B, 1> {
        self.weighted(1.0, lambda, gamma)
    }

    /// `w_R mean(R) + w_D mean(D) + w_C mean(C)`.
    pub fn weighted(&self, w_rate: f64, w_distortion: f64, w_classification: f64) -> Tensor<B, 1> {
        self.rate.clone().mean().mul_scalar(w_rate)
            + self.distortion.clone().mean().mul_scalar(w_distortion)
            + self
                .classification
                .clone()
                .mean()
                .mul_scalar(w_classification)
    }
}

/// Forces every lazily initialised parameter to be drawn.
struct Materialise;

impl<B: Backend> burn::module::ModuleVisitor<B> for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// Serialises every draw of initial parameters from the backend's generator, which is one
/// per process: a seed and the draws that follow it cannot be split by another thread's
/// initialisation.
static BACKEND_GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl<B: Backend> FepModel<B> {
    /// A freshly initialised model whose parameters are a function of `seed` alone: the
    /// backend generator is seeded and drawn from under one process-wide lock.
    pub fn seeded(config: &ModelConfig, seed: u64, device: &B::Device) -> Result<Self> {
        let _generator = BACKEND_GENERATOR
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        B::seed(device, seed);
        Self::initialise(config, device)
    }

    /// A freshly initialised model drawn from the backend generator in its current state
    /// (use [`FepModel::seeded`] for reproducible parameters).
    pub fn new(config: &ModelConfig, device: &B::Device) -> Result<Self> {
        let _generator = BACKEND_GENERATOR
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Self::initialise(config, device)
    }

    fn initialise(config: &ModelConfig, device: &B::Device) -> Result<Self> {
        config.validate()?;
        let latent = config.latent_dim;
        let (mixture_prior, vamp_prior) = match config.prior {
            PriorKind::StandardNormal => (None, None),
            PriorKind::Mixture { components } => {
                (Some(MixturePrior::new(components, latent, device)), None)
            }
            PriorKind::Vamp { pseudo_inputs } => (
                None,
                Some(VampPrior::new(
                    pseudo_inputs,
                    config.architecture.image_shape(),
                    device,
                )),
            ),
        };
        let model = Self {
            encoder: Encoder::new(config, device),
            decoder: Decoder::new(config, device),
            classifier: Classifier::new(config, device),
            mixture_prior,
            vamp_prior,
            config: config.clone(),
        };
        // Burn draws a parameter lazily, at its first use; draw them all now, while the
        // caller holds the generator.
        model.visit(&mut Materialise);
        Ok(model)
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// R, D, C per example for images `[N, C, H, W]` in [0, 1], labels `[N]` and standard
    /// normal noise `[S, N, L]` (S latent samples per example, decoded in one pass).
    pub fn functionals(
        &self,
        images: Tensor<B, 4>,
        labels: Tensor<B, 1, Int>,
        noise: Tensor<B, 3>,
    ) -> BatchFunctionals<B> {
        let [s, n, l] = noise.dims();
        let [_, c, h, w] = images.dims();
        let (mean, log_var) = self.encoder.forward(images.clone());
        let std = log_var.clone().mul_scalar(0.5).exp();
        let z3 = mean.clone().unsqueeze_dim::<3>(0) + std.unsqueeze_dim::<3>(0) * noise.clone();
        let z = z3.reshape([s * n, l]);

        let params = self.decoder.forward(z.clone());
        let x_rep = images
            .unsqueeze_dim::<5>(0)
            .expand([s, n, c, h, w])
            .reshape([s * n, c, h, w]);
        let distortion = negative_log_likelihood(self.config.decoder, params, x_rep)
            .reshape([s, n])
            .mean_dim(0)
            .reshape([n]);

        let logits = self.classifier.forward(z.clone());
        let labels_rep = labels
            .clone()
            .unsqueeze_dim::<2>(0)
            .expand([s, n])
            .reshape([s * n, 1]);
        let classification = log_softmax(logits, 1)
            .gather(1, labels_rep)
            .neg()
            .reshape([s, n])
            .mean_dim(0)
            .reshape([n]);

        let rate = match self.config.prior {
            PriorKind::StandardNormal => kl_standard_normal(mean.clone(), log_var),
            _ => {
                let log_q = posterior_log_density(log_var, noise);
                let log_m = self.prior_log_density(z).reshape([s, n]);
                (log_q - log_m).mean_dim(0).reshape([n])
            }
        };

        let predicted = self.classifier.forward(mean).argmax(1).reshape([n]);
        let correct = predicted.equal(labels).int();
        BatchFunctionals {
            rate,
            distortion,
            classification,
            correct,
        }
    }

    /// `log m(z)` of the prior for `z` `[M, L]`, `[M]`.
    pub fn prior_log_density(&self, z: Tensor<B, 2>) -> Tensor<B, 1> {
        if let Some(mixture) = &self.mixture_prior {
            return mixture.log_density(z);
        }
        if let Some(vamp) = &self.vamp_prior {
            let (pm, pv) = self.encoder.forward(vamp.pseudo_inputs());
            return VampPrior::log_density(z, pm, pv);
        }
        let l = z.dims()[1] as f64;
        z.square()
            .sum_dim(1)
            .squeeze_dim(1)
            .mul_scalar(-0.5)
            .sub_scalar(0.5 * l * (2.0 * std::f64::consts::PI).ln())
    }

    /// Mean images in [0, 1] decoded at the posterior means of `images`.
    pub fn reconstruct(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        let (mean, _) = self.encoder.forward(images);
        mean_image(self.config.decoder, self.decoder.forward(mean))
    }

    /// Mean images decoded from `z ~ m(z)`, with `noise` `[N, L]` standard normal draws.
    /// For mixture priors a component is picked per row (row `i` uses component
    /// `i mod K`), then `z = mu_k + sigma_k * noise`.
    pub fn sample(&self, noise: Tensor<B, 2>) -> Tensor<B, 4> {
        let [n, _] = noise.dims();
        let device = noise.device();
        let component_moments = if let Some(m) = &self.mixture_prior {
            Some((m.means.val(), m.log_vars.val()))
        } else {
            self.vamp_prior
                .as_ref()
                .map(|v| self.encoder.forward(v.pseudo_inputs()))
        };
        let z = match component_moments {
            None => noise,
            Some((means, log_vars)) => {
                let k = means.dims()[0];
                let pick: Vec<i64> = (0..n).map(|i| (i % k) as i64).collect();
                let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(pick, [n]), &device);
                let mu = means.select(0, idx.clone());
                let std = log_vars.select(0, idx).mul_scalar(0.5).exp();
                mu + std * noise
            }
        };
        mean_image(self.config.decoder, self.decoder.forward(z))
    }
}
