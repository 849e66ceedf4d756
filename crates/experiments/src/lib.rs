//! # fep-experiments
//!
//! The experiments of *A Free-Energy Principle for Representation Learning* (Gao and
//! Chaudhari, ICML 2020) as a library. Each experiment has a typed config (serde, read from
//! `experiments/*.toml`), a driver generic over the Burn backend, and a typed summary that
//! is both written (`summary.json`) and read back (by [`report`]) through serde:
//!
//! | experiment | module | summary |
//! |---|---|---|
//! | train a source model to equilibrium | [`train_source`] | [`train_source::TrainSourceSummary`] |
//! | iso-classification on the source task | [`process::iso_classification`] | [`process::IsoClassificationSummary`] |
//! | transfer with C held, beside the baselines | [`process::transfer`], [`process::baselines`] | [`process::TransferSummary`] |
//! | several seeds of a process, mean +- sd, charts with bands | [`seeds`], [`seed_band`], [`seed_charts`] | [`seeds::TransferAggregate`], [`seeds::IsoAggregate`] |
//! | the equilibrium surface (shards, merge) | [`surface`] | [`surface::SurfaceSummary`] |
//! | the exact linear-Gaussian model | [`exact`] | [`exact::ExactSolveSummary`], ... |
//! | throughput | [`bench`] | [`bench::BenchReport`] |
//! | the end-to-end demo | [`demo`] | both of the above |
//! | the reproduction report | [`report`] | reads the summaries |
//! | a dataset folder | [`data`] | [`data::DataSummary`] |
//!
//! The thermodynamics (processes, surface sweep, checks) live in `fep-thermo`, the deep
//! system assembled from a checkpoint in `fep-models`, the data domains in `fep-data`;
//! this crate wires them into runs with files, charts and progress bars. The `fep` binary
//! parses the command line, picks the backend and prints.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod bench;
pub mod data;
pub mod demo;
pub mod error;
pub mod evaluate;
pub mod exact;
pub mod findings;
pub mod format;
pub mod images;
pub mod io;
pub mod maps;
pub mod plot;
pub mod process;
pub mod progress;
pub mod provenance;
pub mod report;
pub mod seed_band;
pub mod seed_charts;
pub mod seeds;
pub mod spread;
pub mod surface;
pub mod train_source;

pub use error::{ExperimentError, Result};

/// A finished experiment: its typed summary (also written as `summary.json`) and the
/// files worth showing (the summary first).
#[derive(Debug, Clone)]
pub struct Outcome<S> {
    /// The summary.
    pub summary: S,
    /// Files written.
    pub files: Vec<std::path::PathBuf>,
}
