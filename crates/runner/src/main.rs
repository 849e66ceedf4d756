//! `fep`: the command line of the free-energy representation-learning toolkit. It parses
//! arguments, picks the backend once, calls `fep-experiments` and prints.

mod args;
mod backend;
mod data_cmd;
mod device;
mod model_io_cmd;
mod print;
#[cfg(feature = "wgpu")]
mod wgpu_adapters;

use std::process::ExitCode;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, Subcommand};
use fep_experiments::io::read_json;
use fep_experiments::seeds::{SeededExperiment, aggregate_iso, aggregate_transfer, run_seeds};
use fep_experiments::{bench, demo, exact, process, report, surface, train_source};
use fep_thermo::Multipliers;

use args::{
    AggregateArgs, AggregateKind, BenchArgs, BenchWhat, EvaluateArgs, ExactCommand, ProcessArgs,
    SurfaceAction, SurfaceArgs,
};
use device::BackendChoice;
use fep_experiments::demo::DemoOptions;
use fep_experiments::report::ReportOptions;
use fep_experiments::train_source::TrainSourceOptions;

/// mimalloc as the process allocator: the CPU backend allocates and frees large zeroed
/// temporaries in every op, which glibc's malloc hands back to the kernel (see
/// `docs/PERFORMANCE.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (`include/mimalloc.h`).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to return freed memory to the kernel (purge delay -1 instead of
/// 10 ms). The CPU backend frees and reallocates the same large buffers every training step
/// (gradients and Adam moments of a 32 MB weight in `mnist-paper`); purging them made every
/// step pay page faults and the zeroing of fresh pages (measured in `docs/PERFORMANCE.md`).
/// The resident size stays at the run's peak, as with PyTorch's caching allocator.
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: `mi_option_set` takes any option id and value; it is called once, before any
    // thread other than the main one exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

/// Thermodynamics of representation learning (Gao and Chaudhari, ICML 2020) on Burn.
#[derive(Debug, Parser)]
#[command(name = "fep", version, about, long_about = None)]
struct Cli {
    /// Compute backend (must be compiled in by its cargo feature).
    #[arg(long, value_enum, global = true, default_value_t = BackendChoice::Flex)]
    backend: BackendChoice,
    /// Device: `default` (the best the backend finds), an index N, or for wgpu
    /// `discrete:N`, `integrated:N`, `virtual:N`, `cpu`.
    #[arg(long, global = true, default_value = "default")]
    device: device::DeviceSpec,
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
    Exact(ExactCommand),
    /// The mission end to end on the bundled data: train-source, then the transfer with C held and its baselines.
    Demo(DemoOptions),
    /// Train a source model to equilibrium at (lambda, gamma), with checkpoints and a summary.
    TrainSource(TrainSourceOptions),
    /// Iso-classification on a deep model: lambda moves with C held, beside the naive fixed-gamma path.
    IsoClassification(ProcessArgs),
    /// Transfer source -> target with C held constant, beside fine-tuning and the paper's heuristic.
    TransferIsoClassification(ProcessArgs),
    /// Equilibrium surface of a deep model over a (lambda, gamma) grid; `--shard i/n`, then `merge`.
    Surface(SurfaceArgs),
    /// Any saved model on any data: R, D, C, -ELBO and accuracy with standard errors, fresh noise.
    Evaluate(EvaluateArgs),
    /// Write a checkpoint's model as safetensors in PyTorch names and layout, with its configuration.
    Export(model_io_cmd::ExportArgs),
    /// Write a fep checkpoint from a safetensors model (the way back from `export`).
    Import(model_io_cmd::ImportArgs),
    /// Mean +- sd over the seed-<s>/ results of `--seeds` runs (aggregate.json).
    Aggregate(AggregateArgs),
    /// docs/REPRODUCTION.md from the summaries under runs/ (figures copied beside it).
    Report(ReportOptions),
    /// Throughput of training, evaluation, Hessian-vector products and data loading; `bench reference` for the peer comparison.
    Bench(BenchArgs),
}

fn info<B: AutodiffBackend>(device: &B::Device) {
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
    println!(
        "chosen device: {}",
        fep_experiments::provenance::device_name::<B>(device)
    );
    println!(
        "threads available: {}",
        fep_experiments::provenance::threads()
    );
}

