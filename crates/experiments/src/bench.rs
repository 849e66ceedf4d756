//! Throughput of training steps, evaluation, Hessian-vector products and data loading on
//! the chosen device, with warm-up, repetitions, medians and spread; and the reference
//! model of the peer comparison (`benchmarks/peers/`) alone, for the side-by-side driver.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::AutodiffBackend;
use fep_data::{Binarization, ImageBatch, ImageDataset, Mnist, Split};
use fep_models::system::{DeepSystem, EquilibrationSettings};
use fep_models::train::{TrainConfig, Trainer, evaluate};
use fep_models::{Architecture, ClassifierKind, DecoderKind, FepModel, ModelConfig, PriorKind};
use fep_thermo::sensitivity::{HvpMethod, hessian_vector_product};
use fep_thermo::{Multipliers, ThermodynamicSystem};
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
use crate::io::{create_dir, prepare_out_dir, write_json};
use crate::provenance::{device_name, threads};

/// Median, minimum and maximum of repeated measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The statistics of `values` (NaN where there are none).
    pub fn of(values: Vec<f64>) -> Self {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n == 0 {
            f64::NAN
        } else if n % 2 == 1 {
            sorted[n / 2]
        } else {
            0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
        };
        Self {
            values,
            median,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// Resets the peak-resident-memory mark of this process (Linux: `5` into
/// `/proc/self/clear_refs`); whether it could.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
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

fn images_for(arch: Architecture, n: usize) -> Result<ImageDataset> {
    Ok(match arch {
        Architecture::MnistSmall | Architecture::MnistPaper => {
            Mnist::load_dir(fep_data::bundled_mnist_dir()?, Split::Train)?.take(n)
        }
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
    let model = FepModel::<B>::seeded(&model_config(arch), 1, device)?;
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
        // 0 on the command line: off, as no micro-batching.
        micro_batch: micro_batch.filter(|&n| n > 0),
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

fn write_report<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    write_json(path, value)
}

/// Settings of `bench reference`.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ReferenceOptions {
    /// Batch size.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 128))]
    pub batch: usize,
    /// Untimed steps first.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5))]
    pub warmup: usize,
    /// Timed steps per repetition.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 20))]
    pub steps: usize,
    /// Repetitions.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5))]
    pub reps: usize,
    /// Output JSON.
    #[cfg_attr(feature = "cli", arg(long))]
    pub json: Option<PathBuf>,
    /// Forward/backward in micro-batches of this size with accumulated gradients (0 or
    /// absent: off).
    #[cfg_attr(feature = "cli", arg(long, value_parser = micro_batch_size))]
    pub micro_batch: Option<usize>,
}

/// The reference model's throughput (`bench-reference.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceReport {
    /// Framework and version.
    pub framework: String,
    /// Backend and device.
    pub backend: String,
    /// Threads available.
    pub threads: usize,
    /// Batch size.
    pub batch: usize,
    /// Micro-batch size, if any.
    pub micro_batch: Option<usize>,
    /// Timed steps per repetition.
    pub steps_per_rep: usize,
    /// Steps per second of each repetition.
    pub steps_per_second: Vec<f64>,
    /// Their median.
    pub median_steps_per_second: f64,
    /// Images per second at the median.
    pub images_per_second_median: f64,
    /// Parameters of the model.
    pub num_params: usize,
    /// Code version.
    pub git_commit: String,
    /// Slowest and fastest repetitions (steps per second).
    pub range: [f64; 2],
}

/// Times the reference model of `benchmarks/peers` (mnist-small layers, Bernoulli decoder,
/// linear classifier, static binarisation) on backend B.
pub fn reference<B: AutodiffBackend>(
    device: &B::Device,
    options: &ReferenceOptions,
) -> Result<ReferenceReport> {
    let arch = Architecture::MnistSmall;
    let mut t = trainer::<B>(arch, options.batch, 1, options.micro_batch, device)?;
    let data = images_for(arch, options.batch)?;
    let idx: Vec<usize> = (0..options.batch).collect();
    let batch = data.batch::<B>(&idx, Binarization::Static, 0, device)?;
    let stat = time_training(&mut t, &batch, options.warmup, options.steps, options.reps)?;
    let report = ReferenceReport {
        framework: "fep (burn 0.21)".into(),
        backend: device_name::<B>(device),
        threads: threads(),
        batch: options.batch,
        micro_batch: options.micro_batch.filter(|&n| n > 0),
        steps_per_rep: options.steps,
        median_steps_per_second: stat.median,
        images_per_second_median: stat.median * options.batch as f64,
        num_params: t.model().num_params(),
        git_commit: git_commit(),
        range: [stat.min, stat.max],
        steps_per_second: stat.values,
    };
    if let Some(path) = &options.json {
        write_report(path, &report)?;
    }
    Ok(report)
}

/// Settings of the benchmark suite.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct BenchOptions {
    /// Architectures of the suite (mnist-small, mnist-paper, cifar-resnet).
    #[cfg_attr(feature = "cli", arg(long = "arch", num_args = 1.., value_parser = architecture, default_values = ["mnist-small", "mnist-paper", "cifar-resnet"]))]
    pub architectures: Vec<Architecture>,
    /// Batch sizes of the suite.
    #[cfg_attr(feature = "cli", arg(long = "batch", num_args = 1.., default_values_t = vec![64usize, 128]))]
    pub batches: Vec<usize>,
    /// Latent samples per example; several values make several configurations (the
    /// authors use 8).
    #[cfg_attr(feature = "cli", arg(long, num_args = 1.., default_values_t = vec![1usize]))]
    pub num_z: Vec<usize>,
    /// Untimed steps before each measurement.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1))]
    pub warmup: usize,
    /// Timed steps per repetition.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 3))]
    pub steps: usize,
    /// Repetitions (median and spread are over these).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 3))]
    pub reps: usize,
    /// Forward/backward in micro-batches of this size with accumulated gradients (0 or
    /// absent: off).
    #[cfg_attr(feature = "cli", arg(long, value_parser = micro_batch_size))]
    pub micro_batch: Option<usize>,
    /// Result folder: bench.json goes there.
    #[cfg_attr(feature = "cli", arg(long, default_value = "runs/bench"))]
    pub out: PathBuf,
    /// Overwrite the files of a non-empty result folder.
    #[cfg_attr(feature = "cli", arg(long))]
    pub force: bool,
}

/// An architecture by its kebab-case name (the command line's `--arch`).
pub fn architecture(name: &str) -> std::result::Result<Architecture, String> {
    serde_json::from_value(serde_json::Value::String(name.into()))
        .map_err(|_| format!("`{name}`: expected mnist-small, mnist-paper or cifar-resnet"))
}

/// A micro-batch size (the command line's `--micro-batch`; 0 switches it off).
pub fn micro_batch_size(text: &str) -> std::result::Result<usize, String> {
    text.parse::<usize>()
        .map_err(|_| format!("`{text}`: expected a number of examples (0: off)"))
}

/// One (architecture, batch, num_z) of the suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelBench {
    /// Architecture name.
    pub architecture: String,
    /// Batch size.
    pub batch: usize,
    /// Latent samples per example.
    pub num_z: usize,
    /// Micro-batch size, if any.
    pub micro_batch: Option<usize>,
    /// Training steps per second.
    pub train_steps_per_second: Stat,
    /// Training images per second at the median.
    pub train_images_per_second_median: f64,
    /// Evaluation images per second (forward only).
    pub eval_images_per_second: Stat,
    /// Time of one finite-difference Hessian-vector product over one gradient.
    pub hvp_over_gradient: Stat,
    /// Time of one gradient, seconds.
    pub gradient_seconds: Stat,
    /// Peak resident memory of the process while this configuration ran, MiB (Linux: the
    /// high-water mark is reset before it; host memory, so on a GPU backend it does not
    /// count device memory). `None` where the system does not report it.
    #[serde(default)]
    pub peak_rss_mib: Option<f64>,
}

