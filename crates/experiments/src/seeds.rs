//! Several seeds of a whole experiment (source training and process), as independent
//! jobs: each seed writes `<out>/seed-<s>/` (its `train-source/` inside), any subset of
//! the seeds can run as one task of a job array (`--seed-shard i/n`), and the aggregate
//! of every finished seed (mean, standard deviation and per-seed values of each number of
//! the tables) is written to `<out>/aggregate.json` after each task and by `fep aggregate`,
//! with charts of every method's trace over the seeds (mean and a band of one standard
//! deviation, [`crate::seed_charts`]).

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use fep_thermo::Shard;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::format::{Versioned, read_summary};
use crate::io::write_json;
use crate::process::rows::{HeldConstraint, max_drift_se, outside_band};
use crate::process::{
    IsoClassificationSummary, MethodResult, ProcessOptions, TransferSummary, iso_classification,
    transfer,
};
use crate::train_source::{CHECKPOINT, TrainSourceOptions, train_source};

pub use crate::spread::Spread;

/// The numbers of one method of the transfer over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodSpread {
    /// Accuracy on the target test set.
    pub target_accuracy: Spread,
    /// Accuracy on the source test set.
    pub source_accuracy: Spread,
    /// R on the target test set.
    pub rate: Spread,
    /// D on the target test set.
    pub distortion: Spread,
    /// C on the target test set.
    pub classification: Spread,
    /// Largest drift of C on p_t, on the test splits with fresh noise.
    pub max_relative_drift: Option<Spread>,
    /// The standard error of each seed's largest drift (paired with the start on the same
    /// examples and draws where they can be paired).
    #[serde(default)]
    pub max_relative_drift_se: Option<Spread>,
    /// Adam steps spent.
    pub optimizer_steps: Option<Spread>,
}

fn spread_of<T>(items: &[T], get: impl Fn(&T) -> f64) -> Spread {
    Spread::of(items.iter().map(get).collect())
}

fn optional_spread<T>(items: &[T], get: impl Fn(&T) -> Option<f64>) -> Option<Spread> {
    items
        .iter()
        .map(get)
        .collect::<Option<Vec<f64>>>()
        .map(Spread::of)
}

impl MethodSpread {
    /// The drift cell of a table: `mean +- sd` in percent, `-` where not measured.
    pub fn drift_cell(&self) -> String {
        self.max_relative_drift
            .as_ref()
            .map_or_else(|| "-".into(), |d| d.show(100.0, 2))
    }

    /// The cell of the largest drift's standard error: its mean over seeds in percent.
    pub fn drift_se_cell(&self) -> String {
        self.max_relative_drift_se
            .as_ref()
            .map_or_else(|| "-".into(), |d| format!("{:.2}", 100.0 * d.mean))
    }

    /// The Adam-steps cell of a table (every seed spends the same budget: its mean).
    pub fn steps_cell(&self) -> String {
        self.optimizer_steps
            .as_ref()
            .map_or_else(|| "-".into(), |d| format!("{:.0}", d.mean))
    }

    fn of(results: &[&MethodResult]) -> Self {
        Self {
            target_accuracy: spread_of(results, |r| r.target_accuracy),
            source_accuracy: spread_of(results, |r| r.source_accuracy),
            rate: spread_of(results, |r| r.target.rate),
            distortion: spread_of(results, |r| r.target.distortion),
            classification: spread_of(results, |r| r.target.classification),
            max_relative_drift: optional_spread(results, |r| r.max_relative_drift),
            max_relative_drift_se: optional_spread(results, |r| r.max_relative_drift_se),
            optimizer_steps: optional_spread(results, |r| r.optimizer_steps.map(|n| n as f64)),
        }
    }
}

