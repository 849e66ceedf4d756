//! One-dimensional stencils along grid lines: derivatives and edge integrals of a
//! functional by the polynomial through nearby nodes, each by a higher- and a lower-order
//! rule ([`Pair`]), and the walk over the grid's nodes and edges.

use super::combination::{C, Combination, D, Pair};
use crate::surface::grid::SurfaceGrid;

/// A grid axis: lines of constant gamma run along lambda, and the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Axis {
    /// Along lambda (first node index).
    Lambda,
    /// Along gamma (second node index).
    Gamma,
}

impl Axis {
    /// The grid's positions along this axis: its lambdas or its gammas.
    pub(super) fn positions(self, grid: &SurfaceGrid) -> &[f64] {
        match self {
            Axis::Lambda => &grid.lambdas,
            Axis::Gamma => &grid.gammas,
        }
    }

    /// The node at position `k` along this axis on the line through `node`.
    pub(super) fn node(self, node: (usize, usize), k: usize) -> (usize, usize) {
        match self {
            Axis::Lambda => (k, node.1),
            Axis::Gamma => (node.0, k),
        }
    }

    /// The position of `node` along this axis.
    pub(super) fn index(self, node: (usize, usize)) -> usize {
        match self {
            Axis::Lambda => node.0,
            Axis::Gamma => node.1,
        }
    }

    /// The functional whose integral along this axis is F: D along lambda, C along gamma.
    pub(super) fn conjugate(self) -> usize {
        match self {
            Axis::Lambda => D,
            Axis::Gamma => C,
        }
    }
}

/// Lagrange basis polynomial `m` of `nodes` at `x`.
fn lagrange(nodes: &[f64], m: usize, x: f64) -> f64 {
    nodes
        .iter()
        .enumerate()
        .filter(|&(n, _)| n != m)
        .map(|(_, &xn)| (x - xn) / (nodes[m] - xn))
        .product()
}

/// Derivative of Lagrange basis polynomial `m` of `nodes` at `x`.
fn lagrange_derivative(nodes: &[f64], m: usize, x: f64) -> f64 {
    (0..nodes.len())
        .filter(|&l| l != m)
        .map(|l| {
            let rest: f64 = (0..nodes.len())
                .filter(|&n| n != m && n != l)
                .map(|n| (x - nodes[n]) / (nodes[m] - nodes[n]))
                .product();
            rest / (nodes[m] - nodes[l])
        })
        .sum()
}

/// The first of `size` consecutive indices of `0..n` around `centre`.
fn window(n: usize, centre: isize, size: usize) -> usize {
    centre.clamp(0, (n - size) as isize) as usize
}

/// Weights `(k, w)` of `integral from x_k to x_{k+1}` of the polynomial interpolating
/// `size` consecutive nodes that contain the edge (Simpson's rule integrates it exactly:
/// degree <= 3).
fn edge_integral_weights(xs: &[f64], k: usize, size: usize) -> Vec<(usize, f64)> {
    let start = window(xs.len(), k as isize + 1 - (size / 2) as isize, size);
    let nodes = &xs[start..start + size];
    let (a, b) = (xs[k], xs[k + 1]);
    (0..size)
        .map(|m| {
            let w = (b - a) / 6.0
                * (lagrange(nodes, m, a)
                    + 4.0 * lagrange(nodes, m, 0.5 * (a + b))
                    + lagrange(nodes, m, b));
            (start + m, w)
        })
        .collect()
}

/// Weights of the derivative at `x_k` of the polynomial interpolating the `size`
/// nodes nearest to `k`.
fn derivative_weights(xs: &[f64], k: usize, size: usize) -> Vec<(usize, f64)> {
    let start = window(xs.len(), k as isize - ((size as isize - 1) / 2), size);
    let nodes = &xs[start..start + size];
    (0..size)
        .map(|m| (start + m, lagrange_derivative(nodes, m, xs[k])))
        .collect()
}

/// The sizes of the higher- and lower-order stencils on a line of `n` nodes: cubic and
/// quadratic where there are four nodes, quadratic and linear with three, and so on.
fn orders(n: usize) -> (usize, usize) {
    let high = n.min(4);
    (high, (high - 1).max(1))
}

