//! The exact linear-Gaussian model (docs/THEORY.md, section "The exact linear-Gaussian model"): closed forms in f64 and a
//! trainable Burn implementation of the same functionals.

pub mod closed_form;
pub mod config;
pub mod model;

pub use closed_form::{ClosedForm, ExactPoint, JointMoments, transfer_gamma};
pub use config::{ExactConfig, ExactModelConfig, ExactTrainingConfig, GaussianDataConfig};
pub use model::{ExactSystem, LinearGaussianModel};