/// How one seed's path held C: the steps whose independent drift (test splits, fresh
/// noise) left the band by more than two of its standard errors, the worst one, and the
/// mean |drift| over the path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedBand {
    /// The seed.
    pub seed: u64,
    /// Half-width of the band, relative to C0.
    pub band: f64,
    /// Accepted points of the path, the start included.
    pub points: usize,
    /// The t (or s), drift and its standard error of every point outside the band by more
    /// than two standard errors (`|drift| > band + 2 se`).
    pub outside: Vec<(f64, f64, f64)>,
    /// The largest |drift| and where.
    pub worst: (f64, f64),
    /// Its standard error (paired with the start on the same examples and draws).
    pub worst_se: f64,
    /// Mean |drift| over the points after the start.
    pub mean_abs_drift: f64,
    /// Half-width of the band the mean drift over the path is judged against, relative to
    /// C0 (3%: the transfer's goal on average, the iso-classification's at every point).
    #[serde(default = "three_percent")]
    pub mean_band: f64,
    /// Mean signed drift over the points after the start.
    #[serde(default)]
    pub mean_drift: f64,
    /// A bound on the standard error of `mean_drift`: the mean of the points' standard
    /// errors (the points share test examples, so their errors correlate; by
    /// Cauchy-Schwarz the mean's standard error is at most the mean of theirs).
    #[serde(default)]
    pub mean_drift_se_bound: f64,
    /// The standard error of the controller's C0 on its probe, relative to C0 (the
    /// resolution of the held value).
    #[serde(default)]
    pub probe_relative_se: Option<f64>,
    /// Points the corrector accepted without meeting its tolerance.
    #[serde(default)]
    pub unconverged_steps: usize,
    /// For scale: the median over the points of the standard error of C on the test splits
    /// relative to C0 (the spread that the finite test splits put on C itself; a drift is a
    /// paired difference on the same examples, whose error is smaller).
    #[serde(default)]
    pub relative_standard_error: f64,
    /// C on the test splits over C on the controller's probe per domain (source at the
    /// start, target at the end): how far the held probe sits from unseen data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_over_probe: Option<crate::process::TestOverProbe>,
}

fn three_percent() -> f64 {
    0.03
}

/// Where an estimate lies against a band `|x| <= band`, judged by its standard error as
/// the points of a path are: outside only beyond `band + 2 se`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BandVerdict {
    /// `|x| <= band`.
    Within,
    /// `band < |x| <= band + 2 se`: beyond the band by this many standard errors (at most 2).
    WithinErrors(f64),
    /// `|x| > band + 2 se`: beyond the band by this many standard errors.
    Outside(f64),
}

impl BandVerdict {
    /// The verdict on `x` with standard error `se` against `|x| <= band`.
    pub fn of(x: f64, se: f64, band: f64) -> Self {
        let excess = x.abs() - band;
        if excess <= 0.0 {
            return Self::Within;
        }
        let z = excess / se;
        if z <= 2.0 {
            Self::WithinErrors(z)
        } else {
            Self::Outside(z)
        }
    }

    /// Words for a sentence, e.g. "within 3%" or "beyond 3% by 1.3 standard errors".
    pub fn describe(self, band: f64) -> String {
        let b = 100.0 * band;
        match self {
            Self::Within => format!("within {b:.0}%"),
            Self::WithinErrors(z) => {
                format!("beyond {b:.0}% by {z:.1} standard errors, within {b:.0}% + 2 se")
            }
            Self::Outside(z) => {
                format!("beyond {b:.0}% by {z:.1} standard errors: outside")
            }
        }
    }
}

/// The mean over seeds of each seed's mean drift over its path, with its standard error
/// from the spread between seeds (sample sd / sqrt(n): it carries everything that differs
/// between seeds, the sampling of the test split included where each seed deals its own).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanDriftOverSeeds {
    /// Seeds pooled.
    pub seeds: usize,
    /// Mean of the seeds' mean drifts.
    pub mean: f64,
    /// Sample standard deviation of the seeds' mean drifts.
    pub sd: f64,
    /// `sd / sqrt(n)`.
    pub se: f64,
    /// The band the mean is judged against.
    pub band: f64,
}

impl MeanDriftOverSeeds {
    /// Pools `bands` (none for fewer than two seeds: one seed has no spread to judge by).
    pub fn of(bands: &[SeedBand]) -> Option<Self> {
        if bands.len() < 2 {
            return None;
        }
        let spread = Spread::of(bands.iter().map(|b| b.mean_drift).collect());
        Some(Self {
            seeds: bands.len(),
            mean: spread.mean,
            sd: spread.sd,
            se: spread.sd / (bands.len() as f64).sqrt(),
            band: bands[0].mean_band,
        })
    }

