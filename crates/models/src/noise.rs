//! Reproducible Gaussian noise for the reparameterised latent samples.
//!
//! Noise is drawn on the host from a ChaCha8 stream keyed by `(seed, stream, counter)`
//! (for training, the counter is the optimiser step), so a run is a function of its seed
//! on every backend and a resumed run draws exactly the noise it would have drawn.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Stream of the training steps.
pub const TRAIN_STREAM: u64 = 1;
/// Stream of the fixed evaluation noise.
pub const EVAL_STREAM: u64 = 2;
/// Stream of the fixed noise of a thermodynamic system's probe set.
pub const PROBE_STREAM: u64 = 3;
/// Stream of generated samples.
pub const SAMPLE_STREAM: u64 = 4;
/// Stream of the fresh noise of measurements apart from training ([`crate::measure`]).
pub const MEASURE_STREAM: u64 = 5;

/// SplitMix64 finaliser: decorrelates nearby keys.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// `len` draws of N(0, 1) for key `(seed, stream, counter)`.
pub fn standard_normal(seed: u64, stream: u64, counter: u64, len: usize) -> Vec<f32> {
    let key = mix(mix(mix(seed) ^ stream) ^ counter);
    let mut rng = ChaCha8Rng::seed_from_u64(key);
    (0..len)
        .map(|_| {
            let v: f64 = StandardNormal.sample(&mut rng);
            v as f32
        })
        .collect()
}

/// A permutation of `0..n` for key `(seed, epoch)` (Fisher-Yates).
pub fn permutation(seed: u64, epoch: u64, n: usize) -> Vec<usize> {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(mix(mix(seed ^ 0x5EED) ^ epoch));
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        p.swap(i, j);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_keyed_and_standard() {
        let a = standard_normal(7, TRAIN_STREAM, 3, 20_000);
        assert_eq!(a, standard_normal(7, TRAIN_STREAM, 3, 20_000));
        assert_ne!(a[..10], standard_normal(7, TRAIN_STREAM, 4, 10)[..]);
        assert_ne!(a[..10], standard_normal(7, EVAL_STREAM, 3, 10)[..]);
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
        let var = a.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / a.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }

    #[test]
    fn permutation_is_a_permutation() {
        let p = permutation(1, 2, 1000);
        let mut s = p.clone();
        s.sort_unstable();
        assert_eq!(s, (0..1000).collect::<Vec<_>>());
        assert_ne!(p, permutation(1, 3, 1000));
        assert_eq!(p, permutation(1, 2, 1000));
    }
}
