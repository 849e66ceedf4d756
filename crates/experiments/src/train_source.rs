//! `train-source`: a model trained to equilibrium at (lambda, gamma) on the source task,
//! with per-epoch evaluation on the train / validation / test splits, atomic checkpoints,
//! exact resume, image grids, learning curves and a typed summary.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::AutodiffBackend;
use fep_data::{DataConfig, Domains, ImageDataset};
use fep_models::checkpoint;
use fep_models::train::{Metrics, ShuffledImages, TrainConfig, Trainer};
use fep_models::{FepModel, ModelConfig};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Outcome;
use crate::error::{ExperimentError, Result, ResultExt, invalid};
use crate::images::write_model_images;
use crate::io::{
    prepare_out_dir, read_jsonl, read_toml, write_csv, write_json, write_jsonl, write_toml,
};
use crate::plot::{Chart, Mark, Series, write_chart};
use crate::progress::bar;
use crate::provenance::device_name;

/// Name of the checkpoint in a result directory.
pub const CHECKPOINT: &str = "checkpoint.ckpt";

/// The config file of `train-source`.
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

/// The config `train-source` reads where none is given.
pub const DEFAULT_CONFIG: &str = "experiments/train-source.toml";
/// The result directory of `train-source` where none is given.
pub const DEFAULT_OUT: &str = "runs/train-source";

/// Where and how a `train-source` run happens (the options of `fep train-source`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct TrainSourceOptions {
    /// TOML with [data], [model], [training].
    #[cfg_attr(feature = "cli", arg(long, default_value = DEFAULT_CONFIG))]
    pub config: PathBuf,
    /// Folder with the dataset files (overrides [data] dir; default: the bundled subset).
    #[cfg_attr(feature = "cli", arg(long))]
    pub data_dir: Option<PathBuf>,
    /// Result directory.
    #[cfg_attr(feature = "cli", arg(long, default_value = DEFAULT_OUT))]
    pub out: PathBuf,
    /// Overwrite an existing result directory.
    #[cfg_attr(feature = "cli", arg(long))]
    pub force: bool,
    /// Continue from <out>/checkpoint.ckpt (to the configured or --epochs epochs).
    #[cfg_attr(feature = "cli", arg(long))]
    pub resume: bool,
    /// Override the number of epochs.
    #[cfg_attr(feature = "cli", arg(long))]
    pub epochs: Option<u64>,
    /// Override the seed.
    #[cfg_attr(feature = "cli", arg(long))]
    pub seed: Option<u64>,
    /// Deal each domain's official training and test images again with this seed
    /// (overrides `[data] resplit_seed`).
    #[cfg_attr(feature = "cli", arg(long))]
    pub resplit_seed: Option<u64>,
}

impl Default for TrainSourceOptions {
    fn default() -> Self {
        Self {
            config: PathBuf::from(DEFAULT_CONFIG),
            data_dir: None,
            out: PathBuf::from(DEFAULT_OUT),
            force: false,
            resume: false,
            epochs: None,
            seed: None,
            resplit_seed: None,
        }
    }
}

/// One row of the epoch log (`log.jsonl`, `log.csv`).
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

/// `summary.json` of a `train-source` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSourceSummary {
    /// Metrics of the final model on the test split.
    pub test: Metrics,
    /// On the training split.
    pub train: Metrics,
    /// On the held-out validation split.
    pub validation: Metrics,
    /// Multiplier of D.
    pub lambda: f64,
    /// Multiplier of C.
    pub gamma: f64,
    /// Seed of the run.
    pub seed: u64,
    /// Backend and device.
    pub device: String,
    /// The resolved config.
    pub config: TrainSourceConfig,
    /// Training time summed over resumes, seconds.
    pub wall_seconds: f64,
    /// Epochs completed.
    pub epochs: u64,
    /// Optimiser steps completed.
    pub steps: u64,
    /// Folder the data came from.
    pub data_dir: PathBuf,
    /// The checkpoint written.
    pub checkpoint: PathBuf,
    /// Units of the functionals.
    pub units: String,
}