    /// One sentence with the verdict.
    pub fn describe(&self) -> String {
        format!(
            "mean drift over the path, mean over {} seeds: {:+.2}% (sd {:.2}%, standard error {:.2}%): {}",
            self.seeds,
            100.0 * self.mean,
            100.0 * self.sd,
            100.0 * self.se,
            BandVerdict::of(self.mean, self.se, self.band).describe(self.band)
        )
    }
}

impl SeedBand {
    /// Where this seed's mean drift over the path lies against `mean_band`, judged by its
    /// standard error bound.
    pub fn mean_verdict(&self) -> BandVerdict {
        BandVerdict::of(self.mean_drift, self.mean_drift_se_bound, self.mean_band)
    }

    /// The band of the path `<dir>/trace.jsonl`, with what `held` says of its controller.
    fn of(seed: u64, dir: &Path, band: f64, held: &HeldConstraint) -> Result<Self> {
        let rows: Vec<crate::process::TraceRow> = crate::io::read_jsonl(&dir.join("trace.jsonl"))?;
        let drifts: Vec<(f64, f64)> = rows.iter().map(|r| (r.t, r.test.relative_drift)).collect();
        let c0 = rows.first().map_or(f64::NAN, |r| r.test.classification);
        let mut noise: Vec<f64> = rows.iter().map(|r| r.test.classification_se / c0).collect();
        noise.sort_by(f64::total_cmp);
        let relative_standard_error = noise.get(noise.len() / 2).copied().unwrap_or(f64::NAN);
        let worst = drifts.iter().copied().fold((0.0f64, 0.0f64), |w, d| {
            if d.1.abs() > w.1.abs() { d } else { w }
        });
        let after_start = drifts.len().saturating_sub(1).max(1) as f64;
        Ok(Self {
            seed,
            band,
            points: drifts.len(),
            outside: outside_band(&rows, band, 2.0)
                .into_iter()
                .map(|r| (r.t, r.test.relative_drift, r.test.relative_drift_se))
                .collect(),
            worst,
            worst_se: max_drift_se(&rows),
            mean_abs_drift: drifts.iter().skip(1).map(|d| d.1.abs()).sum::<f64>() / after_start,
            mean_band: three_percent(),
            mean_drift: drifts.iter().skip(1).map(|d| d.1).sum::<f64>() / after_start,
            mean_drift_se_bound: rows
                .iter()
                .skip(1)
                .map(|r| r.test.relative_drift_se)
                .sum::<f64>()
                / after_start,
            probe_relative_se: held.probe_relative_se,
            unconverged_steps: held.unconverged_steps,
            relative_standard_error,
            test_over_probe: held.test_over_probe,
        })
    }

    /// One sentence: held at every point, or where and by how much not, with the
    /// measurement's own noise.
    pub fn describe(&self, coordinate: &str) -> String {
        let noise = format!(
            "; for scale, the standard error of C itself on these test splits is {:.1}% of C0",
            100.0 * self.relative_standard_error
        );
        let probe = self.probe_relative_se.map_or(String::new(), |se| {
            format!("; the probe resolves C0 to {:.1}%", 100.0 * se)
        });
        let mean = format!(
            "; mean drift {:+.2}% (standard error at most {:.2}%: {}), mean |drift| {:.2}%; {} unconverged steps{probe}",
            100.0 * self.mean_drift,
            100.0 * self.mean_drift_se_bound,
            self.mean_verdict().describe(self.mean_band),
            100.0 * self.mean_abs_drift,
            self.unconverged_steps
        );
        let mean = match &self.test_over_probe {
            Some(r) => format!("{mean}; {}", r.describe()),
            None => mean,
        };
        if self.outside.is_empty() {
            format!(
                "seed {}: within {:.0}% of C0 (up to two standard errors) at all {} points (largest {:+.2} +- {:.2}% at {coordinate} = {:.3}){mean}{noise}",
                self.seed,
                100.0 * self.band,
                self.points,
                100.0 * self.worst.1,
                100.0 * self.worst_se,
                self.worst.0
            )
        } else {
            let list: Vec<String> = self
                .outside
                .iter()
                .map(|(t, d, se)| {
                    format!(
                        "{:+.1} +- {:.1}% at {coordinate} = {t:.3}",
                        100.0 * d,
                        100.0 * se
                    )
                })
                .collect();
            format!(
                "seed {}: outside {:.0}% of C0 by more than two standard errors at {} of {} points: {}{mean}{noise}",
                self.seed,
                100.0 * self.band,
                self.outside.len(),
                self.points,
                list.join(", ")
            )
        }
    }
}

