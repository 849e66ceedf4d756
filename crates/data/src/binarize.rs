//! Turning 8-bit pixels into model inputs: intensities in [0, 1] or binary {0, 1} values.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How pixel bytes `p` become floats.
///
/// * `None`: `x = p / 255` in [0, 1].
/// * `Static`: `x = 1` if `p / 255 > 0.5` (that is `p >= 128`), else 0. The same every epoch.
/// * `Dynamic { seed }`: `x ~ Bernoulli(p / 255)`, drawn afresh each epoch. The draws for an
///   image come from a ChaCha8 stream keyed by `(seed, epoch, example index)`, so they are
///   reproducible and do not depend on batch composition, order or thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Binarization {
    /// Keep grey levels: `p / 255`.
    #[default]
    None,
    /// Threshold at one half: `p / 255 > 0.5`.
    Static,
    /// Seeded Bernoulli sampling with probability `p / 255`.
    Dynamic {
        /// Base seed of the per-(epoch, example) random streams.
        seed: u64,
    },
}

impl Binarization {
    /// Appends the converted `pixels` of example `index` in epoch `epoch` to `out`.
    pub fn extend_into(&self, pixels: &[u8], epoch: u64, index: usize, out: &mut Vec<f32>) {
        match *self {
            Binarization::None => out.extend(pixels.iter().map(|&p| f32::from(p) / 255.0)),
            Binarization::Static => {
                out.extend(pixels.iter().map(|&p| if p >= 128 { 1.0 } else { 0.0 }))
            }
            Binarization::Dynamic { seed } => {
                let mut rng = example_rng(seed, epoch, index as u64);
                // P(u < p) = p / 255 exactly for u uniform on {0, ..., 254}.
                out.extend(pixels.iter().map(|&p| {
                    let u: u8 = rng.random_range(0..255);
                    if u < p { 1.0 } else { 0.0 }
                }));
            }
        }
    }

    /// Converts the `pixels` of example `index` in epoch `epoch` into a new vector.
    pub fn apply(&self, pixels: &[u8], epoch: u64, index: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(pixels.len());
        self.extend_into(pixels, epoch, index, &mut out);
        out
    }
}

/// The ChaCha8 stream used for example `index` in `epoch` under `seed`.
///
/// The 32-byte key is `seed || epoch || index || tag`, so distinct triples never share a stream.
pub(crate) fn example_rng(seed: u64, epoch: u64, index: u64) -> ChaCha8Rng {
    keyed_rng(seed, epoch, index, *b"fepbinrz")
}

/// A ChaCha8 generator keyed by three integers and an 8-byte domain tag.
pub(crate) fn keyed_rng(a: u64, b: u64, c: u64, tag: [u8; 8]) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&a.to_le_bytes());
    key[8..16].copy_from_slice(&b.to_le_bytes());
    key[16..24].copy_from_slice(&c.to_le_bytes());
    key[24..].copy_from_slice(&tag);
    ChaCha8Rng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_threshold_is_half() {
        let out = Binarization::Static.apply(&[0, 127, 128, 255], 0, 0);
        assert_eq!(out, vec![0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn none_scales_to_unit_interval() {
        let out = Binarization::None.apply(&[0, 51, 255], 0, 0);
        assert_eq!(out, vec![0.0, 0.2, 1.0]);
    }

    #[test]
    fn dynamic_is_reproducible_and_has_right_mean() {
        let b = Binarization::Dynamic { seed: 42 };
        let pixels = vec![64u8; 20_000];
        let a1 = b.apply(&pixels, 3, 7);
        let a2 = b.apply(&pixels, 3, 7);
        assert_eq!(a1, a2);
        assert_ne!(a1, b.apply(&pixels, 4, 7), "a new epoch draws new noise");
        assert_ne!(
            a1,
            b.apply(&pixels, 3, 8),
            "another example draws other noise"
        );
        let mean = a1.iter().sum::<f32>() as f64 / a1.len() as f64;
        // p = 64/255 = 0.251, sd of the mean = sqrt(p(1-p)/n) = 0.0031.
        assert!((mean - 64.0 / 255.0).abs() < 0.015, "{mean}");
        // Extremes are deterministic.
        assert!(b.apply(&[0; 100], 0, 0).iter().all(|&x| x == 0.0));
        assert!(b.apply(&[255; 100], 0, 0).iter().all(|&x| x == 1.0));
    }
}