/// Reads and validates the config of `options`, with the command-line overrides applied.
pub fn load_config(options: &TrainSourceOptions) -> Result<TrainSourceConfig> {
    let mut config: TrainSourceConfig = read_toml(&options.config)?;
    if let Some(e) = options.epochs {
        config.training.epochs = e;
    }
    if let Some(s) = options.seed {
        config.training.seed = s;
    }
    if let Some(deal) = options.resplit_seed {
        config.data.resplit_seed = Some(deal);
    }
    let here = || format!("in {}", options.config.display());
    config.model.validate().context_with(here)?;
    config.training.validate().context_with(here)?;
    Ok(config)
}

/// Trains the source model of `options` on backend B.
pub fn train_source<B: AutodiffBackend>(
    device: &B::Device,
    options: &TrainSourceOptions,
) -> Result<Outcome<TrainSourceSummary>> {
    let config = load_config(options)?;
    let domains = Domains::load(&config.data, options.data_dir.as_deref())?;
    check_shape(&config, &domains, options)?;
    let seed = config.training.seed;
    let out = &options.out;
    let ckpt_path = out.join(CHECKPOINT);
    let (mut trainer, mut rows, wall_before) = if options.resume {
        resume::<B>(&ckpt_path, &config, options, device)?
    } else {
        prepare_out_dir(out, options.force)?;
        let model = FepModel::<B>::seeded(&config.model, seed, device)?;
        (
            Trainer::new(model, config.training.clone(), device.clone())?,
            Vec::new(),
            0.0,
        )
    };
    write_toml(&out.join("config.toml"), &config)?;
    let run = Run {
        config: &config,
        domains: &domains,
        out,
        checkpoint: &ckpt_path,
        wall_before,
    };
    let wall = train_epochs(&run, &mut trainer, &mut rows, device)?;
    let Some(last) = rows.last().cloned() else {
        return Err(invalid(format!(
            "no epoch was trained (epochs = {})",
            config.training.epochs
        )));
    };
    write_csv(&out.join("log.csv"), &rows)?;
    let curves = write_curves(out, &rows, &config, &device_name::<B>(device))?;
    let inner = trainer.model().valid();
    let binarization = config.data.binarization(seed);
    let (recon, samples) = write_model_images(
        &inner,
        &domains.source.test,
        binarization,
        seed,
        out,
        device,
    )?;
    let summary = TrainSourceSummary {
        test: last.test,
        train: last.train,
        validation: last.validation,
        lambda: config.training.lambda,
        gamma: config.training.gamma,
        seed,
        device: device_name::<B>(device),
        config: config.clone(),
        wall_seconds: wall,
        epochs: last.epoch,
        steps: last.step,
        data_dir: domains.dir.clone(),
        checkpoint: ckpt_path.clone(),
        units: "nats per example; D is the Bernoulli/Gaussian/logistic negative log-likelihood summed over pixels".into(),
    };
    let summary_path = out.join("summary.json");
    write_json(&summary_path, &summary)?;
    if let Some(reason) = collapse(&summary.train, domains.source.classes.len()) {
        return Err(ExperimentError::Collapsed {
            checkpoint: ckpt_path,
            reason,
        });
    }
    Ok(Outcome {
        summary,
        files: vec![summary_path, ckpt_path, recon, samples, curves],
    })
}

/// Rate (nats per example) below which the encoder is taken to carry nothing about x.
pub const COLLAPSED_RATE: f64 = 0.05;