/// `aggregate.json` of a transfer over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferAggregate {
    /// The seeds aggregated.
    pub seeds: Vec<u64>,
    /// C0 on the test splits with fresh noise.
    pub c0_test: Spread,
    /// Each method that ran for every seed, in table order.
    pub methods: Vec<(String, MethodSpread)>,
    /// How each seed's path held C on p_t within 5% (test splits, fresh noise).
    #[serde(default)]
    pub bands: Vec<SeedBand>,
    /// Wall time of each seed: its source training and each method.
    #[serde(default)]
    pub times: Vec<SeedTime>,
    /// Backend and device of the first seed.
    pub device: String,
}

/// Wall time of one seed of the transfer, in seconds: its source training (where its
/// `train-source/summary.json` records one) and each method, ours first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedTime {
    /// The seed.
    pub seed: u64,
    /// Source training, if this seed trained its source in `seed-<s>/train-source/`.
    pub source: Option<f64>,
    /// Each method that ran, in table order.
    pub methods: Vec<(String, f64)>,
    /// The process command (every method).
    pub process_total: f64,
    /// The machine the process ran on, where its summary records it.
    #[serde(default)]
    pub machine: Option<String>,
}

impl SeedTime {
    /// The source training's wall time recorded in `<dir>/train-source/summary.json`.
    fn source_seconds(dir: &Path) -> Option<f64> {
        crate::io::read_json::<serde_json::Value>(&dir.join("train-source").join("summary.json"))
            .ok()
            .and_then(|v| v.get("wall_seconds").and_then(serde_json::Value::as_f64))
    }

    fn transfer(seed: u64, dir: &Path, summary: &TransferSummary) -> Self {
        let methods = summary
            .methods()
            .into_iter()
            .filter_map(|(m, _)| {
                summary
                    .wall_seconds
                    .by_method
                    .get(&m)
                    .map(|w| (m.name().to_string(), *w))
            })
            .collect();
        Self {
            seed,
            source: Self::source_seconds(dir),
            methods,
            process_total: summary.wall_seconds.total,
            machine: summary.run.machine.clone(),
        }
    }

    fn iso(seed: u64, dir: &Path, summary: &IsoClassificationSummary) -> Self {
        Self {
            seed,
            source: Self::source_seconds(dir),
            methods: vec![
                (
                    "iso-classification path".to_string(),
                    summary.wall_seconds.process,
                ),
                (
                    "naive path and measurements".to_string(),
                    summary.wall_seconds.total - summary.wall_seconds.process,
                ),
            ],
            process_total: summary.wall_seconds.total,
            machine: summary.run.machine.clone(),
        }
    }

    /// The whole seed: source training (where recorded) and the process command.
    pub fn total(&self) -> f64 {
        self.source.unwrap_or(0.0) + self.process_total
    }

    /// One line, in minutes.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.source {
            parts.push(format!("source {:.1}", s / 60.0));
        }
        for (m, w) in &self.methods {
            parts.push(format!("{m} {:.1}", w / 60.0));
        }
        let machine = self
            .machine
            .as_ref()
            .map_or(String::new(), |m| format!(" on {m}"));
        format!(
            "seed {}: {:.1} minutes ({}){machine}",
            self.seed,
            self.total() / 60.0,
            parts.join(", ")
        )
    }
}

/// `aggregate.json` of an iso-classification over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsoAggregate {
    /// The seeds aggregated.
    pub seeds: Vec<u64>,
    /// C0 on the test split with fresh noise.
    pub c0_test: Spread,
    /// Largest drift of C along the iso-classification path (test split, fresh noise).
    pub max_relative_drift: Spread,
    /// The same along the naive path.
    pub naive_max_relative_drift: Spread,
    /// Relative change of R along the path.
    pub rate_relative_change: Spread,
    /// How each seed's path held C within 3% (test split, fresh noise).
    #[serde(default)]
    pub bands: Vec<SeedBand>,
    /// Wall time of each seed: its source training and the process command (the
    /// iso-classification path, then the naive one).
    #[serde(default)]
    pub times: Vec<SeedTime>,
    /// Backend and device of the first seed.
    pub device: String,
}

