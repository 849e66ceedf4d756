//! `fep train-source`: train a model to equilibrium at (lambda, gamma) on the source task,
//! with per-epoch evaluation, atomic checkpoints, exact resume, images and a summary.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use fep_models::checkpoint;
use fep_models::train::{Metrics, ShuffledImages, TrainConfig, Trainer};
use fep_models::{FepModel, ModelConfig};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::backend::device_name;
use crate::deep::{DataConfig, load_domains, read_toml, write_model_images};
use crate::output::{prepare_out_dir, write_csv, write_json, write_jsonl};
use crate::plot::{Chart, Mark, Series, write_chart};
use crate::progress::bar;

/// The config file of `fep train-source`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSourceConfig {
    /// Data and the source classes.
    pub data: DataConfig,
    /// Architecture, decoder, prior.
    pub model: ModelConfig,
    /// (lambda, gamma), optimiser, epochs, seed.
    pub training: TrainConfig,
}

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

/// One row of the epoch log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRow {
    /// Epochs completed.
    pub epoch: u64,
    /// Optimiser steps completed.
    pub step: u64,
    /// Mean minibatch J over the epoch.
    pub train_batch_loss: f64,
    /// Metrics on the training split.
    pub train: Metrics,
    /// Metrics on the held-out validation split.
    pub validation: Metrics,
    /// Metrics on the test split.
    pub test: Metrics,
    /// Learning rate at the end of the epoch.
    pub learning_rate: f64,
    /// Seconds since the run started (summed over resumes).
    pub wall_seconds: f64,
}

fn metrics_json(m: &Metrics) -> serde_json::Value {
    json!({"rate": m.rate, "distortion": m.distortion, "classification": m.classification,
           "accuracy": m.accuracy, "neg_elbo": m.neg_elbo, "examples": m.examples})
}

/// Name of the checkpoint in a result directory.
pub const CHECKPOINT: &str = "checkpoint.ckpt";

