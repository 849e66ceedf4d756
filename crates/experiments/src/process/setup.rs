//! A process experiment made ready to run: its config read and checked, its data loaded,
//! its result directory prepared (with the resolved config and the resume state), and
//! fresh systems at the source checkpoint on demand.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use fep_data::Domains;
use fep_models::assemble::{Assembled, system_from_checkpoint};
use fep_thermo::Multipliers;
use serde::{Deserialize, Serialize};

use super::config::{
    ISO_CLASSIFICATION_CONFIG, ISO_CLASSIFICATION_OUT, ProcessConfig, ProcessOptions,
    TRANSFER_CONFIG, TRANSFER_OUT,
};
use super::resume::ResumeStore;
use super::saver::ModelSaver;
use crate::error::{Result, invalid};
use crate::io::{prepare_out_dir, write_toml};

/// A loaded experiment: its config, result directory and data.
pub(crate) struct Setup {
    pub cfg: ProcessConfig,
    pub out: PathBuf,
    pub domains: Domains,
    pub saver: ModelSaver,
    pub resume: ResumeStore,
}

impl Setup {
    /// The record of this run in its summary, on `device`.
    pub fn run_record(&self, device: String) -> ProcessRun {
        ProcessRun {
            seed: self.cfg.process.seed,
            device,
            data_dir: self.domains.dir.clone(),
            source_checkpoint: self.cfg.source_checkpoint.clone(),
            config: self.cfg.clone(),
            machine: Some(crate::provenance::machine()),
        }
    }

    /// (lambda, gamma) of the source checkpoint, where every path starts.
    pub fn source_multipliers(&self) -> Result<Multipliers> {
        let header = fep_models::checkpoint::read_header(&self.cfg.source_checkpoint)?;
        Ok(Multipliers::new(header.train.lambda, header.train.gamma))
    }

    /// A fresh system at the source checkpoint's equilibrium, on the source (and, with
    /// `with_target`, the target) domain.
    pub fn assemble<B: AutodiffBackend>(
        &self,
        device: &B::Device,
        with_target: bool,
    ) -> Result<Assembled<B>> {
        let target = if with_target {
            Some(self.domains.require_target()?)
        } else {
            None
        };
        Ok(system_from_checkpoint::<B>(
            &self.cfg.source_checkpoint,
            device,
            &self.domains.source,
            target,
            &self.cfg.process.system_spec(&self.cfg.data),
        )?)
    }
}

/// What an experiment falls back on and needs.
pub(crate) struct Defaults {
    /// The config file where none is given.
    pub config: &'static str,
    /// The result directory where none is given.
    pub out: &'static str,
    /// Whether `[data] target_classes` is required.
    pub needs_target: bool,
}

/// The iso-classification experiment's defaults.
pub(crate) const ISO_CLASSIFICATION: Defaults = Defaults {
    config: ISO_CLASSIFICATION_CONFIG,
    out: ISO_CLASSIFICATION_OUT,
    needs_target: false,
};

/// The transfer experiment's defaults.
pub(crate) const TRANSFER: Defaults = Defaults {
    config: TRANSFER_CONFIG,
    out: TRANSFER_OUT,
    needs_target: true,
};

/// Loads the config and the data and prepares a fresh result directory holding the
/// resolved config.
pub(crate) fn setup(options: &ProcessOptions, defaults: &Defaults) -> Result<Setup> {
    let cfg = options.load_config(defaults.config)?;
    if defaults.needs_target && cfg.data.target_classes.is_none() {
        return Err(invalid(
            "the transfer needs [data] target_classes (for example [5, 6, 7, 8, 9])",
        ));
    }
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(defaults.out));
    check_source_dealing(&cfg)?;
    let domains = Domains::load(&cfg.data, options.data_dir.as_deref())?;
    if !options.resume {
        prepare_out_dir(&out, options.force)?;
    }
    let resume = ResumeStore::open(&out, &cfg, options.resume)?;
    write_toml(&out.join("config.toml"), &cfg)?;
    let saver = ModelSaver {
        out: out.clone(),
        data: cfg.data.clone(),
        every_step: options.save_steps,
    };
    Ok(Setup {
        cfg,
        out,
        domains,
        saver,
        resume,
    })
}

/// Error unless the source checkpoint was trained on the dealing of images this process
/// uses (`[data] resplit_seed`, as its `train-source` recorded it): on another dealing the
/// source's training images overlap this run's test split, and the drift measured there is
/// no longer on unseen data. Checkpoints that predate the record are not checked.
fn check_source_dealing(cfg: &ProcessConfig) -> Result<()> {
    let path = &cfg.source_checkpoint;
    if !path.is_file() {
        return Ok(()); // named by the loader, with the command that makes it
    }
    let header = fep_models::checkpoint::read_header(path)?;
    let Some(data) = header.extra.get("data") else {
        return Ok(());
    };
    let source_deal = data.get("resplit_seed").and_then(|v| v.as_u64());
    if source_deal == cfg.data.resplit_seed {
        return Ok(());
    }
    let name = |deal: Option<u64>| match deal {
        Some(s) => format!("the dealing resplit_seed = {s}"),
        None => "the official split".to_string(),
    };
    Err(invalid(format!(
        "{}: the source was trained on {} but this process uses {}: the source's training images would overlap this run's test split; give the process --resplit-seed matching the source's, or train the source on this dealing",
        path.display(),
        name(source_deal),
        name(cfg.data.resplit_seed)
    )))
}

/// What identifies a process run: its seed (of the process and the baselines), the
/// backend and device, the data folder, the source checkpoint and the resolved config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessRun {
    /// Seed of the process and the baselines.
    pub seed: u64,
    /// Backend and device.
    pub device: String,
    /// Folder the data came from.
    pub data_dir: PathBuf,
    /// The source checkpoint.
    pub source_checkpoint: PathBuf,
    /// The resolved config.
    pub config: ProcessConfig,
    /// CPU model and threads of the machine that ran it (wall times depend on it; runs
    /// before session 15 did not record it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}
