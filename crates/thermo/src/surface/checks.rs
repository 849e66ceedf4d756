//! The thermodynamic identities of the equilibrium surface (docs/THEORY.md, section
//! "Functionals and free energy"), each measured on a grid by its own function.
//!
//! Every check returns a [`CheckSummary`]: how many places it looked at, how many
//! residuals exceed the tolerance (nats, or nats per unit of multiplier for slopes)
//! and the largest residual.

use serde::{Deserialize, Serialize};

use super::grid::{SurfaceGrid, SurfacePoint};

/// How many grid places violate one identity and by how much.
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
    /// Count one residual.
    pub fn record(&mut self, residual: f64, tolerance: f64) {
        self.checked += 1;
        if residual > tolerance {
            self.violations += 1;
        }
        self.max_residual = self.max_residual.max(residual);
    }

    /// Whether no place violates the identity.
    pub fn passed(&self) -> bool {
        self.violations == 0
    }
}

/// Measured residuals of every identity on a grid ([`SurfaceGrid::checks`]).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SurfaceChecks {
    /// [`distortion_decreasing_in_lambda`].
    pub distortion_decreasing_in_lambda: CheckSummary,
    /// [`classification_decreasing_in_gamma`].
    pub classification_decreasing_in_gamma: CheckSummary,
    /// [`envelope_lambda`].
    pub envelope_lambda: CheckSummary,
    /// [`envelope_gamma`].
    pub envelope_gamma: CheckSummary,
    /// [`maxwell`].
    pub maxwell: CheckSummary,
    /// [`concavity`].
    pub concavity: CheckSummary,
    /// [`first_law_loop`].
    pub first_law_loop: CheckSummary,
}

impl SurfaceChecks {
    /// Every check with its name, in declaration order.
    pub fn named(&self) -> [(&'static str, CheckSummary); 7] {
        [
            (
                "distortion_decreasing_in_lambda",
                self.distortion_decreasing_in_lambda,
            ),
            (
                "classification_decreasing_in_gamma",
                self.classification_decreasing_in_gamma,
            ),
            ("envelope_lambda", self.envelope_lambda),
            ("envelope_gamma", self.envelope_gamma),
            ("maxwell", self.maxwell),
            ("concavity", self.concavity),
            ("first_law_loop", self.first_law_loop),
        ]
    }
}

impl SurfaceGrid {
    /// Measure every identity; `tolerance` is the residual above which a place counts
    /// as a violation.
    pub fn checks(&self, tolerance: f64) -> SurfaceChecks {
        SurfaceChecks {
            distortion_decreasing_in_lambda: distortion_decreasing_in_lambda(self, tolerance),
            classification_decreasing_in_gamma: classification_decreasing_in_gamma(self, tolerance),
            envelope_lambda: envelope_lambda(self, tolerance),
            envelope_gamma: envelope_gamma(self, tolerance),
            maxwell: maxwell(self, tolerance),
            concavity: concavity(self, tolerance),
            first_law_loop: first_law_loop(self, tolerance),
        }
    }
}

/// The pairs of points `(p[i][j], p[i+1][j])` along lambda.
fn lambda_edges(grid: &SurfaceGrid) -> impl Iterator<Item = (SurfacePoint, SurfacePoint)> + '_ {
    let p = &grid.points;
    (0..p.len().saturating_sub(1))
        .flat_map(move |i| (0..p[i].len().min(p[i + 1].len())).map(move |j| (p[i][j], p[i + 1][j])))
}

/// The pairs of points `(p[i][j], p[i][j+1])` along gamma.
fn gamma_edges(grid: &SurfaceGrid) -> impl Iterator<Item = (SurfacePoint, SurfacePoint)> + '_ {
    grid.points
        .iter()
        .flat_map(|row| row.windows(2).map(|w| (w[0], w[1])))
}

/// The cells `(a, b, c, d) = (p[i][j], p[i+1][j], p[i+1][j+1], p[i][j+1])`,
/// counter-clockwise in the (lambda, gamma) plane.
fn cells(
    grid: &SurfaceGrid,
) -> impl Iterator<Item = (SurfacePoint, SurfacePoint, SurfacePoint, SurfacePoint)> + '_ {
    let p = &grid.points;
    (0..p.len().saturating_sub(1)).flat_map(move |i| {
        (0..p[i].len().min(p[i + 1].len()).saturating_sub(1))
            .map(move |j| (p[i][j], p[i + 1][j], p[i + 1][j + 1], p[i][j + 1]))
    })
}

/// `dD/dlambda <= 0` (F concave in lambda): on each lambda edge the residual is the
/// positive part of the slope `(D_b - D_a) / (lambda_b - lambda_a)`.
pub fn distortion_decreasing_in_lambda(grid: &SurfaceGrid, tolerance: f64) -> CheckSummary {
    let mut out = CheckSummary::default();
    for (a, b) in lambda_edges(grid) {
        let slope = (b.functionals.distortion - a.functionals.distortion) / (b.lambda - a.lambda);
        out.record(slope.max(0.0), tolerance);
    }
    out
}

