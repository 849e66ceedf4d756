//! The continuation driver: a [`Process`] composes a predictor, a corrector and a
//! step control into an iterator over the accepted points of a quasi-static path.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tracing::info;

use super::bounds::{GammaBounds, TrustRegion};
use super::constraint::{Constraint, ConstraintKind};
use super::corrector::{Correction, Corrector};
use super::predictor::{Predictor, Tangent, along_tangent, hold};
use super::schedule::ProcessPath;
use super::step_control::{StepControl, StepProgress, StepProposal, StepState, Verdict};
use crate::equilibrium::{EquilibriumReport, StoppingRule};
use crate::error::{Result, ThermoError};
use crate::sensitivity::IftConfig;
use crate::system::{Functionals, Multipliers, ThermodynamicSystem};

/// A continuation scheme: how each step predicts, corrects and chooses its length.
///
/// A step from s to s + h moves lambda and t to their scheduled values, predicts gamma
/// and theta, re-equilibrates until the stopping rule `equilibrium` says so, corrects
/// gamma, and lets the step control accept, retry or stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Continuation {
    /// The predictor.
    pub predictor: Predictor,
    /// The corrector.
    pub corrector: Corrector,
    /// The step policy.
    pub step_control: StepControl,
    /// Bounds on gamma, honoured by predictor and corrector.
    pub gamma_bounds: GammaBounds,
    /// The stopping rule of every re-equilibration.
    pub equilibrium: StoppingRule,
    /// Settings of the implicit-function-theorem solves of the tangent.
    pub ift: IftConfig,
}

impl Continuation {
    /// The paper's scheme: tangent predictor without trust region, no corrector,
    /// `steps` equal steps, gamma within the default bounds (`gamma >= 0`), each
    /// re-equilibration `equilibration_steps` optimiser steps ([`StoppingRule::FixedSteps`]).
    pub fn euler(steps: usize, equilibration_steps: usize, ift: IftConfig) -> Continuation {
        Continuation {
            predictor: Predictor::Tangent {
                trust: TrustRegion::NONE,
            },
            corrector: Corrector::None,
            step_control: StepControl::Fixed { steps },
            gamma_bounds: GammaBounds::default(),
            equilibrium: StoppingRule::fixed(equilibration_steps),
            ift,
        }
    }

    /// The same continuation with every re-equilibration stopped by `rule`.
    pub fn with_equilibrium(mut self, rule: StoppingRule) -> Continuation {
        self.equilibrium = rule;
        self
    }

    /// Error naming the first invalid setting.
    pub fn validate(&self) -> Result<()> {
        self.predictor.validate()?;
        self.corrector.validate()?;
        self.step_control.validate()?;
        self.gamma_bounds.validate()
    }
}

/// One recorded point of a process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Path parameter s in [0, 1].
    pub s: f64,
    /// Data position t.
    pub t: f64,
    /// Multiplier lambda.
    pub lambda: f64,
    /// Multiplier gamma.
    pub gamma: f64,
    /// R, D, C (nats) at the point (serialised flat: `rate`, `distortion`, `classification`).
    #[serde(flatten)]
    pub functionals: Functionals,
    /// `F = R + lambda D + gamma C` measured at the point.
    pub free_energy: f64,
    /// Value of the monitored functional G.
    pub constraint_value: f64,
    /// `(G - G0) / |G0|`.
    pub relative_drift: f64,
    /// Work `integral D dlambda + C dgamma` from the start (trapezoidal).
    pub work: f64,
    /// Corrector iterations of this step (0 without a corrector).
    pub corrector_iterations: usize,
    /// Whether the corrector met its tolerance (always true without a corrector).
    pub converged: bool,
    /// The equilibrations of this point (the predictor's and every corrector
    /// iteration's, chained with [`EquilibriumReport::then`]; unmeasured at the start).
    #[serde(default)]
    pub equilibrium: EquilibriumReport,
    /// Wall time since the start of the process, seconds.
    pub wall_seconds: f64,
}

/// The result of a process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessResult {
    /// Value of the monitored functional at the start (c0 for iso-classification).
    pub target: f64,
    /// Every accepted point, the start included.
    pub records: Vec<StepRecord>,
    /// Largest `|G - G0| / |G0|` along the path.
    pub max_relative_drift: f64,
}

