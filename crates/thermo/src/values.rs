//! The values a thermodynamic system is described by: the multipliers (lambda, gamma), the
//! functionals (R, D, C) with the free energy, and linear combinations of the functionals.

use serde::{Deserialize, Serialize};

use crate::error::{Result, ThermoError};

/// The intensive variables of the Lagrangian `J = R + lambda * D + gamma * C`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Multipliers {
    /// Multiplier of the distortion D (inverse of the beta of a beta-VAE).
    pub lambda: f64,
    /// Multiplier of the classification loss C.
    pub gamma: f64,
}

impl Multipliers {
    /// Multipliers (lambda, gamma).
    pub fn new(lambda: f64, gamma: f64) -> Self {
        Self { lambda, gamma }
    }

    /// The weights (1, lambda, gamma) of J in the basis (R, D, C).
    pub fn lagrangian_weights(&self) -> Weights {
        Weights {
            rate: 1.0,
            distortion: self.lambda,
            classification: self.gamma,
        }
    }
}

/// The extensive variables in nats per example: rate R, distortion D, classification loss C.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Functionals {
    /// `R = E_p KL(e(z|x) || m(z))`.
    pub rate: f64,
    /// `D = E_p E_e [-log d(x|z)]`.
    pub distortion: f64,
    /// `C = E_p E_e [-log c(y|z)]`.
    pub classification: f64,
}

impl Functionals {
    /// `J = R + lambda D + gamma C`.
    pub fn lagrangian(&self, m: Multipliers) -> f64 {
        self.rate + m.lambda * self.distortion + m.gamma * self.classification
    }

    /// The mixture `(1 - t) a + t b`, entry by entry (functionals are linear in the
    /// data distribution at fixed parameters, so this is their value on `p_t`).
    pub fn mix(t: f64, a: &Functionals, b: &Functionals) -> Functionals {
        Functionals {
            rate: (1.0 - t) * a.rate + t * b.rate,
            distortion: (1.0 - t) * a.distortion + t * b.distortion,
            classification: (1.0 - t) * a.classification + t * b.classification,
        }
    }

    /// The difference `self - other`, entry by entry.
    pub fn sub(&self, other: &Functionals) -> Functionals {
        Functionals {
            rate: self.rate - other.rate,
            distortion: self.distortion - other.distortion,
            classification: self.classification - other.classification,
        }
    }

    /// The functional a constraint acts on.
    pub fn get(&self, which: Functional) -> f64 {
        match which {
            Functional::Rate => self.rate,
            Functional::Distortion => self.distortion,
            Functional::Classification => self.classification,
        }
    }

    /// Error naming the first non-finite functional, if any.
    pub fn check_finite(&self, m: Multipliers) -> Result<()> {
        for (what, value) in [
            ("rate", self.rate),
            ("distortion", self.distortion),
            ("classification loss", self.classification),
        ] {
            if !value.is_finite() {
                return Err(ThermoError::NonFinite {
                    what: what.into(),
                    lambda: m.lambda,
                    gamma: m.gamma,
                    value,
                });
            }
        }
        Ok(())
    }
}

/// Error unless `t` is a position of the data path, `0 <= t <= 1`.
pub fn check_data_position(t: f64) -> Result<()> {
    if (0.0..=1.0).contains(&t) {
        Ok(())
    } else {
        Err(ThermoError::InvalidConfig(format!(
            "data position must lie in [0, 1], got {t}"
        )))
    }
}

/// One of the three functionals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Functional {
    /// The rate R.
    Rate,
    /// The distortion D.
    Distortion,
    /// The classification loss C.
    Classification,
}

/// Coefficients of a linear combination `w_R R + w_D D + w_C C`, whose parameter
/// gradient a [`ThermodynamicSystem`] returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Coefficient of R.
    pub rate: f64,
    /// Coefficient of D.
    pub distortion: f64,
    /// Coefficient of C.
    pub classification: f64,
}

impl Weights {
    /// The weights that pick a single functional.
    pub fn only(which: Functional) -> Self {
        let mut w = Weights {
            rate: 0.0,
            distortion: 0.0,
            classification: 0.0,
        };
        match which {
            Functional::Rate => w.rate = 1.0,
            Functional::Distortion => w.distortion = 1.0,
            Functional::Classification => w.classification = 1.0,
        }
        w
    }
}