/// The seed folders under `out` that hold a finished summary, in seed order.
fn finished<T: Versioned>(out: &Path) -> Result<Vec<(u64, T)>> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(out)
        .map_err(|e| invalid(format!("cannot list {}: {e}", out.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(seed) = name
            .strip_prefix("seed-")
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        let summary = entry.path().join("summary.json");
        if summary.is_file() {
            found.push((seed, read_summary::<T>(&summary)?));
        }
    }
    found.sort_by_key(|(s, _)| *s);
    if found.is_empty() {
        return Err(invalid(format!(
            "no finished seed under {} (expected seed-<s>/summary.json)",
            out.display()
        )));
    }
    Ok(found)
}

/// Which experiment the finished seeds under `out` ran, read from the first seed's
/// `summary.json` (an iso-classification summary has a naive path, a transfer's none).
pub fn seeded_experiment_in(out: &Path) -> Result<SeededExperiment> {
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(out)
        .map_err(|e| invalid(format!("cannot list {}: {e}", out.display())))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("seed-"))
        .map(|e| e.path().join("summary.json"))
        .filter(|p| p.is_file())
        .collect();
    seeds.sort();
    let first = seeds.first().ok_or_else(|| {
        invalid(format!(
            "no finished seed under {} (expected seed-<s>/summary.json)",
            out.display()
        ))
    })?;
    let summary: serde_json::Value = crate::io::read_json(first)?;
    if summary.get("naive").is_some() {
        Ok(SeededExperiment::IsoClassification)
    } else if summary.get("baselines").is_some() {
        Ok(SeededExperiment::Transfer)
    } else {
        Err(invalid(format!(
            "{}: neither a transfer nor an iso-classification summary; pass --kind",
            first.display()
        )))
    }
}

/// Aggregates every finished transfer seed under `out` into `<out>/aggregate.json`.
pub fn aggregate_transfer(out: &Path) -> Result<TransferAggregate> {
    let runs: Vec<(u64, TransferSummary)> = finished(out)?;
    let summaries: Vec<&TransferSummary> = runs.iter().map(|(_, s)| s).collect();
    let mut methods = Vec::new();
    for (method, _) in summaries[0].methods() {
        let results: Option<Vec<&MethodResult>> = summaries
            .iter()
            .map(|s| {
                s.methods()
                    .into_iter()
                    .find(|(m, _)| *m == method)
                    .map(|(_, r)| r)
            })
            .collect();
        if let Some(results) = results {
            methods.push((method.name().to_string(), MethodSpread::of(&results)));
        }
    }
    let aggregate = TransferAggregate {
        seeds: runs.iter().map(|(s, _)| *s).collect(),
        c0_test: spread_of(&summaries, |s| s.held.c0_test),
        methods,
        bands: runs
            .iter()
            .map(|(seed, s)| SeedBand::of(*seed, &out.join(format!("seed-{seed}")), 0.05, &s.held))
            .collect::<Result<_>>()?,
        times: runs
            .iter()
            .map(|(seed, s)| SeedTime::transfer(*seed, &out.join(format!("seed-{seed}")), s))
            .collect(),
        device: summaries[0].run.device.clone(),
    };
    write_json(&out.join("aggregate.json"), &aggregate)?;
    crate::seed_charts::transfer_seed_charts(out, &aggregate.seeds, &aggregate.device)?;
    Ok(aggregate)
}

/// Aggregates every finished iso-classification seed under `out`.
pub fn aggregate_iso(out: &Path) -> Result<IsoAggregate> {
    let runs: Vec<(u64, IsoClassificationSummary)> = finished(out)?;
    let summaries: Vec<&IsoClassificationSummary> = runs.iter().map(|(_, s)| s).collect();
    let aggregate = IsoAggregate {
        seeds: runs.iter().map(|(s, _)| *s).collect(),
        c0_test: spread_of(&summaries, |s| s.held.c0_test),
        max_relative_drift: spread_of(&summaries, |s| s.held.max_relative_drift),
        naive_max_relative_drift: spread_of(&summaries, |s| s.naive.max_relative_drift),
        rate_relative_change: spread_of(&summaries, |s| s.rate_relative_change),
        bands: runs
            .iter()
            .map(|(seed, s)| SeedBand::of(*seed, &out.join(format!("seed-{seed}")), 0.03, &s.held))
            .collect::<Result<_>>()?,
        times: runs
            .iter()
            .map(|(seed, s)| SeedTime::iso(*seed, &out.join(format!("seed-{seed}")), s))
            .collect(),
        device: summaries[0].run.device.clone(),
    };
    write_json(&out.join("aggregate.json"), &aggregate)?;
    crate::seed_charts::iso_seed_charts(out, &aggregate.seeds, &aggregate.device)?;
    Ok(aggregate)
}

