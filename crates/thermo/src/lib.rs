//! # fep-thermo
//!
//! The thermodynamics of representation learning (Gao and Chaudhari, ICML 2020).
//! A model with encoder e(z|x), decoder d(x|z), classifier c(y|z) and prior m(z) has
//! rate `R = E KL(e || m)`, distortion `D = E[-log d(x|z)]` and classification loss
//! `C = E[-log c(y|z)]`. Minimising `J = R + lambda D + gamma C` lands on the
//! equilibrium surface with free energy `F(lambda, gamma) = min J`, which is concave,
//! with `dF/dlambda = D`, `dF/dgamma = C` and the Maxwell relation
//! `dD/dgamma = dC/dlambda`.
//!
//! This crate speaks in the [`ThermodynamicSystem`] trait: any model that reports
//! R, D, C and their gradients and can relax towards equilibrium. On top of it:
//! - [`sensitivity`]: susceptibilities by the implicit function theorem (conjugate
//!   gradients on Hessian-vector products) and by finite differences on the surface;
//! - [`process`]: quasi-static processes (iso-classification, iso-distortion,
//!   iso-rate, transfer along a data path) by the paper's Euler scheme and by a
//!   predictor-corrector continuation;
//! - [`surface`]: equilibrium points and the measured residuals of the identities;
//! - [`exact`]: the linear-Gaussian model, in closed form and as a Burn model.

pub mod burn_params;
pub mod error;
pub mod exact;
pub mod process;
pub mod sensitivity;
pub mod surface;
pub mod system;
pub mod vector;

pub use error::{Result, ThermoError};
pub use process::{
    Constraint, EulerConfig, Integrator, PredictorCorrectorConfig, ProcessPath, ProcessResult,
    StepRecord, run_process,
};
pub use sensitivity::{
    HvpMethod, IftConfig, IftSolution, Sensitivities, SurfaceDifferenceConfig, ift_sensitivities,
    newton_equilibrate, surface_difference_sensitivities,
};
pub use surface::{CheckSummary, SurfaceChecks, SurfaceGrid, SurfacePoint};
pub use system::{Functional, Functionals, Multipliers, ThermodynamicSystem, Weights};
