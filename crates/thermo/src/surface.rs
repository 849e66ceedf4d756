//! Bookkeeping of the equilibrium surface and the measured residuals of its
//! thermodynamic identities on a rectangular (lambda, gamma) grid.

use serde::{Deserialize, Serialize};

use crate::system::{Functionals, Multipliers};

/// One equilibrium: multipliers, functionals and `F = R + lambda D + gamma C`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SurfacePoint {
    /// Multiplier of D.
    pub lambda: f64,
    /// Multiplier of C.
    pub gamma: f64,
    /// Rate R.
    pub rate: f64,
    /// Distortion D.
    pub distortion: f64,
    /// Classification loss C.
    pub classification: f64,
    /// Free energy F.
    pub free_energy: f64,
}

impl SurfacePoint {
    /// The point for measured functionals at the multipliers.
    pub fn new(m: Multipliers, f: Functionals) -> Self {
        Self {
            lambda: m.lambda,
            gamma: m.gamma,
            rate: f.rate,
            distortion: f.distortion,
            classification: f.classification,
            free_energy: f.lagrangian(m),
        }
    }
}

/// How many grid cells violate one identity and by how much.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CheckSummary {
    /// Places checked.
    pub checked: usize,
    /// Places where the identity fails beyond the tolerance.
    pub violations: usize,
    /// Largest residual (in the check's own units).
    pub max_residual: f64,
}

impl CheckSummary {
    fn record(&mut self, residual: f64, tolerance: f64) {
        self.checked += 1;
        if residual > tolerance {
            self.violations += 1;
        }
        self.max_residual = self.max_residual.max(residual);
    }
}

/// Measured residuals of the identities of DESIGN.md section 3 on a grid.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SurfaceChecks {
    /// `dD/dlambda <= 0` along each lambda edge (residual: the positive part of the slope).
    pub distortion_decreasing_in_lambda: CheckSummary,
    /// `dC/dgamma <= 0` along each gamma edge.
    pub classification_decreasing_in_gamma: CheckSummary,
    /// Envelope `dF/dlambda = D` on each lambda edge: `|dF/dl - mean D|` (nats).
    pub envelope_lambda: CheckSummary,
    /// Envelope `dF/dgamma = C` on each gamma edge.
    pub envelope_gamma: CheckSummary,
    /// Maxwell `dD/dgamma = dC/dlambda` on each cell: `|dD/dg - dC/dl|`.
    pub maxwell: CheckSummary,
    /// Concavity of F: for each interior point, the largest eigenvalue of the
    /// finite-difference Hessian of F (must be <= 0).
    pub concavity: CheckSummary,
    /// First law around each cell: `|closed integral of D dlambda + C dgamma|`.
    pub first_law_loop: CheckSummary,
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
    /// Measure every identity; `tolerance` is the absolute residual (nats) above
    /// which a place counts as a violation.
    pub fn checks(&self, tolerance: f64) -> SurfaceChecks {
        let mut out = SurfaceChecks::default();
        let (nl, ng) = (self.lambdas.len(), self.gammas.len());
        let p = &self.points;
        for i in 0..nl {
            for j in 0..ng {
                if i + 1 < nl {
                    let (a, b) = (p[i][j], p[i + 1][j]);
                    let dl = b.lambda - a.lambda;
                    out.distortion_decreasing_in_lambda
                        .record(((b.distortion - a.distortion) / dl).max(0.0), tolerance);
                    let slope = (b.free_energy - a.free_energy) / dl;
                    out.envelope_lambda.record(
                        (slope - 0.5 * (a.distortion + b.distortion)).abs(),
                        tolerance,
                    );
                }
                if j + 1 < ng {
                    let (a, b) = (p[i][j], p[i][j + 1]);
                    let dg = b.gamma - a.gamma;
                    out.classification_decreasing_in_gamma.record(
                        ((b.classification - a.classification) / dg).max(0.0),
                        tolerance,
                    );
                    let slope = (b.free_energy - a.free_energy) / dg;
                    out.envelope_gamma.record(
                        (slope - 0.5 * (a.classification + b.classification)).abs(),
                        tolerance,
                    );
                }
                if i + 1 < nl && j + 1 < ng {
                    let (a, b, c, d) = (p[i][j], p[i + 1][j], p[i + 1][j + 1], p[i][j + 1]);
                    let dl = b.lambda - a.lambda;
                    let dg = d.gamma - a.gamma;
                    // Cell-centred cross derivatives.
                    let dd_dg =
                        0.5 * ((d.distortion - a.distortion) + (c.distortion - b.distortion)) / dg;
                    let dc_dl = 0.5
                        * ((b.classification - a.classification)
                            + (c.classification - d.classification))
                        / dl;
                    out.maxwell.record((dd_dg - dc_dl).abs(), tolerance);
                    // Counter-clockwise loop a -> b -> c -> d -> a, trapezoidal.
                    let edge = |u: SurfacePoint, v: SurfacePoint| {
                        0.5 * (u.distortion + v.distortion) * (v.lambda - u.lambda)
                            + 0.5 * (u.classification + v.classification) * (v.gamma - u.gamma)
                    };
                    let circulation = edge(a, b) + edge(b, c) + edge(c, d) + edge(d, a);
                    out.first_law_loop.record(circulation.abs(), tolerance);
                }
                if i > 0 && i + 1 < nl && j > 0 && j + 1 < ng {
                    out.concavity
                        .record(self.hessian_max_eigenvalue(i, j).max(0.0), tolerance);
                }
            }
        }
        out
    }

    /// Largest eigenvalue of the central-difference Hessian of F at an interior node.
    fn hessian_max_eigenvalue(&self, i: usize, j: usize) -> f64 {
        let p = &self.points;
        let f = |a: usize, b: usize| p[a][b].free_energy;
        let (l0, l1, l2) = (self.lambdas[i - 1], self.lambdas[i], self.lambdas[i + 1]);
        let (g0, g1, g2) = (self.gammas[j - 1], self.gammas[j], self.gammas[j + 1]);
        let second = |fm: f64, f0: f64, fp: f64, xm: f64, x0: f64, xp: f64| {
            2.0 * (fm / ((xm - x0) * (xm - xp))
                + f0 / ((x0 - xm) * (x0 - xp))
                + fp / ((xp - xm) * (xp - x0)))
        };
        let fll = second(f(i - 1, j), f(i, j), f(i + 1, j), l0, l1, l2);
        let fgg = second(f(i, j - 1), f(i, j), f(i, j + 1), g0, g1, g2);
        let flg = (f(i + 1, j + 1) - f(i + 1, j - 1) - f(i - 1, j + 1) + f(i - 1, j - 1))
            / ((l2 - l0) * (g2 - g0));
        let mean = 0.5 * (fll + fgg);
        let radius = (0.25 * (fll - fgg).powi(2) + flg * flg).sqrt();
        mean + radius
    }
}