/// Which experiment runs over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeededExperiment {
    /// `transfer-iso-classification`.
    Transfer,
    /// `iso-classification`.
    IsoClassification,
}

/// Seeds of a whole experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedsOptions {
    /// The process's options (config, data, steps...; `out` is the aggregate's folder).
    pub process: ProcessOptions,
    /// The source training's config.
    pub train_config: PathBuf,
    /// The first seed (seeds are `first .. first + count`).
    pub first: u64,
    /// Number of seeds.
    pub count: usize,
    /// The part of the seeds this job runs.
    pub shard: Shard,
    /// Deal each domain's official training and test images again with each seed's own
    /// seed (`[data] resplit_seed = s`, source training and process alike), so that the
    /// sampling of the test split is part of the spread over seeds.
    pub deal_per_seed: bool,
}

impl SeedsOptions {
    /// The seeds of this job: its contiguous share of `first .. first + count`.
    pub fn my_seeds(&self) -> Vec<u64> {
        let all: Vec<u64> = (0..self.count as u64).map(|k| self.first + k).collect();
        let n = all.len();
        let (k, of) = (self.shard.index, self.shard.count.max(1));
        all[k * n / of..(k + 1) * n / of].to_vec()
    }
}

/// Runs this job's seeds one after another (source training, then the process, each in
/// `<out>/seed-<s>/`), then aggregates every finished seed under `<out>`.
pub fn run_seeds<B: AutodiffBackend>(
    device: &B::Device,
    experiment: SeededExperiment,
    options: &SeedsOptions,
) -> Result<PathBuf> {
    let out = options
        .process
        .out
        .clone()
        .ok_or_else(|| invalid("--seeds needs --out (the folder of the seeds)"))?;
    let resuming = options.process.resume;
    for seed in options.my_seeds() {
        let dir = out.join(format!("seed-{seed}"));
        let dealing = if options.deal_per_seed {
            Some(seed)
        } else {
            options.process.resplit_seed
        };
        if resuming && dir.join("summary.json").is_file() {
            tracing::info!("seed {seed}: finished before, kept");
            continue;
        }
        let train_dir = dir.join("train-source");
        if resuming && train_dir.join("summary.json").is_file() {
            tracing::info!("seed {seed}: source trained before, kept");
        } else {
            tracing::info!("seed {seed}: source training in {}", train_dir.display());
            train_source::<B>(
                device,
                &TrainSourceOptions {
                    config: options.train_config.clone(),
                    data_dir: options.process.data_dir.clone(),
                    out: train_dir.clone(),
                    force: options.process.force || resuming,
                    resume: false,
                    epochs: None,
                    seed: Some(seed),
                    resplit_seed: dealing,
                },
            )?;
        }
        // A process that had started continues from its last step; one that had not
        // starts.
        let process = ProcessOptions {
            source: Some(train_dir.join(CHECKPOINT)),
            out: Some(dir.clone()),
            seed: Some(seed),
            resplit_seed: dealing,
            force: true,
            resume: resuming && dir.join("resume").join("config.json").is_file(),
            ..options.process.clone()
        };
        match experiment {
            SeededExperiment::Transfer => {
                transfer::<B>(device, &process)?;
            }
            SeededExperiment::IsoClassification => {
                iso_classification::<B>(device, &process)?;
            }
        }
    }
    match experiment {
        SeededExperiment::Transfer => {
            aggregate_transfer(&out)?;
        }
        SeededExperiment::IsoClassification => {
            aggregate_iso(&out)?;
        }
    }
    Ok(out.join("aggregate.json"))
}

