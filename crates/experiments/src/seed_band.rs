//! How each seed of a process held C and how long it took: the points of its path outside
//! the band (each judged by its own standard error), its mean drift over the path against
//! 3%, the mean of those over seeds, and the wall time of its source and each method.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::process::rows::{HeldConstraint, max_drift_se, outside_band};
use crate::process::{IsoClassificationSummary, TransferSummary};
use crate::spread::Spread;
use crate::train_source::TrainSourceSummary;

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

/// Half-width of the band each seed's mean drift over the path is judged against, relative
/// to C0 (3%: the transfer's goal on average, the iso-classification's at every point).
pub const MEAN_BAND: f64 = 0.03;

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
        })
    }

    /// The standard error of the mean, `sd / sqrt(n)`.
    pub fn se(&self) -> f64 {
        self.sd / (self.seeds as f64).sqrt()
    }

    /// One sentence with the verdict.
    pub fn describe(&self) -> String {
        format!(
            "mean drift over the path, mean over {} seeds: {:+.2}% (sd {:.2}%, standard error {:.2}%): {}",
            self.seeds,
            100.0 * self.mean,
            100.0 * self.sd,
            100.0 * self.se(),
            BandVerdict::of(self.mean, self.se(), MEAN_BAND).describe(MEAN_BAND)
        )
    }
}

impl SeedBand {
    /// Where this seed's mean drift over the path lies against [`MEAN_BAND`], judged by its
    /// standard error bound.
    pub fn mean_verdict(&self) -> BandVerdict {
        BandVerdict::of(self.mean_drift, self.mean_drift_se_bound, MEAN_BAND)
    }

    /// The band of the path `<dir>/trace.jsonl`, with what `held` says of its controller.
    pub(crate) fn of(seed: u64, dir: &Path, band: f64, held: &HeldConstraint) -> Result<Self> {
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
            self.mean_verdict().describe(MEAN_BAND),
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
        crate::io::read_json::<TrainSourceSummary>(&dir.join("train-source").join("summary.json"))
            .ok()
            .map(|s| s.wall_seconds)
    }

    pub(crate) fn transfer(seed: u64, dir: &Path, summary: &TransferSummary) -> Self {
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

    pub(crate) fn iso(seed: u64, dir: &Path, summary: &IsoClassificationSummary) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn band_with_mean(seed: u64, mean: f64, se: f64) -> SeedBand {
        SeedBand {
            seed,
            band: 0.05,
            points: 26,
            outside: Vec::new(),
            worst: (1.0, mean),
            worst_se: se,
            mean_abs_drift: mean.abs(),
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
        assert!((pooled.se() - (var / 3.0).sqrt()).abs() < 1e-12);
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
}
