//! The contract between a model and the thermodynamics: a system in contact with
//! data at multipliers (lambda, gamma).

use crate::equilibrium::rule::{Equilibrium, StoppingRule};
use crate::error::Result;
pub use crate::values::{Functional, Functionals, Multipliers, Weights, check_data_position};

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
    /// reached (or its budget is spent), and report what was measured.
    /// [`crate::equilibrium::equilibrate_by_rule`] does it for fixed steps and the
    /// gradient-norm rule through `equilibrate` and `gradient`; systems with stochastic
    /// optimisers implement the stationarity test themselves.
    fn equilibrate_until(
        &mut self,
        multipliers: Multipliers,
        rule: &StoppingRule,
    ) -> Result<Equilibrium>;
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