impl ProcessResult {
    /// First-law residual `(F(end) - F(start)) - integral(D dlambda + C dgamma)` on
    /// fixed data (0 for an empty result).
    pub fn first_law_residual(&self) -> f64 {
        match (self.records.first(), self.records.last()) {
            (Some(first), Some(last)) => (last.free_energy - first.free_energy) - last.work,
            _ => 0.0,
        }
    }
}

/// Everything a [`Process`] holds between two steps apart from the system: with the
/// system's own state restored, [`Process::resume`] continues exactly where
/// [`Process::snapshot`] was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSnapshot {
    /// The held (or monitored) value G0.
    pub target: f64,
    /// The multipliers of the last accepted point.
    pub multipliers: Multipliers,
    /// The path parameter of the last accepted point.
    pub s: f64,
    /// The step policy's progress.
    pub steps: StepProgress,
    /// The records yielded so far, the start included.
    pub records: Vec<StepRecord>,
}

enum Phase {
    /// The start record, not yet yielded.
    Start(StepRecord),
    Stepping,
    Finished,
}

/// A quasi-static process as an iterator: the first item is the start record
/// (s = 0), then one item per accepted step, then `None`; after an error it yields
/// `None`. Between items the caller may inspect or use the system
/// ([`Process::system`], [`Process::system_mut`]), for example to measure or
/// checkpoint; [`Process::finish`] returns the records so far.
pub struct Process<'a, S: ThermodynamicSystem + ?Sized> {
    system: &'a mut S,
    path: ProcessPath,
    constraint: &'static dyn Constraint,
    continuation: Continuation,
    target: f64,
    multipliers: Multipliers,
    s: f64,
    steps: StepState,
    records: Vec<StepRecord>,
    clock: Instant,
    phase: Phase,
}

impl<'a, S: ThermodynamicSystem + ?Sized> Process<'a, S> {
    /// A process from the system's current (equilibrated) state at `start`, where
    /// `start.lambda` must equal `path.lambda(0)` and `start.gamma` lie in the gamma
    /// bounds. Moves the data to `t(0)` and measures the start point, whose monitored
    /// functional is the target G0.
    pub fn new(
        system: &'a mut S,
        start: Multipliers,
        path: ProcessPath,
        constraint: ConstraintKind,
        continuation: Continuation,
    ) -> Result<Self> {
        if (start.lambda - path.lambda(0.0)).abs() > 1e-12 * start.lambda.abs().max(1.0) {
            return Err(ThermoError::InvalidConfig(format!(
                "process starts at lambda = {} but the path starts at {}",
                start.lambda,
                path.lambda(0.0)
            )));
        }
        continuation.validate()?;
        if !continuation.gamma_bounds.contains(start.gamma) {
            return Err(ThermoError::InvalidConfig(format!(
                "process starts at gamma = {} outside the gamma bounds [{}, {}]",
                start.gamma, continuation.gamma_bounds.min, continuation.gamma_bounds.max
            )));
        }
        let clock = Instant::now();
        system.set_data_position(path.data(0.0))?;
        let f0 = system.functionals()?;
        f0.check_finite(start)?;
        let constraint = constraint.constraint();
        let target = f0.get(constraint.monitored());
        let mut process = Process {
            system,
            path,
            constraint,
            continuation,
            target,
            multipliers: start,
            s: 0.0,
            steps: continuation.step_control.start(),
            records: Vec::new(),
            clock,
            phase: Phase::Stepping,
        };
        let record = process.record(0.0, start, f0, 0, true, EquilibriumReport::default());
        process.phase = Phase::Start(record);
        Ok(process)
    }

