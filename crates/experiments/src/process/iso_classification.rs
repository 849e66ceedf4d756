//! `iso-classification` on a deep model: lambda moves from the source's value to
//! `lambda_end` with C held at C0 by the continuation, beside the naive path that keeps
//! gamma fixed (the paper's Euler scheme without a constraint), both from the same source
//! checkpoint.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use fep_models::assemble::Assembled;
use fep_thermo::{ConstraintKind, Functionals, IntegratorKind, Multipliers, ProcessPath};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::charts::{ChartSpec, write_trace_charts};
use super::config::ProcessOptions;
use super::observer::{PathRun, trace_path};
use super::rows::{HeldConstraint, TraceRow, Traced, max_drift_se, write_trace};
use super::setup::{ISO_CLASSIFICATION, ProcessRun, Setup, setup};
use crate::Outcome;
use crate::error::{Result, invalid};
use crate::format::{Result2, SUMMARY_FORMAT, Versioned, process_summary_1_to_2};
use crate::io::write_json;
use crate::provenance::device_name;

/// Where a path ends, measured on the probe.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PathEnd {
    /// lambda at the end.
    pub lambda: f64,
    /// gamma at the end.
    pub gamma: f64,
    /// R, D, C on the probe.
    #[serde(flatten)]
    pub functionals: Functionals,
    /// Accuracy on the source test set.
    pub accuracy: f64,
}

impl PathEnd {
    fn of(row: &TraceRow) -> Self {
        Self {
            lambda: row.lambda,
            gamma: row.gamma,
            functionals: row.probe,
            accuracy: row.source_accuracy,
        }
    }
}

/// The naive path: gamma fixed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NaivePath {
    /// Largest relative drift of C on the test split (fresh noise).
    pub max_relative_drift: f64,
    /// Its standard error, paired with the start on the same examples and draws.
    pub max_relative_drift_se: f64,
    /// Largest relative drift of C on the controller's probe.
    pub controller_max_relative_drift: f64,
    /// Where it ends.
    #[serde(rename = "final")]
    pub end: Option<PathEnd>,
}

/// Wall times, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IsoWall {
    /// The iso-classification process.
    pub process: f64,
    /// The whole command.
    pub total: f64,
}

/// `summary.json` of an iso-classification run (format [`SUMMARY_FORMAT`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsoClassificationSummary {
    /// The version of this file's layout ([`crate::format`] upgrades older ones).
    pub format: u32,
    /// C0 and how well it was held.
    #[serde(flatten)]
    pub held: HeldConstraint,
    /// `(R_end - R_start) / R_start` on the probe.
    pub rate_relative_change: f64,
    /// The integrator of the process.
    pub integrator: IntegratorKind,
    /// (lambda, gamma) of the source checkpoint.
    pub start: Multipliers,
    /// Where the process ends.
    #[serde(rename = "final")]
    pub end: PathEnd,
    /// The naive path beside it.
    pub naive: NaivePath,
    /// Seed, device, data, source and config of the run.
    #[serde(flatten)]
    pub run: ProcessRun,
    /// Wall times.
    pub wall_seconds: IsoWall,
}

impl Versioned for IsoClassificationSummary {
    fn upgrade_step(map: &mut Map<String, Value>, from: u32) -> Result2 {
        debug_assert_eq!(from, 1, "format 2 is the current one");
        process_summary_1_to_2(map)?;
        if let Some(Value::Object(naive)) = map.get_mut("naive") {
            naive
                .entry("controller_max_relative_drift")
                .or_insert(json!(0));
            naive.entry("max_relative_drift_se").or_insert(json!(0));
        }
        Ok(())
    }
}

