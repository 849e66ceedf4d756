//! What a process holds fixed. Each constraint is a named type that knows its
//! residual `G - G0` and the parameter gradient `grad G` of the functional it
//! holds, which is all the tangent law and the corrector need (docs/THEORY.md,
//! section "Processes").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ThermoError;
use crate::sensitivity::IftSolution;
use crate::system::{Functional, Functionals, Multipliers};

/// A constraint `G(theta*(lambda, gamma, t)) = G0` that determines gamma along a
/// process, or (for [`FixedGamma`]) a functional that is only monitored.
pub trait Constraint: fmt::Debug + Send + Sync {
    /// The configuration name of the constraint.
    fn kind(&self) -> ConstraintKind;

    /// The functional G whose value is held (or, for [`FixedGamma`], reported).
    fn monitored(&self) -> Functional;

    /// Whether gamma is solved from `G = G0` (false: gamma stays where it is).
    fn solves_gamma(&self) -> bool {
        true
    }

    /// The residual `G - G0` at measured functionals.
    fn residual(&self, functionals: &Functionals, target: f64) -> f64 {
        functionals.get(self.monitored()) - target
    }

    /// The parameter gradient `grad G` at an equilibrium, from the gradients that the
    /// implicit function theorem measured there.
    fn gradient(&self, solution: &IftSolution, multipliers: Multipliers) -> Vec<f64>;
}

/// Iso-classification: `C = C0`, `grad C` measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IsoClassification;

/// Iso-distortion: `D = D0`, `grad D` measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IsoDistortion;

/// Iso-rate: `R = R0`, with `grad R = -lambda grad D - gamma grad C` by the
/// stationarity `grad J = 0` of the equilibrium.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IsoRate;

/// The naive path: gamma is not solved but held at its start value; C is monitored
/// so that its drift is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FixedGamma;

impl Constraint for IsoClassification {
    fn kind(&self) -> ConstraintKind {
        ConstraintKind::IsoClassification
    }
    fn monitored(&self) -> Functional {
        Functional::Classification
    }
    fn gradient(&self, solution: &IftSolution, _multipliers: Multipliers) -> Vec<f64> {
        solution.grad_classification.clone()
    }
}

impl Constraint for IsoDistortion {
    fn kind(&self) -> ConstraintKind {
        ConstraintKind::IsoDistortion
    }
    fn monitored(&self) -> Functional {
        Functional::Distortion
    }
    fn gradient(&self, solution: &IftSolution, _multipliers: Multipliers) -> Vec<f64> {
        solution.grad_distortion.clone()
    }
}

impl Constraint for IsoRate {
    fn kind(&self) -> ConstraintKind {
        ConstraintKind::IsoRate
    }
    fn monitored(&self) -> Functional {
        Functional::Rate
    }
    fn gradient(&self, solution: &IftSolution, m: Multipliers) -> Vec<f64> {
        solution
            .grad_distortion
            .iter()
            .zip(&solution.grad_classification)
            .map(|(d, c)| -m.lambda * d - m.gamma * c)
            .collect()
    }
}

impl Constraint for FixedGamma {
    fn kind(&self) -> ConstraintKind {
        ConstraintKind::FixedGamma
    }
    fn monitored(&self) -> Functional {
        Functional::Classification
    }
    fn solves_gamma(&self) -> bool {
        false
    }
    fn gradient(&self, solution: &IftSolution, _multipliers: Multipliers) -> Vec<f64> {
        solution.grad_classification.clone()
    }
}

/// The constraints by name, for configuration files (kebab-case) and command lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConstraintKind {
    /// [`IsoClassification`]: C held.
    IsoClassification,
    /// [`IsoDistortion`]: D held.
    IsoDistortion,
    /// [`IsoRate`]: R held.
    IsoRate,
    /// [`FixedGamma`]: gamma held, C monitored.
    FixedGamma,
}

impl ConstraintKind {
    /// Every constraint, in the order of the enum.
    pub const ALL: [ConstraintKind; 4] = [
        ConstraintKind::IsoClassification,
        ConstraintKind::IsoDistortion,
        ConstraintKind::IsoRate,
        ConstraintKind::FixedGamma,
    ];

    /// The constraint itself.
    pub fn constraint(self) -> &'static dyn Constraint {
        match self {
            ConstraintKind::IsoClassification => &IsoClassification,
            ConstraintKind::IsoDistortion => &IsoDistortion,
            ConstraintKind::IsoRate => &IsoRate,
            ConstraintKind::FixedGamma => &FixedGamma,
        }
    }

    /// The functional the constraint holds or monitors.
    pub fn monitored(self) -> Functional {
        self.constraint().monitored()
    }

    /// The kebab-case name used in configuration files and on command lines.
    pub fn name(self) -> &'static str {
        match self {
            ConstraintKind::IsoClassification => "iso-classification",
            ConstraintKind::IsoDistortion => "iso-distortion",
            ConstraintKind::IsoRate => "iso-rate",
            ConstraintKind::FixedGamma => "fixed-gamma",
        }
    }
}

impl fmt::Display for ConstraintKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ConstraintKind {
    type Err = ThermoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConstraintKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                ThermoError::InvalidConfig(format!(
                    "unknown constraint `{s}`; expected one of iso-classification, iso-distortion, iso-rate, fixed-gamma"
                ))
            })
    }
}