    /// A process continued from `snapshot` (taken by [`Process::snapshot`] on a process
    /// with the same path, constraint and continuation) on a system restored to the state
    /// it had then: the next item is the step after the snapshot's last record. The
    /// records before it are in [`Process::records`] but not yielded again.
    pub fn resume(
        system: &'a mut S,
        path: ProcessPath,
        constraint: ConstraintKind,
        continuation: Continuation,
        snapshot: ProcessSnapshot,
    ) -> Result<Self> {
        continuation.validate()?;
        let last = snapshot.records.last().ok_or_else(|| {
            ThermoError::InvalidConfig("a process snapshot without its start record".into())
        })?;
        if (last.s - snapshot.s).abs() > 1e-12 || !(0.0..=1.0).contains(&snapshot.s) {
            return Err(ThermoError::InvalidConfig(format!(
                "inconsistent process snapshot: s = {} but its last record is at s = {}",
                snapshot.s, last.s
            )));
        }
        // The clock continues from the last record's wall time.
        let elapsed = std::time::Duration::from_secs_f64(last.wall_seconds.max(0.0));
        let clock = Instant::now()
            .checked_sub(elapsed)
            .unwrap_or_else(Instant::now);
        system.set_data_position(path.data(snapshot.s))?;
        Ok(Process {
            system,
            path,
            constraint: constraint.constraint(),
            steps: continuation.step_control.resume(snapshot.steps),
            continuation,
            target: snapshot.target,
            multipliers: snapshot.multipliers,
            s: snapshot.s,
            records: snapshot.records,
            clock,
            phase: Phase::Stepping,
        })
    }

    /// The state between two steps (after the item just yielded) that, with the system's
    /// own state, lets [`Process::resume`] continue the process exactly.
    pub fn snapshot(&self) -> ProcessSnapshot {
        ProcessSnapshot {
            target: self.target,
            multipliers: self.multipliers,
            s: self.s,
            steps: self.steps.progress(),
            records: self.records.clone(),
        }
    }

    /// The system, between steps.
    pub fn system(&self) -> &S {
        self.system
    }

    /// The system, mutably, between steps. Whatever is changed here is where the next
    /// step starts from.
    pub fn system_mut(&mut self) -> &mut S {
        self.system
    }

    /// The held (or monitored) value G0 at the start.
    pub fn target(&self) -> f64 {
        self.target
    }

    /// The records yielded so far.
    pub fn records(&self) -> &[StepRecord] {
        &self.records
    }

    /// The result over the records yielded so far (the whole path once the iterator
    /// has returned `None` without an error).
    pub fn finish(self) -> ProcessResult {
        let max_relative_drift = self
            .records
            .iter()
            .map(|r| r.relative_drift.abs())
            .fold(0.0, f64::max);
        ProcessResult {
            target: self.target,
            records: self.records,
            max_relative_drift,
        }
    }

    /// The record of an accepted point, with the work accumulated from the last record.
    fn record(
        &self,
        s: f64,
        m: Multipliers,
        f: Functionals,
        corrector_iterations: usize,
        converged: bool,
        equilibrium: EquilibriumReport,
    ) -> StepRecord {
        let work = match self.records.last() {
            None => 0.0,
            Some(prev) => {
                let p = &prev.functionals;
                prev.work
                    + 0.5 * (p.distortion + f.distortion) * (m.lambda - prev.lambda)
                    + 0.5 * (p.classification + f.classification) * (m.gamma - prev.gamma)
            }
        };
        let value = f.get(self.constraint.monitored());
        StepRecord {
            s,
            t: self.path.data(s),
            lambda: m.lambda,
            gamma: m.gamma,
            functionals: f,
            free_energy: f.lagrangian(m),
            constraint_value: value,
            relative_drift: (value - self.target) / self.target.abs().max(f64::MIN_POSITIVE),
            work,
            corrector_iterations,
            converged,
            equilibrium,
            wall_seconds: self.clock.elapsed().as_secs_f64(),
        }
    }

    fn push(&mut self, record: StepRecord) -> StepRecord {
        info!(
            s = format!("{:.4}", record.s),
            lambda = format!("{:.4}", record.lambda),
            gamma = format!("{:.4}", record.gamma),
            drift = format!("{:+.2e}", record.relative_drift),
            "process step"
        );
        self.records.push(record);
        record
    }

