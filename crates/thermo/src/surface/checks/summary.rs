//! The reported side of the checks: when a residual counts as a violation
//! ([`CheckSettings`]), one measured place ([`Place`]), and the summaries of one identity
//! ([`CheckSummary`]) and of all of them ([`SurfaceChecks`]).

use serde::{Deserialize, Serialize};

use crate::error::{Result, ThermoError};

/// When a residual counts as a violation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSettings {
    /// A place violates its identity when its residual exceeds `factor` error estimates.
    pub factor: f64,
    /// An error allowance beside discretisation and noise, in each check's own units
    /// (nats, or nats per unit of multiplier for derivatives): what neither estimate
    /// covers, such as a trained model's distance from exact equilibrium or f64 roundoff.
    pub floor: f64,
}

impl Default for CheckSettings {
    /// Three error estimates, and a roundoff floor of `1e-9`.
    fn default() -> Self {
        Self {
            factor: 3.0,
            floor: 1e-9,
        }
    }
}

impl CheckSettings {
    /// Error unless `factor >= 1` and `floor > 0` are finite.
    pub fn validate(&self) -> Result<()> {
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(ThermoError::InvalidConfig(format!(
                "[checks] factor must be a finite number >= 1, got {}",
                self.factor
            )));
        }
        if !(self.floor.is_finite() && self.floor > 0.0) {
            return Err(ThermoError::InvalidConfig(format!(
                "[checks] floor must be finite and > 0, got {}",
                self.floor
            )));
        }
        Ok(())
    }
}

/// One place where an identity is measured, with its residual and error estimates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// The identity (a field name of [`SurfaceChecks`]).
    pub check: String,
    /// `(lambda, gamma)` of the place (the start of an edge or path).
    pub at: [f64; 2],
    /// `(lambda, gamma)` where an edge or path ends; absent for a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<[f64; 2]>,
    /// The residual, by the higher-order formula (check's own units).
    pub residual: f64,
    /// Its discretisation error estimate.
    pub discretisation: f64,
    /// Its noise standard error.
    pub noise: f64,
    /// `|residual| / sqrt(discretisation^2 + noise^2 + floor^2)`.
    pub ratio: f64,
    /// Whether `ratio > factor`.
    pub violated: bool,
}

/// How many grid places violate one identity and by how much.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CheckSummary {
    /// Places checked.
    pub checked: usize,
    /// Places whose residual exceeds `factor` error estimates.
    pub violations: usize,
    /// Largest |residual| (in the check's own units).
    pub max_residual: f64,
    /// Largest residual in units of its error estimate.
    #[serde(default)]
    pub max_ratio: f64,
    /// Median residual in units of its error estimate.
    #[serde(default)]
    pub median_ratio: f64,
    /// Largest discretisation error estimate.
    #[serde(default)]
    pub max_discretisation: f64,
    /// Largest noise standard error.
    #[serde(default)]
    pub max_noise: f64,
}

impl CheckSummary {
    /// The summary of the places of one check.
    pub fn of(places: &[Place]) -> Self {
        let mut ratios: Vec<f64> = places.iter().map(|p| p.ratio).collect();
        ratios.sort_by(f64::total_cmp);
        let max = |f: fn(&Place) -> f64| places.iter().map(f).fold(0.0, f64::max);
        CheckSummary {
            checked: places.len(),
            violations: places.iter().filter(|p| p.violated).count(),
            max_residual: max(|p| p.residual.abs()),
            max_ratio: ratios.last().copied().unwrap_or(0.0),
            median_ratio: ratios.get(ratios.len() / 2).copied().unwrap_or(0.0),
            max_discretisation: max(|p| p.discretisation),
            max_noise: max(|p| p.noise),
        }
    }

    /// Whether no place violates the identity.
    pub fn passed(&self) -> bool {
        self.violations == 0
    }
}

/// Measured residuals of every identity on a grid ([`SurfaceGrid::checks`]).
///
/// [`SurfaceGrid::checks`]: crate::surface::SurfaceGrid::checks
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SurfaceChecks {
    /// The violation rule they were counted with.
    #[serde(default)]
    pub settings: CheckSettings,
    /// [`distortion_decreasing_in_lambda`](super::distortion_decreasing_in_lambda).
    pub distortion_decreasing_in_lambda: CheckSummary,
    /// [`classification_decreasing_in_gamma`](super::classification_decreasing_in_gamma).
    pub classification_decreasing_in_gamma: CheckSummary,
    /// [`envelope_lambda`](super::envelope_lambda).
    pub envelope_lambda: CheckSummary,
    /// [`envelope_gamma`](super::envelope_gamma).
    pub envelope_gamma: CheckSummary,
    /// [`maxwell`](super::maxwell).
    pub maxwell: CheckSummary,
    /// [`concavity`](super::concavity).
    pub concavity: CheckSummary,
    /// [`first_law`](super::first_law).
    pub first_law: CheckSummary,
    /// [`minimality`](super::minimality).
    #[serde(default)]
    pub minimality: CheckSummary,
}

/// The names of the checks, in the order of [`SurfaceChecks::named`].
pub const CHECK_NAMES: [&str; 8] = [
    "distortion_decreasing_in_lambda",
    "classification_decreasing_in_gamma",
    "envelope_lambda",
    "envelope_gamma",
    "maxwell",
    "concavity",
    "first_law",
    "minimality",
];

impl SurfaceChecks {
    /// Every check with its name, in declaration order.
    pub fn named(&self) -> [(&'static str, CheckSummary); 8] {
        let s = [
            self.distortion_decreasing_in_lambda,
            self.classification_decreasing_in_gamma,
            self.envelope_lambda,
            self.envelope_gamma,
            self.maxwell,
            self.concavity,
            self.first_law,
            self.minimality,
        ];
        std::array::from_fn(|k| (CHECK_NAMES[k], s[k]))
    }

    /// Whether every identity holds everywhere.
    pub fn all_passed(&self) -> bool {
        self.named().iter().all(|(_, c)| c.passed())
    }

    /// The summaries of a list of places (of every check).
    pub fn of(places: &[Place], settings: CheckSettings) -> Self {
        let summary = |name: &str| {
            let mine: Vec<Place> = places.iter().filter(|p| p.check == name).cloned().collect();
            CheckSummary::of(&mine)
        };
        SurfaceChecks {
            settings,
            distortion_decreasing_in_lambda: summary(CHECK_NAMES[0]),
            classification_decreasing_in_gamma: summary(CHECK_NAMES[1]),
            envelope_lambda: summary(CHECK_NAMES[2]),
            envelope_gamma: summary(CHECK_NAMES[3]),
            maxwell: summary(CHECK_NAMES[4]),
            concavity: summary(CHECK_NAMES[5]),
            first_law: summary(CHECK_NAMES[6]),
            minimality: summary(CHECK_NAMES[7]),
        }
    }
}
