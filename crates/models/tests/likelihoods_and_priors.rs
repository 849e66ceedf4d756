//! Decoders' negative log-likelihoods and priors' KL against values computed by hand
//! (scalar f64 formulas, independent of the tensor code).

mod common;

use burn::module::Param;
use burn::tensor::{Tensor, TensorData};
use fep_models::likelihood::{
    bernoulli_nll, discretized_logistic_nll, gaussian_nll, gaussian_nll_constant,
};
use fep_models::prior::{MixturePrior, kl_standard_normal, posterior_log_density};

use common::{Inner as B, device as dev};

fn t4(values: &[f32], shape: [usize; 4]) -> Tensor<B, 4> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), &dev())
}

fn host1(t: Tensor<B, 1>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn bernoulli_nll_matches_hand_computation() {
    let logits = [0.0, 2.0, -1.0, 3.0, -30.0, 40.0];
    let x = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0];
    let got = host1(bernoulli_nll(
        t4(&logits.map(|v| v as f32), [1, 1, 2, 3]),
        t4(&x.map(|v| v as f32), [1, 1, 2, 3]),
    ));
    // -log p = -[x log sigma(l) + (1 - x) log(1 - sigma(l))], with exact tails.
    let expected: f64 = logits
        .iter()
        .zip(&x)
        .map(|(&l, &xi): (&f64, &f64)| {
            let log_p1 = -(1.0 + (-l).exp()).ln(); // log sigma(l)
            let log_p0 = -(1.0 + l.exp()).ln(); // log (1 - sigma(l))
            -(xi * log_p1 + (1.0 - xi) * log_p0)
        })
        .sum();
    assert!(
        (got[0] - expected).abs() < 1e-4 * expected,
        "{} vs {expected}",
        got[0]
    );
    // The first four pixels alone: ln 2 + softplus(2) + softplus(-1) + softplus(3) - 3.
    let four = host1(bernoulli_nll(
        t4(&[0.0, 2.0, -1.0, 3.0], [1, 1, 2, 2]),
        t4(&[1.0, 0.0, 0.0, 1.0], [1, 1, 2, 2]),
    ));
    assert!((four[0] - 3.181_924).abs() < 1e-5, "{}", four[0]);
}

#[test]
fn gaussian_nll_matches_hand_computation() {
    let mean = [0.2f32, 0.9, 0.5, 0.0];
    let x = [0.0f32, 1.0, 0.5, 1.0];
    let sigma = 0.3;
    let got = host1(gaussian_nll(
        t4(&mean, [1, 1, 2, 2]),
        t4(&x, [1, 1, 2, 2]),
        sigma,
    ))[0];
    let sse: f64 = mean
        .iter()
        .zip(&x)
        .map(|(&m, &v)| (v as f64 - m as f64).powi(2))
        .sum();
    let expected =
        sse / (2.0 * sigma * sigma) + 2.0 * (2.0 * std::f64::consts::PI * sigma * sigma).ln();
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    // With sigma^2 = 1/2 the NLL is the summed squared error plus (n/2) log(pi).
    let half = host1(gaussian_nll(
        t4(&mean, [1, 1, 2, 2]),
        t4(&x, [1, 1, 2, 2]),
        0.5f64.sqrt(),
    ))[0];
    assert!((half - (sse + 2.0 * std::f64::consts::PI.ln())).abs() < 1e-5);
    assert!(
        (gaussian_nll_constant(4, 0.5f64.sqrt()) - 2.0 * std::f64::consts::PI.ln()).abs() < 1e-12
    );
}

#[test]
fn discretized_logistic_matches_hand_computation() {
    // Pixels 0, 128 and 255 (edges and an interior bin), mean and log-scale per pixel.
    let x_bytes = [0.0f64, 128.0, 255.0, 64.0];
    let mu = [-0.9f64, 0.1, 0.8, -0.5];
    let log_s = [-2.0f64, -3.0, -1.5, -4.0];
    let x: Vec<f32> = x_bytes.iter().map(|&b| (b / 255.0) as f32).collect();
    let got = host1(discretized_logistic_nll(
        t4(&mu.map(|v| v as f32), [1, 1, 2, 2]),
        t4(&log_s.map(|v| v as f32), [1, 1, 2, 2]),
        t4(&x, [1, 1, 2, 2]),
    ))[0];
    let mut expected = 0.0;
    for i in 0..4 {
        let xv = 2.0 * x_bytes[i] / 255.0 - 1.0;
        let s = log_s[i].exp();
        let upper = sigmoid((xv + 1.0 / 255.0 - mu[i]) / s);
        let lower = sigmoid((xv - 1.0 / 255.0 - mu[i]) / s);
        let p = if x_bytes[i] == 0.0 {
            upper
        } else if x_bytes[i] == 255.0 {
            1.0 - lower
        } else {
            upper - lower
        };
        expected -= p.ln();
    }
    assert!(
        (got - expected).abs() < 1e-3 * expected.abs().max(1.0),
        "{got} vs {expected}"
    );
    // Probabilities of all 256 bins of one sub-pixel sum to one.
    let all: Vec<f32> = (0..256).map(|b| b as f32 / 255.0).collect();
    let nll = host1(discretized_logistic_nll(
        Tensor::<B, 4>::full([256, 1, 1, 1], 0.05, &dev()),
        Tensor::<B, 4>::full([256, 1, 1, 1], -2.5, &dev()),
        t4(&all, [256, 1, 1, 1]),
    ));
    let total: f64 = nll.iter().map(|v| (-v).exp()).sum();
    assert!(
        (total - 1.0).abs() < 1e-4,
        "bin probabilities sum to {total}"
    );
}

