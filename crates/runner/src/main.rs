//! `fep`: the command line of the free-energy representation-learning toolkit.

mod backend;
mod bench_cmd;
mod data_cmd;
mod deep;
mod demo_cmd;
mod exact_cmd;
mod output;
mod plot;
mod process_cmd;
mod progress;
mod report_cmd;
mod surface_cmd;
mod train_cmd;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use backend::BackendChoice;

/// Thermodynamics of representation learning (Gao and Chaudhari, ICML 2020) on Burn.
#[derive(Debug, Parser)]
#[command(name = "fep", version, about, long_about = None)]
struct Cli {
    /// Compute backend (must be compiled in by its cargo feature).
    #[arg(long, value_enum, global = true, default_value_t = BackendChoice::Flex)]
    backend: BackendChoice,
    /// Device index on GPU backends.
    #[arg(long, global = true, default_value_t = 0)]
    device: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compiled backends, chosen device, versions.
    Info,
    /// Datasets: inspect, fetch.
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// The exact linear-Gaussian model: closed forms beside a trained model.
    #[command(subcommand)]
    Exact(exact_cmd::ExactCommand),
    /// The mission end to end on the bundled data: train-source, then the transfer with C held and its baselines.
    Demo(demo_cmd::DemoArgs),
    /// Train a source model to equilibrium at (lambda, gamma), with checkpoints and a summary.
    TrainSource(train_cmd::TrainArgs),
    /// Iso-classification on a deep model: lambda moves with C held, beside the naive fixed-gamma path.
    IsoClassification(process_cmd::ProcessArgs),
    /// Transfer source -> target with C held constant, beside fine-tuning and the paper's heuristic.
    TransferIsoClassification(process_cmd::ProcessArgs),
    /// Equilibrium surface of a deep model over a (lambda, gamma) grid; `--shard i/n`, then `merge`.
    Surface(surface_cmd::SurfaceArgs),
    /// docs/REPRODUCTION.md from the summaries under runs/ (figures copied beside it).
    Report(report_cmd::ReportArgs),
    /// Throughput of training, evaluation, Hessian-vector products and data loading; `bench reference` for the peer comparison.
    Bench(bench_cmd::BenchArgs),
}

fn info<B: burn::tensor::backend::AutodiffBackend>(device: &B::Device) -> Result<()> {
    println!("fep {}", env!("CARGO_PKG_VERSION"));
    println!("burn 0.21.0 (pinned; see docs/BURN_VERSION.md)");
    println!(
        "compiled backends: {}",
        BackendChoice::all_compiled()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("chosen device: {}", backend::device_name::<B>(device));
    println!(
        "threads available: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Info => dispatch_autodiff!(cli.backend, cli.device, info),
        Command::Data(cmd) => data_cmd::run(cmd),
        Command::Exact(cmd) => match cmd {
            exact_cmd::ExactCommand::Solve(args) => {
                dispatch_autodiff!(cli.backend, cli.device, exact_cmd::solve, args)
            }
            exact_cmd::ExactCommand::IsoClassification(args) => {
                dispatch_autodiff!(cli.backend, cli.device, exact_cmd::iso_classification, args)
            }
            exact_cmd::ExactCommand::Surface(args) => {
                dispatch_autodiff!(cli.backend, cli.device, exact_cmd::surface, args)
            }
        },
        Command::Demo(args) => dispatch_autodiff!(cli.backend, cli.device, demo_cmd::demo, args),
        Command::TrainSource(args) => {
            dispatch_autodiff!(cli.backend, cli.device, train_cmd::train_source, args)
        }
        Command::IsoClassification(args) => {
            dispatch_autodiff!(
                cli.backend,
                cli.device,
                process_cmd::iso_classification,
                args
            )
        }
        Command::TransferIsoClassification(args) => {
            dispatch_autodiff!(cli.backend, cli.device, process_cmd::transfer, args)
        }
        Command::Surface(args) => {
            dispatch_autodiff!(cli.backend, cli.device, surface_cmd::surface, args)
        }
        Command::Report(args) => report_cmd::report(args),
        Command::Bench(args) => dispatch_autodiff!(cli.backend, cli.device, bench_cmd::bench, args),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
