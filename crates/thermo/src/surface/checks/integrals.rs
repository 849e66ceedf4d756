//! The identities measured by integrals along grid lines: the envelope theorems
//! `dF/dlambda = D`, `dF/dgamma = C` edge by edge, and the first law
//! `dF = D dlambda + C dgamma` along paths from the grid's first node.

use super::combination::{F, Residual, place};
use super::stencil::{Axis, edge_integral, edge_starts, next, nodes};
use super::summary::{CHECK_NAMES, CheckSettings, Place};
use crate::surface::grid::SurfaceGrid;

/// `F_b - F_a - integral of the conjugate functional` over every edge along `axis`.
fn envelope(grid: &SurfaceGrid, settings: CheckSettings, check: &str, axis: Axis) -> Vec<Place> {
    edge_starts(grid, axis)
        .map(|a| {
            let b = next(axis, a);
            let mut residual = Residual::default();
            residual.exact.add(b, F, 1.0);
            residual.exact.add(a, F, -1.0);
            let residual = residual.with(-1.0, edge_integral(grid, axis, a, axis.conjugate()));
            place(grid, settings, check, a, Some(b), &residual)
        })
        .collect()
}

/// Envelope theorem `dF/dlambda = D`, in integral form: on each lambda edge
/// `F(lambda_b) - F(lambda_a) - integral_{lambda_a}^{lambda_b} D dlambda` (nats), the
/// integral of the cubic through the four nearest nodes of the line (discretisation:
/// its distance to the quadratic's).
pub fn envelope_lambda(grid: &SurfaceGrid, settings: CheckSettings) -> Vec<Place> {
    envelope(grid, settings, CHECK_NAMES[2], Axis::Lambda)
}

/// Envelope theorem `dF/dgamma = C`: on each gamma edge
/// `F(gamma_b) - F(gamma_a) - integral_{gamma_a}^{gamma_b} C dgamma` (nats).
pub fn envelope_gamma(grid: &SurfaceGrid, settings: CheckSettings) -> Vec<Place> {
    envelope(grid, settings, CHECK_NAMES[3], Axis::Gamma)
}

/// `F(b) - F(a) - integral of (D dlambda + C dgamma)` along the grid path from `a` that
/// first walks `first`, then the other axis, to `b`.
fn path_residual(
    grid: &SurfaceGrid,
    a: (usize, usize),
    b: (usize, usize),
    first: Axis,
) -> Residual {
    let mut residual = Residual::default();
    residual.exact.add(b, F, 1.0);
    residual.exact.add(a, F, -1.0);
    let second = match first {
        Axis::Lambda => Axis::Gamma,
        Axis::Gamma => Axis::Lambda,
    };
    let corner = first.node(a, first.index(b));
    for (axis, from, to) in [(first, a, corner), (second, corner, b)] {
        let mut n = from;
        while axis.index(n) < axis.index(to) {
            residual = residual.with(-1.0, edge_integral(grid, axis, n, axis.conjugate()));
            n = next(axis, n);
        }
    }
    residual
}

/// First law `dF = D dlambda + C dgamma`: from the grid's first node `a` (smallest
/// lambda and gamma) to every other node `b`, `F(b) - F(a)` (both measured) against the
/// path integral of `D dlambda + C dgamma` along the grid lines, walking lambda first and,
/// where it is a different path, gamma first (nats). Unlike a loop integral, which
/// never involves F, this tests that the measured free energy is the potential of the
/// measured functionals.
pub fn first_law(grid: &SurfaceGrid, settings: CheckSettings) -> Vec<Place> {
    let a = (0, 0);
    let mut out = Vec::new();
    for b in nodes(grid).filter(|&b| b != a) {
        out.push(place(
            grid,
            settings,
            CHECK_NAMES[6],
            a,
            Some(b),
            &path_residual(grid, a, b, Axis::Lambda),
        ));
        if b.0 > 0 && b.1 > 0 {
            out.push(place(
                grid,
                settings,
                CHECK_NAMES[6],
                a,
                Some(b),
                &path_residual(grid, a, b, Axis::Gamma),
            ));
        }
    }
    out
}
