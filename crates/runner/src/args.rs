//! The command line: clap arguments of every command and their translation into the typed
//! options of `fep-experiments`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use fep_experiments::bench::{BenchOptions, ReferenceOptions};
use fep_experiments::demo::DemoOptions;
use fep_experiments::process::ProcessOptions;
use fep_experiments::report::ReportOptions;
use fep_experiments::surface::SurfaceOptions;
use fep_experiments::train_source::TrainSourceOptions;
use fep_models::Architecture;
use fep_thermo::IntegratorKind;
use fep_thermo::surface::Shard;

/// `fep train-source`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// TOML with [data], [model], [training].
    #[arg(long, default_value = "experiments/train-source.toml")]
    pub config: PathBuf,
    /// Folder with the dataset files (overrides [data] dir; default: the bundled subset).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Result directory.
    #[arg(long, default_value = "runs/train-source")]
    pub out: PathBuf,
    /// Overwrite an existing result directory.
    #[arg(long)]
    pub force: bool,
    /// Continue from <out>/checkpoint.ckpt (to the configured or --epochs epochs).
    #[arg(long)]
    pub resume: bool,
    /// Override the number of epochs.
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Override the seed.
    #[arg(long)]
    pub seed: Option<u64>,
}

impl TrainArgs {
    /// The library's options.
    pub fn options(&self) -> TrainSourceOptions {
        TrainSourceOptions {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            out: self.out.clone(),
            force: self.force,
            resume: self.resume,
            epochs: self.epochs,
            seed: self.seed,
        }
    }
}

/// Arguments of both process commands.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// TOML with source_checkpoint, [data], [process], [ift], [baselines].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Trained source model (overrides source_checkpoint).
    #[arg(long)]
    pub source: Option<PathBuf>,
    /// Folder with the dataset files (default: the bundled subset).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Result directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overwrite an existing result directory.
    #[arg(long)]
    pub force: bool,
    /// Continue a killed run in --out from its last completed step (same config); with
    /// --seeds, skip the finished seeds and continue the unfinished one.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Override the integrator (predictor-corrector or euler).
    #[arg(long)]
    pub integrator: Option<IntegratorKind>,
    /// Override the number of steps of the path.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Skip the baselines.
    #[arg(long)]
    pub no_baselines: bool,
    /// Save the path's model after every step as steps/step-<k>.ckpt (the trace records each file).
    #[arg(long)]
    pub save_steps: bool,
    /// Run the whole experiment (source training and process) for N seeds, from the config's
    /// seed on, each in <out>/seed-<s>/, then aggregate them (mean +- sd) in <out>/aggregate.json.
    #[arg(long)]
    pub seeds: Option<usize>,
    /// With --seeds: run only part i of n of the seeds (a job-array task); every task
    /// aggregates the seeds finished so far.
    #[arg(long)]
    pub seed_shard: Option<Shard>,
    /// With --seeds: the source training's config.
    #[arg(long, default_value = "experiments/train-source.toml")]
    pub train_config: PathBuf,
}

impl ProcessArgs {
    /// The seeds of `--seeds`, if given: from the config's seed on.
    pub fn seeds_options(
        &self,
        default_out: &str,
        first: u64,
    ) -> Option<fep_experiments::seeds::SeedsOptions> {
        let count = self.seeds?;
        let mut process = self.options();
        process
            .out
            .get_or_insert_with(|| PathBuf::from(default_out));
        Some(fep_experiments::seeds::SeedsOptions {
            process,
            train_config: self.train_config.clone(),
            first,
            count,
            shard: self.seed_shard.unwrap_or(Shard::ALL),
        })
    }

    /// The library's options.
    pub fn options(&self) -> ProcessOptions {
        ProcessOptions {
            config: self.config.clone(),
            source: self.source.clone(),
            data_dir: self.data_dir.clone(),
            out: self.out.clone(),
            force: self.force,
            resume: self.resume,
            integrator: self.integrator,
            steps: self.steps,
            no_baselines: self.no_baselines,
            save_steps: self.save_steps,
            seed: None,
        }
    }
}

