//! Priors `m(z)` and the rate `KL(e(z|x) || m(z))` per example.
//!
//! For `N(0, I)` the KL has the closed form
//! `1/2 sum_l (mu_l^2 + sigma_l^2 - 1 - log sigma_l^2)`. For the learnt mixtures it is
//! estimated on the latent samples `z_s = mu + sigma eps_s` used for D and C:
//! `KL ~ 1/S sum_s [log e(z_s|x) - log m(z_s)]`.

use std::f64::consts::PI;

use burn::module::{Module, Param};
use burn::tensor::activation::{log_softmax, sigmoid};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

/// `log N(z; mean, exp(log_var))` of diagonal Gaussians summed over the last dim.
/// Shapes broadcast: `z` `[M, 1, L]` against `[1, K, L]` gives `[M, K]`.
pub fn diagonal_gaussian_log_density<B: Backend>(
    z: Tensor<B, 3>,
    mean: Tensor<B, 3>,
    log_var: Tensor<B, 3>,
) -> Tensor<B, 2> {
    let d = (z - mean).square() * log_var.clone().neg().exp();
    (d + log_var)
        .add_scalar((2.0 * PI).ln())
        .mul_scalar(-0.5)
        .sum_dim(2)
        .squeeze_dim(2)
}

/// `log sum_k exp(x_k)` over dim 1 of `[M, K]`, stabilised by the row maximum.
pub fn log_sum_exp<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 1> {
    let max = x.clone().max_dim(1).detach();
    (x - max.clone())
        .exp()
        .sum_dim(1)
        .log()
        .add(max)
        .squeeze_dim(1)
}

/// Closed-form `KL(N(mu, diag exp(log_var)) || N(0, I))` per row of `[N, L]`.
pub fn kl_standard_normal<B: Backend>(mean: Tensor<B, 2>, log_var: Tensor<B, 2>) -> Tensor<B, 1> {
    (mean.square() + log_var.clone().exp() - log_var)
        .sub_scalar(1.0)
        .mul_scalar(0.5)
        .sum_dim(1)
        .squeeze_dim(1)
}

/// `log e(z_s|x)` for `z_s = mu + sigma eps_s`: `-1/2 sum_l (log 2 pi + log_var + eps^2)`.
/// `log_var` `[N, L]`, `noise` `[S, N, L]`; returns `[S, N]`.
pub fn posterior_log_density<B: Backend>(
    log_var: Tensor<B, 2>,
    noise: Tensor<B, 3>,
) -> Tensor<B, 2> {
    (noise.square() + log_var.unsqueeze_dim(0))
        .add_scalar((2.0 * PI).ln())
        .mul_scalar(-0.5)
        .sum_dim(2)
        .squeeze_dim(2)
}

/// A learnt mixture of K diagonal Gaussians,
/// `m(z) = sum_k softmax(w)_k N(z; mu_k, diag exp(v_k))`.
#[derive(Module, Debug)]
pub struct MixturePrior<B: Backend> {
    /// Component means `[K, L]`.
    pub means: Param<Tensor<B, 2>>,
    /// Component log-variances `[K, L]`.
    pub log_vars: Param<Tensor<B, 2>>,
    /// Unnormalised log-weights `[K]`.
    pub logits: Param<Tensor<B, 1>>,
}

impl<B: Backend> MixturePrior<B> {
    /// Means drawn from N(0, I) (backend RNG), unit variances, equal weights.
    pub fn new(components: usize, latent: usize, device: &B::Device) -> Self {
        Self {
            means: Param::from_tensor(Tensor::random(
                [components, latent],
                Distribution::Normal(0.0, 1.0),
                device,
            )),
            log_vars: Param::from_tensor(Tensor::zeros([components, latent], device)),
            logits: Param::from_tensor(Tensor::zeros([components], device)),
        }
    }

    /// `log m(z)` for `z` `[M, L]`; returns `[M]`.
    pub fn log_density(&self, z: Tensor<B, 2>) -> Tensor<B, 1> {
        let log_w = log_softmax(self.logits.val().unsqueeze_dim::<2>(0), 1);
        let comp = diagonal_gaussian_log_density(
            z.unsqueeze_dim(1),
            self.means.val().unsqueeze_dim(0),
            self.log_vars.val().unsqueeze_dim(0),
        );
        log_sum_exp(comp + log_w)
    }
}

/// VampPrior: `m(z) = 1/K sum_k e(z | u_k)` with learnt pseudo-images
/// `u_k = sigmoid(a_k)` in [0, 1].
#[derive(Module, Debug)]
pub struct VampPrior<B: Backend> {
    /// Pre-sigmoid pseudo-inputs `[K, C, H, W]`.
    pub pseudo_logits: Param<Tensor<B, 4>>,
}

impl<B: Backend> VampPrior<B> {
    /// Pseudo-inputs initialised near grey (logits ~ N(0, 0.1^2)) so that they start
    /// as faint noise images.
    pub fn new(count: usize, shape: [usize; 3], device: &B::Device) -> Self {
        let [c, h, w] = shape;
        Self {
            pseudo_logits: Param::from_tensor(Tensor::random(
                [count, c, h, w],
                Distribution::Normal(0.0, 0.1),
                device,
            )),
        }
    }

    /// The pseudo-images `sigmoid(a)`.
    pub fn pseudo_inputs(&self) -> Tensor<B, 4> {
        sigmoid(self.pseudo_logits.val())
    }

    /// `log m(z)` for `z` `[M, L]` given the encoder's moments at the pseudo-inputs
    /// (`[K, L]` each); returns `[M]`.
    pub fn log_density(
        z: Tensor<B, 2>,
        pseudo_mean: Tensor<B, 2>,
        pseudo_log_var: Tensor<B, 2>,
    ) -> Tensor<B, 1> {
        let k = pseudo_mean.dims()[0];
        let comp = diagonal_gaussian_log_density(
            z.unsqueeze_dim(1),
            pseudo_mean.unsqueeze_dim(0),
            pseudo_log_var.unsqueeze_dim(0),
        );
        log_sum_exp(comp).sub_scalar((k as f64).ln())
    }
}