/// Why a model whose training-split metrics are `train` has a collapsed posterior, if it
/// has: R = E KL(q(z|x) || p(z)) below [`COLLAPSED_RATE`] bounds the information z holds
/// about x (hence about y), so the classifier on z cannot beat chance by much; the accuracy
/// must also sit below halfway from chance (1/k over k classes) to 1. A process from such
/// a model would hold a C0 that is the label entropy, not a learnt representation's.
pub fn collapse(train: &Metrics, classes: usize) -> Option<String> {
    let chance = 1.0 / classes.max(1) as f64;
    let rate = train.functionals.rate;
    let collapsed = rate < COLLAPSED_RATE && train.accuracy < 0.5 * (1.0 + chance);
    collapsed.then(|| {
        format!(
            "the posterior collapsed: R = {rate:.4} nats (below {COLLAPSED_RATE}) and accuracy {:.1}% on the training split (chance {:.1}% over {classes} classes), C = {:.4}; z carries next to nothing about x, and a process from this model would hold a meaningless C0. The outputs are kept for inspection; train again with another --seed, or a larger gamma",
            100.0 * train.accuracy,
            100.0 * chance,
            train.functionals.classification
        )
    })
}

/// Error unless the data's images have the shape the architecture expects.
fn check_shape(
    config: &TrainSourceConfig,
    domains: &Domains,
    options: &TrainSourceOptions,
) -> Result<()> {
    let shape = domains.source.train.shape();
    let arch = config.model.architecture;
    if shape == arch.image_shape() {
        return Ok(());
    }
    Err(invalid(format!(
        "{}: architecture {} expects images {:?} but the data in {} are {:?}",
        options.config.display(),
        arch.name(),
        arch.image_shape(),
        domains.dir.display(),
        shape
    )))
}

/// What the epochs of a run share.
struct Run<'a> {
    config: &'a TrainSourceConfig,
    domains: &'a Domains,
    out: &'a Path,
    checkpoint: &'a Path,
    /// Wall seconds of the run before this invocation (a resumed run's).
    wall_before: f64,
}

/// Trains the remaining epochs; after each, measures train, validation and test splits,
/// appends the row to the log and saves the checkpoint. Returns the run's wall seconds.
fn train_epochs<B: AutodiffBackend>(
    run: &Run,
    trainer: &mut Trainer<B>,
    rows: &mut Vec<EpochRow>,
    device: &B::Device,
) -> Result<f64> {
    let (config, source) = (run.config, &run.domains.source);
    let binarization = config.data.binarization(config.training.seed);
    let data = ShuffledImages {
        dataset: source.train.clone(),
        binarization,
        seed: config.training.seed,
    };
    let epochs = config.training.epochs;
    let steps_per_epoch = trainer.steps_per_epoch(&data) as u64;
    eprintln!(
        "training {} ({} parameters) on {} examples of classes {:?} from {} at lambda = {}, gamma = {}; {} epochs of {} steps on {}",
        config.model.architecture.name(),
        trainer.model().num_params(),
        source.train.len(),
        source.classes,
        run.domains.dir.display(),
        config.training.lambda,
        config.training.gamma,
        epochs,
        steps_per_epoch,
        device_name::<B>(device)
    );
    let clock = Instant::now();
    let progress = bar(epochs * steps_per_epoch, "train-source");
    progress.set_position(trainer.state.epoch * steps_per_epoch);
    let eval = |trainer: &Trainer<B>, ds: &ImageDataset| trainer.evaluate(ds, binarization);
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
            train: eval(trainer, &source.train)?,
            validation: eval(trainer, &source.validation)?,
            test: eval(trainer, &source.test)?,
            learning_rate: last_lr,
            wall_seconds: run.wall_before + clock.elapsed().as_secs_f64(),
        };
        progress.suspend(|| eprintln!("{}", epoch_line(&row)));
        rows.push(row);
        write_jsonl(&run.out.join("log.jsonl"), rows)?;
        checkpoint::save(
            trainer,
            run.checkpoint,
            json!({"wall_seconds": run.wall_before + clock.elapsed().as_secs_f64(),
                   "data_dir": run.domains.dir, "source_classes": source.classes,
                   "data": config.data}),
        )?;
    }
    progress.finish_and_clear();
    Ok(run.wall_before + clock.elapsed().as_secs_f64())
}

/// An epoch's test measurement in one progress line.
fn epoch_line(row: &EpochRow) -> String {
    let f = &row.test.functionals;
    format!(
        "epoch {:>3}  test R {:7.3}  D {:8.3}  C {:6.4}  acc {:6.2}%  -ELBO {:8.3}",
        row.epoch,
        f.rate,
        f.distortion,
        f.classification,
        100.0 * row.test.accuracy,
        row.test.neg_elbo
    )
}

