//! Quasi-static processes: paths (lambda(s), gamma(s), t(s)), s in [0, 1], along which
//! the model stays at equilibrium, with gamma solved from a constraint.
//!
//! lambda and the data position t are scheduled in s ([`ProcessPath`]); gamma is
//! the unknown, determined by holding a functional G at its start value G0
//! ([`Constraint`]). A [`Continuation`] follows the path by parts, in the style of
//! numerical continuation: a [`Predictor`] guesses the next point (the tangent of
//! the implicit function theorem, docs/THEORY.md section "Processes", or a plain
//! warm start), a [`Corrector`] restores `G = G0` by Newton steps on gamma, and a
//! [`StepControl`] chooses the step lengths. [`Process`] runs it as an iterator over
//! the accepted points; [`run_process`] runs it to the end.

mod bounds;
mod config;
pub mod constraint;
pub mod corrector;
mod driver;
pub mod predictor;
pub mod schedule;
pub mod step_control;

pub use bounds::{GammaBounds, TrustRegion};
pub use config::{IntegratorKind, PredictorCorrectorConfig};
pub use constraint::{
    Constraint, ConstraintKind, FixedGamma, IsoClassification, IsoDistortion, IsoRate,
};
pub use corrector::{Correction, Corrector, NewtonSecant};
pub use driver::{Continuation, Process, ProcessResult, ProcessSnapshot, StepRecord, run_process};
pub use predictor::{Predictor, Tangent};
pub use schedule::ProcessPath;
pub use step_control::{AdaptiveStep, StepControl, StepProgress, StepProposal, StepState, Verdict};
