//! Errors of the thermodynamics crate.

use thiserror::Error;

/// Everything that can go wrong while evaluating, equilibrating or integrating.
#[derive(Debug, Error)]
pub enum ThermoError {
    /// A functional or gradient came back NaN or infinite.
    #[error("non-finite {what} at lambda = {lambda}, gamma = {gamma}: {value}")]
    NonFinite {
        /// Which quantity (rate, distortion, gradient, ...).
        what: String,
        /// Multiplier of the distortion at the failure.
        lambda: f64,
        /// Multiplier of the classification loss at the failure.
        gamma: f64,
        /// The offending value.
        value: f64,
    },
    /// The adaptive step of a process integrator fell under its minimum.
    #[error(
        "step size {step:.3e} fell below the minimum {min_step:.3e} at s = {s:.4} (lambda = {lambda:.4}, gamma = {gamma:.4}): the corrector could not restore the constraint ({reason})"
    )]
    StepTooSmall {
        /// Proposed step in the path parameter.
        step: f64,
        /// Configured minimum step.
        min_step: f64,
        /// Path parameter where the integrator stalled.
        s: f64,
        /// Multiplier lambda there.
        lambda: f64,
        /// Multiplier gamma there.
        gamma: f64,
        /// Why the last corrector failed.
        reason: String,
    },
    /// A root (for example gamma with C*(lambda, gamma) = c0) could not be bracketed.
    #[error("no root: {0}")]
    NoRoot(String),
    /// A configuration value is outside its valid range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Conjugate gradients did not converge.
    #[error(
        "conjugate gradients did not converge in {iterations} iterations (relative residual {residual:.3e})"
    )]
    CgNotConverged {
        /// Iterations performed.
        iterations: usize,
        /// Final relative residual.
        residual: f64,
    },
    /// A surface grid could not be assembled from its cells (duplicates, foreign or
    /// missing points); the message names the offending points.
    #[error("{0}")]
    Grid(String),
    /// A shard specification `i/n` could not be parsed.
    #[error("{0}")]
    Shard(String),
    /// The quasi-Newton (L-BFGS) finish of an equilibration could not be set up or
    /// started.
    #[error("the L-BFGS finish of the equilibration failed: {0}")]
    QuasiNewton(String),
    /// A least-squares system has no unique solution.
    #[error("singular least-squares fit: {0}")]
    SingularFit(String),
    /// The model reported an error of its own.
    #[error("model error: {0}")]
    Model(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ThermoError {
    /// A model error from anything that converts into a boxed error (a message, or an
    /// error of the model's own type, kept as the source).
    pub fn model(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ThermoError::Model(error.into())
    }
}

/// Result alias of this crate.
pub type Result<T, E = ThermoError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_errors_keep_their_source() {
        let io = std::io::Error::other("disk on fire");
        let e = ThermoError::model(io);
        assert_eq!(e.to_string(), "model error: disk on fire");
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk on fire"));
        let from_text = ThermoError::model("bad shape");
        assert_eq!(from_text.to_string(), "model error: bad shape");
    }
}