/// Differences between our method and each other method, in words: which exceed the
/// spread over seeds and which do not (one seed has no spread, and then it says so instead).
pub fn transfer_differences(a: &TransferAggregate) -> Vec<String> {
    let Some((ours_name, ours)) = a.methods.first() else {
        return Vec::new();
    };
    let seeds = ours.target_accuracy.values.len();
    if seeds < 2 {
        return vec![format!(
            "{seeds} seed: no spread over seeds to judge the methods' differences by (run --seeds 2 or more)"
        )];
    }
    let mut out = Vec::new();
    for (name, m) in a.methods.iter().skip(1) {
        for (what, x, y) in [
            ("target accuracy", &ours.target_accuracy, &m.target_accuracy),
            ("source accuracy", &ours.source_accuracy, &m.source_accuracy),
        ] {
            let verdict = if x.differs_from(y) {
                "exceeds the spread over seeds"
            } else {
                "is inside the spread over seeds: no difference"
            };
            out.push(format!(
                "{what}: {ours_name} {}% vs {name} {}%: the difference {verdict}",
                x.show(100.0, 2),
                y.show(100.0, 2)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_mean_and_sample_sd() {
        let s = Spread::of(vec![1.0, 2.0, 3.0, 6.0]);
        assert!((s.mean - 3.0).abs() < 1e-12);
        // Sample variance: (4 + 1 + 0 + 9) / 3.
        assert!((s.sd - (14.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(Spread::of(vec![2.5]).sd, 0.0);
        assert_eq!(s.show(100.0, 1), "300.0 +- 216.0");
        let t = Spread::of(vec![3.0, 3.2, 2.9, 3.1]);
        assert!(!s.differs_from(&t));
        let far = Spread::of(vec![30.0, 31.0, 29.0]);
        assert!(s.differs_from(&far));
    }

    fn method(target: &[f64], source: &[f64]) -> MethodSpread {
        let s = |v: &[f64]| Spread::of(v.to_vec());
        MethodSpread {
            target_accuracy: s(target),
            source_accuracy: s(source),
            rate: s(target),
            distortion: s(target),
            classification: s(target),
            max_relative_drift: None,
            max_relative_drift_se: None,
            optimizer_steps: None,
        }
    }

    fn aggregate(methods: Vec<(String, MethodSpread)>) -> TransferAggregate {
        TransferAggregate {
            seeds: vec![1],
            c0_test: Spread::of(vec![0.14]),
            methods,
            bands: Vec::new(),
            times: Vec::new(),
            device: "test".into(),
        }
    }

    #[test]
    fn differences_are_judged_by_the_spread_and_not_claimed_from_one_seed() {
        // One seed: sd 0, so any difference would "exceed" it; none may be claimed.
        let one = aggregate(vec![
            ("ours".into(), method(&[0.98], &[0.72])),
            ("fine-tune".into(), method(&[0.96], &[0.0])),
        ]);
        let lines = transfer_differences(&one);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("no spread"), "{}", lines[0]);
        // Three seeds: source accuracy 72 +- 1 vs 0 +- 0 differs; target 97.9 +- 0.3 vs
        // 97.6 +- 0.3 does not (0.3 < 0.3 + 0.3).
        let three = aggregate(vec![
            (
                "ours".into(),
                method(&[0.976, 0.979, 0.982], &[0.71, 0.72, 0.73]),
            ),
            (
                "fine-tune".into(),
                method(&[0.973, 0.976, 0.979], &[0.0, 0.0, 0.0]),
            ),
        ]);
        let lines = transfer_differences(&three);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("target accuracy") && lines[0].contains("no difference"));
        assert!(lines[1].starts_with("source accuracy") && lines[1].contains("exceeds"));
    }

    fn band_with_mean(seed: u64, mean: f64, se: f64) -> SeedBand {
        SeedBand {
            seed,
            band: 0.05,
            points: 26,
            outside: Vec::new(),
            worst: (1.0, mean),
            worst_se: se,
            mean_abs_drift: mean.abs(),
            mean_band: 0.03,
            mean_drift: mean,
            mean_drift_se_bound: se,
            probe_relative_se: Some(0.022),
            unconverged_steps: 0,
            relative_standard_error: 0.035,
            test_over_probe: None,
        }
    }

    #[test]
    fn the_mean_drift_is_judged_against_its_band_by_its_standard_error() {
        // Hand values: |x| - band over se.
        assert_eq!(BandVerdict::of(-0.029, 0.01, 0.03), BandVerdict::Within);
        let BandVerdict::WithinErrors(z) = BandVerdict::of(0.048, 0.03, 0.03) else {
            panic!("+4.8 +- 3.0% is 0.6 se beyond 3%")
        };
        assert!((z - 0.6).abs() < 1e-12);
        let BandVerdict::Outside(z) = BandVerdict::of(-0.081, 0.02, 0.03) else {
            panic!("-8.1 +- 2.0% is 2.55 se beyond 3%")
        };
        assert!((z - 2.55).abs() < 1e-12);
        let line = band_with_mean(3, 0.07, 0.04).describe("t");
        assert!(line.contains("+7.00% (standard error at most 4.00%: beyond 3% by 1.0 standard errors, within 3% + 2 se)"), "{line}");

        // Over seeds: mean of the means, se = sample sd / sqrt(n).
        assert!(MeanDriftOverSeeds::of(&[band_with_mean(1, 0.01, 0.03)]).is_none());
        let bands = [
            band_with_mean(1, -0.008, 0.031),
            band_with_mean(2, 0.048, 0.030),
            band_with_mean(3, 0.070, 0.032),
        ];
        let pooled = MeanDriftOverSeeds::of(&bands).unwrap();
        let mean = (-0.008 + 0.048 + 0.070) / 3.0;
        let var = [-0.008f64, 0.048, 0.070]
            .iter()
            .map(|x| (x - mean).powi(2))
            .sum::<f64>()
            / 2.0;
        assert!((pooled.mean - mean).abs() < 1e-12);
        assert!((pooled.se - (var / 3.0).sqrt()).abs() < 1e-12);
        assert!(
            pooled.describe().contains("mean over 3 seeds: +3.67%"),
            "{}",
            pooled.describe()
        );
    }

    #[test]
    fn a_seeds_time_is_its_source_and_its_process_in_minutes() {
        let time = SeedTime {
            seed: 2,
            source: Some(120.0),
            methods: vec![("ours".into(), 768.0), ("fine-tune".into(), 216.0)],
            process_total: 990.0,
            machine: Some("Intel(R) Xeon(R) Processor, 2 threads".into()),
        };
        assert_eq!(time.total(), 1110.0);
        assert_eq!(
            time.describe(),
            "seed 2: 18.5 minutes (source 2.0, ours 12.8, fine-tune 3.6) on Intel(R) Xeon(R) Processor, 2 threads"
        );
        let reused = SeedTime {
            source: None,
            machine: None,
            ..time
        };
        assert_eq!(
            reused.describe(),
            "seed 2: 16.5 minutes (ours 12.8, fine-tune 3.6)"
        );
    }

    #[test]
    fn the_experiment_of_a_seeds_folder_is_read_from_its_first_summary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = seeded_experiment_in(dir.path()).expect_err("no seed yet");
        assert!(err.to_string().contains("no finished seed"), "{err}");
        let seed = dir.path().join("seed-2");
        std::fs::create_dir(&seed).expect("seed dir");
        std::fs::write(seed.join("summary.json"), r#"{"format": 2, "naive": {}}"#).expect("write");
        assert_eq!(
            seeded_experiment_in(dir.path()).expect("iso"),
            SeededExperiment::IsoClassification
        );
        std::fs::write(
            seed.join("summary.json"),
            r#"{"format": 2, "baselines": []}"#,
        )
        .expect("write");
        assert_eq!(
            seeded_experiment_in(dir.path()).expect("transfer"),
            SeededExperiment::Transfer
        );
        std::fs::write(seed.join("summary.json"), r#"{"format": 2}"#).expect("write");
        let err = seeded_experiment_in(dir.path()).expect_err("neither");
        assert!(err.to_string().contains("pass --kind"), "{err}");
    }

    #[test]
    fn seed_shards_partition_the_seeds() {
        let mut all = Vec::new();
        for k in 0..3 {
            let o = SeedsOptions {
                process: ProcessOptions::default(),
                train_config: PathBuf::new(),
                first: 10,
                count: 5,
                shard: Shard { index: k, count: 3 },
                deal_per_seed: false,
            };
            all.extend(o.my_seeds());
        }
        assert_eq!(all, vec![10, 11, 12, 13, 14]);
    }
}