/// The weights `(m, w)` of a stencil of `size` nodes at position `k` of the positions `xs`:
/// [`edge_integral_weights`] or [`derivative_weights`].
type Weights = fn(&[f64], usize, usize) -> Vec<(usize, f64)>;

/// `sum over m of w_m quantity(node_m)` along `axis` through `node`, for the stencil
/// `weights` of the higher- and of the lower-order size.
fn stencil_pair(
    grid: &SurfaceGrid,
    axis: Axis,
    node: (usize, usize),
    quantity: usize,
    weights: Weights,
) -> Pair {
    let xs = axis.positions(grid);
    let (high, low) = orders(xs.len());
    let k = axis.index(node);
    let build = |size: usize| {
        let mut c = Combination::default();
        for (m, w) in weights(xs, k, size) {
            c.add(axis.node(node, m), quantity, w);
        }
        c
    };
    Pair {
        high: build(high),
        low: build(low),
    }
}

/// `integral of quantity d(axis)` over the edge from node `a` to the next node along
/// `axis`, by the higher- and the lower-order rule.
pub(super) fn edge_integral(
    grid: &SurfaceGrid,
    axis: Axis,
    a: (usize, usize),
    quantity: usize,
) -> Pair {
    stencil_pair(grid, axis, a, quantity, edge_integral_weights)
}

/// `d quantity / d axis` at `node`, by the higher- and the lower-order stencil.
pub(super) fn derivative(
    grid: &SurfaceGrid,
    axis: Axis,
    node: (usize, usize),
    quantity: usize,
) -> Pair {
    stencil_pair(grid, axis, node, quantity, derivative_weights)
}

/// Every node `(i, j)` of the grid.
pub(super) fn nodes(grid: &SurfaceGrid) -> impl Iterator<Item = (usize, usize)> + '_ {
    (0..grid.lambdas.len()).flat_map(move |i| (0..grid.gammas.len()).map(move |j| (i, j)))
}

/// The nodes that start an edge along `axis`.
pub(super) fn edge_starts(
    grid: &SurfaceGrid,
    axis: Axis,
) -> impl Iterator<Item = (usize, usize)> + '_ {
    let last = axis.positions(grid).len() - 1;
    nodes(grid).filter(move |&n| axis.index(n) < last)
}

/// The node after `n` along `axis`.
pub(super) fn next(axis: Axis, n: (usize, usize)) -> (usize, usize) {
    axis.node(n, axis.index(n) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stencils_are_exact_for_polynomials_of_their_degree() {
        let xs = [0.5, 1.0, 2.0, 4.0, 4.5];
        let cubic = |x: f64| 1.0 - 2.0 * x + 0.5 * x * x - 0.1 * x * x * x;
        let cubic_d = |x: f64| -2.0 + x - 0.3 * x * x;
        let cubic_int = |x: f64| x - x * x + x * x * x / 6.0 - 0.025 * x.powi(4);
        for k in 0..xs.len() - 1 {
            let w = edge_integral_weights(&xs, k, 4);
            let got: f64 = w.iter().map(|&(m, w)| w * cubic(xs[m])).sum();
            let want = cubic_int(xs[k + 1]) - cubic_int(xs[k]);
            assert!((got - want).abs() < 1e-12, "edge {k}: {got} vs {want}");
        }
        for k in 0..xs.len() {
            let w = derivative_weights(&xs, k, 4);
            let got: f64 = w.iter().map(|&(m, w)| w * cubic(xs[m])).sum();
            assert!((got - cubic_d(xs[k])).abs() < 1e-12, "node {k}");
        }
        // The two-node rules are the trapezoid and the secant.
        let w = edge_integral_weights(&xs, 1, 2);
        assert_eq!(w, vec![(1, 0.5), (2, 0.5)]);
        let w = derivative_weights(&xs, 4, 2);
        assert_eq!(w, vec![(3, -2.0), (4, 2.0)]);
    }
}
