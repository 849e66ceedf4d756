//! The quasi-Newton finish of the gradient-norm rule: L-BFGS (argmin) on
//! `J(theta) = R + lambda D + gamma C` through the trait's `set_params` and `gradient`.
//!
//! Models in f32 give J and `grad J` with a relative noise near 1e-6, so near the
//! minimiser the line search eventually cannot tell two points apart. The finish then
//! stops where it is: it keeps the first evaluated point that meets the tolerance, else
//! the one with the smallest J, loads it into the system, and reports its `|grad J|` as
//! it is.

use std::cell::RefCell;

use argmin::core::{CostFunction, Error as ArgminError, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;

use tracing::debug;

use crate::error::{Result, ThermoError};
use crate::system::{Functionals, Multipliers, ThermodynamicSystem};
use crate::vector::norm;

/// Correction pairs kept by L-BFGS.
const MEMORY: usize = 20;

/// The value of J reported to the line search at a trial point where the model's J or
/// gradient is not finite.
const WALL: f64 = 1e30;

/// Largest step of the line search along the L-BFGS direction (whose natural length is 1).
const MAX_STEP: f64 = 1e3;

/// A restart of L-BFGS after a failed line search is worth it while the previous run
/// lowered J by more than this fraction of |J| (above the f32 noise).
const RESTART_DECREASE: f64 = 1e-7;

/// The outcome of the finish.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finish {
    /// R, D, C at the final point (loaded into the system).
    pub functionals: Functionals,
    /// `|grad J|` there.
    pub gradient_norm: f64,
    /// L-BFGS iterations.
    pub iterations: usize,
}

/// One evaluation of J and its gradient.
struct Evaluation {
    theta: Vec<f64>,
    value: f64,
    gradient: Vec<f64>,
}

/// The mutable state behind the argmin problem (argmin evaluates through `&self`).
struct Inner<'a, S: ThermodynamicSystem + ?Sized> {
    system: &'a mut S,
    multipliers: Multipliers,
    last: Option<Evaluation>,
    /// The evaluated point with the smallest J: `(J, |grad J|, theta)`.
    best: Option<(f64, f64, Vec<f64>)>,
    /// The first evaluated point with `|grad J| < tolerance`, if any.
    met: Option<Vec<f64>>,
    tolerance: f64,
    /// The first error of the model itself (not a non-finite trial point).
    error: Option<ThermoError>,
}

impl<S: ThermodynamicSystem + ?Sized> Inner<'_, S> {
    fn evaluate(&mut self, theta: &[f64]) -> std::result::Result<(f64, Vec<f64>), ArgminError> {
        if let Some(e) = self.last.as_ref().filter(|e| e.theta == theta) {
            return Ok((e.value, e.gradient.clone()));
        }
        let result = self
            .system
            .set_params(theta)
            .and_then(|()| self.system.gradient(self.multipliers.lagrangian_weights()));
        let (f, gradient) = match result {
            Ok(v) => v,
            Err(e) => {
                let message = e.to_string();
                self.error.get_or_insert(e);
                return Err(ArgminError::msg(message));
            }
        };
        let value = f.lagrangian(self.multipliers);
        if !value.is_finite() || gradient.iter().any(|g| !g.is_finite()) {
            // A trial step too far (variances overflow): a wall the line search backs off
            // from, never a candidate.
            return Ok((WALL, vec![0.0; gradient.len()]));
        }
        let g = norm(&gradient);
        if self.best.as_ref().is_none_or(|(b, _, _)| value < *b) {
            self.best = Some((value, g, theta.to_vec()));
        }
        if g < self.tolerance && self.met.is_none() {
            self.met = Some(theta.to_vec());
        }
        self.last = Some(Evaluation {
            theta: theta.to_vec(),
            value,
            gradient: gradient.clone(),
        });
        Ok((value, gradient))
    }
}

/// The argmin problem: J and its gradient at a parameter vector.
struct Objective<'r, 'a, S: ThermodynamicSystem + ?Sized>(&'r RefCell<Inner<'a, S>>);

impl<S: ThermodynamicSystem + ?Sized> CostFunction for Objective<'_, '_, S> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, theta: &Vec<f64>) -> std::result::Result<f64, ArgminError> {
        Ok(self.0.borrow_mut().evaluate(theta)?.0)
    }
}

