//! How long the steps of a continuation are, and what happens when a corrector fails.

use tracing::{debug, warn};

use crate::error::{Result, ThermoError};
use crate::system::Multipliers;

/// The step policy of a continuation in the path parameter s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepControl {
    /// `steps` equal steps `1 / steps`; a step whose corrector fails is accepted and
    /// flagged (`converged = false`), since there is no smaller step to retry with.
    Fixed {
        /// Number of steps.
        steps: usize,
    },
    /// Steps that grow after easy corrections and shrink after failed ones ([`AdaptiveStep`]).
    Adaptive(AdaptiveStep),
}

/// Adaptive step: start at `initial`; after a converged correction with at most
/// `grow_if_iterations_at_most` iterations the step becomes `min(growth step, max)`;
/// after a failed one the step is retried at `shrink step`, and when that falls below
/// `min` the process stops with [`ThermoError::StepTooSmall`] (or, with
/// `accept_unconverged`, accepts the last iterate flagged `converged = false`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveStep {
    /// First step.
    pub initial: f64,
    /// Smallest step.
    pub min: f64,
    /// Largest step.
    pub max: f64,
    /// Factor (>= 1) applied after an easy step.
    pub growth: f64,
    /// Factor in (0, 1) applied after a failed corrector.
    pub shrink: f64,
    /// A converged step with at most this many corrector iterations counts as easy.
    pub grow_if_iterations_at_most: usize,
    /// At the minimum step, accept a failed correction flagged instead of stopping.
    pub accept_unconverged: bool,
}

impl Default for AdaptiveStep {
    fn default() -> Self {
        Self {
            initial: 0.1,
            min: 1e-3,
            max: 0.25,
            growth: 1.5,
            shrink: 0.5,
            grow_if_iterations_at_most: 2,
            accept_unconverged: false,
        }
    }
}

/// One proposed step from `s` to `s_next = s + h`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepProposal {
    /// Where the step starts.
    pub s: f64,
    /// Its length.
    pub h: f64,
    /// Where it ends.
    pub s_next: f64,
}

/// The decision on an attempted step.
#[derive(Debug)]
pub enum Verdict {
    /// Accept the step; `converged` says whether the corrector met its tolerance.
    Accept {
        /// Whether the constraint was restored.
        converged: bool,
    },
    /// Undo the step and try again with a shorter one.
    Retry,
    /// Undo the step and stop with this error.
    GiveUp(ThermoError),
}

/// The state of a step policy along one process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepState {
    control: StepControl,
    taken: usize,
    step: f64,
}

impl StepControl {
    /// Error unless `steps >= 1`, or `0 < min <= initial <= max`, `growth >= 1` and
    /// `0 < shrink < 1`.
    pub fn validate(&self) -> Result<()> {
        match self {
            StepControl::Fixed { steps } => {
                if *steps == 0 {
                    return Err(ThermoError::InvalidConfig(
                        "Euler needs at least one step".into(),
                    ));
                }
            }
            StepControl::Adaptive(a) => {
                if !(a.min > 0.0 && a.min <= a.initial && a.initial <= a.max) {
                    return Err(ThermoError::InvalidConfig(format!(
                        "predictor-corrector steps must satisfy 0 < min_step <= initial_step <= max_step, got {} {} {}",
                        a.min, a.initial, a.max
                    )));
                }
                if !(a.growth >= 1.0 && a.shrink > 0.0 && a.shrink < 1.0) {
                    return Err(ThermoError::InvalidConfig(format!(
                        "step growth must be at least 1 and shrink in (0, 1), got {} and {}",
                        a.growth, a.shrink
                    )));
                }
            }
        }
        Ok(())
    }

    /// The policy's state at the start of a process.
    pub fn start(&self) -> StepState {
        let step = match self {
            StepControl::Fixed { steps } => 1.0 / *steps as f64,
            StepControl::Adaptive(a) => a.initial,
        };
        StepState {
            control: *self,
            taken: 0,
            step,
        }
    }

    /// The policy's state after `progress` (a process resumed from a snapshot).
    pub fn resume(&self, progress: StepProgress) -> StepState {
        StepState {
            control: *self,
            taken: progress.taken,
            step: progress.step,
        }
    }

    /// Whether a failed step can be undone and retried (the driver then keeps the
    /// parameters of the step's start).
    pub fn retries(&self) -> bool {
        matches!(self, StepControl::Adaptive(_))
    }
}

/// How far a step policy has gone: the steps accepted and the current step length (with
/// the policy itself, everything [`StepState`] holds).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepProgress {
    /// Steps accepted.
    pub taken: usize,
    /// Current step length in s.
    pub step: f64,
}

impl StepState {
    /// Steps accepted and the current step length.
    pub fn progress(&self) -> StepProgress {
        StepProgress {
            taken: self.taken,
            step: self.step,
        }
    }

    /// The current step length.
    pub fn step(&self) -> f64 {
        self.step
    }

    /// The next step from `s`, or `None` at the end of the path. Fixed steps go from
    /// `k / steps` to `(k + 1) / steps`; adaptive ones from `s` to `s + min(step, 1 - s)`.
    pub fn propose(&self, s: f64) -> Option<StepProposal> {
        match self.control {
            StepControl::Fixed { steps } => (self.taken < steps).then(|| {
                let ds = self.step;
                StepProposal {
                    s: self.taken as f64 * ds,
                    h: ds,
                    s_next: (self.taken + 1) as f64 * ds,
                }
            }),
            StepControl::Adaptive(_) => (s < 1.0 - 1e-12).then(|| {
                let h = self.step.min(1.0 - s);
                StepProposal {
                    s,
                    h,
                    s_next: s + h,
                }
            }),
        }
    }

    /// Judge an attempted step from `p.s` at `m` whose corrector took `iterations`
    /// and failed for `failure` (if it did), and update the step length.
    pub fn judge(
        &mut self,
        p: &StepProposal,
        m: Multipliers,
        iterations: usize,
        failure: Option<String>,
    ) -> Verdict {
        let adaptive = match self.control {
            StepControl::Fixed { .. } => {
                self.taken += 1;
                if let Some(reason) = &failure {
                    warn!(
                        s = p.s_next,
                        reason, "corrector did not converge; accepting the fixed step flagged"
                    );
                }
                return Verdict::Accept {
                    converged: failure.is_none(),
                };
            }
            StepControl::Adaptive(a) => a,
        };
        match failure {
            None => {
                self.taken += 1;
                if iterations <= adaptive.grow_if_iterations_at_most {
                    self.step = (self.step * adaptive.growth).min(adaptive.max);
                }
                Verdict::Accept { converged: true }
            }
            Some(reason)
                if adaptive.accept_unconverged && self.step * adaptive.shrink < adaptive.min =>
            {
                warn!(
                    s = p.s_next,
                    reason, "corrector did not converge; accepting the step flagged"
                );
                self.taken += 1;
                Verdict::Accept { converged: false }
            }
            Some(reason) => {
                self.step *= adaptive.shrink;
                debug!(
                    step = self.step,
                    reason, "corrector failed; shrinking the step"
                );
                if self.step < adaptive.min {
                    Verdict::GiveUp(ThermoError::StepTooSmall {
                        step: self.step,
                        min_step: adaptive.min,
                        s: p.s,
                        lambda: m.lambda,
                        gamma: m.gamma,
                        reason,
                    })
                } else {
                    Verdict::Retry
                }
            }
        }
    }
}
