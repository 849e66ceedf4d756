//! Equilibrium points and the rectangular (lambda, gamma) grids they fill.

use serde::{Deserialize, Serialize};

use crate::error::{Result, ThermoError};
use crate::system::{Functionals, Multipliers};

/// One equilibrium: multipliers, functionals and `F = R + lambda D + gamma C`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SurfacePoint {
    /// Multiplier of D.
    pub lambda: f64,
    /// Multiplier of C.
    pub gamma: f64,
    /// R, D, C at the point (serialised flat: `rate`, `distortion`, `classification`).
    #[serde(flatten)]
    pub functionals: Functionals,
    /// Free energy `F = R + lambda D + gamma C`.
    pub free_energy: f64,
    /// Noise covariance of the measured means `(R, D, C)` (nats^2): the squared standard
    /// errors on the diagonal. Absent where the functionals are exact expectations (the
    /// closed form, the exact model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covariance: Option<[[f64; 3]; 3]>,
}

impl SurfacePoint {
    /// The point for measured functionals at the multipliers.
    pub fn new(m: Multipliers, f: Functionals) -> Self {
        Self {
            lambda: m.lambda,
            gamma: m.gamma,
            functionals: f,
            free_energy: f.lagrangian(m),
            covariance: None,
        }
    }

    /// The point with a noise covariance of its measured `(R, D, C)`.
    pub fn with_covariance(self, covariance: [[f64; 3]; 3]) -> Self {
        Self {
            covariance: Some(covariance),
            ..self
        }
    }

    /// The multipliers of the point.
    pub fn multipliers(&self) -> Multipliers {
        Multipliers::new(self.lambda, self.gamma)
    }
}

/// The axes of a grid: `lambdas` and `gammas`, each finite, non-negative, strictly
/// increasing, with at least two values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSpec {
    /// lambda values, increasing.
    pub lambdas: Vec<f64>,
    /// gamma values, increasing.
    pub gammas: Vec<f64>,
}

impl GridSpec {
    /// Error naming the axis that is too short, non-finite, negative or not strictly
    /// increasing.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("lambdas", &self.lambdas), ("gammas", &self.gammas)] {
            if v.len() < 2 {
                return Err(ThermoError::InvalidConfig(format!(
                    "[grid] {name} needs at least two values"
                )));
            }
            if v.windows(2).any(|w| w[0] >= w[1]) || v.iter().any(|x| !x.is_finite() || *x < 0.0) {
                return Err(ThermoError::InvalidConfig(format!(
                    "[grid] {name} must be finite, non-negative and strictly increasing: {v:?}"
                )));
            }
        }
        Ok(())
    }

    /// The multipliers of grid node `(i, j)`, if it is on the grid.
    pub fn multipliers(&self, i: usize, j: usize) -> Option<Multipliers> {
        Some(Multipliers::new(
            *self.lambdas.get(i)?,
            *self.gammas.get(j)?,
        ))
    }

    /// Number of nodes `(lambdas, gammas)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.lambdas.len(), self.gammas.len())
    }
}

/// A rectangular grid `points[i][j]` at `(lambdas[i], gammas[j])`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SurfaceGrid {
    /// Grid values of lambda (increasing).
    pub lambdas: Vec<f64>,
    /// Grid values of gamma (increasing).
    pub gammas: Vec<f64>,
    /// Points, indexed `[lambda index][gamma index]`.
    pub points: Vec<Vec<SurfacePoint>>,
}

impl SurfaceGrid {
    /// The points `(D, R)` of the gamma column `j`, in increasing lambda: one
    /// rate-distortion curve of the surface.
    pub fn rate_distortion_at_gamma(&self, j: usize) -> Vec<(f64, f64)> {
        self.points
            .iter()
            .filter_map(|row| row.get(j))
            .map(|p| (p.functionals.distortion, p.functionals.rate))
            .collect()
    }

    /// The grid of a spec with `point(m)` at every node, in row order.
    pub fn tabulate(
        spec: &GridSpec,
        mut point: impl FnMut(Multipliers) -> Result<SurfacePoint>,
    ) -> Result<SurfaceGrid> {
        spec.validate()?;
        let points = spec
            .lambdas
            .iter()
            .map(|&l| {
                spec.gammas
                    .iter()
                    .map(|&g| point(Multipliers::new(l, g)))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SurfaceGrid {
            lambdas: spec.lambdas.clone(),
            gammas: spec.gammas.clone(),
            points,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gamma_column_is_a_rate_distortion_curve_in_lambda_order() {
        let spec = GridSpec {
            lambdas: vec![1.0, 2.0, 3.0],
            gammas: vec![0.5, 1.0],
        };
        let grid = SurfaceGrid::tabulate(&spec, |m| {
            Ok(SurfacePoint::new(
                m,
                Functionals {
                    rate: 10.0 * m.lambda + m.gamma,
                    distortion: 1.0 / m.lambda,
                    classification: 0.0,
                },
            ))
        })
        .expect("valid grid");
        assert_eq!(
            grid.rate_distortion_at_gamma(1),
            vec![(1.0, 11.0), (0.5, 21.0), (1.0 / 3.0, 31.0)]
        );
        assert!(grid.rate_distortion_at_gamma(5).is_empty());
    }
}
