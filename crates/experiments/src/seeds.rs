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
use crate::process::{
    IsoClassificationSummary, MethodResult, ProcessOptions, TransferSummary, iso_classification,
    transfer,
};
use crate::train_source::{CHECKPOINT, TrainSourceOptions, train_source};

pub use crate::seed_band::{BandVerdict, MEAN_BAND, MeanDriftOverSeeds, SeedBand, SeedTime};
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

/// The `summary.json` of every finished seed under `out` (`seed-<s>/summary.json`), in seed
/// order; an error where there is none.
fn finished_summaries(out: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = std::fs::read_dir(out)
        .map_err(|e| invalid(format!("cannot list {}: {e}", out.display())))?;
    let mut found: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let seed = name.strip_prefix("seed-")?.parse::<u64>().ok()?;
            let summary = entry.path().join("summary.json");
            summary.is_file().then_some((seed, summary))
        })
        .collect();
    found.sort_by_key(|(s, _)| *s);
    if found.is_empty() {
        return Err(invalid(format!(
            "no finished seed under {} (expected seed-<s>/summary.json)",
            out.display()
        )));
    }
    Ok(found)
}

/// The finished seeds under `out` with their summaries, in seed order.
fn finished<T: Versioned>(out: &Path) -> Result<Vec<(u64, T)>> {
    finished_summaries(out)?
        .into_iter()
        .map(|(seed, path)| Ok((seed, read_summary::<T>(&path)?)))
        .collect()
}

/// Which experiment the finished seeds under `out` ran, read from the first seed's
/// `summary.json` (an iso-classification summary has a naive path, a transfer's none).
pub fn seeded_experiment_in(out: &Path) -> Result<SeededExperiment> {
    let (_, first) = finished_summaries(out)?.swap_remove(0);
    let summary: serde_json::Value = crate::io::read_json(&first)?;
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
