//! The exact linear-Gaussian model: the closed forms of `fep-thermo` beside a trained Burn
//! model of the same functionals, at a point (`solve`), along an iso-classification path
//! ([`iso`]) and over a grid ([`surface`](mod@surface)).

mod iso;
mod surface;

pub use iso::{ExactIsoSummary, ExactPathPoint, exact_continuation, iso_classification};
pub use surface::{
    ExactCheckSettings, ExactSurfaceChecks, ExactSurfaceRow, ExactSurfaceSummary, IsoCurve,
    TaggedPlace, surface,
};

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use fep_thermo::exact::{ClosedForm, ExactConfig, ExactSystem};
use fep_thermo::{
    EquilibriumReport, Functionals, IftConfig, Multipliers, Sensitivities, SurfaceDifferenceConfig,
    ift_sensitivities, surface_difference_sensitivities,
};
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result, invalid};
use crate::io::{prepare_out_dir, write_json};
use crate::provenance::device_name;

/// Reads an exact-model config, naming the file in every error.
pub fn load_config(path: &Path) -> Result<ExactConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::Config {
        path: path.to_path_buf(),
        reason: format!("cannot read it: {e}"),
    })?;
    ExactConfig::from_toml_str(&text).map_err(|reason| ExperimentError::Config {
        path: path.to_path_buf(),
        reason,
    })
}

/// The result folder of an exact command: `out`, else `runs/<default_dir>` unless the
/// result goes to stdout only (`json` without `out`).
pub fn result_dir(
    out: Option<&Path>,
    json: bool,
    force: bool,
    default_dir: &str,
) -> Result<Option<PathBuf>> {
    let dir = match (out, json) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, true) => return Ok(None),
        (None, false) => PathBuf::from("runs").join(default_dir),
    };
    Ok(Some(prepare_out_dir(&dir, force)?))
}

/// Parses a grid `start:end:count` into `count` evenly spaced values.
pub fn parse_grid(spec: &str, name: &str) -> Result<Vec<f64>> {
    let parts: Vec<&str> = spec.split(':').collect();
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| invalid(format!("--{name}: `{s}` is not a number")))
    };
    let [a, b, n] = parts.as_slice() else {
        return Err(invalid(format!(
            "--{name} must look like start:end:count, got {spec}"
        )));
    };
    let (a, b) = (number(a)?, number(b)?);
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| invalid(format!("--{name}: `{n}` is not a count")))?;
    if n < 2 || a >= b || !a.is_finite() || !b.is_finite() {
        return Err(invalid(format!(
            "--{name} must be start:end:count with start < end and count >= 2, got {spec}"
        )));
    }
    Ok((0..n)
        .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
        .collect())
}

/// Functionals and free energy at a point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PointValues {
    /// R, D, C.
    #[serde(flatten)]
    pub functionals: Functionals,
    /// `F = R + lambda D + gamma C`.
    pub free_energy: f64,
}

/// The sensitivities of one estimator with their Maxwell residual.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SensitivityRow {
    /// The four susceptibilities.
    #[serde(flatten)]
    pub values: Sensitivities,
    /// `dD/dgamma - dC/dlambda`.
    pub maxwell_residual: f64,
}

impl From<Sensitivities> for SensitivityRow {
    fn from(values: Sensitivities) -> Self {
        Self {
            values,
            maxwell_residual: values.maxwell_residual(),
        }
    }
}

/// The three sensitivity estimates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SensitivityTable {
    /// The closed form.
    pub closed_form: SensitivityRow,
    /// Implicit function theorem on the trained model.
    pub ift: SensitivityRow,
    /// Central differences of re-equilibrated functionals.
    pub finite_difference: SensitivityRow,
}

/// `exact solve`: the closed form and the trained model at (lambda, gamma).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExactSolveSummary {
    /// Multiplier of D.
    pub lambda: f64,
    /// Multiplier of C.
    pub gamma: f64,
    /// Seed of the model's initialisation.
    pub seed: u64,
    /// Backend and device.
    pub device: String,
    /// The closed form.
    pub closed_form: PointValues,
    /// The trained model.
    pub trained: PointValues,
    /// How the trained point was equilibrated: the stopping criterion's final value
    /// (`|grad J|`), Adam steps, L-BFGS iterations and whether the rule was met.
    #[serde(default)]
    pub equilibrium: EquilibriumReport,
    /// Sensitivities by three estimators.
    pub sensitivities: SensitivityTable,
}

/// Trains the exact model of `config` at `m` and compares it with the closed form; writes
/// `summary.json` into `dir` where given.
pub fn solve<B: AutodiffBackend>(
    device: &B::Device,
    config: &ExactConfig,
    m: Multipliers,
    dir: Option<&Path>,
) -> Result<ExactSolveSummary> {
    let cf = ClosedForm::new(
        &config.source_moments()?,
        config.model.sigma0,
        config.model.sigmac,
    )?;
    let exact = cf.point(m)?;
    let exact_sens = cf.sensitivities(m)?;
    let mut system = ExactSystem::<B>::from_config(config, device)?;
    let trained = system.train(m)?;
    let ift = ift_sensitivities(&mut system, m, &IftConfig::default())?;
    let fd = surface_difference_sensitivities(
        &mut system,
        m,
        &SurfaceDifferenceConfig {
            equilibrium: Some(config.training.equilibrium_rule()),
            ..SurfaceDifferenceConfig::default()
        },
    )?;
    let summary = ExactSolveSummary {
        lambda: m.lambda,
        gamma: m.gamma,
        seed: config.model.seed,
        device: device_name::<B>(device),
        closed_form: PointValues {
            functionals: exact.functionals,
            free_energy: exact.free_energy,
        },
        trained: PointValues {
            functionals: trained.functionals,
            free_energy: trained.functionals.lagrangian(m),
        },
        equilibrium: trained.report,
        sensitivities: SensitivityTable {
            closed_form: exact_sens.into(),
            ift: ift.sensitivities.into(),
            finite_difference: fd.into(),
        },
    };
    if let Some(dir) = dir {
        write_json(&dir.join("summary.json"), &summary)?;
    }
    Ok(summary)
}