fn read_log(path: &Path, up_to_epoch: u64) -> Result<Vec<EpochRow>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row: EpochRow = serde_json::from_str(line).with_context(|| {
            format!("{}: line {} is not an epoch record", path.display(), i + 1)
        })?;
        if row.epoch <= up_to_epoch {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// `fep train-source` on backend B.
pub fn train_source<B: AutodiffBackend>(device: &B::Device, args: &TrainArgs) -> Result<()> {
    let mut config: TrainSourceConfig = read_toml(&args.config)?;
    if let Some(e) = args.epochs {
        config.training.epochs = e;
    }
    if let Some(s) = args.seed {
        config.training.seed = s;
    }
    config
        .model
        .validate()
        .with_context(|| format!("in {}", args.config.display()))?;
    config
        .training
        .validate()
        .with_context(|| format!("in {}", args.config.display()))?;
    let domains = load_domains(&config.data, args.data_dir.as_deref())?;
    let source = &domains.source;
    let shape = source.train.shape();
    if shape != config.model.architecture.image_shape() {
        bail!(
            "{}: architecture {} expects images {:?} but the data in {} are {:?}",
            args.config.display(),
            config.model.architecture.name(),
            config.model.architecture.image_shape(),
            domains.dir.display(),
            shape
        );
    }
    let seed = config.training.seed;
    let binarization = config.data.binarization(seed);
    let out = &args.out;
    let ckpt_path = out.join(CHECKPOINT);
    let (mut trainer, mut rows, mut wall_before) = if args.resume {
        if !ckpt_path.is_file() {
            bail!(
                "--resume: no checkpoint at {} (run without --resume first)",
                ckpt_path.display()
            );
        }
        let header = checkpoint::read_header(&ckpt_path)?;
        if header.model != config.model {
            bail!(
                "--resume: the checkpoint {} holds a different model ({:?}) than {} ({:?})",
                ckpt_path.display(),
                header.model,
                args.config.display(),
                config.model
            );
        }
        let wall = header
            .extra
            .get("wall_seconds")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        let trainer = checkpoint::load::<B>(&ckpt_path, Some(config.training.clone()), device)?;
        let rows = read_log(&out.join("log.jsonl"), trainer.state.epoch)?;
        eprintln!(
            "resuming {} at epoch {} (step {})",
            ckpt_path.display(),
            trainer.state.epoch,
            trainer.state.step
        );
        (trainer, rows, wall)
    } else {
        prepare_out_dir(out, args.force)?;
        B::seed(device, seed);
        let model = FepModel::<B>::new(&config.model, device)?;
        (
            Trainer::new(model, config.training.clone(), device.clone())?,
            Vec::new(),
            0.0,
        )
    };
    let resolved = toml::to_string_pretty(&config)?;
    fep_data::atomic_write(out.join("config.toml"), resolved.as_bytes())?;

    let data = ShuffledImages {
        dataset: source.train.clone(),
        binarization,
        seed,
    };
    let epochs = config.training.epochs;
    let steps_per_epoch = trainer.steps_per_epoch(&data) as u64;
    eprintln!(
        "training {} ({} parameters) on {} examples of classes {:?} from {} at lambda = {}, gamma = {}; {} epochs of {} steps on {}",
        config.model.architecture.name(),
        trainer.model().num_params(),
        source.train.len(),
        source.classes,
        domains.dir.display(),
        config.training.lambda,
        config.training.gamma,
        epochs,
        steps_per_epoch,
        device_name::<B>(device)
    );
    let clock = Instant::now();
    let progress = bar(epochs * steps_per_epoch, "train-source");
    progress.set_position(trainer.state.epoch * steps_per_epoch);
    let eval =
        |trainer: &Trainer<B>, ds: &fep_data::ImageDataset| trainer.evaluate(ds, binarization);
    while trainer.state.epoch < epochs {
        let mut last_lr = 0.0;
        let batch_loss = trainer.train_epoch(&data, epochs, |r| {
            progress.inc(1);
            last_lr = r.learning_rate;
        })?;
        let row = EpochRow {
            epoch: trainer.state.epoch,
            step: trainer.state.step,
            train_batch_loss: batch_loss,
            train: eval(&trainer, &source.train)?,
            validation: eval(&trainer, &source.validation)?,
            test: eval(&trainer, &source.test)?,
            learning_rate: last_lr,
            wall_seconds: wall_before + clock.elapsed().as_secs_f64(),
        };
        progress.suspend(|| {
            eprintln!(
                "epoch {:>3}  test R {:7.3}  D {:8.3}  C {:6.4}  acc {:6.2}%  -ELBO {:8.3}",
                row.epoch,
                row.test.rate,
                row.test.distortion,
                row.test.classification,
                100.0 * row.test.accuracy,
                row.test.neg_elbo
            )
        });
        rows.push(row);
        write_jsonl(&out.join("log.jsonl"), &rows)?;
        checkpoint::save(
            &trainer,
            &ckpt_path,
            json!({"wall_seconds": wall_before + clock.elapsed().as_secs_f64(),
                   "data_dir": domains.dir, "source_classes": source.classes}),
        )?;
    }
    progress.finish_and_clear();
    wall_before += clock.elapsed().as_secs_f64();
    let Some(last) = rows.last().cloned() else {
        bail!("no epoch was trained (epochs = {epochs})");
    };
    write_epoch_csv(&out.join("log.csv"), &rows)?;
    write_curves(out, &rows, &config, device_name::<B>(device))?;
    let inner = trainer.model().valid();
    let (recon, samples) =
        write_model_images(&inner, &source.test, binarization, seed, out, device)?;
    let summary = json!({
        "test": metrics_json(&last.test),
        "train": metrics_json(&last.train),
        "validation": metrics_json(&last.validation),
        "lambda": config.training.lambda,
        "gamma": config.training.gamma,
        "seed": seed,
        "device": device_name::<B>(device),
        "config": config,
        "wall_seconds": wall_before,
        "epochs": last.epoch,
        "steps": last.step,
        "data_dir": domains.dir,
        "checkpoint": ckpt_path,
        "units": "nats per example; D is the Bernoulli/Gaussian/logistic negative log-likelihood summed over pixels",
    });
    write_json(&out.join("summary.json"), &summary)?;
    print_table(&last, &config);
    println!(
        "\nwall time {wall_before:.1} s on {}",
        device_name::<B>(device)
    );
    println!("wrote {}", out.join("summary.json").display());
    println!("      {}", ckpt_path.display());
    println!("      {}, {}", recon.display(), samples.display());
    println!("      {}", out.join("curves.png").display());
    Ok(())
}

fn print_table(row: &EpochRow, config: &TrainSourceConfig) {
    println!(
        "\n{} at lambda = {}, gamma = {} after {} epochs (nats per example)",
        config.model.architecture.name(),
        config.training.lambda,
        config.training.gamma,
        row.epoch
    );
    println!(
        "{:<12}{:>10}{:>11}{:>10}{:>10}{:>11}",
        "split", "R", "D", "C", "acc %", "-ELBO"
    );
    for (name, m) in [
        ("train", &row.train),
        ("validation", &row.validation),
        ("test", &row.test),
    ] {
        println!(
            "{name:<12}{:>10.3}{:>11.3}{:>10.4}{:>10.2}{:>11.3}",
            m.rate,
            m.distortion,
            m.classification,
            100.0 * m.accuracy,
            m.neg_elbo
        );
    }
}

fn write_epoch_csv(path: &Path, rows: &[EpochRow]) -> Result<()> {
    let mut header = vec![
        "epoch",
        "step",
        "train_batch_loss",
        "learning_rate",
        "wall_seconds",
    ];
    let names = [
        "rate",
        "distortion",
        "classification",
        "accuracy",
        "neg_elbo",
    ];
    let mut cols = Vec::new();
    for split in ["train", "validation", "test"] {
        for n in names {
            cols.push(format!("{split}_{n}"));
        }
    }
    header.extend(cols.iter().map(String::as_str));
    let data: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| {
            let mut v = vec![
                r.epoch as f64,
                r.step as f64,
                r.train_batch_loss,
                r.learning_rate,
                r.wall_seconds,
            ];
            for m in [&r.train, &r.validation, &r.test] {
                v.extend([
                    m.rate,
                    m.distortion,
                    m.classification,
                    m.accuracy,
                    m.neg_elbo,
                ]);
            }
            v
        })
        .collect();
    write_csv(path, &header, &data)
}

