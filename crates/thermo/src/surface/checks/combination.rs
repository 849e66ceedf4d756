//! Every residual of the checks as a linear combination of the nodes' (R, D, C, F)
//! ([`Combination`]), a discretised quantity by two formulas of different order
//! ([`Pair`]), a residual with its parts ([`Residual`]), and the [`Place`] it makes.

use std::collections::BTreeMap;

use super::summary::{CheckSettings, Place};
use crate::surface::grid::SurfaceGrid;

/// Index of R, D, C, F in a coefficient vector.
pub(super) const R: usize = 0;
pub(super) const D: usize = 1;
pub(super) const C: usize = 2;
pub(super) const F: usize = 3;

/// `sum over nodes of coefficients . (R, D, C, F)`: every residual of the checks.
#[derive(Debug, Clone, Default)]
pub(super) struct Combination {
    /// The coefficients of (R, D, C, F) of each node `(i, j)` that takes part.
    terms: BTreeMap<(usize, usize), [f64; 4]>,
}

impl Combination {
    /// Adds `weight` times `quantity` (one of [`R`], [`D`], [`C`], [`F`]) of `node`.
    pub(super) fn add(&mut self, node: (usize, usize), quantity: usize, weight: f64) {
        self.terms.entry(node).or_insert([0.0; 4])[quantity] += weight;
    }

    /// `self + scale * other`, term by term.
    pub(super) fn plus(mut self, other: &Combination, scale: f64) -> Self {
        for (&node, c) in &other.terms {
            for (q, &w) in c.iter().enumerate() {
                self.add(node, q, scale * w);
            }
        }
        self
    }

    /// The combination's value on the grid: `sum of c . (R, D, C, F)` over its nodes.
    pub(super) fn value(&self, grid: &SurfaceGrid) -> f64 {
        self.terms
            .iter()
            .map(|(&(i, j), c)| {
                let p = &grid.points[i][j];
                let f = p.functionals;
                c[R] * f.rate + c[D] * f.distortion + c[C] * f.classification + c[F] * p.free_energy
            })
            .sum()
    }

    /// Standard error from the nodes' (R, D, C) covariances, F expanded as
    /// `R + lambda D + gamma C`.
    pub(super) fn noise(&self, grid: &SurfaceGrid) -> f64 {
        let var: f64 = self
            .terms
            .iter()
            .filter_map(|(&(i, j), c)| {
                let p = &grid.points[i][j];
                let cov = p.covariance?;
                let a = [c[R] + c[F], c[D] + p.lambda * c[F], c[C] + p.gamma * c[F]];
                Some(
                    (0..3)
                        .flat_map(|u| (0..3).map(move |v| (u, v)))
                        .map(|(u, v)| a[u] * cov[u][v] * a[v])
                        .sum::<f64>(),
                )
            })
            .sum();
        var.max(0.0).sqrt()
    }
}

/// A quantity by a higher-order formula and by the embedded lower-order one.
pub(super) struct Pair {
    /// The higher-order formula (the reported value).
    pub(super) high: Combination,
    /// The embedded formula one order lower.
    pub(super) low: Combination,
}

impl Pair {
    /// `|high - low|`: the discretisation error estimate of the quantity.
    pub(super) fn discretisation(&self, grid: &SurfaceGrid) -> f64 {
        (self.high.value(grid) - self.low.value(grid)).abs()
    }
}

/// A residual: exact terms plus discretised parts, each with its own error estimate
/// (summed in absolute value, so that errors of different parts never cancel).
#[derive(Default)]
pub(super) struct Residual {
    /// The terms without discretisation error (nodes' values taken as they are).
    pub(super) exact: Combination,
    /// The discretised parts, each with its scale in the residual.
    parts: Vec<(f64, Pair)>,
}

impl Residual {
    /// The residual plus `scale` times the discretised `part`.
    pub(super) fn with(mut self, scale: f64, part: Pair) -> Self {
        self.parts.push((scale, part));
        self
    }

    /// The residual by the higher-order formulas: `exact + sum of scale * high`.
    fn combination(&self) -> Combination {
        self.parts
            .iter()
            .fold(self.exact.clone(), |c, (s, p)| c.plus(&p.high, *s))
    }

    /// Its discretisation error estimate: `sum of |scale| * |high - low|` over the parts.
    fn discretisation(&self, grid: &SurfaceGrid) -> f64 {
        self.parts
            .iter()
            .map(|(s, p)| s.abs() * p.discretisation(grid))
            .sum()
    }
}

/// The place of a residual: its value by the higher-order formulas, its discretisation
/// error estimate and its noise standard error, weighed by [`finish`].
pub(super) fn place(
    grid: &SurfaceGrid,
    settings: CheckSettings,
    check: &str,
    at: (usize, usize),
    to: Option<(usize, usize)>,
    residual: &Residual,
) -> Place {
    let combination = residual.combination();
    finish(
        grid,
        settings,
        check,
        at,
        to,
        combination.value(grid),
        residual.discretisation(grid),
        combination.noise(grid),
    )
}

/// The place `at` (to `to`) of `check` with its residual and error estimates: violated when
/// `|residual| > factor * sqrt(discretisation^2 + noise^2 + floor^2)`.
#[allow(clippy::too_many_arguments)]
pub(super) fn finish(
    grid: &SurfaceGrid,
    settings: CheckSettings,
    check: &str,
    at: (usize, usize),
    to: Option<(usize, usize)>,
    residual: f64,
    discretisation: f64,
    noise: f64,
) -> Place {
    let budget = (discretisation.powi(2) + noise.powi(2) + settings.floor.powi(2)).sqrt();
    let ratio = residual.abs() / budget;
    let xy = |(i, j): (usize, usize)| [grid.lambdas[i], grid.gammas[j]];
    Place {
        check: check.to_string(),
        at: xy(at),
        to: to.map(xy),
        residual,
        discretisation,
        noise,
        ratio,
        violated: ratio > settings.factor,
    }
}
