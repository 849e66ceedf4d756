//! Errors of model construction, training and checkpoints.

use std::path::PathBuf;

/// Errors raised by `fep-models`.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration value is out of range or inconsistent.
    #[error("invalid model configuration: {0}")]
    InvalidConfig(String),
    /// A measurement cannot be made as asked.
    #[error("measurement: {0}")]
    Measurement(String),
    /// The loss became NaN or infinite.
    #[error(
        "training diverged at step {step} (epoch {epoch}): the {what} is {value}; \
         the last good checkpoint (if any) is left intact — lower the learning rate or enable gradient clipping"
    )]
    NonFinite {
        /// Optimiser step at which it happened (0-based count of steps taken before it).
        step: u64,
        /// Epoch of that step.
        epoch: u64,
        /// Which quantity.
        what: String,
        /// Its value.
        value: f64,
    },
    /// A checkpoint file could not be read or does not fit the model.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A safetensors file could not be written, read or matched to the model (boxed: the
    /// error names files, tensors and shapes, and would make every `Result` large).
    #[error(transparent)]
    Export(Box<crate::export::error::ExportError>),
    /// A data error (file, batch or index).
    #[error(transparent)]
    Data(#[from] fep_data::DataError),
    /// An error of the thermodynamics layer.
    #[error(transparent)]
    Thermo(#[from] fep_thermo::ThermoError),
}

impl From<crate::export::error::ExportError> for ModelError {
    fn from(e: crate::export::error::ExportError) -> Self {
        ModelError::Export(Box::new(e))
    }
}

/// Result with [`ModelError`].
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
