//! Shared fixtures: random exact problems.

#![allow(dead_code)]

use burn::backend::Autodiff;
use fep_thermo::exact::{ExactConfig, ExactModelConfig, ExactTrainingConfig, GaussianDataConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The backend of the Burn-model tests: flex by default, a GPU backend with
/// `--features test-cuda` or `--features test-wgpu` (the same tests on every backend).
#[cfg(not(any(feature = "test-cuda", feature = "test-wgpu")))]
pub type B = Autodiff<burn::backend::Flex>;
/// The backend of the Burn-model tests (CUDA).
#[cfg(feature = "test-cuda")]
pub type B = Autodiff<burn::backend::Cuda>;
/// The backend of the Burn-model tests (wgpu, the best adapter).
#[cfg(all(feature = "test-wgpu", not(feature = "test-cuda")))]
pub type B = Autodiff<burn::backend::Wgpu>;

/// Whether the tests run on wgpu, whose software device (llvmpipe, what `just test-wgpu`
/// uses without a GPU) takes about 70 ms per Adam step of the exact model, each a string of
/// tiny kernels: there the tests that train take their first instance and point only,
/// with the same tolerances.
pub const SOFTWARE_SIZED: bool = cfg!(feature = "test-wgpu");

/// The first item of `items` when [`SOFTWARE_SIZED`], all of them otherwise.
pub fn sized<T: Clone>(items: &[T]) -> Vec<T> {
    if SOFTWARE_SIZED {
        items[..1].to_vec()
    } else {
        items.to_vec()
    }
}

/// A random symmetric positive definite matrix `L L' + 0.3 I` (n x n) and a random
/// m x n regression matrix, so that W'W is not proportional to I.
pub fn random_data(rng: &mut ChaCha8Rng, n: usize, m: usize) -> GaussianDataConfig {
    let l: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect())
        .collect();
    let sigma = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    (0..n).map(|k| l[i][k] * l[j][k]).sum::<f64>() + if i == j { 0.3 } else { 0.0 }
                })
                .collect()
        })
        .collect();
    let w = (0..m)
        .map(|_| (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect())
        .collect();
    GaussianDataConfig {
        sigma,
        w,
        noise_std: 0.2 + 0.3 * rng.random::<f64>(),
    }
}

pub fn random_config(seed: u64, n: usize, m: usize) -> ExactConfig {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = random_data(&mut rng, n, m);
    // The target: a perturbed copy of the source, so that C can be held all the way.
    let shift = random_data(&mut rng, n, m);
    let target = GaussianDataConfig {
        sigma: data
            .sigma
            .iter()
            .zip(&shift.sigma)
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x + 0.2 * y).collect())
            .collect(),
        w: data
            .w
            .iter()
            .zip(&shift.w)
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x + 0.15 * y).collect())
            .collect(),
        noise_std: data.noise_std,
    };
    ExactConfig {
        data,
        model: ExactModelConfig {
            sigma0: 0.5,
            sigmac: 0.7,
            latent_dim: n,
            seed,
        },
        target: Some(target),
        training: ExactTrainingConfig::default(),
    }
}

/// A standard normal draw (Box-Muller).
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random::<f64>();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// A random instance of the documented shape: `sigma = L L' + 0.3 I` with L standard
/// normal (n x n), W standard normal (m x n), `noise_std = 0.25`, `sigma0 = 0.6`,
/// `sigmac = 0.8`, `latent_dim = n`, model seed = `seed`, no target.
pub fn normal_instance(seed: u64, n: usize, m: usize) -> ExactConfig {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let l: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..n).map(|_| normal(&mut rng)).collect())
        .collect();
    let sigma = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    (0..n).map(|k| l[i][k] * l[j][k]).sum::<f64>() + if i == j { 0.3 } else { 0.0 }
                })
                .collect()
        })
        .collect();
    let w = (0..m)
        .map(|_| (0..n).map(|_| normal(&mut rng)).collect())
        .collect();
    ExactConfig {
        data: GaussianDataConfig {
            sigma,
            w,
            noise_std: 0.25,
        },
        model: ExactModelConfig {
            sigma0: 0.6,
            sigmac: 0.8,
            latent_dim: n,
            seed,
        },
        target: None,
        training: ExactTrainingConfig::default(),
    }
}

pub fn example_config() -> ExactConfig {
    ExactConfig::from_toml_str(
        r#"
[data]
sigma = [[2.0, 0.3], [0.3, 1.0]]
w = [[1.0, -0.5]]
noise_std = 0.3
[model]
sigma0 = 0.5
sigmac = 0.7
latent_dim = 2
seed = 7
"#,
    )
    .expect("example config parses")
}
