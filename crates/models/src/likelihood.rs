//! Negative log-likelihoods `-log d(x|z)` of the decoders, summed over all sub-pixels of
//! each example (nats per image).

use std::f64::consts::PI;

use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;
use burn::tensor::backend::Backend;

use crate::config::DecoderKind;

/// Stable `log(1 + exp(x))`: `max(x, 0) + log1p(exp(-|x|))`.
pub fn softplus<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let abs = x.clone().abs();
    x.clamp_min(0.0) + abs.neg().exp().log1p()
}

/// Bernoulli pixels with logits `l`: `-log d = sum softplus(l) - x l`.
/// `x` must be binary for this to be a likelihood. Returns `[N]`.
pub fn bernoulli_nll<B: Backend>(logits: Tensor<B, 4>, x: Tensor<B, 4>) -> Tensor<B, 1> {
    let per_pixel = softplus(logits.clone()) - x * logits;
    per_pixel.flatten::<2>(1, 3).sum_dim(1).squeeze_dim(1)
}

/// Gaussian pixels with mean `mu` and fixed `sigma`:
/// `-log d = sum (x - mu)^2 / (2 sigma^2) + (n / 2) log(2 pi sigma^2)`, n pixels. `[N]`.
pub fn gaussian_nll<B: Backend>(mean: Tensor<B, 4>, x: Tensor<B, 4>, sigma: f64) -> Tensor<B, 1> {
    let [_, c, h, w] = x.dims();
    let n = (c * h * w) as f64;
    let sse: Tensor<B, 1> = (x - mean)
        .square()
        .flatten::<2>(1, 3)
        .sum_dim(1)
        .squeeze_dim(1);
    sse.div_scalar(2.0 * sigma * sigma)
        .add_scalar(0.5 * n * (2.0 * PI * sigma * sigma).ln())
}

/// The additive constant `(n/2) log(2 pi sigma^2)` of [`gaussian_nll`] for `n` pixels.
pub fn gaussian_nll_constant(pixels: usize, sigma: f64) -> f64 {
    0.5 * pixels as f64 * (2.0 * PI * sigma * sigma).ln()
}

/// Smallest log-scale of the discretised logistic (as in PixelCNN++).
pub const MIN_LOG_SCALE: f64 = -7.0;

/// Discretised logistic over 256 bins of [-1, 1] (bin half-width 1/255), one component:
/// `P(x) = sigma((x + 1/255 - mu)/s) - sigma((x - 1/255 - mu)/s)`, with the edge bins
/// extended to -inf and +inf. `x` in [0, 1] (pixel / 255) is mapped to `2x - 1`.
/// Returns `-sum log P` over sub-pixels, `[N]`.
pub fn discretized_logistic_nll<B: Backend>(
    mean: Tensor<B, 4>,
    log_scale: Tensor<B, 4>,
    x: Tensor<B, 4>,
) -> Tensor<B, 1> {
    let x = x.mul_scalar(2.0).sub_scalar(1.0);
    let log_scale = log_scale.clamp_min(MIN_LOG_SCALE);
    let centered = x.clone() - mean;
    let inv_s = log_scale.clone().neg().exp();
    let plus_in = inv_s.clone() * centered.clone().add_scalar(1.0 / 255.0);
    let min_in = inv_s.clone() * centered.clone().sub_scalar(1.0 / 255.0);
    // log sigma(plus_in) for the lowest bin, log(1 - sigma(min_in)) for the highest.
    let log_cdf_plus = plus_in.clone() - softplus(plus_in.clone());
    let log_one_minus_cdf_min = softplus(min_in.clone()).neg();
    let cdf_delta = sigmoid(plus_in) - sigmoid(min_in);
    let mid_in = inv_s * centered;
    // Density at the bin centre times the bin width, for bins too narrow for the CDF difference.
    let log_pdf_mid = mid_in.clone() - log_scale - softplus(mid_in).mul_scalar(2.0);
    let log_mid_approx = log_pdf_mid.sub_scalar((127.5f64).ln());
    let log_delta = cdf_delta.clone().clamp_min(1e-12).log();
    let interior = log_delta.mask_where(cdf_delta.lower_elem(1e-5), log_mid_approx);
    let log_prob = interior
        .mask_where(x.clone().lower_elem(-0.999), log_cdf_plus)
        .mask_where(x.greater_elem(0.999), log_one_minus_cdf_min);
    log_prob.flatten::<2>(1, 3).sum_dim(1).squeeze_dim(1).neg()
}

/// `-log d(x|z)` per example for decoder outputs `params` `[N, C * k, H, W]`
/// and images `x` `[N, C, H, W]` in [0, 1].
pub fn negative_log_likelihood<B: Backend>(
    kind: DecoderKind,
    params: Tensor<B, 4>,
    x: Tensor<B, 4>,
) -> Tensor<B, 1> {
    match kind {
        DecoderKind::Bernoulli => bernoulli_nll(params, x),
        DecoderKind::Gaussian { sigma } => gaussian_nll(sigmoid(params), x, sigma),
        DecoderKind::DiscretizedLogistic => {
            let c = x.dims()[1];
            let mean = params.clone().narrow(1, 0, c);
            let log_scale = params.narrow(1, c, c);
            discretized_logistic_nll(mean, log_scale, x)
        }
    }
}

/// The decoder's mean image in [0, 1] (for reconstructions and samples).
pub fn mean_image<B: Backend>(kind: DecoderKind, params: Tensor<B, 4>) -> Tensor<B, 4> {
    match kind {
        DecoderKind::Bernoulli | DecoderKind::Gaussian { .. } => sigmoid(params),
        DecoderKind::DiscretizedLogistic => {
            let c = params.dims()[1] / 2;
            params
                .narrow(1, 0, c)
                .add_scalar(1.0)
                .div_scalar(2.0)
                .clamp(0.0, 1.0)
        }
    }
}