/// One path of the experiment from the source checkpoint: traced, its trace and model
/// saved under `stem`.
fn traced_path<B: AutodiffBackend>(
    device: &B::Device,
    setup: &Setup,
    run: PathRun,
    model_stem: &str,
) -> Result<(Traced, Multipliers)> {
    let Assembled { mut system, start } = setup.assemble::<B>(device, false)?;
    let traced = trace_path(setup, &mut system, start, run)?;
    let end = traced
        .rows
        .last()
        .map_or(start, |r| Multipliers::new(r.lambda, r.gamma));
    let model = format!("models/{model_stem}.ckpt");
    setup.saver.save(&system, &model, run.label, 0.0, end)?;
    write_trace(&setup.out, run.resume_key, &traced.rows)?;
    Ok((traced, start))
}

/// Runs the iso-classification of `options` (default config
/// `experiments/iso-classification.toml`) on backend B: lambda from the source's value
/// to `lambda_end` with C held, then the naive path with gamma fixed, both from the
/// source checkpoint.
pub fn iso_classification<B: AutodiffBackend>(
    device: &B::Device,
    options: &ProcessOptions,
) -> Result<Outcome<IsoClassificationSummary>> {
    let setup = setup(options, &ISO_CLASSIFICATION)?;
    let clock = Instant::now();
    let start = setup.source_multipliers()?;
    let path = ProcessPath::lambda_only(start.lambda, setup.cfg.process.lambda_end);
    let run = |label, resume_key, constraint, saves_steps| PathRun {
        label,
        resume_key,
        path,
        constraint,
        saves_steps,
    };
    let held = run(
        "iso-classification",
        "trace",
        ConstraintKind::IsoClassification,
        true,
    );
    let (traced, _) = traced_path::<B>(device, &setup, held, "iso_classification")?;
    let process_wall = clock.elapsed().as_secs_f64();
    let naive = run(
        "naive (gamma fixed)",
        "naive",
        ConstraintKind::FixedGamma,
        false,
    );
    let (naive, _) = traced_path::<B>(device, &setup, naive, "naive")?;
    let x_label = "s (lambda from start to end)";
    let context = format!("{}, {}", device_name::<B>(device), setup.domains.dir_name());
    let mut files = write_trace_charts(
        &setup.out,
        &[
            ("iso-classification", &traced.rows),
            ("naive: gamma fixed", &naive.rows),
        ],
        &ChartSpec {
            x_label,
            c0: traced.c0,
            c0_test: traced.c0_test,
            band: 0.03,
            context,
        },
    )?;
    let wall = IsoWall {
        process: process_wall,
        total: clock.elapsed().as_secs_f64(),
    };
    let summary = summarise::<B>(device, &setup, start, &traced, &naive, wall)?;
    let summary_path = setup.out.join("summary.json");
    write_json(&summary_path, &summary)?;
    setup.resume.finish()?;
    files.insert(0, summary_path);
    Ok(Outcome { summary, files })
}

/// The summary of both paths.
fn summarise<B: AutodiffBackend>(
    device: &B::Device,
    setup: &Setup,
    start: Multipliers,
    traced: &Traced,
    naive: &Traced,
    wall_seconds: IsoWall,
) -> Result<IsoClassificationSummary> {
    let cfg = &setup.cfg;
    let (Some(first), Some(last)) = (traced.rows.first(), traced.rows.last()) else {
        return Err(invalid("the iso-classification process recorded no point"));
    };
    Ok(IsoClassificationSummary {
        format: SUMMARY_FORMAT,
        held: HeldConstraint::of(
            traced,
            cfg.process.equilibrium_rule(),
            cfg.process.test_samples,
        ),
        rate_relative_change: (last.probe.rate - first.probe.rate) / first.probe.rate,
        integrator: cfg.process.integrator,
        start,
        end: PathEnd::of(last),
        naive: NaivePath {
            max_relative_drift: naive.max_relative_drift,
            max_relative_drift_se: max_drift_se(&naive.rows),
            controller_max_relative_drift: naive.controller_max_relative_drift,
            end: naive.rows.last().map(PathEnd::of),
        },
        run: setup.run_record(device_name::<B>(device)),
        wall_seconds,
    })
}
