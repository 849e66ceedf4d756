//! Deep models of the free-energy principle for representation learning (Gao and
//! Chaudhari, ICML 2020): an encoder `e(z|x)` (diagonal Gaussian), a decoder `d(x|z)`,
//! a classifier `c(y|z)` on the latent sample and a prior `m(z)`, with the functionals
//!
//! * rate `R = E_p KL(e(z|x) || m(z))`,
//! * distortion `D = E_p E_e [-log d(x|z)]`,
//! * classification loss `C = E_p E_e [-log c(y|z)]`,
//!
//! all in nats per example (`R + D` is the negative ELBO), trained to the equilibrium of
//! `J = R + lambda D + gamma C` by the loop in [`train`], and exposed to the
//! thermodynamics of `fep-thermo` by [`system::DeepSystem`].

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod assemble;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod export;
pub mod likelihood;
pub mod measure;
pub mod model;
pub mod networks;
pub mod noise;
pub mod prior;
pub mod probe;
pub mod system;
pub mod train;

pub use config::{Architecture, ClassifierKind, DecoderKind, ModelConfig, PriorKind};
pub use error::{ModelError, Result};
pub use measure::{Measurement, StandardErrors, measure};
pub use model::{BatchFunctionals, FepModel};
