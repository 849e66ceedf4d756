//! The TOML description of an exact linear-Gaussian problem.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use super::closed_form::JointMoments;
use crate::equilibrium::StoppingRule;
use crate::error::{Result, ThermoError};

/// A dataset `x ~ N(0, sigma)`, `y = w x + eps`, `eps ~ N(0, noise_std^2 I)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaussianDataConfig {
    /// Covariance of x (n x n, symmetric positive definite), as rows.
    pub sigma: Vec<Vec<f64>>,
    /// Regression matrix (m x n), as rows.
    pub w: Vec<Vec<f64>>,
    /// Standard deviation of the label noise.
    pub noise_std: f64,
}

/// The model's fixed parts and its seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactModelConfig {
    /// Fixed standard deviation of the decoder `N(B z + c, sigma0^2 I)`.
    pub sigma0: f64,
    /// Fixed standard deviation of the "classifier" `N(G z + g, sigmac^2 I)`.
    pub sigmac: f64,
    /// Dimension of z; at least n.
    pub latent_dim: usize,
    /// Seed of the initial parameters.
    pub seed: u64,
}

/// Optimiser settings for the trainable model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExactTrainingConfig {
    /// Adam learning rate at the start of each equilibration.
    pub learning_rate: f64,
    /// Learning rate at the end of each equilibration (exponential decay).
    pub final_learning_rate: f64,
    /// Optimiser steps to reach equilibrium from the initial parameters.
    pub initial_steps: usize,
    /// Adam learning rate at the start of a warm-started re-equilibration (a point
    /// already near equilibrium: process steps, finite differences on the surface).
    pub warm_learning_rate: f64,
    /// When an equilibration is done: the rule of every warm-started re-equilibration and
    /// of the finish of [`crate::exact::ExactSystem::train`] after its `initial_steps`
    /// cold steps; `None`: [`ExactTrainingConfig::DEFAULT_EQUILIBRIUM`].
    pub equilibrium: Option<StoppingRule>,
}

impl ExactTrainingConfig {
    /// The default rule: `|grad J| <= 2e-2`, checked after 500 warm Adam steps, then at
    /// most 2000 L-BFGS iterations. Measured on random instances with n up to 8
    /// (docs/THEORY.md, "Equilibrium"): the f32 noise floor of `|grad J|` lies near 1e-2,
    /// and at 2e-2 R, D, C are within 0.005 nats of the closed form.
    pub const DEFAULT_EQUILIBRIUM: StoppingRule = StoppingRule::GradientNorm {
        tolerance: 2e-2,
        check_every: 500,
        max_steps: 500,
        quasi_newton_iterations: 2000,
    };

    /// The configured rule, else [`ExactTrainingConfig::DEFAULT_EQUILIBRIUM`].
    pub fn equilibrium_rule(&self) -> StoppingRule {
        self.equilibrium.unwrap_or(Self::DEFAULT_EQUILIBRIUM)
    }
}

impl Default for ExactTrainingConfig {
    fn default() -> Self {
        Self {
            learning_rate: 2e-2,
            final_learning_rate: 2e-4,
            initial_steps: 3000,
            warm_learning_rate: 3e-3,
            equilibrium: None,
        }
    }
}

/// A whole exact problem: `[data]`, `[model]`, an optional `[target]` dataset for
/// transfer and optional `[training]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactConfig {
    /// The (source) dataset.
    pub data: GaussianDataConfig,
    /// The model.
    pub model: ExactModelConfig,
    /// The target dataset of a transfer (same n and m as `data`).
    #[serde(default)]
    pub target: Option<GaussianDataConfig>,
    /// Optimiser settings.
    #[serde(default)]
    pub training: ExactTrainingConfig,
}