/// `dC/dgamma <= 0` (F concave in gamma): on each gamma edge the residual is the
/// positive part of `(C_b - C_a) / (gamma_b - gamma_a)`.
pub fn classification_decreasing_in_gamma(grid: &SurfaceGrid, tolerance: f64) -> CheckSummary {
    let mut out = CheckSummary::default();
    for (a, b) in gamma_edges(grid) {
        let slope =
            (b.functionals.classification - a.functionals.classification) / (b.gamma - a.gamma);
        out.record(slope.max(0.0), tolerance);
    }
    out
}

/// Envelope theorem `dF/dlambda = D`: on each lambda edge
/// `|(F_b - F_a) / (lambda_b - lambda_a) - (D_a + D_b) / 2|` (nats).
pub fn envelope_lambda(grid: &SurfaceGrid, tolerance: f64) -> CheckSummary {
    let mut out = CheckSummary::default();
    for (a, b) in lambda_edges(grid) {
        let slope = (b.free_energy - a.free_energy) / (b.lambda - a.lambda);
        let mean = 0.5 * (a.functionals.distortion + b.functionals.distortion);
        out.record((slope - mean).abs(), tolerance);
    }
    out
}

/// Envelope theorem `dF/dgamma = C`: on each gamma edge
/// `|(F_b - F_a) / (gamma_b - gamma_a) - (C_a + C_b) / 2|` (nats).
pub fn envelope_gamma(grid: &SurfaceGrid, tolerance: f64) -> CheckSummary {
    let mut out = CheckSummary::default();
    for (a, b) in gamma_edges(grid) {
        let slope = (b.free_energy - a.free_energy) / (b.gamma - a.gamma);
        let mean = 0.5 * (a.functionals.classification + b.functionals.classification);
        out.record((slope - mean).abs(), tolerance);
    }
    out
}

/// Maxwell relation `dD/dgamma = dC/dlambda` (both are `d^2 F / dlambda dgamma`): on
/// each cell `|dD/dgamma - dC/dlambda|` with cell-centred differences
/// `dD/dgamma = ((D_d - D_a) + (D_c - D_b)) / (2 dgamma)` and
/// `dC/dlambda = ((C_b - C_a) + (C_c - C_d)) / (2 dlambda)`.
pub fn maxwell(grid: &SurfaceGrid, tolerance: f64) -> CheckSummary {
    let mut out = CheckSummary::default();
    for (a, b, c, d) in cells(grid) {
        let (fa, fb, fc, fd) = (a.functionals, b.functionals, c.functionals, d.functionals);
        let dl = b.lambda - a.lambda;
        let dg = d.gamma - a.gamma;
        let dd_dg = 0.5 * ((fd.distortion - fa.distortion) + (fc.distortion - fb.distortion)) / dg;
        let dc_dl = 0.5
            * ((fb.classification - fa.classification) + (fc.classification - fd.classification))
            / dl;
        out.record((dd_dg - dc_dl).abs(), tolerance);
    }
    out
}

/// First law around each cell: the work `oint D dlambda + C dgamma` around the
/// closed loop a -> b -> c -> d -> a (trapezoidal) vanishes, since
/// `D dlambda + C dgamma = dF` is exact; residual `|oint|` (nats).
pub fn first_law_loop(grid: &SurfaceGrid, tolerance: f64) -> CheckSummary {
    let mut out = CheckSummary::default();
    let edge = |u: SurfacePoint, v: SurfacePoint| {
        let (fu, fv) = (u.functionals, v.functionals);
        0.5 * (fu.distortion + fv.distortion) * (v.lambda - u.lambda)
            + 0.5 * (fu.classification + fv.classification) * (v.gamma - u.gamma)
    };
    for (a, b, c, d) in cells(grid) {
        let circulation = edge(a, b) + edge(b, c) + edge(c, d) + edge(d, a);
        out.record(circulation.abs(), tolerance);
    }
    out
}

/// Concavity of F: at each interior node the largest eigenvalue of the
/// finite-difference Hessian `[[F_ll, F_lg], [F_lg, F_gg]]` (three-point second
/// differences on the possibly uneven grid, a central cross difference) must be
/// `<= 0`; residual `max(eigenvalue, 0)`.
pub fn concavity(grid: &SurfaceGrid, tolerance: f64) -> CheckSummary {
    let mut out = CheckSummary::default();
    let (nl, ng) = (grid.lambdas.len(), grid.gammas.len());
    for i in 1..nl.saturating_sub(1) {
        for j in 1..ng.saturating_sub(1) {
            out.record(hessian_max_eigenvalue(grid, i, j).max(0.0), tolerance);
        }
    }
    out
}

/// Largest eigenvalue of the central-difference Hessian of F at an interior node.
fn hessian_max_eigenvalue(grid: &SurfaceGrid, i: usize, j: usize) -> f64 {
    let p = &grid.points;
    let f = |a: usize, b: usize| p[a][b].free_energy;
    let (l0, l1, l2) = (grid.lambdas[i - 1], grid.lambdas[i], grid.lambdas[i + 1]);
    let (g0, g1, g2) = (grid.gammas[j - 1], grid.gammas[j], grid.gammas[j + 1]);
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
