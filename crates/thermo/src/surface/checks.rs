//! The thermodynamic identities of the equilibrium surface (docs/THEORY.md, section
//! "Functionals and free energy"), each measured on a grid by its own function, each
//! residual weighed against an estimate of its own error.
//!
//! On a grid an identity never holds exactly: derivatives and integrals are taken from
//! a few nodes (a *discretisation* error, of order `h^2` or higher in the spacing), and
//! a deep model's functionals are Monte-Carlo averages (a *noise* error). Every residual
//! here is therefore computed twice, by a higher-order formula (the reported residual)
//! and by the embedded formula one order lower: their difference estimates the
//! discretisation error of the lower-order one, a conservative bound for the reported
//! residual (the embedded-pair estimate of Runge-Kutta and Richardson extrapolation).
//! Every residual is a linear combination of the nodes' (R, D, C, F); its noise standard
//! error follows from each node's covariance of (R, D, C) ([`SurfacePoint::covariance`]),
//! the nodes taken as independent draws. A place violates its identity when
//!
//! ```text
//! |residual| > factor * sqrt(discretisation^2 + noise^2 + floor^2)
//! ```
//!
//! ([`CheckSettings`]); `|residual| / sqrt(...)` is the residual *in units of its error
//! estimate* that the summaries report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::grid::SurfaceGrid;
use crate::error::{Result, ThermoError};

/// When a residual counts as a violation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSettings {
    /// A place violates its identity when its residual exceeds `factor` error estimates.
    pub factor: f64,
    /// An error allowance beside discretisation and noise, in each check's own units
    /// (nats, or nats per unit of multiplier for derivatives): what neither estimate
    /// covers, such as a trained model's distance from exact equilibrium or f64 roundoff.
    pub floor: f64,
}

impl Default for CheckSettings {
    /// Three error estimates, and a roundoff floor of `1e-9`.
    fn default() -> Self {
        Self {
            factor: 3.0,
            floor: 1e-9,
        }
    }
}

impl CheckSettings {
    /// Error unless `factor >= 1` and `floor > 0` are finite.
    pub fn validate(&self) -> Result<()> {
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(ThermoError::InvalidConfig(format!(
                "[checks] factor must be a finite number >= 1, got {}",
                self.factor
            )));
        }
        if !(self.floor.is_finite() && self.floor > 0.0) {
            return Err(ThermoError::InvalidConfig(format!(
                "[checks] floor must be finite and > 0, got {}",
                self.floor
            )));
        }
        Ok(())
    }
}

/// One place where an identity is measured, with its residual and error estimates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// The identity (a field name of [`SurfaceChecks`]).
    pub check: String,
    /// `(lambda, gamma)` of the place (the start of an edge or path).
    pub at: [f64; 2],
    /// `(lambda, gamma)` where an edge or path ends; absent for a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<[f64; 2]>,
    /// The residual, by the higher-order formula (check's own units).
    pub residual: f64,
    /// Its discretisation error estimate.
    pub discretisation: f64,
    /// Its noise standard error.
    pub noise: f64,
    /// `|residual| / sqrt(discretisation^2 + noise^2 + floor^2)`.
    pub ratio: f64,
    /// Whether `ratio > factor`.
    pub violated: bool,
}

/// How many grid places violate one identity and by how much.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CheckSummary {
    /// Places checked.
    pub checked: usize,
    /// Places whose residual exceeds `factor` error estimates.
    pub violations: usize,
    /// Largest |residual| (in the check's own units).
    pub max_residual: f64,
    /// Largest residual in units of its error estimate.
    #[serde(default)]
    pub max_ratio: f64,
    /// Median residual in units of its error estimate.
    #[serde(default)]
    pub median_ratio: f64,
    /// Largest discretisation error estimate.
    #[serde(default)]
    pub max_discretisation: f64,
    /// Largest noise standard error.
    #[serde(default)]
    pub max_noise: f64,
}

impl CheckSummary {
    /// The summary of the places of one check.
    pub fn of(places: &[Place]) -> Self {
        let mut ratios: Vec<f64> = places.iter().map(|p| p.ratio).collect();
        ratios.sort_by(f64::total_cmp);
        let max = |f: fn(&Place) -> f64| places.iter().map(f).fold(0.0, f64::max);
        CheckSummary {
            checked: places.len(),
            violations: places.iter().filter(|p| p.violated).count(),
            max_residual: max(|p| p.residual.abs()),
            max_ratio: ratios.last().copied().unwrap_or(0.0),
            median_ratio: ratios.get(ratios.len() / 2).copied().unwrap_or(0.0),
            max_discretisation: max(|p| p.discretisation),
            max_noise: max(|p| p.noise),
        }
    }

