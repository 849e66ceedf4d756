//! The settings of the predictor-corrector continuation in one flat struct (defaults from
//! its parts, [`NewtonSecant`] and [`AdaptiveStep`]), and the integrators by name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::bounds::{GammaBounds, TrustRegion};
use super::corrector::{Corrector, NewtonSecant};
use super::driver::Continuation;
use super::predictor::Predictor;
use super::step_control::{AdaptiveStep, StepControl};
use crate::equilibrium::StoppingRule;
use crate::error::ThermoError;
use crate::sensitivity::IftConfig;

/// Settings of the predictor-corrector continuation: tangent predictor, Newton-secant
/// corrector on gamma, adaptive step ([`Continuation::predictor_corrector`]). Its
/// `Default` takes the defaults of those parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictorCorrectorConfig {
    /// First step in s.
    pub initial_step: f64,
    /// Smallest step before the integrator gives up with an error.
    pub min_step: f64,
    /// Largest step.
    pub max_step: f64,
    /// Accept a step when `|G - G0| <= tolerance |G0|`.
    pub relative_tolerance: f64,
    /// Newton iterations on gamma per step before the step is shrunk.
    pub max_corrector_iterations: usize,
    /// The stopping rule of each re-equilibration.
    pub equilibrium: StoppingRule,
    /// Step growth after an easy step (at most 2 corrector iterations).
    pub growth: f64,
    /// Step shrink after a failed corrector.
    pub shrink: f64,
    /// The admissible range of gamma (the corrector treats its ends as walls).
    pub gamma_bounds: GammaBounds,
    /// When the step cannot shrink further (`min_step`), accept the last corrector iterate
    /// and flag the record (`converged = false`) instead of stopping with an error: the
    /// trace then shows honestly how far the constraint drifted.
    pub accept_unconverged: bool,
    /// Trust region of the predictor and of each Newton update (deep networks: the
    /// damped tangent can be far off).
    pub trust: TrustRegion,
}

impl Default for PredictorCorrectorConfig {
    /// The defaults of the parts ([`NewtonSecant`], [`AdaptiveStep`]), unbounded gamma
    /// above 0, no trust region, 300 optimiser steps per re-equilibration.
    fn default() -> Self {
        let newton = NewtonSecant::default();
        let step = AdaptiveStep::default();
        Self {
            initial_step: step.initial,
            min_step: step.min,
            max_step: step.max,
            relative_tolerance: newton.relative_tolerance,
            max_corrector_iterations: newton.max_iterations,
            equilibrium: StoppingRule::fixed(300),
            growth: step.growth,
            shrink: step.shrink,
            gamma_bounds: GammaBounds::default(),
            accept_unconverged: step.accept_unconverged,
            trust: newton.trust,
        }
    }
}

impl PredictorCorrectorConfig {
    /// The corrector of these settings: Newton-secant on gamma, gamma at most doubling
    /// per Newton step.
    pub fn newton_secant(&self) -> NewtonSecant {
        NewtonSecant {
            relative_tolerance: self.relative_tolerance,
            max_iterations: self.max_corrector_iterations,
            trust: self.trust,
            max_growth_factor: 2.0,
        }
    }

    /// The step control of these settings: steps grow after at most 2 corrector
    /// iterations.
    pub fn adaptive_step(&self) -> AdaptiveStep {
        AdaptiveStep {
            initial: self.initial_step,
            min: self.min_step,
            max: self.max_step,
            growth: self.growth,
            shrink: self.shrink,
            grow_if_iterations_at_most: 2,
            accept_unconverged: self.accept_unconverged,
        }
    }
}

impl Continuation {
    /// The continuation of a [`PredictorCorrectorConfig`]: tangent predictor and
    /// Newton-secant corrector sharing the trust region, adaptive steps.
    pub fn predictor_corrector(cfg: &PredictorCorrectorConfig, ift: IftConfig) -> Continuation {
        Continuation {
            predictor: Predictor::Tangent { trust: cfg.trust },
            corrector: Corrector::NewtonSecant(cfg.newton_secant()),
            step_control: StepControl::Adaptive(cfg.adaptive_step()),
            gamma_bounds: cfg.gamma_bounds,
            equilibrium: cfg.equilibrium,
            ift,
        }
    }
}

/// The integrators by name, for configuration files (`integrator = "euler"`) and
/// command lines alike (the same kebab-case names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntegratorKind {
    /// `predictor-corrector`.
    PredictorCorrector,
    /// `euler`.
    Euler,
}

impl IntegratorKind {
    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            IntegratorKind::PredictorCorrector => "predictor-corrector",
            IntegratorKind::Euler => "euler",
        }
    }
}

impl fmt::Display for IntegratorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for IntegratorKind {
    type Err = ThermoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [IntegratorKind::PredictorCorrector, IntegratorKind::Euler]
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                ThermoError::InvalidConfig(format!(
                    "unknown integrator `{s}`; expected predictor-corrector or euler"
                ))
            })
    }
}