#[test]
fn kl_to_standard_normal_matches_closed_form() {
    let mean = [0.5f32, -1.0, 0.0];
    let log_var = [0.0f32, (0.25f32).ln(), (2.0f32).ln()];
    let m = Tensor::<B, 2>::from_data(TensorData::new(mean.to_vec(), [1, 3]), &dev());
    let v = Tensor::<B, 2>::from_data(TensorData::new(log_var.to_vec(), [1, 3]), &dev());
    let got = host1(kl_standard_normal(m, v))[0];
    // 1/2 sum (mu^2 + s^2 - 1 - ln s^2): (0.25 + 1 - 1 - 0) + (1 + 0.25 - 1 - ln 0.25) + (0 + 2 - 1 - ln 2)
    let expected = 0.5 * (0.25 + (0.25 - 0.25f64.ln()) + (1.0 - 2.0f64.ln()));
    assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
}

#[test]
fn monte_carlo_kl_of_mixture_prior_converges_to_quadrature() {
    // Prior: 0.3 N(-1, 0.5^2) + 0.7 N(1.5, 0.8^2); posterior N(0.3, 0.6^2), all 1-D.
    let (w, mus, sds) = ([0.3f64, 0.7], [-1.0f64, 1.5], [0.5f64, 0.8]);
    let prior = MixturePrior::<B> {
        means: Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![-1.0f32, 1.5], [2, 1]),
            &dev(),
        )),
        log_vars: Param::from_tensor(Tensor::from_data(
            TensorData::new(
                sds.iter()
                    .map(|s| (2.0 * s.ln()) as f32)
                    .collect::<Vec<_>>(),
                [2, 1],
            ),
            &dev(),
        )),
        logits: Param::from_tensor(Tensor::from_data(
            TensorData::new(w.iter().map(|v| v.ln() as f32).collect::<Vec<_>>(), [2]),
            &dev(),
        )),
    };
    let (q_mu, q_sd) = (0.3f64, 0.6f64);
    let normal = |x: f64, m: f64, s: f64| {
        (-(x - m).powi(2) / (2.0 * s * s)).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
    };
    // Quadrature: trapezoid on [-10, 10] with 200k intervals.
    let steps = 200_000;
    let h = 20.0 / steps as f64;
    let mut kl = 0.0;
    for i in 0..=steps {
        let x = -10.0 + i as f64 * h;
        let q = normal(x, q_mu, q_sd);
        if q < 1e-300 {
            continue;
        }
        let m = w[0] * normal(x, mus[0], sds[0]) + w[1] * normal(x, mus[1], sds[1]);
        let weight = if i == 0 || i == steps { 0.5 } else { 1.0 };
        kl += weight * h * q * (q / m).ln();
    }
    // Monte Carlo on S reparameterised samples, as the model does.
    let s = 200_000;
    let eps = fep_models::noise::standard_normal(11, 0, 0, s);
    let noise = Tensor::<B, 3>::from_data(TensorData::new(eps.clone(), [s, 1, 1]), &dev());
    let log_var = Tensor::<B, 2>::from_data(
        TensorData::new(vec![(2.0 * q_sd.ln()) as f32], [1, 1]),
        &dev(),
    );
    let z: Vec<f32> = eps
        .iter()
        .map(|&e| (q_mu + q_sd * e as f64) as f32)
        .collect();
    let z = Tensor::<B, 2>::from_data(TensorData::new(z, [s, 1]), &dev());
    let log_q = host1(posterior_log_density(log_var, noise).reshape([s]));
    let log_m = host1(prior.log_density(z));
    let terms: Vec<f64> = log_q.iter().zip(&log_m).map(|(a, b)| a - b).collect();
    let mean = terms.iter().sum::<f64>() / s as f64;
    let var = terms.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / s as f64;
    let stderr = (var / s as f64).sqrt();
    assert!(
        (mean - kl).abs() < 4.0 * stderr + 1e-4,
        "MC KL {mean} +- {stderr} vs quadrature {kl}"
    );
    assert!(kl > 0.05, "a non-trivial KL: {kl}");
}