/// Library versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    /// This crate.
    pub fep: String,
    /// Burn.
    pub burn: String,
}

/// The suite's report (`bench.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Backend and device.
    pub device: String,
    /// Threads available.
    pub threads: usize,
    /// Versions.
    pub versions: Versions,
    /// Code version.
    pub git_commit: String,
    /// Untimed steps before each measurement.
    pub warmup_steps: usize,
    /// Timed steps per repetition.
    pub steps_per_rep: usize,
    /// Repetitions.
    pub reps: usize,
    /// Per model and batch.
    pub models: Vec<ModelBench>,
    /// Batches of the bundled MNIST subset with dynamic binarisation, to the device.
    pub data_loading_images_per_second: Stat,
    /// Peak resident memory over the whole run, MiB.
    pub peak_rss_mib: Option<f64>,
}

fn bench_model<B: AutodiffBackend>(
    device: &B::Device,
    options: &BenchOptions,
    arch: Architecture,
    batch: usize,
    num_z: usize,
) -> Result<ModelBench> {
    let memory_tracked = reset_peak_rss();
    let mut t = trainer::<B>(arch, batch, num_z, options.micro_batch, device)?;
    let data = images_for(arch, batch)?;
    let idx: Vec<usize> = (0..batch).collect();
    let bin = binarization(arch);
    let b = data.batch::<B>(&idx, bin, 0, device)?;
    let train = time_training(&mut t, &b, options.warmup, options.steps, options.reps)?;
    // Evaluation: forward only, no gradient tracking.
    let inner = t.model().valid();
    let mut eval_rates = Vec::new();
    for rep in 0..=options.reps {
        let clock = Instant::now();
        for _ in 0..options.steps {
            evaluate(&inner, &data, bin, num_z, batch, 1, device)?;
        }
        if rep > 0 {
            eval_rates.push((options.steps * batch) as f64 / clock.elapsed().as_secs_f64());
        }
    }
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
    let (mut grad_times, mut hvp_times) = (Vec::new(), Vec::new());
    for rep in 0..=options.reps {
        let clock = Instant::now();
        system.gradient(m.lagrangian_weights())?;
        let g = clock.elapsed().as_secs_f64();
        let clock = Instant::now();
        let method = HvpMethod::FiniteDifference {
            relative_step: 1e-3,
        };
        hessian_vector_product(&mut system, m, &v, method)?;
        let h = clock.elapsed().as_secs_f64();
        if rep > 0 {
            grad_times.push(g);
            hvp_times.push(h);
        }
    }
    let ratio = hvp_times.iter().zip(&grad_times).map(|(h, g)| h / g);
    Ok(ModelBench {
        architecture: arch.name().to_string(),
        batch,
        num_z,
        micro_batch: options.micro_batch.filter(|&n| n > 0),
        train_images_per_second_median: train.median * batch as f64,
        train_steps_per_second: train,
        eval_images_per_second: Stat::of(eval_rates),
        hvp_over_gradient: Stat::of(ratio.collect()),
        gradient_seconds: Stat::of(grad_times),
        peak_rss_mib: memory_tracked.then(peak_rss_mib).flatten(),
    })
}