fn write_curves(
    out: &Path,
    rows: &[EpochRow],
    config: &TrainSourceConfig,
    device: String,
) -> Result<()> {
    let pts = |f: fn(&Metrics) -> f64, test: bool| -> Vec<(f64, f64)> {
        rows.iter()
            .map(|r| (r.epoch as f64, f(if test { &r.test } else { &r.train })))
            .collect()
    };
    let mut series = Vec::new();
    for (i, (name, f)) in [
        ("R", (|m: &Metrics| m.rate) as fn(&Metrics) -> f64),
        ("D / 10", |m: &Metrics| m.distortion / 10.0),
        ("10 C", |m: &Metrics| 10.0 * m.classification),
    ]
    .into_iter()
    .enumerate()
    {
        series.push(Series {
            label: format!("{name} (test)"),
            points: pts(f, true),
            mark: Mark::ThickLine,
            color: i,
        });
        series.push(Series {
            label: format!("{name} (train)"),
            points: pts(f, false),
            mark: Mark::Line,
            color: i,
        });
    }
    write_chart(
        &out.join("curves"),
        &Chart {
            title: format!(
                "train-source {} (lambda {}, gamma {}), {device}",
                config.model.architecture.name(),
                config.training.lambda,
                config.training.gamma
            ),
            x_label: "epoch".into(),
            y_label: "nats per example (scaled)".into(),
            series,
        },
    )
}
