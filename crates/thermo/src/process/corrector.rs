//! The corrector of a continuation step: restore the constraint `G = G0` after the
//! predictor by Newton steps on gamma.

use tracing::debug;

use super::bounds::{GammaBounds, TrustRegion};
use super::constraint::Constraint;
use super::predictor::Tangent;
use crate::equilibrium::{Equilibrium, EquilibriumReport, StoppingRule};
use crate::error::{Result, ThermoError};
use crate::system::{Functionals, Multipliers, ThermodynamicSystem};
use crate::vector::axpy;

/// How a step restores its constraint after the predictor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Corrector {
    /// No correction: the predicted point, re-equilibrated, is accepted as it is
    /// (the paper's Euler scheme).
    None,
    /// Newton on gamma with secant refinement ([`NewtonSecant`]).
    NewtonSecant(NewtonSecant),
}

impl Corrector {
    /// Error unless the settings are valid.
    pub fn validate(&self) -> Result<()> {
        match self {
            Corrector::None => Ok(()),
            Corrector::NewtonSecant(n) => n.validate(),
        }
    }
}

/// Newton iteration on gamma for `r(gamma) = G(gamma) - G0 = 0`, each iterate
/// re-equilibrated: `dgamma = -r / r'`, where the slope `r'` starts as the tangent's
/// `dG/dgamma = -g_G.x_C` and is replaced by the secant
/// `(r_k - r_{k-1}) / (gamma_k - gamma_{k-1})` whenever that has the same sign; the
/// parameters move with `dtheta = (dtheta/dgamma) dgamma` before re-equilibration.
/// Each step keeps gamma within a factor `max_growth_factor` of its scale
/// `max(|gamma|, 0.1)`, inside the trust region and inside the gamma bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewtonSecant {
    /// Converged when `|G - G0| <= relative_tolerance |G0|`.
    pub relative_tolerance: f64,
    /// Newton iterations before the corrector reports failure.
    pub max_iterations: usize,
    /// Limits of each Newton move.
    pub trust: TrustRegion,
    /// With `limit = max(|gamma|, 0.1)`, one step lies in
    /// `[-(1 - 1/factor) limit, (factor - 1) limit]` (2: gamma at most doubles or halves).
    pub max_growth_factor: f64,
}

impl Default for NewtonSecant {
    fn default() -> Self {
        Self {
            relative_tolerance: 1e-4,
            max_iterations: 6,
            trust: TrustRegion::NONE,
            max_growth_factor: 2.0,
        }
    }
}

/// What a corrector did.
#[derive(Debug, Clone, PartialEq)]
pub struct Correction {
    /// The corrected multipliers (lambda unchanged).
    pub multipliers: Multipliers,
    /// Functionals at the corrected, re-equilibrated point.
    pub functionals: Functionals,
    /// Newton iterations taken.
    pub iterations: usize,
    /// The equilibrations of the point: the predictor's, then every iteration's.
    pub equilibrium: EquilibriumReport,
    /// Why the constraint is still violated, if it is.
    pub failure: Option<String>,
}

impl Correction {
    /// The predicted point, equilibrated as `equilibrium` says, taken as it is (no
    /// corrector, or nothing to solve).
    pub fn uncorrected(multipliers: Multipliers, equilibrium: Equilibrium) -> Self {
        Self {
            multipliers,
            functionals: equilibrium.functionals,
            iterations: 0,
            equilibrium: equilibrium.report,
            failure: None,
        }
    }

    /// Whether the corrector met its tolerance.
    pub fn converged(&self) -> bool {
        self.failure.is_none()
    }
}

impl NewtonSecant {
    /// Error unless `tolerance >= 0`, `max_growth_factor > 1` and the trust region is valid.
    pub fn validate(&self) -> Result<()> {
        if self.relative_tolerance.is_nan() || self.relative_tolerance < 0.0 {
            return Err(ThermoError::InvalidConfig(format!(
                "corrector relative_tolerance must be non-negative, got {}",
                self.relative_tolerance
            )));
        }
        if self.max_growth_factor.is_nan() || self.max_growth_factor <= 1.0 {
            return Err(ThermoError::InvalidConfig(format!(
                "corrector max_growth_factor must exceed 1, got {}",
                self.max_growth_factor
            )));
        }
        self.trust.validate()
    }

    /// Correct the predicted point `trial` (the system equilibrated there as `predicted`
    /// reports) until `|G - G0| <= relative_tolerance |G0|` or `max_iterations` are spent.
    /// Each iterate is re-equilibrated until `rule` says so; the correction's report
    /// chains the predictor's and every iteration's.
    #[allow(clippy::too_many_arguments)]
    pub fn correct<S: ThermodynamicSystem + ?Sized>(
        &self,
        system: &mut S,
        constraint: &dyn Constraint,
        target: f64,
        trial: Multipliers,
        predicted: Equilibrium,
        tangent: &Tangent,
        bounds: GammaBounds,
        rule: &StoppingRule,
    ) -> Result<Correction> {
        let which = constraint.monitored();
        let tolerance = self.relative_tolerance * target.abs().max(f64::MIN_POSITIVE);
        let mut trial = trial;
        let mut f = predicted.functionals;
        let mut report = predicted.report;
        let mut iterations = 0;
        let mut slope = tangent.monitored_per_gamma;
        let mut previous: Option<(f64, f64)> = None;
        let upper = self.max_growth_factor - 1.0;
        let lower = 1.0 - 1.0 / self.max_growth_factor;
        let failure = loop {
            let residual = constraint.residual(&f, target);
            debug!(
                iterations,
                gamma = trial.gamma,
                value = f.get(which),
                target,
                "corrector"
            );
            if residual.abs() <= tolerance {
                break None;
            }
            if iterations >= self.max_iterations {
                break Some(format!(
                    "{which:?} still off by {:.3e} (relative) after {iterations} corrector iterations",
                    residual / target.abs()
                ));
            }
            if let Some((g_prev, r_prev)) = previous {
                let secant = (residual - r_prev) / (trial.gamma - g_prev);
                if secant.is_finite() && secant * slope > 0.0 {
                    slope = secant;
                }
            }
            previous = Some((trial.gamma, residual));
            let limit = trial.gamma.abs().max(0.1);
            let mut delta_gamma = (-residual / slope).clamp(-lower * limit, upper * limit);
            let mut theta = system.params()?;
            let dtheta: Vec<f64> = tangent
                .theta_per_gamma
                .iter()
                .map(|v| v * delta_gamma)
                .collect();
            let mut scale = self.trust.scale(trial.gamma, delta_gamma, &theta, &dtheta);
            if delta_gamma > 0.0 && trial.gamma + scale * delta_gamma > bounds.max {
                scale = ((bounds.max - trial.gamma) / delta_gamma).max(0.0);
            }
            if delta_gamma < 0.0 && trial.gamma + scale * delta_gamma < bounds.min {
                scale = ((bounds.min - trial.gamma) / delta_gamma).max(0.0);
            }
            delta_gamma *= scale;
            axpy(scale, &dtheta, &mut theta);
            system.set_params(&theta)?;
            trial.gamma += delta_gamma;
            let eq = system.equilibrate_until(trial, rule)?;
            f = eq.functionals;
            report = report.then(eq.report);
            f.check_finite(trial)?;
            iterations += 1;
        };
        Ok(Correction {
            multipliers: trial,
            functionals: f,
            iterations,
            equilibrium: report,
            failure,
        })
    }
}
