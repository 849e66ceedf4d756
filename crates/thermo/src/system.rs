//! The contract between a model and the thermodynamics: a system in contact with
//! data at multipliers (lambda, gamma).

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

    /// `w_R R + w_D D + w_C C`.
    pub fn combine(&self, w: Weights) -> f64 {
        w.rate * self.rate + w.distortion * self.distortion + w.classification * self.classification
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

/// A model in contact with data: it reports R, D, C (nats per example) and their
/// parameter gradients on a data distribution p_t, and relaxes towards the
/// equilibrium `argmin_theta R + lambda D + gamma C` by optimiser steps.
///
/// The data distribution is the point `t` in [0, 1] of a data path from a source
/// p_0 to a target p_1 (the mixture `p_t = (1 - t) p_0 + t p_1` by default);
/// systems without a target keep `t = 0`.
///
/// Gradients and functionals must be deterministic functions of the parameters
/// (fixed evaluation data and fixed noise, "common random numbers"), so that
/// finite differences of gradients are Hessian-vector products.
pub trait ThermodynamicSystem {
    /// Number of scalar parameters theta.
    fn num_params(&self) -> usize;

    /// The parameter vector theta.
    fn params(&self) -> Result<Vec<f64>>;

    /// Replace the parameter vector theta (the optimiser state is kept).
    fn set_params(&mut self, theta: &[f64]) -> Result<()>;

    /// Position t of the data path.
    fn data_position(&self) -> f64;

    /// Move the data distribution to p_t.
    fn set_data_position(&mut self, t: f64) -> Result<()>;

    /// R, D, C at the current parameters on p_t (deterministic evaluation).
    fn functionals(&mut self) -> Result<Functionals>;

    /// R, D, C and the parameter gradient of `w_R R + w_D D + w_C C` on p_t.
    fn gradient(&mut self, weights: Weights) -> Result<(Functionals, Vec<f64>)>;

    /// Take `steps` optimiser steps on `J = R + lambda D + gamma C` on p_t and
    /// return the functionals afterwards.
    fn equilibrate(&mut self, multipliers: Multipliers, steps: usize) -> Result<Functionals>;

    /// Relax towards the equilibrium at `multipliers` on p_t until `rule` says it is
    /// reached (or its budget is spent), and report what was measured. The default
    /// ([`crate::equilibrium::equilibrate_by_rule`]) handles fixed steps and the
    /// gradient-norm rule; systems with stochastic optimisers implement the
    /// stationarity test.
    fn equilibrate_until(
        &mut self,
        multipliers: Multipliers,
        rule: &crate::equilibrium::StoppingRule,
    ) -> Result<crate::equilibrium::Equilibrium> {
        crate::equilibrium::equilibrate_by_rule(self, multipliers, rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_positions_outside_the_path_are_refused() {
        for t in [0.0, 0.25, 1.0] {
            assert!(check_data_position(t).is_ok(), "{t}");
        }
        for t in [-1e-9, 1.0 + 1e-9, f64::NAN, f64::INFINITY] {
            let err = check_data_position(t).expect_err("outside [0, 1]");
            assert!(err.to_string().contains("[0, 1]"), "{err}");
        }
    }
}
