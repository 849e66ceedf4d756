//! The exact linear-Gaussian model: the closed forms of `fep-thermo` beside a trained Burn
//! model of the same functionals, at a point (`solve`), along an iso-classification path
//! and over a grid (`surface`).

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use fep_thermo::exact::{ClosedForm, ExactConfig, ExactSystem};
use fep_thermo::surface::{
    CheckSettings, GridSpec, Place, SurfaceChecks, SurfaceGrid, SurfacePoint,
};
use fep_thermo::{
    ConstraintKind, Continuation, EquilibriumReport, Functionals, IftConfig, IntegratorKind,
    Multipliers, PredictorCorrectorConfig, ProcessPath, Sensitivities, StoppingRule,
    SurfaceDifferenceConfig, ThermodynamicSystem, ift_sensitivities, run_process,
    surface_difference_sensitivities,
};
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result, invalid};
use crate::io::{prepare_out_dir, write_csv, write_json, write_jsonl};
use crate::maps::{Field, Maps, SURFACE_QUANTITIES, linspace, write_maps};
use crate::plot::{Chart, Mark, Series, write_chart};
use crate::progress::bar;
use crate::provenance::device_name;

/// Reads an exact-model config, naming the file in every error.
pub fn load_config(path: &Path) -> Result<ExactConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::Config {
        path: path.to_path_buf(),
        reason: format!("cannot read it: {e}"),
    })?;
    ExactConfig::from_toml_str(&text).map_err(|reason| ExperimentError::Config {
        path: path.to_path_buf(),
        reason,
    })
}

/// The result folder of an exact command: `out`, else `runs/<default_dir>` unless the
/// result goes to stdout only (`json` without `out`).
pub fn result_dir(
    out: Option<&Path>,
    json: bool,
    force: bool,
    default_dir: &str,
) -> Result<Option<PathBuf>> {
    let dir = match (out, json) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, true) => return Ok(None),
        (None, false) => PathBuf::from("runs").join(default_dir),
    };
    Ok(Some(prepare_out_dir(&dir, force)?))
}

/// Parses a grid `start:end:count` into `count` evenly spaced values.
pub fn parse_grid(spec: &str, name: &str) -> Result<Vec<f64>> {
    let parts: Vec<&str> = spec.split(':').collect();
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| invalid(format!("--{name}: `{s}` is not a number")))
    };
    let [a, b, n] = parts.as_slice() else {
        return Err(invalid(format!(
            "--{name} must look like start:end:count, got {spec}"
        )));
    };
    let (a, b) = (number(a)?, number(b)?);
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| invalid(format!("--{name}: `{n}` is not a count")))?;
    if n < 2 || a >= b || !a.is_finite() || !b.is_finite() {
        return Err(invalid(format!(
            "--{name} must be start:end:count with start < end and count >= 2, got {spec}"
        )));
    }
    Ok((0..n)
        .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
        .collect())
}

/// Functionals and free energy at a point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PointValues {
    /// R, D, C.
    #[serde(flatten)]
    pub functionals: Functionals,
    /// `F = R + lambda D + gamma C`.
    pub free_energy: f64,
}

/// The sensitivities of one estimator with their Maxwell residual.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SensitivityRow {
    /// The four susceptibilities.
    #[serde(flatten)]
    pub values: Sensitivities,
    /// `dD/dgamma - dC/dlambda`.
    pub maxwell_residual: f64,
}

impl From<Sensitivities> for SensitivityRow {
    fn from(values: Sensitivities) -> Self {
        Self {
            values,
            maxwell_residual: values.maxwell_residual(),
        }
    }
}

/// The three sensitivity estimates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SensitivityTable {
    /// The closed form.
    pub closed_form: SensitivityRow,
    /// Implicit function theorem on the trained model.
    pub ift: SensitivityRow,
    /// Central differences of re-equilibrated functionals.
    pub finite_difference: SensitivityRow,
}