impl<S: ThermodynamicSystem + ?Sized> Gradient for Objective<'_, '_, S> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, theta: &Vec<f64>) -> std::result::Result<Vec<f64>, ArgminError> {
        Ok(self.0.borrow_mut().evaluate(theta)?.1)
    }
}

fn solver_error(e: ArgminError) -> ThermoError {
    ThermoError::QuasiNewton(e.to_string())
}

/// At most `iterations` L-BFGS iterations on J from the system's current parameters,
/// stopping early once `|grad J| < tolerance`. Where the line search fails (a trial point
/// with a non-finite J, or no progress within the f32 noise), L-BFGS restarts with an empty
/// memory from the point of smallest J so far, as long as the previous run lowered J by
/// more than [`RESTART_DECREASE`] relative. The system is left at the first evaluated
/// point that meets the tolerance, else at the point of smallest J.
pub(crate) fn finish<S: ThermodynamicSystem + ?Sized>(
    system: &mut S,
    multipliers: Multipliers,
    tolerance: f64,
    iterations: usize,
) -> Result<Finish> {
    let theta0 = system.params()?;
    let mut inner = RefCell::new(Inner {
        system,
        multipliers,
        last: None,
        best: None,
        met: None,
        tolerance,
        error: None,
    });
    let mut done = 0;
    let mut restarts = 0;
    let mut start = theta0;
    let mut previous_best = f64::INFINITY;
    while done < iterations {
        done += run(&mut inner, &start, tolerance, iterations - done)?;
        let state = inner.get_mut();
        let Some((best, gradient_norm, theta)) = state.best.clone() else {
            break;
        };
        if state.met.is_some()
            || gradient_norm < tolerance
            || best > previous_best - RESTART_DECREASE * best.abs()
        {
            break;
        }
        previous_best = best;
        start = theta;
        state.last = None;
        restarts += 1;
        if restarts > iterations {
            break;
        }
    }
    settle(inner.into_inner(), multipliers, done)
}

/// One L-BFGS run of at most `max_iters` iterations from `start` with a fresh memory of
/// [`MEMORY`] pairs (More-Thuente line search with steps up to [`MAX_STEP`]), stopping once
/// `|grad J| < tolerance`; returns the iterations it took. The model's own first error,
/// if any, is returned before the solver's.
fn run<S: ThermodynamicSystem + ?Sized>(
    inner: &mut RefCell<Inner<'_, S>>,
    start: &[f64],
    tolerance: f64,
    max_iters: usize,
) -> Result<usize> {
    let line_search = MoreThuenteLineSearch::new()
        .with_bounds(f64::EPSILON.sqrt(), MAX_STEP)
        .map_err(solver_error)?;
    let solver = LBFGS::new(line_search, MEMORY)
        .with_tolerance_grad(tolerance)
        .map_err(solver_error)?
        .with_tolerance_cost(0.0)
        .map_err(solver_error)?;
    let run = Executor::new(Objective(inner), solver)
        .configure(|state| state.param(start.to_vec()).max_iters(max_iters as u64))
        .timer(false)
        .run()
        // Only the first evaluation can fail the run itself (later failures end the
        // line search, which L-BFGS reports as its exit).
        .map(|result| {
            debug!(
                iterations = result.state.get_iter(),
                reason = ?result.state.get_termination_reason(),
                "L-BFGS finish"
            );
            result.state.get_iter() as usize
        });
    if let Some(error) = inner.get_mut().error.take() {
        return Err(error);
    }
    run.map_err(solver_error)
}

/// Loads the finish's point into the system (the first evaluated point that met the
/// tolerance, else the one with the smallest J, else the system's current one) and
/// reports R, D, C and `|grad J|` there after `iterations` L-BFGS iterations.
fn settle<S: ThermodynamicSystem + ?Sized>(
    inner: Inner<'_, S>,
    multipliers: Multipliers,
    iterations: usize,
) -> Result<Finish> {
    let system = inner.system;
    if let Some(theta) = inner
        .met
        .as_ref()
        .or(inner.best.as_ref().map(|(_, _, t)| t))
    {
        system.set_params(theta)?;
    }
    let (functionals, gradient) = system.gradient(multipliers.lagrangian_weights())?;
    functionals.check_finite(multipliers)?;
    Ok(Finish {
        functionals,
        gradient_norm: norm(&gradient),
        iterations,
    })
}
