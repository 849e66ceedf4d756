//! Limits shared by predictors and correctors: the trust region of one move and
//! the admissible range of gamma.

use crate::error::{Result, ThermoError};
use crate::vector::dot;

/// Trust region of one move `(dgamma, dtheta)`: gamma moves by at most
/// `max_relative_gamma_step * max(|gamma|, 1)` and the parameters by at most
/// `max_relative_theta_step * max(|theta|, 1)`; a longer move is scaled down as a
/// whole. `f64::INFINITY` switches a limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrustRegion {
    /// Largest `|dgamma| / max(|gamma|, 1)`.
    pub max_relative_gamma_step: f64,
    /// Largest `|dtheta| / max(|theta|, 1)`.
    pub max_relative_theta_step: f64,
}

impl TrustRegion {
    /// No limit on either move.
    pub const NONE: TrustRegion = TrustRegion {
        max_relative_gamma_step: f64::INFINITY,
        max_relative_theta_step: f64::INFINITY,
    };

    /// Error unless both limits are positive (infinity allowed).
    pub fn validate(&self) -> Result<()> {
        if self.max_relative_gamma_step > 0.0 && self.max_relative_theta_step > 0.0 {
            Ok(())
        } else {
            Err(ThermoError::InvalidConfig(format!(
                "trust region limits must be positive, got max_relative_gamma_step = {} and max_relative_theta_step = {}",
                self.max_relative_gamma_step, self.max_relative_theta_step
            )))
        }
    }

    /// The largest factor in (0, 1] that keeps the move `(dgamma, dtheta)` from
    /// `(gamma, theta)` inside the region.
    pub fn scale(&self, gamma: f64, dgamma: f64, theta: &[f64], dtheta: &[f64]) -> f64 {
        let mut scale: f64 = 1.0;
        let g_cap = self.max_relative_gamma_step * gamma.abs().max(1.0);
        if dgamma.abs() > g_cap {
            scale = scale.min(g_cap / dgamma.abs());
        }
        let t_norm = dot(theta, theta).sqrt();
        let d_norm = dot(dtheta, dtheta).sqrt();
        let t_cap = self.max_relative_theta_step * t_norm.max(1.0);
        if d_norm > t_cap {
            scale = scale.min(t_cap / d_norm);
        }
        scale
    }
}

impl Default for TrustRegion {
    fn default() -> Self {
        TrustRegion::NONE
    }
}

/// The admissible range `min <= gamma <= max`, honoured by every predictor and
/// corrector (the corrector treats the bounds as walls).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaBounds {
    /// Smallest gamma (0 by default: J must weigh C non-negatively).
    pub min: f64,
    /// Largest gamma (unbounded by default).
    pub max: f64,
}

impl Default for GammaBounds {
    fn default() -> Self {
        Self {
            min: 0.0,
            max: f64::INFINITY,
        }
    }
}

impl GammaBounds {
    /// Error unless `min <= max` and neither is NaN.
    pub fn validate(&self) -> Result<()> {
        if self.min <= self.max {
            Ok(())
        } else {
            Err(ThermoError::InvalidConfig(format!(
                "gamma bounds need min_gamma <= max_gamma, got {} and {}",
                self.min, self.max
            )))
        }
    }

    /// `gamma` clamped into `[min, max]` (bounds validated).
    pub fn clamp(&self, gamma: f64) -> f64 {
        gamma.clamp(self.min, self.max)
    }

    /// Whether `min <= gamma <= max`.
    pub fn contains(&self, gamma: f64) -> bool {
        self.min <= gamma && gamma <= self.max
    }
}
