//! The driven variables of a process: lambda and the data position t as functions
//! of the path parameter s in [0, 1].

use serde::{Deserialize, Serialize};

/// The driven variables: `lambda(s) = lambda_0 + (lambda_1 - lambda_0) s` and
/// `t(s) = t_0 + (t_1 - t_0) s^p`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProcessPath {
    /// lambda at s = 0.
    pub lambda_start: f64,
    /// lambda at s = 1.
    pub lambda_end: f64,
    /// Data position t at s = 0.
    pub data_start: f64,
    /// Data position t at s = 1.
    pub data_end: f64,
    /// `t(s) = t_0 + (t_1 - t_0) s^p`: p = 1 moves the data uniformly; p > 1 spends the
    /// early steps at tiny t, where a new target must be learnt before its weight grows.
    #[serde(default = "one")]
    pub data_exponent: f64,
}

fn one() -> f64 {
    1.0
}

impl ProcessPath {
    /// lambda from `a` to `b` on fixed data (t = 0).
    pub fn lambda_only(a: f64, b: f64) -> Self {
        Self {
            lambda_start: a,
            lambda_end: b,
            data_start: 0.0,
            data_end: 0.0,
            data_exponent: 1.0,
        }
    }

    /// Data from source (t = 0) to target (t = 1) while lambda moves from `a` to `b`.
    pub fn transfer(a: f64, b: f64) -> Self {
        Self {
            lambda_start: a,
            lambda_end: b,
            data_start: 0.0,
            data_end: 1.0,
            data_exponent: 1.0,
        }
    }

    /// The same path with `t(s) = t_0 + (t_1 - t_0) s^p`.
    pub fn with_data_exponent(mut self, p: f64) -> Self {
        self.data_exponent = p;
        self
    }

    /// `lambda(s)`.
    pub fn lambda(&self, s: f64) -> f64 {
        self.lambda_start + s * (self.lambda_end - self.lambda_start)
    }

    /// `t(s)` (s clamped to [0, 1]).
    pub fn data(&self, s: f64) -> f64 {
        self.data_start
            + s.clamp(0.0, 1.0).powf(self.data_exponent) * (self.data_end - self.data_start)
    }

    /// `dt/ds = p s^(p-1) (t_1 - t_0)` at s.
    pub fn data_rate(&self, s: f64) -> f64 {
        let p = self.data_exponent;
        let ds = if p == 1.0 {
            1.0
        } else {
            p * s.clamp(0.0, 1.0).powf(p - 1.0)
        };
        ds * (self.data_end - self.data_start)
    }

    /// Whether the data distribution moves along the path (`t_1 != t_0`).
    pub fn moves_data(&self) -> bool {
        self.data_end != self.data_start
    }
}