/// `exact solve`: the closed form and the trained model at (lambda, gamma).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExactSolveSummary {
    /// Multiplier of D.
    pub lambda: f64,
    /// Multiplier of C.
    pub gamma: f64,
    /// Seed of the model's initialisation.
    pub seed: u64,
    /// Backend and device.
    pub device: String,
    /// The closed form.
    pub closed_form: PointValues,
    /// The trained model.
    pub trained: PointValues,
    /// How the trained point was equilibrated: the stopping criterion's final value
    /// (`|grad J|`), Adam steps, L-BFGS iterations and whether the rule was met.
    #[serde(default)]
    pub equilibrium: EquilibriumReport,
    /// Sensitivities by three estimators.
    pub sensitivities: SensitivityTable,
}

/// Trains the exact model of `config` at `m` and compares it with the closed form; writes
/// `summary.json` into `dir` where given.
pub fn solve<B: AutodiffBackend>(
    device: &B::Device,
    config: &ExactConfig,
    m: Multipliers,
    dir: Option<&Path>,
) -> Result<ExactSolveSummary> {
    let cf = ClosedForm::new(
        &config.source_moments()?,
        config.model.sigma0,
        config.model.sigmac,
    )?;
    let exact = cf.point(m)?;
    let exact_sens = cf.sensitivities(m)?;
    let mut system = ExactSystem::<B>::from_config(config, device)?;
    let trained = system.train(m)?;
    let ift = ift_sensitivities(&mut system, m, &IftConfig::default())?;
    let fd = surface_difference_sensitivities(
        &mut system,
        m,
        &SurfaceDifferenceConfig {
            equilibrium: Some(config.training.equilibrium_rule()),
            ..SurfaceDifferenceConfig::default()
        },
    )?;
    let summary = ExactSolveSummary {
        lambda: m.lambda,
        gamma: m.gamma,
        seed: config.model.seed,
        device: device_name::<B>(device),
        closed_form: PointValues {
            functionals: exact.functionals,
            free_energy: exact.free_energy,
        },
        trained: PointValues {
            functionals: trained.functionals,
            free_energy: trained.functionals.lagrangian(m),
        },
        equilibrium: trained.report,
        sensitivities: SensitivityTable {
            closed_form: exact_sens.into(),
            ift: ift.sensitivities.into(),
            finite_difference: fd.into(),
        },
    };
    if let Some(dir) = dir {
        write_json(&dir.join("summary.json"), &summary)?;
    }
    Ok(summary)
}

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
    let rule = config.training.equilibrium_rule();
    let continuation = exact_continuation(integrator, rule);
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
        let pts = &summary.path;
        write_chart(
            &dir.join("gamma"),
            &Chart {
                title: format!("iso-classification, exact model (c0 = {c0:.4})"),
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
                        label: integrator.to_string(),
                        points: pts.iter().map(|p| (p.lambda, p.gamma)).collect(),
                        mark: Mark::Points,
                        color: 1,
                    },
                ],
            },
        )?;
    }
    Ok(summary)
}

/// The checks of the trained and the closed-form surface (each with the settings it was
/// counted with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExactSurfaceChecks {
    /// Of the trained model.
    pub trained: SurfaceChecks,
    /// Of the closed form.
    pub closed_form: SurfaceChecks,
}

/// The closed form's iso-classification curve drawn on the surface plot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IsoCurve {
    /// C along the curve.
    pub c0: f64,
    /// (lambda, gamma) where it starts.
    pub start: [f64; 2],
}

/// `exact surface`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExactSurfaceSummary {
    /// Seed of the model's initialisation.
    pub seed: u64,
    /// Backend and device.
    pub device: String,
    /// Grid of lambda.
    pub lambdas: Vec<f64>,
    /// Grid of gamma.
    pub gammas: Vec<f64>,
    /// The measured identities.
    pub checks: ExactSurfaceChecks,
    /// The iso-classification curve on the plot.
    pub iso_classification: IsoCurve,
}

/// One line of the exact `surface.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExactSurfaceRow {
    /// lambda.
    pub lambda: f64,
    /// gamma.
    pub gamma: f64,
    /// The trained model's point.
    pub trained: SurfacePoint,
    /// The closed form's point.
    pub closed_form: SurfacePoint,
}

