//! `fep demo`: the mission end to end at a small default — train the source model on
//! digits 0-4, carry it to digits 5-9 with C held, beside fine-tuning and the paper's
//! heuristic, then print the summary table and the paths of the plots.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;

use crate::process_cmd::{self, ProcessArgs};
use crate::train_cmd::{self, CHECKPOINT, TrainArgs};

/// `fep demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Result directory (train-source/ and transfer/ inside).
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// Overwrite existing results.
    #[arg(long)]
    pub force: bool,
    /// Folder with the MNIST files (default: the bundled subset).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Config of the source training.
    #[arg(long, default_value = "experiments/train-source.toml")]
    pub train_config: PathBuf,
    /// Config of the transfer.
    #[arg(long, default_value = "experiments/transfer-iso-classification.toml")]
    pub transfer_config: PathBuf,
    /// Steps of the transfer path (the config's 25 take about three times as long).
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
}

/// `fep demo` on backend B.
pub fn demo<B: AutodiffBackend>(device: &B::Device, args: &DemoArgs) -> Result<()> {
    let clock = Instant::now();
    let train_out = args.out.join("train-source");
    println!(
        "== 1/2 train the source model (digits 0-4) -> {}",
        train_out.display()
    );
    train_cmd::train_source::<B>(
        device,
        &TrainArgs {
            config: args.train_config.clone(),
            data_dir: args.data_dir.clone(),
            out: train_out.clone(),
            force: args.force,
            resume: false,
            epochs: None,
            seed: None,
        },
    )?;
    let transfer_out = args.out.join("transfer");
    println!(
        "\n== 2/2 transfer to digits 5-9 with C held, beside the baselines -> {}",
        transfer_out.display()
    );
    process_cmd::transfer::<B>(
        device,
        &ProcessArgs {
            config: Some(args.transfer_config.clone()),
            source: Some(train_out.join(CHECKPOINT)),
            data_dir: args.data_dir.clone(),
            out: Some(transfer_out),
            force: args.force,
            integrator: None,
            steps: Some(args.steps),
            no_baselines: false,
        },
    )?;
    println!(
        "\ndemo finished in {:.1} min",
        clock.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}