    /// Whether no place violates the identity.
    pub fn passed(&self) -> bool {
        self.violations == 0
    }
}

/// Measured residuals of every identity on a grid ([`SurfaceGrid::checks`]).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SurfaceChecks {
    /// The violation rule they were counted with.
    #[serde(default)]
    pub settings: CheckSettings,
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
    /// [`first_law`].
    pub first_law: CheckSummary,
    /// [`minimality`].
    #[serde(default)]
    pub minimality: CheckSummary,
}

/// The names of the checks, in the order of [`SurfaceChecks::named`].
pub const CHECK_NAMES: [&str; 8] = [
    "distortion_decreasing_in_lambda",
    "classification_decreasing_in_gamma",
    "envelope_lambda",
    "envelope_gamma",
    "maxwell",
    "concavity",
    "first_law",
    "minimality",
];

impl SurfaceChecks {
    /// Every check with its name, in declaration order.
    pub fn named(&self) -> [(&'static str, CheckSummary); 8] {
        let s = [
            self.distortion_decreasing_in_lambda,
            self.classification_decreasing_in_gamma,
            self.envelope_lambda,
            self.envelope_gamma,
            self.maxwell,
            self.concavity,
            self.first_law,
            self.minimality,
        ];
        std::array::from_fn(|k| (CHECK_NAMES[k], s[k]))
    }

    /// Whether every identity holds everywhere.
    pub fn all_passed(&self) -> bool {
        self.named().iter().all(|(_, c)| c.passed())
    }

    /// The summaries of a list of places (of every check).
    pub fn of(places: &[Place], settings: CheckSettings) -> Self {
        let summary = |name: &str| {
            let mine: Vec<Place> = places.iter().filter(|p| p.check == name).cloned().collect();
            CheckSummary::of(&mine)
        };
        SurfaceChecks {
            settings,
            distortion_decreasing_in_lambda: summary(CHECK_NAMES[0]),
            classification_decreasing_in_gamma: summary(CHECK_NAMES[1]),
            envelope_lambda: summary(CHECK_NAMES[2]),
            envelope_gamma: summary(CHECK_NAMES[3]),
            maxwell: summary(CHECK_NAMES[4]),
            concavity: summary(CHECK_NAMES[5]),
            first_law: summary(CHECK_NAMES[6]),
            minimality: summary(CHECK_NAMES[7]),
        }
    }
}

impl SurfaceGrid {
    /// Every place of every identity, in the order of [`CHECK_NAMES`].
    pub fn check_places(&self, settings: CheckSettings) -> Result<Vec<Place>> {
        settings.validate()?;
        let mut out = distortion_decreasing_in_lambda(self, settings);
        out.extend(classification_decreasing_in_gamma(self, settings));
        out.extend(envelope_lambda(self, settings));
        out.extend(envelope_gamma(self, settings));
        out.extend(maxwell(self, settings));
        out.extend(concavity(self, settings));
        out.extend(first_law(self, settings));
        out.extend(minimality(self, settings));
        Ok(out)
    }

    /// The summary of every identity.
    pub fn checks(&self, settings: CheckSettings) -> Result<SurfaceChecks> {
        Ok(SurfaceChecks::of(&self.check_places(settings)?, settings))
    }
}

// ----- linear combinations of the nodes' functionals -------------------------------

/// Index of R, D, C, F in a coefficient vector.
const R: usize = 0;
const D: usize = 1;
const C: usize = 2;
const F: usize = 3;

/// `sum over nodes of coefficients . (R, D, C, F)`: every residual of this module.
#[derive(Debug, Clone, Default)]
struct Combination {
    terms: BTreeMap<(usize, usize), [f64; 4]>,
}

impl Combination {
    fn add(&mut self, node: (usize, usize), quantity: usize, weight: f64) {
        self.terms.entry(node).or_insert([0.0; 4])[quantity] += weight;
    }

    fn plus(mut self, other: &Combination, scale: f64) -> Self {
        for (&node, c) in &other.terms {
            for (q, &w) in c.iter().enumerate() {
                self.add(node, q, scale * w);
            }
        }
        self
    }

