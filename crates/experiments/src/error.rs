//! Errors of the experiment drivers: every one names the file or the setting at fault.

use std::path::PathBuf;

/// What can stop an experiment.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// A dataset could not be read or a split is unusable.
    #[error(transparent)]
    Data(#[from] fep_data::DataError),
    /// Model construction, training or a checkpoint failed.
    #[error(transparent)]
    Model(#[from] fep_models::ModelError),
    /// A thermodynamic computation (process, sensitivity, surface) failed.
    #[error(transparent)]
    Thermo(#[from] fep_thermo::ThermoError),
    /// A config file is unreadable or invalid.
    #[error("config {}: {reason}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting or argument is outside its valid range.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was attempted ("read", "write", "create").
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A result file does not hold what it should.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A trained model is unusable as a source: its posterior collapsed (R ~ 0).
    #[error("{}: {reason}", checkpoint.display())]
    Collapsed {
        /// The checkpoint written (kept for inspection).
        checkpoint: PathBuf,
        /// The measurements that show the collapse.
        reason: String,
    },
    /// A chart could not be drawn.
    #[error("chart {}: {reason}", path.display())]
    Plot {
        /// The chart's file stem.
        path: PathBuf,
        /// The drawing backend's message.
        reason: String,
    },
    /// An error with the step that was running when it happened.
    #[error("{context}")]
    Context {
        /// What was being done.
        context: String,
        /// The error itself.
        #[source]
        source: Box<ExperimentError>,
    },
}

/// Result with [`ExperimentError`].
pub type Result<T, E = ExperimentError> = std::result::Result<T, E>;

/// Attach what was being done to an error.
pub trait ResultExt<T> {
    /// Wrap the error in [`ExperimentError::Context`] with `context()`.
    fn context_with(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<ExperimentError>> ResultExt<T> for std::result::Result<T, E> {
    fn context_with(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| ExperimentError::Context {
            context: context(),
            source: Box::new(e.into()),
        })
    }
}

/// An [`ExperimentError::Invalid`] from a message.
pub fn invalid(message: impl Into<String>) -> ExperimentError {
    ExperimentError::Invalid(message.into())
}
