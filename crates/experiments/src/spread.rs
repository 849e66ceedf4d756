//! The spread of a number over seeds: mean, sample standard deviation and the values.

use serde::{Deserialize, Serialize};

/// Mean, sample standard deviation and the per-seed values of one number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Mean over seeds.
    pub mean: f64,
    /// Sample standard deviation over seeds (0 for one seed).
    pub sd: f64,
    /// The value of each seed, in the order of `seeds`.
    pub values: Vec<f64>,
}

impl Spread {
    /// The spread of `values`.
    pub fn of(values: Vec<f64>) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n.max(1.0);
        let sd = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Self { mean, sd, values }
    }

    /// `mean +- sd` with `digits` decimals (scaled by `scale`, e.g. 100 for percent).
    pub fn show(&self, scale: f64, digits: usize) -> String {
        format!(
            "{:.*} +- {:.*}",
            digits,
            scale * self.mean,
            digits,
            scale * self.sd
        )
    }

    /// Whether `self` and `other` differ by more than the sum of their standard
    /// deviations (a difference inside the spread is no difference).
    pub fn differs_from(&self, other: &Spread) -> bool {
        (self.mean - other.mean).abs() > self.sd + other.sd
    }
}