    fn value(&self, grid: &SurfaceGrid) -> f64 {
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
    fn noise(&self, grid: &SurfaceGrid) -> f64 {
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
struct Pair {
    high: Combination,
    low: Combination,
}

impl Pair {
    /// `|high - low|`: the discretisation error estimate of the quantity.
    fn discretisation(&self, grid: &SurfaceGrid) -> f64 {
        (self.high.value(grid) - self.low.value(grid)).abs()
    }
}

/// A residual: exact terms plus discretised parts, each with its own error estimate
/// (summed in absolute value, so that errors of different parts never cancel).
#[derive(Default)]
struct Residual {
    exact: Combination,
    parts: Vec<(f64, Pair)>,
}

impl Residual {
    fn with(mut self, scale: f64, part: Pair) -> Self {
        self.parts.push((scale, part));
        self
    }

    fn combination(&self) -> Combination {
        self.parts
            .iter()
            .fold(self.exact.clone(), |c, (s, p)| c.plus(&p.high, *s))
    }

    fn discretisation(&self, grid: &SurfaceGrid) -> f64 {
        self.parts
            .iter()
            .map(|(s, p)| s.abs() * p.discretisation(grid))
            .sum()
    }
}

/// The place of a residual.
fn place(
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

#[allow(clippy::too_many_arguments)]
fn finish(
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

// ----- one-dimensional stencils along grid lines -----------------------------------

/// A grid axis: lines of constant gamma run along lambda, and the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Axis {
    Lambda,
    Gamma,
}

impl Axis {
    fn positions(self, grid: &SurfaceGrid) -> &[f64] {
        match self {
            Axis::Lambda => &grid.lambdas,
            Axis::Gamma => &grid.gammas,
        }
    }

    /// The node at position `k` along this axis on the line through `node`.
    fn node(self, node: (usize, usize), k: usize) -> (usize, usize) {
        match self {
            Axis::Lambda => (k, node.1),
            Axis::Gamma => (node.0, k),
        }
    }

    fn index(self, node: (usize, usize)) -> usize {
        match self {
            Axis::Lambda => node.0,
            Axis::Gamma => node.1,
        }
    }

    /// The functional whose integral along this axis is F: D along lambda, C along gamma.
    fn conjugate(self) -> usize {
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

/// `integral of quantity d(axis)` over the edge from node `a` to the next node along
/// `axis`, by the higher- and the lower-order rule.
fn edge_integral(grid: &SurfaceGrid, axis: Axis, a: (usize, usize), quantity: usize) -> Pair {
    let xs = axis.positions(grid);
    let (high, low) = orders(xs.len());
    let k = axis.index(a);
    let build = |size: usize| {
        let mut c = Combination::default();
        for (m, w) in edge_integral_weights(xs, k, size) {
            c.add(axis.node(a, m), quantity, w);
        }
        c
    };
    Pair {
        high: build(high),
        low: build(low),
    }
}

/// `d quantity / d axis` at `node`, by the higher- and the lower-order stencil.
fn derivative(grid: &SurfaceGrid, axis: Axis, node: (usize, usize), quantity: usize) -> Pair {
    let xs = axis.positions(grid);
    let (high, low) = orders(xs.len());
    let k = axis.index(node);
    let build = |size: usize| {
        let mut c = Combination::default();
        for (m, w) in derivative_weights(xs, k, size) {
            c.add(axis.node(node, m), quantity, w);
        }
        c
    };
    Pair {
        high: build(high),
        low: build(low),
    }
}

/// Every node `(i, j)` of the grid.
fn nodes(grid: &SurfaceGrid) -> impl Iterator<Item = (usize, usize)> + '_ {
    (0..grid.lambdas.len()).flat_map(move |i| (0..grid.gammas.len()).map(move |j| (i, j)))
}

/// The nodes that start an edge along `axis`.
fn edge_starts(grid: &SurfaceGrid, axis: Axis) -> impl Iterator<Item = (usize, usize)> + '_ {
    let last = axis.positions(grid).len() - 1;
    nodes(grid).filter(move |&n| axis.index(n) < last)
}

/// The node after `n` along `axis`.
fn next(axis: Axis, n: (usize, usize)) -> (usize, usize) {
    axis.node(n, axis.index(n) + 1)
}

// ----- the identities ----------------------------------------------------------------

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
