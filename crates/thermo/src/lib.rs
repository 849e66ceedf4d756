//! # fep-thermo
//!
//! The thermodynamics of representation learning (Gao and Chaudhari, ICML 2020).
//! A model with encoder e(z|x), decoder d(x|z), classifier c(y|z) and prior m(z) has
//! rate `R = E KL(e || m)`, distortion `D = E[-log d(x|z)]` and classification loss
//! `C = E[-log c(y|z)]`. Minimising `J = R + lambda D + gamma C` lands on the
//! equilibrium surface with free energy `F(lambda, gamma) = min J`, which is concave,
//! with `dF/dlambda = D`, `dF/dgamma = C` and the Maxwell relation
//! `dD/dgamma = dC/dlambda` (docs/THEORY.md).
//!
//! This crate speaks in the [`ThermodynamicSystem`] trait: any model that reports
//! R, D, C and their gradients and can relax towards equilibrium. On top of it:
//! - [`sensitivity`]: susceptibilities by the implicit function theorem (conjugate
//!   gradients on Hessian-vector products) and by finite differences on the surface;
//! - [`process`]: quasi-static processes (iso-classification, iso-distortion,
//!   iso-rate, fixed gamma, transfer along a data path) as a [`Continuation`] of a
//!   predictor, a corrector and a step control, run step by step by a [`Process`]
//!   iterator; the paper's Euler scheme is [`Continuation::euler`];
//! - [`equilibrium`]: equilibration that stops on a measured criterion (gradient norm,
//!   stationarity of the optimiser's measurements) and reports it;
//! - [`surface`]: equilibrium points on a grid, sweeping a system over it in shards,
//!   the measured residuals of the thermodynamic identities and a quadratic fit;
//! - [`quadratic`]: a toy system with closed forms (quadratic R, D, C), for tests and
//!   exploration;
//! - [`exact`]: the linear-Gaussian model, in closed form and as a Burn model.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod burn_params;
pub mod equilibrium;
pub mod error;
pub mod exact;
pub mod process;
pub mod quadratic;
pub mod sensitivity;
pub mod surface;
pub mod system;
pub mod values;
pub mod vector;

pub use equilibrium::{
    Equilibrium, EquilibriumReport, StationarityMonitor, StationarityTest, StoppingRule,
    equilibrate_by_rule,
};
pub use error::{Result, ThermoError};
pub use process::{
    AdaptiveStep, Constraint, ConstraintKind, Continuation, Correction, Corrector, FixedGamma,
    GammaBounds, IntegratorKind, IsoClassification, IsoDistortion, IsoRate, NewtonSecant,
    Predictor, PredictorCorrectorConfig, Process, ProcessPath, ProcessResult, ProcessSnapshot,
    StepControl, StepProgress, StepRecord, Tangent, TrustRegion, run_process,
};
pub use quadratic::{QuadraticSystem, QuadraticTerm};
pub use sensitivity::{
    HvpMethod, IftConfig, IftSolution, Sensitivities, SurfaceDifferenceConfig, ift_sensitivities,
    surface_difference_sensitivities,
};
pub use surface::{
    CHECK_NAMES, CheckSettings, CheckSummary, GridCell, GridSpec, Place, QuadraticFit, Shard,
    SurfaceChecks, SurfaceGrid, SurfacePoint, Sweep, SweepPoint, assemble_grid, shard_points,
    snake_order,
};
pub use system::{
    Functional, Functionals, Multipliers, ThermodynamicSystem, Weights, check_data_position,
};
