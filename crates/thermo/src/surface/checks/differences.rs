//! The identities measured by differences of two nodes, with no discretisation error:
//! monotonicity of D in lambda and of C in gamma, and minimality of every point for its
//! own objective.

use super::combination::{C, Combination, D, F, R, finish};
use super::stencil::{Axis, edge_starts, next};
use super::summary::{CHECK_NAMES, CheckSettings, Place};
use crate::surface::grid::SurfaceGrid;

/// `quantity(b) - quantity(a) <= 0` on every edge along `axis` (a monotone functional):
/// residual the positive part of the difference; a difference of two nodes has no
/// discretisation error (its sign is the sign of the derivative somewhere on the edge).
fn decreasing(
    grid: &SurfaceGrid,
    settings: CheckSettings,
    check: &str,
    axis: Axis,
    quantity: usize,
) -> Vec<Place> {
    edge_starts(grid, axis)
        .map(|a| {
            let b = next(axis, a);
            let mut diff = Combination::default();
            diff.add(b, quantity, 1.0);
            diff.add(a, quantity, -1.0);
            let residual = diff.value(grid).max(0.0);
            finish(
                grid,
                settings,
                check,
                a,
                Some(b),
                residual,
                0.0,
                diff.noise(grid),
            )
        })
        .collect()
}

/// `dD/dlambda <= 0` (F concave in lambda): on each lambda edge, the positive part of
/// `D_b - D_a` (nats).
pub fn distortion_decreasing_in_lambda(grid: &SurfaceGrid, settings: CheckSettings) -> Vec<Place> {
    decreasing(grid, settings, CHECK_NAMES[0], Axis::Lambda, D)
}

/// `dC/dgamma <= 0` (F concave in gamma): on each gamma edge, the positive part of
/// `C_b - C_a` (nats).
pub fn classification_decreasing_in_gamma(
    grid: &SurfaceGrid,
    settings: CheckSettings,
) -> Vec<Place> {
    decreasing(grid, settings, CHECK_NAMES[1], Axis::Gamma, C)
}

/// Minimality, `F(m_a) = min_theta J(theta; m_a) <= J(theta_b; m_a)`: every measured
/// point must be at least as good for its own objective as each grid neighbour's
/// parameters, `J(theta_b; m_a) = R_b + lambda_a D_b + gamma_a C_b`; residual
/// `max(F_a - J(theta_b; m_a), 0)` for both directions of every edge (nats). It needs no
/// derivative, so it has no discretisation error: a violation beyond the noise shows
/// directly that a point is not the minimum of its objective (not at equilibrium).
pub fn minimality(grid: &SurfaceGrid, settings: CheckSettings) -> Vec<Place> {
    let edges = edge_starts(grid, Axis::Lambda)
        .map(|a| (a, next(Axis::Lambda, a)))
        .chain(edge_starts(grid, Axis::Gamma).map(|a| (a, next(Axis::Gamma, a))));
    edges
        .flat_map(|(a, b)| [(a, b), (b, a)])
        .map(|(a, b)| {
            let pa = &grid.points[a.0][a.1];
            let mut c = Combination::default();
            c.add(a, F, 1.0);
            c.add(b, R, -1.0);
            c.add(b, D, -pa.lambda);
            c.add(b, C, -pa.gamma);
            let residual = c.value(grid).max(0.0);
            finish(
                grid,
                settings,
                CHECK_NAMES[7],
                a,
                Some(b),
                residual,
                0.0,
                c.noise(grid),
            )
        })
        .collect()
}
