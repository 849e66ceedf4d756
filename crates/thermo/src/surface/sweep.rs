//! Sweeping a system over a grid: the order of the points (neighbours in turn, for
//! warm starts), their split into shards for job arrays, the equilibration of each
//! point, and the assembly of the shards' cells into one grid.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::grid::{GridSpec, SurfaceGrid, SurfacePoint};
use crate::equilibrium::{EquilibriumReport, StoppingRule};
use crate::error::{Result, ThermoError};
use crate::system::ThermodynamicSystem;

/// Grid indices `(i, j)` in boustrophedon order: lambda rows in turn, gamma alternately
/// up and down, so consecutive points are neighbours (warm starts move one grid step).
pub fn snake_order(n_lambda: usize, n_gamma: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(n_lambda * n_gamma);
    for i in 0..n_lambda {
        if i % 2 == 0 {
            out.extend((0..n_gamma).map(|j| (i, j)));
        } else {
            out.extend((0..n_gamma).rev().map(|j| (i, j)));
        }
    }
    out
}

/// Shard `index` (0-based) of `count`; written and parsed as `i/n` with 1-based `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    /// 0-based index.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// The whole grid as one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };
}

impl FromStr for Shard {
    type Err = ThermoError;

    /// Parses `i/n` with `1 <= i <= n`.
    fn from_str(spec: &str) -> Result<Self> {
        let (i, n) = spec.split_once('/').ok_or_else(|| {
            ThermoError::Shard(format!(
                "--shard must look like i/n (for example 3/8), got `{spec}`"
            ))
        })?;
        let i: usize = i
            .trim()
            .parse()
            .map_err(|_| ThermoError::Shard(format!("--shard: `{i}` is not a number")))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| ThermoError::Shard(format!("--shard: `{n}` is not a number")))?;
        if n == 0 || i == 0 || i > n {
            return Err(ThermoError::Shard(format!(
                "--shard i/n needs 1 <= i <= n, got {spec}"
            )));
        }
        Ok(Shard {
            index: i - 1,
            count: n,
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

/// The contiguous slice `[k n / count, (k + 1) n / count)` of an order that shard k
/// runs (sizes differ by at most one; the shards partition the order).
pub fn shard_points(order: &[(usize, usize)], shard: Shard) -> Vec<(usize, usize)> {
    if shard.count == 0 {
        return Vec::new();
    }
    let n = order.len();
    let start = shard.index * n / shard.count;
    let end = (shard.index + 1) * n / shard.count;
    order.get(start..end).map(<[_]>::to_vec).unwrap_or_default()
}

/// One measured grid node, as a shard reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GridCell {
    /// 1-based shard that measured it.
    pub shard: usize,
    /// Shards in all.
    pub of: usize,
    /// Grid index of lambda.
    pub i: usize,
    /// Grid index of gamma.
    pub j: usize,
    /// The equilibrium point.
    pub point: SurfacePoint,
}

/// Joins cells into the grid of `spec`, refusing cells outside the grid, cells run at
/// other multipliers than the grid's (within 1e-9), duplicates and gaps (the missing
/// points are named).
pub fn assemble_grid(spec: &GridSpec, cells: &[GridCell]) -> Result<SurfaceGrid> {
    let (nl, ng) = spec.shape();
    let mut by_index: BTreeMap<(usize, usize), &GridCell> = BTreeMap::new();
    for r in cells {
        let Some(m) = spec.multipliers(r.i, r.j) else {
            return Err(ThermoError::Grid(format!(
                "shard {}/{} has a point ({}, {}) outside the {nl} x {ng} grid",
                r.shard, r.of, r.i, r.j
            )));
        };
        let (l, g) = (m.lambda, m.gamma);
        if (r.point.lambda - l).abs() > 1e-9 || (r.point.gamma - g).abs() > 1e-9 {
            return Err(ThermoError::Grid(format!(
                "shard {}/{}: point ({}, {}) was run at (lambda, gamma) = ({}, {}) but the grid says ({l}, {g}); was the config changed between shards?",
                r.shard, r.of, r.i, r.j, r.point.lambda, r.point.gamma
            )));
        }
        if let Some(prev) = by_index.insert((r.i, r.j), r) {
            return Err(ThermoError::Grid(format!(
                "point (lambda {l}, gamma {g}) appears twice (shards {}/{} and {}/{})",
                prev.shard, prev.of, r.shard, r.of
            )));
        }
    }
    let mut missing = Vec::new();
    let mut points = Vec::with_capacity(nl);
    for (i, &l) in spec.lambdas.iter().enumerate() {
        let mut row = Vec::with_capacity(ng);
        for (j, &g) in spec.gammas.iter().enumerate() {
            match by_index.get(&(i, j)) {
                Some(cell) => row.push(cell.point),
                None => missing.push(format!("(lambda {l}, gamma {g})")),
            }
        }
        points.push(row);
    }
    if !missing.is_empty() {
        return Err(ThermoError::Grid(format!(
            "{} of {} grid points are missing: {}; run the shards that hold them",
            missing.len(),
            nl * ng,
            missing.join(", ")
        )));
    }
    Ok(SurfaceGrid {
        lambdas: spec.lambdas.clone(),
        gammas: spec.gammas.clone(),
        points,
    })
}

/// One equilibrated node of a [`Sweep`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Grid index of lambda.
    pub i: usize,
    /// Grid index of gamma.
    pub j: usize,
    /// The equilibrium point.
    pub point: SurfacePoint,
    /// How its equilibration went.
    pub equilibrium: EquilibriumReport,
}

/// Equilibrates a system at a list of grid nodes in turn, each warm-started from the
/// previous one: by the stopping rule `first` at the first node, `rule` at the others
/// (`first_steps` and `steps` fixed steps, unless [`Sweep::with_equilibrium`] says
/// otherwise). Yields a [`SweepPoint`] per node, or the first error (then `None`);
/// between items the caller has the system ([`Sweep::system`], [`Sweep::system_mut`])
/// to measure more at the point just equilibrated.
pub struct Sweep<'a, S: ThermodynamicSystem + ?Sized> {
    system: &'a mut S,
    spec: GridSpec,
    nodes: Vec<(usize, usize)>,
    next: usize,
    first: StoppingRule,
    rule: StoppingRule,
    failed: bool,
}