fn matrix(rows: &[Vec<f64>], name: &str) -> Result<DMatrix<f64>> {
    let r = rows.len();
    let c = rows.first().map_or(0, Vec::len);
    if r == 0 || c == 0 {
        return Err(ThermoError::InvalidConfig(format!("{name} is empty")));
    }
    if let Some((i, row)) = rows.iter().enumerate().find(|(_, row)| row.len() != c) {
        return Err(ThermoError::InvalidConfig(format!(
            "{name}: row {i} has {} entries, row 0 has {c}",
            row.len()
        )));
    }
    if rows.iter().flatten().any(|v| !v.is_finite()) {
        return Err(ThermoError::InvalidConfig(format!(
            "{name} has a non-finite entry"
        )));
    }
    Ok(DMatrix::from_fn(r, c, |i, j| rows[i][j]))
}

impl GaussianDataConfig {
    /// Validated `(sigma, w)`.
    pub fn matrices(&self, name: &str) -> Result<(DMatrix<f64>, DMatrix<f64>)> {
        let sigma = matrix(&self.sigma, &format!("{name}.sigma"))?;
        let w = matrix(&self.w, &format!("{name}.w"))?;
        let n = sigma.nrows();
        if sigma.ncols() != n {
            return Err(ThermoError::InvalidConfig(format!(
                "{name}.sigma must be square, got {}x{}",
                n,
                sigma.ncols()
            )));
        }
        if (&sigma - sigma.transpose()).abs().max() > 1e-9 * sigma.abs().max().max(1.0) {
            return Err(ThermoError::InvalidConfig(format!(
                "{name}.sigma is not symmetric"
            )));
        }
        if sigma.clone().cholesky().is_none() {
            return Err(ThermoError::InvalidConfig(format!(
                "{name}.sigma is not positive definite"
            )));
        }
        if w.ncols() != n {
            return Err(ThermoError::InvalidConfig(format!(
                "{name}.w has {} columns but sigma is {n}x{n}",
                w.ncols()
            )));
        }
        if !(self.noise_std > 0.0 && self.noise_std.is_finite()) {
            return Err(ThermoError::InvalidConfig(format!(
                "{name}.noise_std must be positive, got {}",
                self.noise_std
            )));
        }
        Ok((sigma, w))
    }

    /// The joint second moments of (x, y).
    pub fn moments(&self, name: &str) -> Result<JointMoments> {
        let (sigma, w) = self.matrices(name)?;
        Ok(JointMoments::linear_gaussian(&sigma, &w, self.noise_std))
    }
}

impl ExactConfig {
    /// Parse and validate a TOML document.
    pub fn from_toml_str(text: &str) -> std::result::Result<Self, String> {
        let config: ExactConfig = toml_parse(text)?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// Check every field; the error names the offending one.
    pub fn validate(&self) -> Result<()> {
        let source = self.data.moments("data")?;
        if let Some(target) = &self.target {
            let t = target.moments("target")?;
            if t.n() != source.n() || t.m() != source.m() {
                return Err(ThermoError::InvalidConfig(format!(
                    "target has n = {}, m = {} but data has n = {}, m = {}",
                    t.n(),
                    t.m(),
                    source.n(),
                    source.m()
                )));
            }
        }
        let m = &self.model;
        if !(m.sigma0 > 0.0 && m.sigmac > 0.0) {
            return Err(ThermoError::InvalidConfig(
                "model.sigma0 and model.sigmac must be positive".into(),
            ));
        }
        if m.latent_dim < source.n() {
            return Err(ThermoError::InvalidConfig(format!(
                "model.latent_dim = {} must be at least n = {}",
                m.latent_dim,
                source.n()
            )));
        }
        let t = &self.training;
        if !(t.learning_rate > 0.0 && t.final_learning_rate > 0.0 && t.warm_learning_rate > 0.0) {
            return Err(ThermoError::InvalidConfig(
                "training learning rates must be positive".into(),
            ));
        }
        Ok(())
    }

    /// Moments of the source dataset.
    pub fn source_moments(&self) -> Result<JointMoments> {
        self.data.moments("data")
    }

    /// Moments of the target dataset, if any.
    pub fn target_moments(&self) -> Result<Option<JointMoments>> {
        self.target
            .as_ref()
            .map(|t| t.moments("target"))
            .transpose()
    }
}

fn toml_parse(text: &str) -> std::result::Result<ExactConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}
