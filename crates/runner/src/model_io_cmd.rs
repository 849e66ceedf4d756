//! `fep export` and `fep import`: a model as a safetensors file in the names and layouts of
//! the PyTorch networks of `benchmarks/peers` (`fep_models::export`), and back.

use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use fep_experiments::train_source::{TrainSourceOptions, load_config};
use fep_models::export::{ExportMetadata, ImportSettings, export_checkpoint, import_to_checkpoint};

/// `fep export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The fep checkpoint (`.ckpt`) whose model to export.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The safetensors file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

/// `fep import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The safetensors file (as `fep export` writes it, or saved from PyTorch with the
    /// same names and metadata; see benchmarks/peers/load_fep.py).
    #[arg(long)]
    pub safetensors: PathBuf,
    /// The train-source TOML ([data], [model], [training]) of the run the checkpoint is for:
    /// its [model] must describe the file's model; its [training] and source classes are
    /// stored for `train-source --resume` and processes' `--source`.
    #[arg(long)]
    pub config: PathBuf,
    /// The checkpoint to write (for `train-source --resume`: <out>/checkpoint.ckpt).
    #[arg(long)]
    pub out: PathBuf,
    /// Overwrite an existing checkpoint.
    #[arg(long)]
    pub force: bool,
}

fn describe(m: &ExportMetadata) -> String {
    format!(
        "{} (latent {}, decoder {:?}, prior {:?}, classifier {:?}) at lambda = {}, gamma = {}, seed {}",
        m.model.architecture.name(),
        m.model.latent_dim,
        m.model.decoder,
        m.model.prior,
        m.model.classifier,
        m.lambda,
        m.gamma,
        m.seed
    )
}

fn refuse_overwrite(path: &std::path::Path, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!("{} exists (pass --force to overwrite)", path.display());
    }
    Ok(())
}

/// Runs `fep export` on backend B.
pub fn export<B: AutodiffBackend>(device: &B::Device, a: &ExportArgs) -> Result<()> {
    refuse_overwrite(&a.out, a.force)?;
    let m = export_checkpoint::<B>(&a.checkpoint, &a.out, device)?;
    println!("exported {}", describe(&m));
    println!(
        "wrote {} (PyTorch names and layout; load it with benchmarks/peers/load_fep.py)",
        a.out.display()
    );
    Ok(())
}

/// Runs `fep import` on backend B.
pub fn import<B: AutodiffBackend>(device: &B::Device, a: &ImportArgs) -> Result<()> {
    refuse_overwrite(&a.out, a.force)?;
    let config = load_config(&TrainSourceOptions {
        config: a.config.clone(),
        ..TrainSourceOptions::default()
    })?;
    let mut extra = serde_json::Map::new();
    extra.insert(
        "source_classes".into(),
        serde_json::to_value(&config.data.source_classes)?,
    );
    let (lambda, gamma) = (config.training.lambda, config.training.gamma);
    let settings = ImportSettings {
        model: config.model,
        train: config.training,
        extra,
    };
    let m = import_to_checkpoint::<B>(&a.safetensors, settings, &a.out, device)?;
    println!("imported {}", describe(&m));
    if (m.lambda, m.gamma) != (lambda, gamma) {
        eprintln!(
            "note: the file's model sits at (lambda, gamma) = ({}, {}), {} trains at ({lambda}, {gamma}); \
             a process --source starts from the config's",
            m.lambda,
            m.gamma,
            a.config.display()
        );
    }
    println!(
        "wrote {} (position 0, fresh Adam state; settings from {})",
        a.out.display(),
        a.config.display()
    );
    Ok(())
}