/// `fep surface`.
#[derive(Debug, Args)]
pub struct SurfaceArgs {
    /// Run or merge.
    #[command(subcommand)]
    pub action: Option<SurfaceAction>,
    /// TOML with source_checkpoint, [data], [grid], [sweep].
    #[arg(long, global = true, default_value = "experiments/surface.toml")]
    pub config: PathBuf,
    /// Folder with the dataset files (default: the bundled subset).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Result directory (shards go to <out>/shards/).
    #[arg(long, global = true, default_value = "runs/surface")]
    pub out: PathBuf,
    /// Run only shard i of n (1-based), e.g. `--shard 3/8` for task 3 of a job array of 8.
    #[arg(long)]
    pub shard: Option<Shard>,
}

impl SurfaceArgs {
    /// The library's options.
    pub fn options(&self) -> SurfaceOptions {
        SurfaceOptions {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            out: self.out.clone(),
            shard: self.shard.unwrap_or(Shard { index: 0, count: 1 }),
        }
    }
}

/// `fep surface merge`.
#[derive(Debug, Subcommand)]
pub enum SurfaceAction {
    /// Join the shards in <out>/shards/, check completeness, run the checks and plot.
    Merge,
}

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

impl DemoArgs {
    /// The library's options.
    pub fn options(&self) -> DemoOptions {
        DemoOptions {
            out: self.out.clone(),
            force: self.force,
            data_dir: self.data_dir.clone(),
            train_config: self.train_config.clone(),
            transfer_config: self.transfer_config.clone(),
            steps: self.steps,
        }
    }
}

/// `fep report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Folder holding train-source/, iso-classification/, transfer-iso-classification/, surface/.
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Markdown file to write (figures go to a `figures/` folder beside it).
    #[arg(long, default_value = "docs/REPRODUCTION.md")]
    pub out: PathBuf,
}

impl ReportArgs {
    /// The library's options.
    pub fn options(&self) -> ReportOptions {
        ReportOptions {
            runs: self.runs.clone(),
            out: self.out.clone(),
        }
    }
}

/// Subcommands of `fep exact`.
#[derive(Debug, Subcommand)]
pub enum ExactCommand {
    /// Train at (lambda, gamma) and compare with the closed form, with sensitivities.
    Solve(ExactSolveArgs),
    /// Iso-classification process from (lambda_start, gamma_start) to lambda_end.
    IsoClassification(ExactIsoArgs),
    /// Closed-form and trained surface over a grid, its checks and a plot.
    Surface(ExactSurfaceArgs),
}

/// Arguments shared by the exact commands.
#[derive(Debug, Args)]
pub struct ExactCommon {
    /// TOML file with [data], [model] (and optional [target], [training]).
    #[arg(long)]
    pub config: PathBuf,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Result directory (default runs/exact-<command>/; with --json and no --out nothing is written).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overwrite an existing result directory.
    #[arg(long)]
    pub force: bool,
}

/// `fep exact solve`.
#[derive(Debug, Args)]
pub struct ExactSolveArgs {
    #[command(flatten)]
    pub common: ExactCommon,
    /// Multiplier of the distortion.
    #[arg(long)]
    pub lambda: f64,
    /// Multiplier of the classification loss.
    #[arg(long)]
    pub gamma: f64,
}

/// `fep exact iso-classification`.
#[derive(Debug, Args)]
pub struct ExactIsoArgs {
    #[command(flatten)]
    pub common: ExactCommon,
    /// lambda at the start.
    #[arg(long, default_value_t = 2.0)]
    pub lambda_start: f64,
    /// gamma at the start.
    #[arg(long, default_value_t = 1.0)]
    pub gamma_start: f64,
    /// lambda at the end.
    #[arg(long, default_value_t = 0.5)]
    pub lambda_end: f64,
    /// Integrator (predictor-corrector or euler).
    #[arg(long, default_value_t = IntegratorKind::PredictorCorrector)]
    pub integrator: IntegratorKind,
}

