//! `fep data ...`: inspect bundled or downloaded datasets, fetch the full ones.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use fep_data::{DatasetKind, FetchEvent};

use fep_experiments::data::InspectOptions;
use fep_experiments::progress::bar;

/// Subcommands of `fep data`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Counts per class and split, pixel statistics, and a PNG grid of samples.
    Inspect(InspectArgs),
    /// Download a full dataset from its mirrors, verify checksums, write atomically.
    Fetch(FetchArgs),
}

/// `fep data inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Dataset folder (MNIST IDX files or CIFAR-10 binary batches); default: the bundled MNIST subset.
    pub dir: Option<PathBuf>,
    /// Result directory for summary.json and samples.png.
    #[arg(long, default_value = "runs/data-inspect")]
    pub out: PathBuf,
    /// Overwrite an existing result directory.
    #[arg(long)]
    pub force: bool,
    /// Number of sample images in the grid.
    #[arg(long, default_value_t = 50)]
    pub samples: usize,
}

/// `fep data fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Which dataset: mnist or cifar10.
    pub dataset: DatasetKind,
    /// Destination folder.
    #[arg(long)]
    pub dir: PathBuf,
    /// Mirror base URL to use instead of the manifest's list (repeatable).
    #[arg(long = "mirror")]
    pub mirrors: Vec<String>,
}

/// Run `fep data ...`.
pub fn run(command: &DataCommand) -> Result<()> {
    match command {
        DataCommand::Inspect(args) => inspect(args),
        DataCommand::Fetch(args) => fetch(args),
    }
}

fn inspect(args: &InspectArgs) -> Result<()> {
    let (inspection, outcome) = fep_experiments::data::inspect(&InspectOptions {
        dir: args.dir.clone(),
        out: args.out.clone(),
        force: args.force,
        samples: args.samples,
    })?;
    println!("{inspection}");
    crate::print::files(&outcome.files);
    Ok(())
}

fn fetch(args: &FetchArgs) -> Result<()> {
    let mut bar_state: Option<indicatif::ProgressBar> = None;
    let report = fep_data::fetch(
        args.dataset,
        &args.dir,
        &args.mirrors,
        |event| match event {
            FetchEvent::AlreadyPresent { file, .. } => {
                println!("{file}: already present and verified")
            }
            FetchEvent::Started {
                file,
                url,
                resumed_from,
                total,
            } => {
                let b = bar(total.unwrap_or(0), file);
                b.set_position(*resumed_from);
                tracing::info!(%url, resumed_from, "downloading {file}");
                bar_state = Some(b);
            }
            FetchEvent::Progress { downloaded, .. } => {
                if let Some(b) = &bar_state {
                    b.set_position(*downloaded);
                }
            }
            FetchEvent::Verifying { file } => tracing::info!("verifying {file}"),
            FetchEvent::MirrorFailed { file, failure } => {
                eprintln!("{file}: mirror {} failed: {}", failure.url, failure.reason)
            }
            FetchEvent::Done { file, checksum, .. } => {
                if let Some(b) = bar_state.take() {
                    b.finish_and_clear();
                }
                println!("{file}: verified ({checksum:?})");
            }
            FetchEvent::Unpacked { path, .. } => println!("unpacked {}", path.display()),
        },
    )
    .with_context(|| format!("fetching {} into {}", args.dataset, args.dir.display()))?;
    println!("{} files in {}", report.files.len(), report.dir.display());
    Ok(())
}
