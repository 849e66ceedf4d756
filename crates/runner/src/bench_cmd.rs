//! `fep bench`: throughput of training steps, evaluation, Hessian-vector products and data
//! loading on the chosen device, with warm-up, repetitions, medians and spread.
//! `fep bench reference` times the reference model of the peer comparison
//! (`benchmarks/peers/`) alone, for the side-by-side driver.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, Subcommand, ValueEnum};
use fep_data::{Binarization, ImageBatch, ImageDataset, Mnist, Split};
use fep_models::system::{DeepSystem, EquilibrationSettings};
use fep_models::train::{TrainConfig, Trainer, evaluate};
use fep_models::{Architecture, ClassifierKind, DecoderKind, FepModel, ModelConfig, PriorKind};
use fep_thermo::sensitivity::{HvpMethod, hessian_vector_product};
use fep_thermo::{Multipliers, ThermodynamicSystem};
use serde::Serialize;
use serde_json::json;

use crate::backend::device_name;
use crate::output::write_json;

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
    /// Latent samples per example.
    #[arg(long, default_value_t = 1)]
    pub num_z: usize,
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
    /// Where to write bench.json.
    #[arg(long, default_value = "runs/bench/bench.json")]
    pub json: PathBuf,
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

/// Median, minimum and maximum of repeated rates.
#[derive(Debug, Clone, Serialize)]
pub struct Stat {
    /// Per-repetition values.
    pub values: Vec<f64>,
    /// Median.
    pub median: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

impl Stat {
    fn of(mut values: Vec<f64>) -> Self {
        let raw = values.clone();
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n == 0 {
            f64::NAN
        } else if n % 2 == 1 {
            values[n / 2]
        } else {
            0.5 * (values[n / 2 - 1] + values[n / 2])
        };
        Self {
            values: raw,
            median,
            min: values.first().copied().unwrap_or(f64::NAN),
            max: values.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn images_for(arch: Architecture, n: usize) -> Result<ImageDataset> {
    let mnist = || {
        Mnist::load_dir(fep_data::bundled_mnist_dir()?, Split::Train).map_err(anyhow::Error::from)
    };
    Ok(match arch {
        Architecture::MnistSmall | Architecture::MnistPaper => mnist()?.take(n),
        Architecture::CifarResnet => {
            // The fixture has 15 training images: tile them to the batch size.
            let base = fep_data::Cifar10::load_dir(fep_data::bundled_cifar_dir()?, Split::Train)?;
            let idx: Vec<usize> = (0..n).map(|i| i % base.len()).collect();
            base.select(&idx)?
        }
    })
}

fn model_config(arch: Architecture) -> ModelConfig {
    let decoder = match arch {
        Architecture::CifarResnet => DecoderKind::DiscretizedLogistic,
        _ => DecoderKind::Bernoulli,
    };
    ModelConfig {
        decoder,
        prior: PriorKind::StandardNormal,
        classifier: ClassifierKind::Linear,
        ..ModelConfig::new(arch)
    }
}

fn trainer<B: AutodiffBackend>(
    arch: Architecture,
    batch: usize,
    num_z: usize,
    micro_batch: Option<usize>,
    device: &B::Device,
) -> Result<Trainer<B>> {
    B::seed(device, 1);
    let model = FepModel::<B>::new(&model_config(arch), device)?;
    let cfg = TrainConfig {
        lambda: 2.0,
        gamma: 2.0,
        epochs: 1,
        batch_size: batch,
        learning_rate: 1e-3,
        schedule: Default::default(),
        grad_clip_norm: None,
        num_z,
        seed: 1,
        eval_batch_size: batch,
        micro_batch,
    };
    Ok(Trainer::new(model, cfg, device.clone())?)
}

fn binarization(arch: Architecture) -> Binarization {
    match arch {
        Architecture::CifarResnet => Binarization::None,
        _ => Binarization::Dynamic { seed: 1 },
    }
}

/// Steps per second of forward + backward + Adam, per repetition.
fn time_training<B: AutodiffBackend>(
    trainer: &mut Trainer<B>,
    batch: &ImageBatch<B>,
    warmup: usize,
    steps: usize,
    reps: usize,
) -> Result<Stat> {
    for _ in 0..warmup {
        trainer.step(batch.clone(), 2.0, 2.0, 1e-3)?;
    }
    let mut rates = Vec::new();
    for _ in 0..reps {
        let clock = Instant::now();
        for _ in 0..steps {
            trainer.step(batch.clone(), 2.0, 2.0, 1e-3)?;
        }
        rates.push(steps as f64 / clock.elapsed().as_secs_f64());
    }
    Ok(Stat::of(rates))
}

fn reference<B: AutodiffBackend>(device: &B::Device, args: &ReferenceArgs) -> Result<()> {
    let arch = Architecture::MnistSmall;
    let micro = (args.micro_batch > 0).then_some(args.micro_batch);
    let mut t = trainer::<B>(arch, args.batch, 1, micro, device)?;
    let data = images_for(arch, args.batch)?;
    let idx: Vec<usize> = (0..args.batch).collect();
    let batch = data.batch::<B>(&idx, Binarization::Static, 0, device)?;
    let stat = time_training(&mut t, &batch, args.warmup, args.steps, args.reps)?;
    let value = json!({
        "framework": "fep (burn 0.21)",
        "backend": device_name::<B>(device),
        "threads": threads(),
        "batch": args.batch,
        "micro_batch": micro,
        "steps_per_rep": args.steps,
        "steps_per_second": stat.values,
        "median_steps_per_second": stat.median,
        "images_per_second_median": stat.median * args.batch as f64,
        "num_params": t.model().num_params(),
        "git_commit": git_commit(),
    });
    if let Some(path) = &args.json {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        write_json(path, &value)?;
    }
    println!(
        "reference model, batch {} (micro-batches {:?}): {:.2} steps/s median ({:.2}-{:.2}), {:.0} images/s, {} threads, {}",
        args.batch,
        micro,
        stat.median,
        stat.min,
        stat.max,
        stat.median * args.batch as f64,
        threads(),
        device_name::<B>(device)
    );
    Ok(())
}

/// `fep bench` on backend B.
pub fn bench<B: AutodiffBackend>(device: &B::Device, args: &BenchArgs) -> Result<()> {
    if let Some(BenchWhat::Reference(r)) = &args.what {
        return reference::<B>(device, r);
    }
    let mut rows = Vec::new();
    println!(
        "{:<14}{:>7}{:>16}{:>14}{:>16}{:>12}",
        "model", "batch", "train steps/s", "images/s", "eval images/s", "HVP/grad"
    );
    for arch in args.arch.iter().map(|a| a.architecture()) {
        for &batch in &args.batch {
            let micro = (args.micro_batch > 0).then_some(args.micro_batch);
            let mut t = trainer::<B>(arch, batch, args.num_z, micro, device)?;
            let data = images_for(arch, batch)?;
            let idx: Vec<usize> = (0..batch).collect();
            let bin = binarization(arch);
            let b = data.batch::<B>(&idx, bin, 0, device)?;
            let train = time_training(&mut t, &b, args.warmup, args.steps, args.reps)?;
            // Evaluation: forward only, no gradient tracking.
            let inner = t.model().valid();
            let mut eval_rates = Vec::new();
            for rep in 0..=args.reps {
                let clock = Instant::now();
                for _ in 0..args.steps {
                    evaluate(&inner, &data, bin, args.num_z, batch, 1, device)?;
                }
                if rep > 0 {
                    eval_rates.push((args.steps * batch) as f64 / clock.elapsed().as_secs_f64());
                }
            }
            let eval = Stat::of(eval_rates);
            // One Hessian-vector product against one gradient on the same batch.
            let data = Arc::new(data);
            let mut system = DeepSystem::new(
                t,
                data.clone(),
                data.clone(),
                &data,
                &data,
                EquilibrationSettings {
                    learning_rate: 1e-3,
                    binarization: bin,
                },
            )?;
            let m = Multipliers::new(2.0, 2.0);
            let v: Vec<f64> = system.params()?.iter().map(|x| x.signum()).collect();
            let mut grad_times = Vec::new();
            let mut hvp_times = Vec::new();
            for rep in 0..=args.reps {
                let clock = Instant::now();
                system.gradient(m.lagrangian_weights())?;
                let g = clock.elapsed().as_secs_f64();
                let clock = Instant::now();
                hessian_vector_product(
                    &mut system,
                    m,
                    &v,
                    HvpMethod::FiniteDifference {
                        relative_step: 1e-3,
                    },
                )?;
                let h = clock.elapsed().as_secs_f64();
                if rep > 0 {
                    grad_times.push(g);
                    hvp_times.push(h);
                }
            }
            let ratio = Stat::of(
                hvp_times
                    .iter()
                    .zip(&grad_times)
                    .map(|(h, g)| h / g)
                    .collect(),
            );
            println!(
                "{:<14}{:>7}{:>10.2} ({:.2}-{:.2}){:>10.0}{:>16.0}{:>12.2}",
                arch.name(),
                batch,
                train.median,
                train.min,
                train.max,
                train.median * batch as f64,
                eval.median,
                ratio.median
            );
            rows.push(json!({
                "architecture": arch.name(),
                "batch": batch,
                "num_z": args.num_z,
                "micro_batch": micro,
                "train_steps_per_second": train,
                "train_images_per_second_median": train.median * batch as f64,
                "eval_images_per_second": eval,
                "hvp_over_gradient": ratio,
                "gradient_seconds": Stat::of(grad_times),
            }));
        }
    }
    // Data loading: batches of the bundled MNIST subset with dynamic binarisation.
    let mnist = Mnist::load_dir(fep_data::bundled_mnist_dir()?, Split::Train)?;
    let mut load_rates = Vec::new();
    for rep in 0..=args.reps {
        let clock = Instant::now();
        let mut n = 0;
        for (k, chunk) in (0..mnist.len()).collect::<Vec<_>>().chunks(128).enumerate() {
            let b = mnist.batch::<B>(chunk, Binarization::Dynamic { seed: 1 }, k as u64, device)?;
            n += b.indices.len();
        }
        if rep > 0 {
            load_rates.push(n as f64 / clock.elapsed().as_secs_f64());
        }
    }
    let loading = Stat::of(load_rates);
    let peak = peak_rss_mib();
    println!(
        "data loading (MNIST, dynamic binarisation, to device): {:.0} images/s median",
        loading.median
    );
    if let Some(p) = peak {
        println!("peak resident memory: {p:.0} MiB");
    }
    let value = json!({
        "device": device_name::<B>(device),
        "threads": threads(),
        "versions": {"fep": env!("CARGO_PKG_VERSION"), "burn": "0.21.0"},
        "git_commit": git_commit(),
        "warmup_steps": args.warmup,
        "steps_per_rep": args.steps,
        "reps": args.reps,
        "models": rows,
        "data_loading_images_per_second": loading,
        "peak_rss_mib": peak,
    });
    if let Some(dir) = args.json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_json(&args.json, &value)?;
    println!("wrote {}", args.json.display());
    Ok(())
}