/// `fep exact surface`.
#[derive(Debug, Args)]
pub struct ExactSurfaceArgs {
    #[command(flatten)]
    pub common: ExactCommon,
    /// lambda grid as start:end:count.
    #[arg(long, default_value = "0.5:3:6")]
    pub lambdas: String,
    /// gamma grid as start:end:count.
    #[arg(long, default_value = "0.25:3:6")]
    pub gammas: String,
    /// gamma at which the iso-classification curve drawn on the plot starts (at the largest lambda).
    #[arg(long, default_value_t = 1.0)]
    pub iso_gamma: f64,
    /// A residual above this many error estimates (discretisation, noise, floor) is a violation.
    #[arg(long, default_value_t = 3.0)]
    pub check_factor: f64,
    /// Error floor of the trained model's checks: its distance from exact equilibrium.
    #[arg(long, default_value_t = 1e-4)]
    pub trained_floor: f64,
}

impl ExactSurfaceArgs {
    /// How the identities of both surfaces are counted.
    pub fn check_settings(&self) -> fep_experiments::exact::ExactCheckSettings {
        let d = fep_experiments::exact::ExactCheckSettings::default();
        fep_experiments::exact::ExactCheckSettings {
            trained: fep_thermo::CheckSettings {
                factor: self.check_factor,
                floor: self.trained_floor,
            },
            closed_form: fep_thermo::CheckSettings {
                factor: self.check_factor,
                ..d.closed_form
            },
        }
    }
}

/// `fep bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure (default: the full suite).
    #[command(subcommand)]
    pub what: Option<BenchWhat>,
    /// Architectures of the suite.
    #[arg(long, value_enum, num_args = 1.., default_values_t = vec![ArchArg::MnistSmall, ArchArg::MnistPaper, ArchArg::CifarResnet])]
    pub arch: Vec<ArchArg>,
    /// Batch sizes of the suite.
    #[arg(long, num_args = 1.., default_values_t = vec![64usize, 128])]
    pub batch: Vec<usize>,
    /// Latent samples per example; several values make several configurations (the
    /// authors use 8).
    #[arg(long, num_args = 1.., default_values_t = vec![1usize])]
    pub num_z: Vec<usize>,
    /// Untimed steps before each measurement.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Timed steps per repetition.
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Repetitions (median and spread are over these).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Forward/backward in micro-batches of this size with accumulated gradients (0: off).
    #[arg(long, default_value_t = 0)]
    pub micro_batch: usize,
    /// Result folder: bench.json goes there.
    #[arg(long, default_value = "runs/bench")]
    pub out: PathBuf,
    /// Overwrite the files of a non-empty result folder.
    #[arg(long)]
    pub force: bool,
}

impl BenchArgs {
    /// The library's options of the suite.
    pub fn options(&self) -> BenchOptions {
        BenchOptions {
            architectures: self.arch.iter().map(|a| a.architecture()).collect(),
            batches: self.batch.clone(),
            num_z: self.num_z.clone(),
            warmup: self.warmup,
            steps: self.steps,
            reps: self.reps,
            micro_batch: (self.micro_batch > 0).then_some(self.micro_batch),
            out: self.out.clone(),
            force: self.force,
        }
    }
}

/// `fep bench reference`.
#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// The reference model of benchmarks/peers (mnist-small layers, Bernoulli, linear classifier).
    Reference(ReferenceArgs),
}

/// Arguments of `fep bench reference`.
#[derive(Debug, Args)]
pub struct ReferenceArgs {
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Timed steps per repetition.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Repetitions.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Output JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Forward/backward in micro-batches of this size with accumulated gradients (0: off).
    #[arg(long, default_value_t = 0)]
    pub micro_batch: usize,
}