/// Maps of the closed-form F, R, D, C over the grid's range, the trained points on top
/// (filled with the colour of their own value: a trained point off the closed form shows).
fn exact_maps(
    cf: &ClosedForm,
    trained: &SurfaceGrid,
    path: (String, Vec<(f64, f64)>),
) -> Result<Maps> {
    let (l, g) = (&trained.lambdas, &trained.gammas);
    let lambdas = linspace(l[0], l[l.len() - 1], 60);
    let gammas = linspace(g[0], g[g.len() - 1], 60);
    let mut mesh = Vec::with_capacity(lambdas.len());
    for &lam in &lambdas {
        let mut row = Vec::with_capacity(gammas.len());
        for &gam in &gammas {
            let m = Multipliers::new(lam, gam);
            row.push(SurfacePoint::new(m, cf.point(m)?.functionals));
        }
        mesh.push(row);
    }
    let fields = SURFACE_QUANTITIES
        .iter()
        .map(|(name, get)| Field {
            name: name.to_string(),
            values: mesh
                .iter()
                .map(|row| row.iter().map(get).collect())
                .collect(),
            points: trained
                .points
                .iter()
                .flatten()
                .map(|p| (p.lambda, p.gamma, get(p)))
                .collect(),
        })
        .collect();
    Ok(Maps {
        title: "exact model: closed-form surface (field) and trained equilibria (points)".into(),
        lambdas,
        gammas,
        fields,
        path: Some(path),
        points_label: "trained equilibria".into(),
    })
}

/// One line of the exact `checks.jsonl`: a place of a check on one of the two surfaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaggedPlace {
    /// `trained` or `closed_form`.
    pub surface: String,
    /// The place.
    #[serde(flatten)]
    pub place: Place,
}

/// How the identities of the two exact surfaces are counted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExactCheckSettings {
    /// Of the trained model: the floor allows for its distance from exact equilibrium.
    pub trained: CheckSettings,
    /// Of the closed form: the floor is f64 roundoff.
    pub closed_form: CheckSettings,
}

impl Default for ExactCheckSettings {
    /// Three error estimates; floors `1e-4` (trained) and `1e-9` (closed form).
    fn default() -> Self {
        Self {
            trained: CheckSettings {
                factor: 3.0,
                floor: 1e-4,
            },
            closed_form: CheckSettings::default(),
        }
    }
}

