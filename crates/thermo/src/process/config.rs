//! The serde configurations of the two integrators and how they map onto a
//! [`Continuation`].

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
/// corrector on gamma, adaptive step ([`Continuation::predictor_corrector`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// Optimiser steps of each re-equilibration.
    pub equilibration_steps: usize,
    /// The stopping rule of each re-equilibration; overrides `equilibration_steps`.
    #[serde(default)]
    pub equilibrium: Option<StoppingRule>,
    /// Step growth after an easy step (at most 2 corrector iterations).
    pub growth: f64,
    /// Step shrink after a failed corrector.
    pub shrink: f64,
    /// gamma is never raised above this value (the corrector treats it as a wall).
    #[serde(default = "unbounded")]
    pub max_gamma: f64,
    /// gamma is never lowered below this value (0: J must weigh C non-negatively).
    #[serde(default)]
    pub min_gamma: f64,
    /// When the step cannot shrink further (`min_step`), accept the last corrector iterate
    /// and flag the record (`converged = false`) instead of stopping with an error: the
    /// trace then shows honestly how far the constraint drifted.
    #[serde(default)]
    pub accept_unconverged: bool,
    /// Trust region of the predictor and of each Newton update: gamma moves by at most
    /// this fraction of `max(gamma, 1)` (the move is scaled down otherwise).
    #[serde(default = "unbounded")]
    pub max_relative_gamma_step: f64,
    /// Trust region: the parameters move by at most this fraction of `|theta|` per
    /// predictor or Newton update (deep networks: the damped tangent can be far off).
    #[serde(default = "unbounded")]
    pub max_relative_theta_step: f64,
}

fn unbounded() -> f64 {
    f64::INFINITY
}

impl Default for PredictorCorrectorConfig {
    fn default() -> Self {
        Self {
            initial_step: 0.1,
            min_step: 1e-3,
            max_step: 0.25,
            relative_tolerance: 1e-4,
            max_corrector_iterations: 6,
            equilibration_steps: 300,
            equilibrium: None,
            growth: 1.5,
            shrink: 0.5,
            max_relative_gamma_step: f64::INFINITY,
            max_relative_theta_step: f64::INFINITY,
            accept_unconverged: false,
            max_gamma: f64::INFINITY,
            min_gamma: 0.0,
        }
    }
}

/// Settings of the paper's Euler scheme ([`Continuation::euler`]; gamma stays in the
/// default [`GammaBounds`], `gamma >= 0`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EulerConfig {
    /// Number of equal steps in s.
    pub steps: usize,
    /// Optimiser steps after each tangent step.
    pub equilibration_steps: usize,
    /// The stopping rule of each re-equilibration; overrides `equilibration_steps`.
    #[serde(default)]
    pub equilibrium: Option<StoppingRule>,
}

impl Default for EulerConfig {
    fn default() -> Self {
        Self {
            steps: 20,
            equilibration_steps: 300,
            equilibrium: None,
        }
    }
}

/// A process integrator, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Integrator {
    /// Tangent step, then K equilibration steps; no correction (the paper's scheme).
    Euler(EulerConfig),
    /// Tangent predictor, Newton corrector on gamma, adaptive step.
    PredictorCorrector(PredictorCorrectorConfig),
}

impl Integrator {
    /// Which integrator this is.
    pub fn kind(&self) -> IntegratorKind {
        match self {
            Integrator::Euler(_) => IntegratorKind::Euler,
            Integrator::PredictorCorrector(_) => IntegratorKind::PredictorCorrector,
        }
    }

    /// The continuation that runs this integrator with the IFT settings `ift`.
    pub fn continuation(&self, ift: IftConfig) -> Continuation {
        match self {
            Integrator::Euler(cfg) => Continuation::euler(cfg.steps, cfg.equilibration_steps, ift)
                .with_equilibrium(
                    cfg.equilibrium
                        .unwrap_or(StoppingRule::fixed(cfg.equilibration_steps)),
                ),
            Integrator::PredictorCorrector(cfg) => Continuation::predictor_corrector(cfg, ift),
        }
    }
}

impl Continuation {
    /// The continuation of a [`PredictorCorrectorConfig`]: tangent predictor and
    /// Newton-secant corrector sharing the trust region, gamma at most doubling per
    /// Newton step, steps growing after at most 2 corrector iterations.
    pub fn predictor_corrector(cfg: &PredictorCorrectorConfig, ift: IftConfig) -> Continuation {
        let trust = TrustRegion {
            max_relative_gamma_step: cfg.max_relative_gamma_step,
            max_relative_theta_step: cfg.max_relative_theta_step,
        };
        Continuation {
            predictor: Predictor::Tangent { trust },
            corrector: Corrector::NewtonSecant(NewtonSecant {
                relative_tolerance: cfg.relative_tolerance,
                max_iterations: cfg.max_corrector_iterations,
                trust,
                max_growth_factor: 2.0,
            }),
            step_control: StepControl::Adaptive(AdaptiveStep {
                initial: cfg.initial_step,
                min: cfg.min_step,
                max: cfg.max_step,
                growth: cfg.growth,
                shrink: cfg.shrink,
                grow_if_iterations_at_most: 2,
                accept_unconverged: cfg.accept_unconverged,
            }),
            gamma_bounds: GammaBounds {
                min: cfg.min_gamma,
                max: cfg.max_gamma,
            },
            equilibrium: cfg
                .equilibrium
                .unwrap_or(StoppingRule::fixed(cfg.equilibration_steps)),
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
