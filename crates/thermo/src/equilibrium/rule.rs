//! When an equilibration may stop ([`StoppingRule`]) and what it measured
//! ([`EquilibriumReport`], [`Equilibrium`]).

use serde::{Deserialize, Serialize};

use crate::values::Functionals;

/// The L-BFGS finish of [`StoppingRule::GradientNorm`] aims at this fraction of the
/// rule's tolerance.
pub const FINISH_FACTOR: f64 = 0.1;

/// When an equilibration may stop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "rule", deny_unknown_fields)]
pub enum StoppingRule {
    /// Exactly `steps` optimiser steps; nothing is measured.
    FixedSteps {
        /// Optimiser steps.
        steps: usize,
    },
    /// `|grad J| <= tolerance`, checked every `check_every` optimiser steps, at most
    /// `max_steps` of them; then, where `quasi_newton_iterations > 0`, at most that many
    /// L-BFGS iterations on J (More-Thuente line search) towards the sharper target
    /// `FINISH_FACTOR * tolerance` (0.1 tolerance), until the line search cannot make
    /// progress (f32 noise). The finish runs even where the first-order phase met the
    /// tolerance: near a critical point a small gradient can still leave the functionals
    /// off (a nearly flat valley). The system ends at the first evaluated point that
    /// meets the target, else at the one of smallest J; its `|grad J|` is the criterion,
    /// met where it is at most `tolerance`.
    GradientNorm {
        /// Largest accepted Euclidean norm of `grad J` (nats per unit parameter).
        tolerance: f64,
        /// Optimiser steps between two checks.
        check_every: usize,
        /// Budget of optimiser steps.
        max_steps: usize,
        /// Budget of L-BFGS iterations of the finish (0: none).
        #[serde(default)]
        quasi_newton_iterations: usize,
    },
    /// Stationarity of the optimiser's own measurements (see the module docs).
    Stationary(StationarityTest),
}

impl StoppingRule {
    /// The fixed budget of `steps` optimiser steps (the behaviour of a plain step count).
    pub fn fixed(steps: usize) -> Self {
        StoppingRule::FixedSteps { steps }
    }

    /// The most optimiser steps the rule may spend (before any quasi-Newton finish).
    pub fn max_steps(&self) -> usize {
        match self {
            StoppingRule::FixedSteps { steps } => *steps,
            StoppingRule::GradientNorm { max_steps, .. } => *max_steps,
            StoppingRule::Stationary(t) => t.max_steps,
        }
    }
}

/// The stationarity test of [`StoppingRule::Stationary`]: with `m_k` and `se_k` the mean
/// and the standard error of a functional over window k of `window` optimiser steps,
/// window k passes when `|m_k - m_(k-1)| <= z sqrt(se_k^2 + se_(k-1)^2)` for R, D and C;
/// equilibrium is declared after `consecutive` passing windows in a row, not before
/// `min_steps` steps, and the budget is `max_steps`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationarityTest {
    /// Optimiser steps per window.
    pub window: usize,
    /// Passing windows in a row that declare equilibrium.
    pub consecutive: usize,
    /// Allowed change of a window mean, in combined standard errors.
    pub z: f64,
    /// Optimiser steps before equilibrium may be declared.
    pub min_steps: usize,
    /// Budget of optimiser steps.
    pub max_steps: usize,
}

/// What an equilibration measured.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct EquilibriumReport {
    /// Optimiser steps taken.
    pub steps: usize,
    /// Quasi-Newton iterations of the finish.
    #[serde(default)]
    pub quasi_newton_iterations: usize,
    /// The final value of the criterion: `|grad J|` for the gradient rule, the largest
    /// `|m_k - m_(k-1)| / sqrt(se_k^2 + se_(k-1)^2)` of the last window for the
    /// stationarity test; `None` where nothing was measured.
    pub criterion: Option<f64>,
    /// Whether the criterion was met within the budget (false for fixed steps).
    pub met: bool,
}

impl EquilibriumReport {
    /// The report of `steps` steps that measured nothing.
    pub fn unmeasured(steps: usize) -> Self {
        Self {
            steps,
            quasi_newton_iterations: 0,
            criterion: None,
            met: false,
        }
    }

    /// The reports of several equilibrations of one point (a predictor and its corrector
    /// iterations): steps and iterations add up, the criterion and the verdict are the
    /// last one's.
    pub fn then(self, next: EquilibriumReport) -> Self {
        Self {
            steps: self.steps + next.steps,
            quasi_newton_iterations: self.quasi_newton_iterations + next.quasi_newton_iterations,
            criterion: next.criterion,
            met: next.met,
        }
    }
}

/// An equilibrium: the functionals there and how it was reached.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Equilibrium {
    /// R, D, C at the end.
    pub functionals: Functionals,
    /// What the equilibration measured.
    pub report: EquilibriumReport,
}
