//! The identities measured by second derivatives of F: the Maxwell relation
//! `dD/dgamma = dC/dlambda` and the concavity of F (its Hessian negative semidefinite).

use super::combination::{C, Combination, D, Residual, finish, place};
use super::stencil::{Axis, derivative, nodes};
use super::summary::{CHECK_NAMES, CheckSettings, Place};
use crate::surface::grid::SurfaceGrid;

/// Maxwell relation `dD/dgamma = dC/dlambda` (both are `d^2 F / dlambda dgamma`): at
/// every node `dD/dgamma - dC/dlambda` (nats per unit of multiplier), each derivative
/// from the cubic through the four nearest nodes of its line (discretisation: distance
/// to the quadratic's).
pub fn maxwell(grid: &SurfaceGrid, settings: CheckSettings) -> Vec<Place> {
    nodes(grid)
        .map(|n| {
            let residual = Residual::default()
                .with(1.0, derivative(grid, Axis::Gamma, n, D))
                .with(-1.0, derivative(grid, Axis::Lambda, n, C));
            place(grid, settings, CHECK_NAMES[4], n, None, &residual)
        })
        .collect()
}

/// The symmetric matrix of sensitivities
/// `H = [[dD/dlambda, (dD/dgamma + dC/dlambda) / 2], [.., dC/dgamma]]`, the Hessian of F.
fn hessian_value(h: &[Combination; 4], grid: &SurfaceGrid) -> [[f64; 2]; 2] {
    let v: Vec<f64> = h.iter().map(|c| c.value(grid)).collect();
    let off = 0.5 * (v[1] + v[2]);
    [[v[0], off], [off, v[3]]]
}

/// Largest eigenvalue and its unit eigenvector of a symmetric 2x2 matrix.
fn top_eigen(m: [[f64; 2]; 2]) -> (f64, [f64; 2]) {
    let (a, b, d) = (m[0][0], m[0][1], m[1][1]);
    let mean = 0.5 * (a + d);
    let radius = (0.25 * (a - d).powi(2) + b * b).sqrt();
    let top = mean + radius;
    // (b, top - a) and (top - d, b) are eigenvectors; take the better conditioned.
    let (u, v) = if (top - a).abs() + b.abs() >= (top - d).abs() + b.abs() {
        (b, top - a)
    } else {
        (top - d, b)
    };
    let norm = u.hypot(v);
    if norm == 0.0 {
        (top, [1.0, 0.0])
    } else {
        (top, [u / norm, v / norm])
    }
}

/// Concavity of F: at every node the largest eigenvalue of the Hessian
/// `[[dD/dlambda, dD/dgamma], [dC/dlambda, dC/dgamma]]` (symmetrised) is `<= 0`;
/// residual its positive part. Discretisation: the spectral norm of the difference of
/// the higher- and lower-order Hessians (Weyl's bound on the eigenvalue's change); noise:
/// the standard error of `v' H v` along the top eigenvector `v`.
pub fn concavity(grid: &SurfaceGrid, settings: CheckSettings) -> Vec<Place> {
    nodes(grid)
        .map(|n| {
            let parts = [
                derivative(grid, Axis::Lambda, n, D),
                derivative(grid, Axis::Gamma, n, D),
                derivative(grid, Axis::Lambda, n, C),
                derivative(grid, Axis::Gamma, n, C),
            ];
            let e: Vec<f64> = parts.iter().map(|p| p.discretisation(grid)).collect();
            let [a, b, c, d] = parts;
            let high = [a.high, b.high, c.high, d.high];
            let (top, v) = top_eigen(hessian_value(&high, grid));
            // Weyl: the eigenvalue moves by at most the spectral norm of the error,
            // bounded by that of the matrix of entry-wise error bounds.
            let off = 0.5 * (e[1] + e[2]);
            let (discretisation, _) = top_eigen([[e[0], off], [off, e[3]]]);
            // v' H v = v0^2 H00 + v0 v1 (H01 + H10) + v1^2 H11.
            let [h00, h01, h10, h11] = high;
            let quadratic = Combination::default()
                .plus(&h00, v[0] * v[0])
                .plus(&h01, v[0] * v[1])
                .plus(&h10, v[0] * v[1])
                .plus(&h11, v[1] * v[1]);
            finish(
                grid,
                settings,
                CHECK_NAMES[5],
                n,
                None,
                top.max(0.0),
                discretisation,
                quadratic.noise(grid),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_eigenpair_of_symmetric_matrices() {
        for m in [
            [[-2.0, 0.5], [0.5, -1.0]],
            [[1.0, 0.0], [0.0, 3.0]],
            [[0.0, 2.0], [2.0, 0.0]],
        ] {
            let (l, v) = top_eigen(m);
            let mv = [
                m[0][0] * v[0] + m[0][1] * v[1],
                m[1][0] * v[0] + m[1][1] * v[1],
            ];
            assert!((mv[0] - l * v[0]).abs() < 1e-12 && (mv[1] - l * v[1]).abs() < 1e-12);
            assert!((v[0].hypot(v[1]) - 1.0).abs() < 1e-12);
        }
    }
}
