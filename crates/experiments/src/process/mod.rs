//! Quasi-static processes on a trained deep model, measured step by step, beside their
//! baselines.
//!
//! * [`config`]: the TOML schema of both process experiments, the one place it becomes a
//!   `fep-thermo` [`Continuation`](fep_thermo::Continuation), and the command-line options;
//! * [`setup`]: a run made ready (config, data, result folder, fresh systems);
//! * [`rows`]: the per-step record of a process or a baseline ([`TraceRow`]) and what a
//!   trace says about the held constraint;
//! * [`measure`]: rows measured on the test splits, apart from the controller;
//! * [`observer`]: a traced path (the process iterator, measured, saved, resumable);
//! * [`saver`], [`resume`]: the models a run saves, and what it keeps to continue after
//!   `kill -9`;
//! * [`charts`]: the charts of several traces;
//! * [`method`]: the methods of the transfer as data ([`Method`]);
//! * [`baselines`]: each baseline's runner behind one signature ([`baselines::MethodRun`]);
//! * [`iso_classification`]: lambda moves with C held on the source task, beside the naive
//!   path with gamma fixed;
//! * [`transfer`]: source to target along `p_t` with C held, beside the baselines.

pub mod baselines;
mod charts;
pub mod config;
pub mod iso_classification;
pub mod measure;
pub mod method;
mod observer;
pub mod resume;
pub mod rows;
pub mod saver;
mod setup;
pub mod transfer;

pub use baselines::{
    MethodContext, MethodRun, fine_tune, heuristic_adjust, paper_heuristic, paper_schedule,
};
pub use config::{
    BaselineSettings, ISO_CLASSIFICATION_CONFIG, ISO_CLASSIFICATION_OUT, ProcessConfig,
    ProcessOptions, ProcessSettings, TRANSFER_CONFIG, TRANSFER_OUT,
};
pub use iso_classification::{IsoClassificationSummary, iso_classification};
pub use method::Method;
pub use rows::{HeldConstraint, TestOverProbe, TraceRow};
pub use setup::ProcessRun;
pub use transfer::{FinishedMethod, MethodResult, TransferSummary, run_method, transfer};

#[cfg(test)]
mod tests;
