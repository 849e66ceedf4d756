//! A least-squares quadratic model of a quantity over the grid, for smooth surfaces
//! in plots and summaries.

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use super::grid::{SurfaceGrid, SurfacePoint};
use crate::error::{Result, ThermoError};

/// `q(lambda, gamma) = a + b lambda + c gamma + d lambda^2 + e lambda gamma + f gamma^2`,
/// coefficients `[a, b, c, d, e, f]`, fitted by least squares over the grid nodes
/// (normal equations `X'X c = X'y`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuadraticFit {
    /// `[a, b, c, d, e, f]`.
    pub coefficients: [f64; 6],
}

/// The basis `1, lambda, gamma, lambda^2, lambda gamma, gamma^2`.
fn basis(l: f64, g: f64) -> [f64; 6] {
    [1.0, l, g, l * l, l * g, g * g]
}

impl QuadraticFit {
    /// Least-squares fit of `get(point)` over every grid point. The six basis
    /// functions are independent on a rectangular grid only with at least three
    /// distinct lambdas and three distinct gammas; an error says so otherwise, and
    /// when the normal equations are numerically singular.
    pub fn fit(grid: &SurfaceGrid, get: impl Fn(&SurfacePoint) -> f64) -> Result<Self> {
        let distinct = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.dedup();
            v.len()
        };
        let points: Vec<&SurfacePoint> = grid.points.iter().flatten().collect();
        let n_lambda = distinct(points.iter().map(|p| p.lambda).collect());
        let n_gamma = distinct(points.iter().map(|p| p.gamma).collect());
        if n_lambda < 3 || n_gamma < 3 {
            return Err(ThermoError::SingularFit(format!(
                "a quadratic in (lambda, gamma) needs at least 3 distinct values of each, got {n_lambda} lambdas and {n_gamma} gammas"
            )));
        }
        let mut ata = DMatrix::<f64>::zeros(6, 6);
        let mut atb = DVector::<f64>::zeros(6);
        for p in points {
            let x = basis(p.lambda, p.gamma);
            let y = get(p);
            for a in 0..6 {
                atb[a] += x[a] * y;
                for b in 0..6 {
                    ata[(a, b)] += x[a] * x[b];
                }
            }
        }
        let sol = ata
            .lu()
            .solve(&atb)
            .ok_or_else(|| ThermoError::SingularFit("the normal equations are singular".into()))?;
        if sol.iter().any(|v| !v.is_finite()) {
            return Err(ThermoError::SingularFit(
                "the fitted coefficients are not finite".into(),
            ));
        }
        Ok(QuadraticFit {
            coefficients: [sol[0], sol[1], sol[2], sol[3], sol[4], sol[5]],
        })
    }

    /// `q(lambda, gamma)`.
    pub fn eval(&self, l: f64, g: f64) -> f64 {
        let c = &self.coefficients;
        c[0] + c[1] * l + c[2] * g + c[3] * l * l + c[4] * l * g + c[5] * g * g
    }
}