impl ReferenceArgs {
    /// The library's options.
    pub fn options(&self) -> ReferenceOptions {
        ReferenceOptions {
            batch: self.batch,
            warmup: self.warmup,
            steps: self.steps,
            reps: self.reps,
            json: self.json.clone(),
            micro_batch: (self.micro_batch > 0).then_some(self.micro_batch),
        }
    }
}

/// Architecture on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    /// mnist-small.
    MnistSmall,
    /// mnist-paper.
    MnistPaper,
    /// cifar-resnet.
    CifarResnet,
}

impl ArchArg {
    fn architecture(self) -> Architecture {
        match self {
            ArchArg::MnistSmall => Architecture::MnistSmall,
            ArchArg::MnistPaper => Architecture::MnistPaper,
            ArchArg::CifarResnet => Architecture::CifarResnet,
        }
    }
}

/// `fep evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The saved model (any `.ckpt` written by fep).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Folder with the dataset files (default: the bundled subset); the full MNIST after `fep data fetch mnist`.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Dataset family (mnist or cifar10).
    #[arg(long, default_value = "mnist")]
    pub kind: fep_data::DatasetKind,
    /// Classes, comma-separated (default: the source classes the checkpoint records).
    #[arg(long, value_delimiter = ',')]
    pub classes: Option<Vec<u8>>,
    /// Split: test, train or validation (the held-out end of the training split).
    #[arg(long, default_value = "test")]
    pub split: fep_experiments::evaluate::EvalSplit,
    /// Examples per task held out of the training split as validation.
    #[arg(long, default_value_t = 500)]
    pub validation_size: usize,
    /// Fresh noise draws per example.
    #[arg(long, default_value_t = 8)]
    pub samples: usize,
    /// Seed of the draws and of the binarisation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Binarisation of the inputs: dynamic (as the experiments train), static or none.
    #[arg(long, default_value = "dynamic", value_parser = parse_binarization)]
    pub binarization: fep_data::BinarizationKind,
    /// Only the first N examples of the split.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Write the examples' indices and labels, the images fed to the model, the noise drawn
    /// and the per-example R, D, C to this safetensors file (for benchmarks/peers/load_fep.py).
    #[arg(long, value_name = "FILE")]
    pub dump_inputs: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn parse_binarization(s: &str) -> Result<fep_data::BinarizationKind, String> {
    match s {
        "dynamic" => Ok(fep_data::BinarizationKind::Dynamic),
        "static" => Ok(fep_data::BinarizationKind::Static),
        "none" => Ok(fep_data::BinarizationKind::None),
        _ => Err(format!("`{s}`: expected dynamic, static or none")),
    }
}

impl EvaluateArgs {
    /// The typed options.
    pub fn options(&self) -> fep_experiments::evaluate::EvaluateOptions {
        fep_experiments::evaluate::EvaluateOptions {
            checkpoint: self.checkpoint.clone(),
            data_dir: self.data_dir.clone(),
            kind: self.kind,
            classes: self.classes.clone(),
            split: self.split,
            validation_size: self.validation_size,
            samples: self.samples,
            seed: self.seed,
            binarization: self.binarization,
            limit: self.limit,
            dump_inputs: self.dump_inputs.clone(),
        }
    }
}

/// `fep aggregate`.
#[derive(Debug, Args)]
pub struct AggregateArgs {
    /// The folder holding seed-<s>/ results.
    #[arg(long)]
    pub out: PathBuf,
    /// Which experiment the seeds ran.
    #[arg(long, value_enum, default_value_t = AggregateKind::Transfer)]
    pub kind: AggregateKind,
}

/// The experiments that run over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AggregateKind {
    /// transfer-iso-classification.
    Transfer,
    /// iso-classification.
    IsoClassification,
}
