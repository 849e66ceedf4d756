//! Quasi-static processes on a trained deep model, measured step by step, beside their
//! baselines.
//!
//! * [`config`]: the TOML schema of both process experiments and how it becomes a
//!   `fep-thermo` [`Continuation`](fep_thermo::Continuation);
//! * [`trace`]: the per-step record of a process or a baseline ([`TraceRow`]), the
//!   observer that measures it between steps, its files and charts;
//! * [`resume`]: what a run keeps so that, killed, it continues with `--resume`;
//! * [`baselines`]: plain fine-tuning and the authors' heuristic controller;
//! * [`iso_classification`]: lambda moves with C held on the source task, beside the naive
//!   path with gamma fixed;
//! * [`transfer`]: source to target along `p_t` with C held, beside the baselines.

pub mod baselines;
pub mod config;
pub mod iso_classification;
pub mod resume;
pub mod trace;
pub mod transfer;

pub use baselines::{fine_tune, heuristic_adjust, paper_heuristic, paper_schedule};
pub use config::{BaselineSettings, ProcessConfig, ProcessOptions, ProcessSettings};
pub use iso_classification::{IsoClassificationSummary, iso_classification};
pub use trace::{HeldConstraint, TraceRow};
pub use transfer::{MethodResult, TransferSummary, transfer};