impl<'a, S: ThermodynamicSystem + ?Sized> Sweep<'a, S> {
    /// A sweep over `nodes` of the (validated) grid `spec`; every node must be on it.
    pub fn new(
        system: &'a mut S,
        spec: &GridSpec,
        nodes: Vec<(usize, usize)>,
        first_steps: usize,
        steps: usize,
    ) -> Result<Self> {
        spec.validate()?;
        if let Some(&(i, j)) = nodes
            .iter()
            .find(|&&(i, j)| spec.multipliers(i, j).is_none())
        {
            let (nl, ng) = spec.shape();
            return Err(ThermoError::InvalidConfig(format!(
                "sweep node ({i}, {j}) is outside the {nl} x {ng} grid"
            )));
        }
        Ok(Sweep {
            system,
            spec: spec.clone(),
            nodes,
            next: 0,
            first: StoppingRule::fixed(first_steps),
            rule: StoppingRule::fixed(steps),
            failed: false,
        })
    }

    /// The same sweep with the first node equilibrated by `first` and the others by `rule`.
    pub fn with_equilibrium(mut self, first: StoppingRule, rule: StoppingRule) -> Self {
        self.first = first;
        self.rule = rule;
        self
    }

    /// The system, between points.
    pub fn system(&self) -> &S {
        self.system
    }

    /// The system, mutably, between points (the next point starts from it).
    pub fn system_mut(&mut self) -> &mut S {
        self.system
    }

    /// Nodes still to run.
    pub fn remaining(&self) -> usize {
        if self.failed {
            0
        } else {
            self.nodes.len() - self.next
        }
    }

    fn measure(&mut self, k: usize, i: usize, j: usize) -> Result<SweepPoint> {
        let m = self.spec.multipliers(i, j).ok_or_else(|| {
            ThermoError::InvalidConfig(format!("sweep node ({i}, {j}) is outside the grid"))
        })?;
        let rule = if k == 0 { self.first } else { self.rule };
        let eq = self.system.equilibrate_until(m, &rule)?;
        eq.functionals.check_finite(m)?;
        Ok(SweepPoint {
            i,
            j,
            point: SurfacePoint::new(m, eq.functionals),
            equilibrium: eq.report,
        })
    }
}

impl<S: ThermodynamicSystem + ?Sized> Iterator for Sweep<'_, S> {
    type Item = Result<SweepPoint>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let k = self.next;
        let &(i, j) = self.nodes.get(k)?;
        self.next += 1;
        let point = self.measure(k, i, j);
        self.failed = point.is_err();
        Some(point)
    }
}

impl<S: ThermodynamicSystem + ?Sized> std::iter::FusedIterator for Sweep<'_, S> {}