type Resumed<B> = (Trainer<B>, Vec<EpochRow>, f64);

fn resume<B: AutodiffBackend>(
    ckpt_path: &Path,
    config: &TrainSourceConfig,
    options: &TrainSourceOptions,
    device: &B::Device,
) -> Result<Resumed<B>> {
    if !ckpt_path.is_file() {
        return Err(invalid(format!(
            "--resume: no checkpoint at {} (run without --resume first)",
            ckpt_path.display()
        )));
    }
    let header = checkpoint::read_header(ckpt_path)?;
    if header.model != config.model {
        return Err(invalid(format!(
            "--resume: the checkpoint {} holds a different model ({:?}) than {} ({:?})",
            ckpt_path.display(),
            header.model,
            options.config.display(),
            config.model
        )));
    }
    let wall = header
        .extra
        .get("wall_seconds")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0);
    let trainer = checkpoint::load::<B>(ckpt_path, Some(config.training.clone()), device)?;
    let log = options.out.join("log.jsonl");
    let rows = if log.exists() {
        read_jsonl::<EpochRow>(&log)?
            .into_iter()
            .filter(|r| r.epoch <= trainer.state.epoch)
            .collect()
    } else {
        Vec::new()
    };
    eprintln!(
        "resuming {} at epoch {} (step {})",
        ckpt_path.display(),
        trainer.state.epoch,
        trainer.state.step
    );
    Ok((trainer, rows, wall))
}

fn write_curves(
    out: &Path,
    rows: &[EpochRow],
    config: &TrainSourceConfig,
    device: &str,
) -> Result<PathBuf> {
    type Get = fn(&Metrics) -> f64;
    let pts = |f: Get, test: bool| -> Vec<(f64, f64)> {
        rows.iter()
            .map(|r| (r.epoch as f64, f(if test { &r.test } else { &r.train })))
            .collect()
    };
    let mut series = Vec::new();
    let curves: [(&str, Get); 3] = [
        ("R", |m| m.functionals.rate),
        ("D / 10", |m| m.functionals.distortion / 10.0),
        ("10 C", |m| 10.0 * m.functionals.classification),
    ];
    for (i, (name, f)) in curves.into_iter().enumerate() {
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
    let stem = out.join("curves");
    write_chart(
        &stem,
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
    )?;
    Ok(stem.with_extension("png"))
}

#[cfg(test)]
mod tests {
    use fep_thermo::Functionals;

    use super::*;

    fn metrics(rate: f64, accuracy: f64) -> Metrics {
        Metrics {
            functionals: Functionals {
                rate,
                distortion: 180.0,
                classification: 1.6,
            },
            accuracy,
            neg_elbo: rate + 180.0,
            examples: 20_596,
        }
    }

    /// The collapsed source met in practice (full MNIST, dealing 2, digits 0-4: R -> 0 and
    /// 22.6% accuracy from the first epoch) is caught; a healthy source, a barely trained
    /// one that still encodes x, and an accurate one with a small rate are not.
    #[test]
    fn a_collapsed_posterior_is_named_and_a_working_one_is_not() {
        let reason = collapse(&metrics(0.002, 0.226), 5).expect("collapsed");
        assert!(
            reason.contains("R = 0.0020") && reason.contains("22.6%") && reason.contains("20.0%"),
            "{reason}"
        );
        assert!(collapse(&metrics(9.2, 0.978), 5).is_none(), "healthy");
        assert!(collapse(&metrics(1.3, 0.52), 2).is_none(), "encodes x");
        assert!(collapse(&metrics(0.04, 0.9), 5).is_none(), "accurate");
        assert!(
            collapse(&metrics(0.01, 0.74), 2).is_some(),
            "below 75% on 2"
        );
        assert!(collapse(&metrics(0.01, 0.76), 2).is_none());
    }
}
