//! `exact iso-classification`: the process on the trained exact model beside the closed
//! form's path gamma(lambda) at C0.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use fep_thermo::exact::{ClosedForm, ExactConfig, ExactSystem};
use fep_thermo::{
    ConstraintKind, Continuation, EquilibriumReport, Functionals, IftConfig, IntegratorKind,
    Multipliers, PredictorCorrectorConfig, ProcessPath, StoppingRule, run_process,
};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::io::{write_csv, write_json, write_jsonl};
use crate::plot::{Chart, Mark, Series, write_chart};
use crate::progress::bar;
use crate::provenance::device_name;

/// A point of the exact iso-classification path beside the closed form's gamma.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExactPathPoint {
    /// Path parameter.
    pub s: f64,
    /// lambda.
    pub lambda: f64,
    /// gamma of the process.
    pub gamma: f64,
    /// gamma of the closed form's iso-classification curve at this lambda.
    pub gamma_exact: f64,
    /// R, D, C of the trained model.
    #[serde(flatten)]
    pub functionals: Functionals,
    /// `(C - C0) / C0`.
    pub relative_drift: f64,
    /// Corrector iterations of the step.
    pub corrector_iterations: usize,
    /// The equilibrations of the point (training at the start; predictor and corrector
    /// re-equilibrations after).
    #[serde(default)]
    pub equilibrium: EquilibriumReport,
}

/// `exact iso-classification`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExactIsoSummary {
    /// C held.
    pub c0: f64,
    /// The integrator.
    pub integrator: IntegratorKind,
    /// Seed of the model's initialisation.
    pub seed: u64,
    /// Backend and device.
    pub device: String,
    /// The path.
    pub path: Vec<ExactPathPoint>,
    /// Largest `|C - C0| / C0`.
    pub max_relative_drift: f64,
    /// `F(end) - F(start) - integral (D dlambda + C dgamma)`.
    pub first_law_residual: f64,
}

/// The exact model's continuation: Euler with 20 steps, or the predictor-corrector with
/// steps between 0.05 and 0.1; every re-equilibration by the training's stopping rule
/// `equilibrium` (`ExactTrainingConfig::equilibrium_rule`).
pub fn exact_continuation(kind: IntegratorKind, equilibrium: StoppingRule) -> Continuation {
    match kind {
        IntegratorKind::Euler => {
            Continuation::euler(20, 1000, IftConfig::default()).with_equilibrium(equilibrium)
        }
        IntegratorKind::PredictorCorrector => Continuation::predictor_corrector(
            &PredictorCorrectorConfig {
                equilibrium,
                initial_step: 0.05,
                max_step: 0.1,
                ..PredictorCorrectorConfig::default()
            },
            IftConfig::default(),
        ),
    }
}

/// Runs iso-classification on the exact model from `start` to `lambda_end` and compares the
/// path with the closed form's; writes the summary, the trace and a chart into `dir`.
pub fn iso_classification<B: AutodiffBackend>(
    device: &B::Device,
    config: &ExactConfig,
    start: Multipliers,
    lambda_end: f64,
    integrator: IntegratorKind,
    dir: Option<&Path>,
) -> Result<ExactIsoSummary> {
    let cf = ClosedForm::new(
        &config.source_moments()?,
        config.model.sigma0,
        config.model.sigmac,
    )?;
    let path = ProcessPath::lambda_only(start.lambda, lambda_end);
    let continuation = exact_continuation(integrator, config.training.equilibrium_rule());
    let mut system = ExactSystem::<B>::from_config(config, device)?;
    let trained = system.train(start)?;
    let progress = bar(100, "iso-classification");
    let result = run_process(
        &mut system,
        start,
        &path,
        ConstraintKind::IsoClassification,
        &continuation,
        |r| progress.set_position((r.s * 100.0).round() as u64),
    )?;
    progress.finish_and_clear();
    let c0 = result.target;
    let mut points = Vec::new();
    for (k, r) in result.records.iter().enumerate() {
        points.push(ExactPathPoint {
            s: r.s,
            lambda: r.lambda,
            gamma: r.gamma,
            gamma_exact: cf.gamma_for_classification(r.lambda, c0)?,
            functionals: r.functionals,
            relative_drift: r.relative_drift,
            corrector_iterations: r.corrector_iterations,
            equilibrium: if k == 0 {
                trained.report
            } else {
                r.equilibrium
            },
        });
    }
    let summary = ExactIsoSummary {
        c0,
        integrator,
        seed: config.model.seed,
        device: device_name::<B>(device),
        path: points,
        max_relative_drift: result.max_relative_drift,
        first_law_residual: result.first_law_residual(),
    };
    if let Some(dir) = dir {
        write_json(&dir.join("summary.json"), &summary)?;
        write_jsonl(&dir.join("trace.jsonl"), &result.records)?;
        write_csv(&dir.join("trace.csv"), &summary.path)?;
        write_gamma_chart(&dir.join("gamma"), &summary)?;
    }
    Ok(summary)
}

/// gamma along the trained path beside the closed form's gamma(lambda) at C0.
fn write_gamma_chart(path: &Path, summary: &ExactIsoSummary) -> Result<()> {
    let pts = &summary.path;
    write_chart(
        path,
        &Chart {
            title: format!("iso-classification, exact model (c0 = {:.4})", summary.c0),
            x_label: "lambda".into(),
            y_label: "gamma".into(),
            series: vec![
                Series {
                    label: "exact path".into(),
                    points: pts.iter().map(|p| (p.lambda, p.gamma_exact)).collect(),
                    mark: Mark::Line,
                    color: 0,
                },
                Series {
                    label: summary.integrator.to_string(),
                    points: pts.iter().map(|p| (p.lambda, p.gamma)).collect(),
                    mark: Mark::Points,
                    color: 1,
                },
            ],
        },
    )?;
    Ok(())
}