/// Runs the suite on backend B, calling `on_model` after each (architecture, batch), and
/// writes the report.
pub fn bench<B: AutodiffBackend>(
    device: &B::Device,
    options: &BenchOptions,
    mut on_model: impl FnMut(&ModelBench),
) -> Result<BenchReport> {
    if options.num_z.is_empty() || options.batches.is_empty() || options.architectures.is_empty() {
        return Err(ExperimentError::Invalid(
            "bench: give at least one architecture, batch size and num_z".into(),
        ));
    }
    let out = prepare_out_dir(&options.out, options.force)?;
    let mut models = Vec::new();
    for &arch in &options.architectures {
        for &batch in &options.batches {
            for &num_z in &options.num_z {
                let row = bench_model::<B>(device, options, arch, batch, num_z)?;
                on_model(&row);
                models.push(row);
            }
        }
    }
    let mnist = Mnist::load_dir(fep_data::bundled_mnist_dir()?, Split::Train)?;
    let indices: Vec<usize> = (0..mnist.len()).collect();
    let mut load_rates = Vec::new();
    for rep in 0..=options.reps {
        let clock = Instant::now();
        let mut n = 0;
        for (k, chunk) in indices.chunks(128).enumerate() {
            let b = mnist.batch::<B>(chunk, Binarization::Dynamic { seed: 1 }, k as u64, device)?;
            n += b.indices.len();
        }
        if rep > 0 {
            load_rates.push(n as f64 / clock.elapsed().as_secs_f64());
        }
    }
    let report = BenchReport {
        device: device_name::<B>(device),
        threads: threads(),
        versions: Versions {
            fep: env!("CARGO_PKG_VERSION").into(),
            burn: "0.21.0".into(),
        },
        git_commit: git_commit(),
        warmup_steps: options.warmup,
        steps_per_rep: options.steps,
        reps: options.reps,
        models,
        data_loading_images_per_second: Stat::of(load_rates),
        peak_rss_mib: peak_rss_mib(),
    };
    write_report(&out.join("bench.json"), &report)?;
    Ok(report)
}