/// Trains the exact model over the grid (warm starts along the rows) beside the closed
/// form, measures the identities of both surfaces, and draws the projection on (D, R)
/// with the closed form's iso-classification curve through `(max lambda, iso_gamma)`.
pub fn surface<B: AutodiffBackend>(
    device: &B::Device,
    config: &ExactConfig,
    grid: &GridSpec,
    iso_gamma: f64,
    settings: ExactCheckSettings,
    dir: Option<&Path>,
) -> Result<ExactSurfaceSummary> {
    grid.validate()?;
    let (lambdas, gammas) = (&grid.lambdas, &grid.gammas);
    let (Some(&l_first), Some(&l_max)) = (lambdas.first(), lambdas.last()) else {
        return Err(invalid("the lambda grid is empty"));
    };
    let cf = ClosedForm::new(
        &config.source_moments()?,
        config.model.sigma0,
        config.model.sigmac,
    )?;
    let mut system = ExactSystem::<B>::from_config(config, device)?;
    let rule = config.training.equilibrium_rule();
    let progress = bar((lambdas.len() * gammas.len()) as u64, "surface");
    let (mut trained, mut exact, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &l) in lambdas.iter().enumerate() {
        let (mut trained_row, mut exact_row) = (Vec::new(), Vec::new());
        for (j, &g) in gammas.iter().enumerate() {
            let m = Multipliers::new(l, g);
            // Cold start for the first point, warm start from the neighbour after.
            let f = if i == 0 && j == 0 {
                system.train(m)?
            } else {
                system.equilibrate_until(m, &rule)?
            }
            .functionals;
            let tp = SurfacePoint::new(m, f);
            let ep = SurfacePoint::new(m, cf.point(m)?.functionals);
            rows.push(ExactSurfaceRow {
                lambda: l,
                gamma: g,
                trained: tp,
                closed_form: ep,
            });
            trained_row.push(tp);
            exact_row.push(ep);
            progress.inc(1);
        }
        trained.push(trained_row);
        exact.push(exact_row);
    }
    progress.finish_and_clear();
    let to_grid = |points| SurfaceGrid {
        lambdas: lambdas.to_vec(),
        gammas: gammas.to_vec(),
        points,
    };
    let (trained_grid, exact_grid) = (to_grid(trained), to_grid(exact));
    let (trained_places, exact_places) = (
        trained_grid.check_places(settings.trained)?,
        exact_grid.check_places(settings.closed_form)?,
    );
    let c0 = cf
        .point(Multipliers::new(l_max, iso_gamma))?
        .functionals
        .classification;
    let summary = ExactSurfaceSummary {
        seed: config.model.seed,
        device: device_name::<B>(device),
        lambdas: lambdas.to_vec(),
        gammas: gammas.to_vec(),
        checks: ExactSurfaceChecks {
            trained: SurfaceChecks::of(&trained_places, settings.trained),
            closed_form: SurfaceChecks::of(&exact_places, settings.closed_form),
        },
        iso_classification: IsoCurve {
            c0,
            start: [l_max, iso_gamma],
        },
    };
    if let Some(dir) = dir {
        write_json(&dir.join("summary.json"), &summary)?;
        write_jsonl(&dir.join("surface.jsonl"), &rows)?;
        let tagged = |places: Vec<Place>, surface: &'static str| {
            places.into_iter().map(move |place| TaggedPlace {
                surface: surface.to_string(),
                place,
            })
        };
        let all: Vec<TaggedPlace> = tagged(trained_places, "trained")
            .chain(tagged(exact_places, "closed_form"))
            .collect();
        write_jsonl(&dir.join("checks.jsonl"), &all)?;
        let mut series = Vec::new();
        for (j, &g) in gammas.iter().enumerate() {
            // Closed-form curve over a fine lambda range at this gamma.
            let fine: Vec<(f64, f64)> = (0..=60)
                .filter_map(|k| {
                    let l = l_first + (l_max - l_first) * k as f64 / 60.0;
                    cf.point(Multipliers::new(l, g))
                        .ok()
                        .map(|p| (p.functionals.distortion, p.functionals.rate))
                })
                .collect();
            series.push(Series {
                label: format!("closed form, gamma = {g:.2}"),
                points: fine,
                mark: Mark::Line,
                color: j,
            });
            series.push(Series {
                label: format!("trained, gamma = {g:.2}"),
                points: trained_grid.rate_distortion_at_gamma(j),
                mark: Mark::Points,
                color: j,
            });
        }
        let mut iso = Vec::new();
        let mut iso_path = Vec::new();
        for k in 0..=40 {
            let l = l_max + (l_first - l_max) * k as f64 / 40.0;
            if let Ok(g) = cf.gamma_for_classification(l, c0) {
                let p = cf.point(Multipliers::new(l, g))?.functionals;
                iso.push((p.distortion, p.rate));
                iso_path.push((l, g));
            }
        }
        write_maps(
            &dir.join("surface_maps"),
            &exact_maps(
                &cf,
                &trained_grid,
                (
                    format!("closed-form iso-classification C = {c0:.3}"),
                    iso_path,
                ),
            )?,
        )?;
        series.push(Series {
            label: format!("iso-classification C = {c0:.3}"),
            points: iso,
            mark: Mark::ThickLine,
            color: gammas.len() + 1,
        });
        write_chart(
            &dir.join("surface_rate_distortion"),
            &Chart {
                title: "exact model: equilibrium surface projected on (D, R)".into(),
                x_label: "distortion D (nats)".into(),
                y_label: "rate R (nats)".into(),
                series,
            },
        )?;
    }
    Ok(summary)
}