fn exact_command<B: AutodiffBackend>(device: &B::Device, command: &ExactCommand) -> Result<()> {
    let (common, default_dir) = match command {
        ExactCommand::Solve(a) => (&a.common, "exact-solve"),
        ExactCommand::IsoClassification(a) => (&a.common, "exact-iso-classification"),
        ExactCommand::Surface(a) => (&a.common, "exact-surface"),
    };
    let config = exact::load_config(&common.config)?;
    let dir = exact::result_dir(
        common.out.as_deref(),
        common.json,
        common.force,
        default_dir,
    )?;
    match command {
        ExactCommand::Solve(a) => {
            let m = Multipliers::new(a.lambda, a.gamma);
            let s = exact::solve::<B>(device, &config, m, dir.as_deref())?;
            if common.json {
                print_json(&s)?;
            } else {
                print::exact_solve(&s);
            }
        }
        ExactCommand::IsoClassification(a) => {
            let start = Multipliers::new(a.lambda_start, a.gamma_start);
            let s = exact::iso_classification::<B>(
                device,
                &config,
                start,
                a.lambda_end,
                a.integrator,
                dir.as_deref(),
            )?;
            if common.json {
                print_json(&s)?;
            } else {
                print::exact_iso(&s);
            }
        }
        ExactCommand::Surface(a) => {
            let grid = fep_thermo::GridSpec {
                lambdas: exact::parse_grid(&a.lambdas, "lambdas")?,
                gammas: exact::parse_grid(&a.gammas, "gammas")?,
            };
            let s = exact::surface::<B>(
                device,
                &config,
                &grid,
                a.iso_gamma,
                a.check_settings(),
                dir.as_deref(),
            )?;
            if common.json {
                print_json(&s)?;
            } else {
                print::surface_checks("closed form", &s.checks.closed_form);
                print::surface_checks("trained model", &s.checks.trained);
            }
        }
    }
    if let (Some(dir), false) = (dir, common.json) {
        println!("wrote {}", dir.display());
    }
    Ok(())
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

fn report_command(options: &ReportOptions) -> Result<()> {
    let path = report::report(options).context("writing the report")?;
    println!("wrote {} (figures beside it)", path.display());
    Ok(())
}

fn surface_command<B: AutodiffBackend>(device: &B::Device, a: &SurfaceArgs) -> Result<()> {
    let options = &a.options;
    let cfg = surface::SurfaceConfig::load(&options.config)?;
    let device_name = fep_experiments::provenance::device_name::<B>(device);
    if let Some(SurfaceAction::Merge) = a.action {
        return merged(&cfg, &options.out, device_name);
    }
    let file = surface::run_shard::<B>(device, &cfg, options)?;
    println!("wrote {file}", file = file.display());
    if options.shard.count == 1 {
        merged(&cfg, &options.out, device_name)
    } else {
        println!(
            "shard {}/{} done; when all shards are, run `fep surface merge --config {} --out {}`",
            options.shard.index + 1,
            options.shard.count,
            options.config.display(),
            options.out.display()
        );
        Ok(())
    }
}

fn merged(cfg: &surface::SurfaceConfig, out: &std::path::Path, device: String) -> Result<()> {
    let outcome = surface::merge(cfg, out, device)?;
    print::surface_checks("deep model (training data)", &outcome.summary.checks);
    print::files(&outcome.files);
    Ok(())
}

/// The seeds of `--seeds`, starting at the config's seed.
fn seeds_of(
    a: &ProcessArgs,
    default_out: &str,
    default_config: &str,
) -> Result<Option<fep_experiments::seeds::SeedsOptions>> {
    if a.seeds.is_none() {
        return Ok(None);
    }
    let first = a.options.load_config(default_config)?.process.seed;
    Ok(a.seeds_options(default_out, first))
}

/// `fep demo`: the source model, then the transfer with its baselines, printed.
fn demo_command<B: AutodiffBackend>(device: &B::Device, options: &DemoOptions) -> Result<()> {
    let clock = std::time::Instant::now();
    println!(
        "== 1/2 train the source model (digits 0-4) -> {}",
        options.out.join("train-source").display()
    );
    let (_, transfer) = demo::demo::<B>(device, options, |source| {
        print::train_source(&source.summary);
        print::files(&source.files);
        println!(
            "\n== 2/2 transfer to digits 5-9 with C held, beside the baselines -> {}",
            options.out.join("transfer").display()
        );
    })?;
    print::transfer(&transfer.summary);
    println!();
    print::files(&transfer.files);
    println!(
        "\ndemo finished in {:.1} min",
        clock.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// Either process experiment: once, or over `--seeds` with the aggregate printed.
fn process_command<B: AutodiffBackend>(
    device: &B::Device,
    a: &ProcessArgs,
    experiment: SeededExperiment,
) -> Result<()> {
    let (out, config) = match experiment {
        SeededExperiment::IsoClassification => (
            process::ISO_CLASSIFICATION_OUT,
            process::ISO_CLASSIFICATION_CONFIG,
        ),
        SeededExperiment::Transfer => (process::TRANSFER_OUT, process::TRANSFER_CONFIG),
    };
    if let Some(seeds) = seeds_of(a, out, config)? {
        let file = run_seeds::<B>(device, experiment, &seeds)?;
        match experiment {
            SeededExperiment::IsoClassification => print::iso_aggregate(&read_json(&file)?),
            SeededExperiment::Transfer => print::transfer_aggregate(&read_json(&file)?),
        }
        print::files(&[file]);
        return Ok(());
    }
    let files = match experiment {
        SeededExperiment::IsoClassification => {
            let outcome = process::iso_classification::<B>(device, &a.options)?;
            print::iso_classification(&outcome.summary);
            outcome.files
        }
        SeededExperiment::Transfer => {
            let outcome = process::transfer::<B>(device, &a.options)?;
            print::transfer(&outcome.summary);
            outcome.files
        }
    };
    println!();
    print::files(&files);
    Ok(())
}

/// Every command that computes, on backend B.
fn run_on<B: AutodiffBackend>(device: &B::Device, command: &Command) -> Result<()> {
    match command {
        Command::Info => info::<B>(device),
        Command::Exact(cmd) => exact_command::<B>(device, cmd)?,
        Command::Demo(options) => demo_command::<B>(device, options)?,
        Command::TrainSource(options) => {
            let outcome = train_source::train_source::<B>(device, options)?;
            print::train_source(&outcome.summary);
            print::files(&outcome.files);
        }
        Command::IsoClassification(a) => {
            process_command::<B>(device, a, SeededExperiment::IsoClassification)?
        }
        Command::TransferIsoClassification(a) => {
            process_command::<B>(device, a, SeededExperiment::Transfer)?
        }
        Command::Aggregate(a) => {
            let kind = match a.kind {
                Some(kind) => kind,
                None => match fep_experiments::seeds::seeded_experiment_in(&a.out)? {
                    SeededExperiment::Transfer => AggregateKind::Transfer,
                    SeededExperiment::IsoClassification => AggregateKind::IsoClassification,
                },
            };
            match kind {
                AggregateKind::Transfer => print::transfer_aggregate(&aggregate_transfer(&a.out)?),
                AggregateKind::IsoClassification => print::iso_aggregate(&aggregate_iso(&a.out)?),
            }
        }
        Command::Surface(a) => surface_command::<B>(device, a)?,
        Command::Evaluate(a) => {
            let s = fep_experiments::evaluate::evaluate::<B>(device, &a.options)?;
            if a.json {
                print_json(&s)?;
            } else {
                print::evaluation(&s);
            }
        }
        Command::Bench(a) => match &a.what {
            Some(BenchWhat::Reference(r)) => {
                print::bench_reference(&bench::reference::<B>(device, r)?)
            }
            None => {
                print::bench_header();
                let r = bench::bench::<B>(device, &a.options, print::bench_row)?;
                print::bench_footer(&r);
                println!("wrote {}", a.options.out.join("bench.json").display());
            }
        },
        Command::Data(cmd) => data_cmd::run(cmd)?,
        Command::Report(a) => report_command(a)?,
        Command::Export(a) => model_io_cmd::export::<B>(device, a)?,
        Command::Import(a) => model_io_cmd::import::<B>(device, a)?,
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Data(cmd) => data_cmd::run(cmd),
        Command::Report(a) => report_command(a),
        command => {
            if matches!(command, Command::Info) {
                print_adapters(cli.backend);
            }
            on_backend(cli.backend, || {
                dispatch_autodiff!(cli.backend, cli.device, run_on, command)
            })
        }
    }
}

/// The adapters the backend sees (wgpu), printed before anything asks for one.
fn print_adapters(backend: BackendChoice) {
    #[cfg(feature = "wgpu")]
    if backend == BackendChoice::Wgpu {
        let adapters = wgpu_adapters::adapters();
        println!(
            "wgpu adapters ({:?}): {}",
            wgpu_adapters::graphics_api(),
            if adapters.is_empty() { "none" } else { "" }
        );
        for (i, a) in adapters.iter().enumerate() {
            println!("  {i}: {a}");
        }
    }
    let _ = backend;
}

/// Runs `f`; on a GPU backend a panic (Burn's runtimes panic, often in a worker thread,
/// when a device cannot start) becomes one error line naming the backend and the first
/// panic's message. `RUST_BACKTRACE` set keeps Rust's own report.
fn on_backend(backend: BackendChoice, f: impl FnOnce() -> Result<()>) -> Result<()> {
    if backend == BackendChoice::Flex || std::env::var_os("RUST_BACKTRACE").is_some() {
        return f();
    }
    catch_backend_panics(backend, f)
}

/// `f` with every panic (of any thread) caught: the first one's message becomes the error.
fn catch_backend_panics(backend: BackendChoice, f: impl FnOnce() -> Result<()>) -> Result<()> {
    use std::sync::{Arc, Mutex};
    let first: Arc<Mutex<Option<String>>> = Arc::default();
    let seen = first.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let mut slot = seen.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(message.replace('\n', " "));
        }
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    match result {
        Ok(r) => r,
        Err(_) => {
            let message = first
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_default();
            Err(anyhow::anyhow!(
                "backend {backend} failed: {message} (RUST_BACKTRACE=1 shows where)"
            ))
        }
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gpu_runtime_panic_in_a_worker_thread_becomes_one_error_line() {
        let err = catch_backend_panics(BackendChoice::Wgpu, || {
            let worker =
                std::thread::spawn(|| panic!("No Discrete GPU device found,\nadapters []"));
            let _ = worker.join();
            panic!("the runtime's channel is closed");
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("backend wgpu failed: No Discrete GPU device found, adapters []"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
        assert!(catch_backend_panics(BackendChoice::Wgpu, || Ok(())).is_ok());
        let err = catch_backend_panics(BackendChoice::Cuda, || anyhow::bail!("plain error"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "plain error");
    }
}
