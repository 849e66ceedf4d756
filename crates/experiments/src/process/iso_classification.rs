//! `iso-classification` on a deep model: lambda moves from the source's value to
//! `lambda_end` with C held at C0 by the continuation, beside the naive path that keeps
//! gamma fixed (the paper's Euler scheme without a constraint), both from the same source
//! checkpoint.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use fep_models::assemble::Assembled;
use fep_thermo::{
    ConstraintKind, Continuation, Functionals, IntegratorKind, Multipliers, ProcessPath,
};
use serde::{Deserialize, Serialize};

use super::config::{ISO_CLASSIFICATION, ProcessConfig, ProcessOptions, setup};
use super::trace::{
    ChartSpec, HeldConstraint, Observer, TraceRow, trace_process, write_trace, write_trace_charts,
};
use crate::Outcome;
use crate::error::{Result, invalid};
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
    /// Largest relative drift of C on the controller's probe.
    #[serde(default)]
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

/// `summary.json` of an iso-classification run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsoClassificationSummary {
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
    /// Seed.
    pub seed: u64,
    /// Backend and device.
    pub device: String,
    /// Folder the data came from.
    pub data_dir: PathBuf,
    /// The source checkpoint.
    pub source_checkpoint: PathBuf,
    /// Wall times.
    pub wall_seconds: IsoWall,
    /// The resolved config.
    pub config: ProcessConfig,
}

/// Runs the iso-classification of `options` (default config
/// `experiments/iso-classification.toml`) on backend B.
pub fn iso_classification<B: AutodiffBackend>(
    device: &B::Device,
    options: &ProcessOptions,
) -> Result<Outcome<IsoClassificationSummary>> {
    let setup = setup(options, &ISO_CLASSIFICATION)?;
    let (cfg, out, domains) = (&setup.cfg, &setup.out, &setup.domains);
    let clock = Instant::now();
    let Assembled { mut system, start } = setup.assemble::<B>(device, false)?;
    let path = ProcessPath::lambda_only(start.lambda, cfg.process.lambda_end);
    let traced = trace_process(
        &mut system,
        start,
        path,
        ConstraintKind::IsoClassification,
        cfg.process.continuation(&cfg.ift),
        &Observer {
            domains,
            test: cfg.process.test_measure(),
            saver: Some(&setup.saver),
            resume: Some((&setup.resume, "trace")),
        },
        "iso-classification",
    )?;
    let process_wall = clock.elapsed().as_secs_f64();
    let end_of = |t: &super::trace::Traced| {
        t.rows
            .last()
            .map_or(start, |r| Multipliers::new(r.lambda, r.gamma))
    };
    setup.saver.save(
        &system,
        "models/iso_classification.ckpt",
        "iso-classification",
        0.0,
        end_of(&traced),
    )?;
    write_trace(out, "trace", &traced.rows)?;
    let mut naive_system = setup.assemble::<B>(device, false)?.system;
    let mut naive_continuation =
        Continuation::euler(cfg.process.steps, cfg.process.equilibration_steps, cfg.ift);
    naive_continuation.gamma_bounds.max = cfg.process.max_gamma;
    naive_continuation.equilibrium = cfg.process.equilibrium_rule();
    let naive = trace_process(
        &mut naive_system,
        start,
        path,
        ConstraintKind::FixedGamma,
        naive_continuation,
        &Observer {
            domains,
            test: cfg.process.test_measure(),
            saver: None,
            resume: Some((&setup.resume, "naive")),
        },
        "naive (gamma fixed)",
    )?;
    write_trace(out, "naive", &naive.rows)?;
    setup.saver.save(
        &naive_system,
        "models/naive.ckpt",
        "naive (gamma fixed)",
        0.0,
        end_of(&naive),
    )?;
    let (Some(first), Some(last)) = (traced.rows.first(), traced.rows.last()) else {
        return Err(invalid("the iso-classification process recorded no point"));
    };
    let rate_change = (last.probe.rate - first.probe.rate) / first.probe.rate;
    let mut files = write_trace_charts(
        out,
        &[
            ("iso-classification", &traced.rows),
            ("naive: gamma fixed", &naive.rows),
        ],
        &ChartSpec {
            x_label: "s (lambda from start to end)",
            c0: traced.c0,
            c0_test: traced.c0_test,
            band: 0.03,
            context: format!("{}, {}", device_name::<B>(device), domains.dir_name()),
        },
    )?;
    let summary = IsoClassificationSummary {
        held: HeldConstraint::of(
            &traced,
            cfg.process.equilibrium_rule(),
            cfg.process.test_samples,
        ),
        rate_relative_change: rate_change,
        integrator: cfg.process.integrator,
        start,
        end: PathEnd::of(last),
        naive: NaivePath {
            max_relative_drift: naive.max_relative_drift,
            controller_max_relative_drift: naive.controller_max_relative_drift,
            end: naive.rows.last().map(PathEnd::of),
        },
        seed: cfg.process.seed,
        device: device_name::<B>(device),
        data_dir: domains.dir.clone(),
        source_checkpoint: cfg.source_checkpoint.clone(),
        wall_seconds: IsoWall {
            process: process_wall,
            total: clock.elapsed().as_secs_f64(),
        },
        config: cfg.clone(),
    };
    let summary_path = out.join("summary.json");
    write_json(&summary_path, &summary)?;
    setup.resume.finish()?;
    files.insert(0, summary_path);
    Ok(Outcome { summary, files })
}