    /// Attempts steps until one is accepted (`Some`), the path ends (`None`) or the
    /// step control gives up (`Err`).
    fn advance(&mut self) -> Result<Option<StepRecord>> {
        while let Some(p) = self.steps.propose(self.s) {
            let theta_start = if self.continuation.step_control.retries() {
                Some(self.system.params()?)
            } else {
                None
            };
            let correction = self.attempt(&p, theta_start.as_deref())?;
            match self.steps.judge(
                &p,
                self.multipliers,
                correction.iterations,
                correction.failure.clone(),
            ) {
                Verdict::Accept { converged } => {
                    self.s = p.s_next;
                    self.multipliers = correction.multipliers;
                    let record = self.record(
                        p.s_next,
                        correction.multipliers,
                        correction.functionals,
                        correction.iterations,
                        converged,
                        correction.equilibrium,
                    );
                    return Ok(Some(self.push(record)));
                }
                verdict => {
                    if let Some(theta) = &theta_start {
                        self.system.set_params(theta)?;
                    }
                    self.system.set_data_position(self.path.data(self.s))?;
                    if let Verdict::GiveUp(error) = verdict {
                        return Err(error);
                    }
                }
            }
        }
        Ok(None)
    }

    /// One attempted step: predict, re-equilibrate at the prediction, correct.
    fn attempt(&mut self, p: &StepProposal, theta_start: Option<&[f64]>) -> Result<Correction> {
        let c = self.continuation;
        let m = self.multipliers;
        let lambda_next = self.path.lambda(p.s_next);
        let corrects =
            matches!(c.corrector, Corrector::NewtonSecant(_)) && self.constraint.solves_gamma();
        let (trial, tangent) = match c.predictor {
            Predictor::Tangent { trust } => {
                let tangent = self.tangent(p.s)?;
                let theta = match theta_start {
                    Some(theta) => theta.to_vec(),
                    None => self.system.params()?,
                };
                let trial = along_tangent(
                    self.system,
                    &trust,
                    theta,
                    &tangent,
                    m,
                    p.h,
                    lambda_next,
                    c.gamma_bounds,
                )?;
                (trial, Some(tangent))
            }
            Predictor::Hold => {
                // The corrector's slope and parameter response come from the tangent
                // at the start of the step.
                let tangent = if corrects {
                    Some(self.tangent(p.s)?)
                } else {
                    None
                };
                (hold(m, lambda_next, c.gamma_bounds), tangent)
            }
        };
        self.system.set_data_position(self.path.data(p.s_next))?;
        let eq = self.system.equilibrate_until(trial, &c.equilibrium)?;
        eq.functionals.check_finite(trial)?;
        match (c.corrector, tangent) {
            (Corrector::NewtonSecant(newton), Some(tangent)) if corrects => newton.correct(
                self.system,
                self.constraint,
                self.target,
                trial,
                eq,
                &tangent,
                c.gamma_bounds,
                &c.equilibrium,
            ),
            _ => Ok(Correction::uncorrected(trial, eq)),
        }
    }

    fn tangent(&mut self, s: f64) -> Result<Tangent> {
        Tangent::at(
            self.system,
            self.multipliers,
            s,
            &self.path,
            self.constraint,
            &self.continuation.ift,
        )
    }
}

impl<S: ThermodynamicSystem + ?Sized> Iterator for Process<'_, S> {
    type Item = Result<StepRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        match std::mem::replace(&mut self.phase, Phase::Stepping) {
            Phase::Start(record) => Some(Ok(self.push(record))),
            Phase::Finished => {
                self.phase = Phase::Finished;
                None
            }
            Phase::Stepping => match self.advance() {
                Ok(Some(record)) => Some(Ok(record)),
                Ok(None) => {
                    self.phase = Phase::Finished;
                    None
                }
                Err(e) => {
                    self.phase = Phase::Finished;
                    Some(Err(e))
                }
            },
        }
    }
}

impl<S: ThermodynamicSystem + ?Sized> std::iter::FusedIterator for Process<'_, S> {}

/// Run a whole process ([`Process::new`], then every step); `on_step` sees each
/// accepted record, the start included, as it is made (progress bars, logs).
pub fn run_process<S: ThermodynamicSystem + ?Sized>(
    system: &mut S,
    start: Multipliers,
    path: &ProcessPath,
    constraint: ConstraintKind,
    continuation: &Continuation,
    mut on_step: impl FnMut(&StepRecord),
) -> Result<ProcessResult> {
    let mut process = Process::new(system, start, *path, constraint, *continuation)?;
    for record in process.by_ref() {
        on_step(&record?);
    }
    Ok(process.finish())
}
