//! `demo`: the mission end to end at a small default. Train the source model on digits
//! 0-4, carry it to digits 5-9 with C held, beside fine-tuning and the paper's heuristic.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;

use crate::Outcome;
use crate::error::Result;
use crate::process::ProcessOptions;
use crate::process::transfer::{TransferSummary, transfer};
use crate::train_source::{CHECKPOINT, TrainSourceOptions, TrainSourceSummary, train_source};

/// Where and how the demo runs.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct DemoOptions {
    /// Result directory (train-source/ and transfer/ inside).
    #[cfg_attr(feature = "cli", arg(long, default_value = "runs/demo"))]
    pub out: PathBuf,
    /// Overwrite existing results.
    #[cfg_attr(feature = "cli", arg(long))]
    pub force: bool,
    /// Folder with the MNIST files (default: the bundled subset).
    #[cfg_attr(feature = "cli", arg(long))]
    pub data_dir: Option<PathBuf>,
    /// Config of the source training.
    #[cfg_attr(feature = "cli", arg(long, default_value = crate::train_source::DEFAULT_CONFIG))]
    pub train_config: PathBuf,
    /// Config of the transfer.
    #[cfg_attr(feature = "cli", arg(long, default_value = crate::process::TRANSFER_CONFIG))]
    pub transfer_config: PathBuf,
    /// Steps of the transfer path (the config's 25 take about three times as long).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 8))]
    pub steps: usize,
}

impl DemoOptions {
    /// The options of the source training.
    pub fn train_options(&self) -> TrainSourceOptions {
        TrainSourceOptions {
            config: self.train_config.clone(),
            data_dir: self.data_dir.clone(),
            out: self.out.join("train-source"),
            force: self.force,
            ..TrainSourceOptions::default()
        }
    }

    /// The options of the transfer from the trained source.
    pub fn transfer_options(&self) -> ProcessOptions {
        ProcessOptions {
            config: Some(self.transfer_config.clone()),
            source: Some(self.out.join("train-source").join(CHECKPOINT)),
            data_dir: self.data_dir.clone(),
            out: Some(self.out.join("transfer")),
            force: self.force,
            resume: false,
            integrator: None,
            steps: Some(self.steps),
            no_baselines: false,
            save_steps: false,
            seed: None,
            resplit_seed: None,
        }
    }
}

/// Runs the source training, then `announce` (for the caller's output between stages),
/// then the transfer, on backend B.
pub fn demo<B: AutodiffBackend>(
    device: &B::Device,
    options: &DemoOptions,
    announce: impl FnOnce(&Outcome<TrainSourceSummary>),
) -> Result<(Outcome<TrainSourceSummary>, Outcome<TransferSummary>)> {
    let source = train_source::<B>(device, &options.train_options())?;
    announce(&source);
    let transfer = transfer::<B>(device, &options.transfer_options())?;
    Ok((source, transfer))
}
