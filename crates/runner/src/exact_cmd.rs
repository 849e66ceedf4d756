//! `fep exact ...`: the linear-Gaussian oracle, closed form beside the trained Burn model.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, Subcommand, ValueEnum};
use fep_thermo::exact::{ClosedForm, ExactConfig, ExactSystem};
use fep_thermo::{
    Constraint, EulerConfig, IftConfig, Integrator, Multipliers, PredictorCorrectorConfig,
    ProcessPath, Sensitivities, SurfaceDifferenceConfig, SurfaceGrid, SurfacePoint,
    ThermodynamicSystem, ift_sensitivities, run_process, surface_difference_sensitivities,
};
use serde::Serialize;
use serde_json::json;

use crate::backend::device_name;
use crate::output::{prepare_out_dir, write_csv, write_json, write_jsonl};
use crate::plot::{Chart, Mark, Series, write_chart};
use crate::progress::bar;

/// Subcommands of `fep exact`.
#[derive(Debug, Subcommand)]
pub enum ExactCommand {
    /// Train at (lambda, gamma) and compare with the closed form, with sensitivities.
    Solve(SolveArgs),
    /// Iso-classification process from (lambda_start, gamma_start) to lambda_end.
    IsoClassification(IsoArgs),
    /// Closed-form and trained surface over a grid, its checks and a plot.
    Surface(SurfaceArgs),
}

/// Arguments shared by the exact commands.
#[derive(Debug, Args)]
pub struct Common {
    /// TOML file with [data], [model] (and optional [target], [training]).
    #[arg(long)]
    pub config: PathBuf,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Result directory (default runs/exact-<command>/; with --json and no --out nothing is written).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overwrite an existing result directory.
    #[arg(long)]
    pub force: bool,
}

/// `fep exact solve`.
#[derive(Debug, Args)]
pub struct SolveArgs {
    #[command(flatten)]
    common: Common,
    /// Multiplier of the distortion.
    #[arg(long)]
    lambda: f64,
    /// Multiplier of the classification loss.
    #[arg(long)]
    gamma: f64,
}

/// Which integrator a process uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IntegratorChoice {
    /// The paper's scheme: tangent step then K equilibration steps.
    Euler,
    /// Tangent predictor, Newton corrector on gamma, adaptive steps.
    PredictorCorrector,
}

/// `fep exact iso-classification`.
#[derive(Debug, Args)]
pub struct IsoArgs {
    #[command(flatten)]
    common: Common,
    /// lambda at the start.
    #[arg(long, default_value_t = 2.0)]
    lambda_start: f64,
    /// gamma at the start.
    #[arg(long, default_value_t = 1.0)]
    gamma_start: f64,
    /// lambda at the end.
    #[arg(long, default_value_t = 0.5)]
    lambda_end: f64,
    /// Integrator.
    #[arg(long, value_enum, default_value_t = IntegratorChoice::PredictorCorrector)]
    integrator: IntegratorChoice,
}

/// `fep exact surface`.
#[derive(Debug, Args)]
pub struct SurfaceArgs {
    #[command(flatten)]
    common: Common,
    /// lambda grid as start:end:count.
    #[arg(long, default_value = "0.5:3:6")]
    lambdas: String,
    /// gamma grid as start:end:count.
    #[arg(long, default_value = "0.25:3:6")]
    gammas: String,
    /// gamma at which the iso-classification curve drawn on the plot starts (at the largest lambda).
    #[arg(long, default_value_t = 1.0)]
    iso_gamma: f64,
}

fn load_config(path: &Path) -> Result<ExactConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    ExactConfig::from_toml_str(&text)
        .map_err(|e| anyhow::anyhow!("invalid config {}: {e}", path.display()))
}

fn grid(spec: &str, name: &str) -> Result<Vec<f64>> {
    let parts: Vec<&str> = spec.split(':').collect();
    let parse = |s: &str| {
        s.trim()
            .parse::<f64>()
            .with_context(|| format!("--{name}: `{s}` is not a number"))
    };
    match parts.as_slice() {
        [a, b, n] => {
            let (a, b) = (parse(a)?, parse(b)?);
            let n: usize = n
                .trim()
                .parse()
                .with_context(|| format!("--{name}: `{n}` is not a count"))?;
            if n < 2 || a >= b || !a.is_finite() || !b.is_finite() {
                bail!(
                    "--{name} must be start:end:count with start < end and count >= 2, got {spec}"
                );
            }
            Ok((0..n)
                .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
                .collect())
        }
        _ => bail!("--{name} must look like start:end:count, got {spec}"),
    }
}

fn functionals_json(f: fep_thermo::Functionals, free_energy: f64) -> serde_json::Value {
    json!({"rate": f.rate, "distortion": f.distortion, "classification": f.classification, "free_energy": free_energy})
}

fn emit(common: &Common, default_dir: &str, value: &serde_json::Value) -> Result<Option<PathBuf>> {
    if common.json {
        println!("{}", serde_json::to_string(value)?);
    }
    let dir = match (&common.out, common.json) {
        (Some(dir), _) => dir.clone(),
        (None, true) => return Ok(None),
        (None, false) => PathBuf::from("runs").join(default_dir),
    };
    let dir = prepare_out_dir(&dir, common.force)?;
    write_json(&dir.join("summary.json"), value)?;
    Ok(Some(dir))
}

/// `fep exact solve` on backend B.
pub fn solve<B: AutodiffBackend>(device: &B::Device, args: &SolveArgs) -> Result<()> {
    let config = load_config(&args.common.config)?;
    let m = Multipliers::new(args.lambda, args.gamma);
    let cf = ClosedForm::new(
        &config.source_moments()?,
        config.model.sigma0,
        config.model.sigmac,
    )?;
    let exact = cf.point(m)?;
    let exact_sens = cf.sensitivities(m)?;
    let mut system = ExactSystem::<B>::from_config(&config, device)?;
    let trained = system.train(m)?;
    let ift = ift_sensitivities(&mut system, m, &IftConfig::default())?;
    let fd = surface_difference_sensitivities(&mut system, m, &SurfaceDifferenceConfig::default())?;
    let sens = |s: Sensitivities| {
        json!({"dD_dlambda": s.dD_dlambda, "dD_dgamma": s.dD_dgamma, "dC_dlambda": s.dC_dlambda,
               "dC_dgamma": s.dC_dgamma, "maxwell_residual": s.maxwell_residual()})
    };
    let value = json!({
        "lambda": args.lambda,
        "gamma": args.gamma,
        "seed": config.model.seed,
        "device": device_name::<B>(device),
        "closed_form": functionals_json(exact.functionals, exact.free_energy),
        "trained": functionals_json(trained, trained.lagrangian(m)),
        "sensitivities": {
            "closed_form": sens(exact_sens),
            "ift": sens(ift.sensitivities),
            "finite_difference": sens(fd),
        },
    });
    let dir = emit(&args.common, "exact-solve", &value)?;
    if !args.common.json {
        println!("{:<16}{:>12}{:>12}{:>12}{:>12}", "", "R", "D", "C", "F");
        for (name, f, fe) in [
            ("closed form", exact.functionals, exact.free_energy),
            ("trained", trained, trained.lagrangian(m)),
        ] {
            println!(
                "{name:<16}{:>12.6}{:>12.6}{:>12.6}{:>12.6}",
                f.rate, f.distortion, f.classification, fe
            );
        }
        println!(
            "\n{:<16}{:>12}{:>12}{:>12}{:>12}",
            "", "dD/dl", "dD/dg", "dC/dl", "dC/dg"
        );
        for (name, s) in [
            ("closed form", exact_sens),
            ("IFT", ift.sensitivities),
            ("finite diff.", fd),
        ] {
            println!(
                "{name:<16}{:>12.6}{:>12.6}{:>12.6}{:>12.6}",
                s.dD_dlambda, s.dD_dgamma, s.dC_dlambda, s.dC_dgamma
            );
        }
        if let Some(dir) = dir {
            println!("\nwrote {}", dir.join("summary.json").display());
        }
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct PathPoint {
    s: f64,
    lambda: f64,
    gamma: f64,
    gamma_exact: f64,
    rate: f64,
    distortion: f64,
    classification: f64,
    relative_drift: f64,
    corrector_iterations: usize,
}

/// `fep exact iso-classification` on backend B.
pub fn iso_classification<B: AutodiffBackend>(device: &B::Device, args: &IsoArgs) -> Result<()> {
    let config = load_config(&args.common.config)?;
    let cf = ClosedForm::new(
        &config.source_moments()?,
        config.model.sigma0,
        config.model.sigmac,
    )?;
    let start = Multipliers::new(args.lambda_start, args.gamma_start);
    let path = ProcessPath::lambda_only(args.lambda_start, args.lambda_end);
    let integrator = match args.integrator {
        IntegratorChoice::Euler => Integrator::Euler(EulerConfig {
            equilibration_steps: 1000,
            ..EulerConfig::default()
        }),
        IntegratorChoice::PredictorCorrector => {
            Integrator::PredictorCorrector(PredictorCorrectorConfig {
                equilibration_steps: 1000,
                initial_step: 0.05,
                max_step: 0.1,
                ..PredictorCorrectorConfig::default()
            })
        }
    };
    let mut system = ExactSystem::<B>::from_config(&config, device)?;
    system.train(start)?;
    let progress = bar(100, "iso-classification");
    let result = run_process(
        &mut system,
        start,
        &path,
        Constraint::ISO_CLASSIFICATION,
        &integrator,
        &IftConfig::default(),
        |r| progress.set_position((r.s * 100.0).round() as u64),
    )?;
    progress.finish_and_clear();
    let c0 = result.target;
    let mut points = Vec::new();
    for r in &result.records {
        points.push(PathPoint {
            s: r.s,
            lambda: r.lambda,
            gamma: r.gamma,
            gamma_exact: cf.gamma_for_classification(r.lambda, c0)?,
            rate: r.rate,
            distortion: r.distortion,
            classification: r.classification,
            relative_drift: r.relative_drift,
            corrector_iterations: r.corrector_iterations,
        });
    }
    let value = json!({
        "c0": c0,
        "integrator": format!("{:?}", args.integrator),
        "seed": config.model.seed,
        "device": device_name::<B>(device),
        "path": points,
        "max_relative_drift": result.max_relative_drift,
        "first_law_residual": result.first_law_residual(),
    });
    let dir = emit(&args.common, "exact-iso-classification", &value)?;
    if let Some(dir) = &dir {
        write_jsonl(&dir.join("trace.jsonl"), &result.records)?;
        write_csv(
            &dir.join("trace.csv"),
            &[
                "s",
                "lambda",
                "gamma",
                "gamma_exact",
                "rate",
                "distortion",
                "classification",
                "relative_drift",
                "corrector_iterations",
            ],
            &points
                .iter()
                .map(|p| {
                    vec![
                        p.s,
                        p.lambda,
                        p.gamma,
                        p.gamma_exact,
                        p.rate,
                        p.distortion,
                        p.classification,
                        p.relative_drift,
                        p.corrector_iterations as f64,
                    ]
                })
                .collect::<Vec<_>>(),
        )?;
        write_chart(
            &dir.join("gamma"),
            &Chart {
                title: format!("iso-classification, exact model (c0 = {c0:.4})"),
                x_label: "lambda".into(),
                y_label: "gamma".into(),
                series: vec![
                    Series {
                        label: "exact path".into(),
                        points: points.iter().map(|p| (p.lambda, p.gamma_exact)).collect(),
                        mark: Mark::Line,
                        color: 0,
                    },
                    Series {
                        label: format!("{:?}", args.integrator),
                        points: points.iter().map(|p| (p.lambda, p.gamma)).collect(),
                        mark: Mark::Points,
                        color: 1,
                    },
                ],
            },
        )?;
    }
    if !args.common.json {
        println!("c0 = {c0:.6}");
        println!(
            "{:>8}{:>10}{:>12}{:>10}{:>10}{:>10}{:>11}",
            "lambda", "gamma", "gamma_exact", "R", "D", "C", "drift"
        );
        for p in &points {
            println!(
                "{:>8.4}{:>10.4}{:>12.4}{:>10.4}{:>10.4}{:>10.4}{:>+11.2e}",
                p.lambda,
                p.gamma,
                p.gamma_exact,
                p.rate,
                p.distortion,
                p.classification,
                p.relative_drift
            );
        }
        println!("max relative drift {:.2e}", result.max_relative_drift);
        if let Some(dir) = dir {
            println!("wrote {}", dir.display());
        }
    }
    Ok(())
}

/// `fep exact surface` on backend B.
pub fn surface<B: AutodiffBackend>(device: &B::Device, args: &SurfaceArgs) -> Result<()> {
    let config = load_config(&args.common.config)?;
    let lambdas = grid(&args.lambdas, "lambdas")?;
    let gammas = grid(&args.gammas, "gammas")?;
    let cf = ClosedForm::new(
        &config.source_moments()?,
        config.model.sigma0,
        config.model.sigmac,
    )?;
    let mut system = ExactSystem::<B>::from_config(&config, device)?;
    let progress = bar((lambdas.len() * gammas.len()) as u64, "surface");
    let mut trained = Vec::new();
    let mut exact = Vec::new();
    let mut rows = Vec::new();
    for (i, &l) in lambdas.iter().enumerate() {
        let mut trained_row = Vec::new();
        let mut exact_row = Vec::new();
        for (j, &g) in gammas.iter().enumerate() {
            let m = Multipliers::new(l, g);
            // Cold start for the first point, warm start from the neighbour after.
            let f = if i == 0 && j == 0 {
                system.train(m)?
            } else {
                system.equilibrate(m, config.training.initial_steps / 3)?
            };
            let e = cf.point(m)?;
            let tp = SurfacePoint::new(m, f);
            let ep = SurfacePoint::new(m, e.functionals);
            rows.push(json!({"lambda": l, "gamma": g, "trained": tp, "closed_form": ep}));
            trained_row.push(tp);
            exact_row.push(ep);
            progress.inc(1);
        }
        trained.push(trained_row);
        exact.push(exact_row);
    }
    progress.finish_and_clear();
    let trained_grid = SurfaceGrid {
        lambdas: lambdas.clone(),
        gammas: gammas.clone(),
        points: trained,
    };
    let exact_grid = SurfaceGrid {
        lambdas: lambdas.clone(),
        gammas: gammas.clone(),
        points: exact,
    };
    let tolerance = 1e-3;
    let checks = json!({
        "tolerance_nats": tolerance,
        "trained": trained_grid.checks(tolerance),
        "closed_form": exact_grid.checks(tolerance),
    });
    // The exact iso-classification curve through (max lambda, iso_gamma).
    let l_max = *lambdas.last().expect("grid has points");
    let c0 = cf
        .point(Multipliers::new(l_max, args.iso_gamma))?
        .functionals
        .classification;
    let mut iso = Vec::new();
    for k in 0..=40 {
        let l = l_max + (lambdas[0] - l_max) * k as f64 / 40.0;
        if let Ok(g) = cf.gamma_for_classification(l, c0) {
            let p = cf.point(Multipliers::new(l, g))?.functionals;
            iso.push((p.distortion, p.rate));
        }
    }
    let value = json!({
        "seed": config.model.seed,
        "device": device_name::<B>(device),
        "lambdas": lambdas,
        "gammas": gammas,
        "checks": checks,
        "iso_classification": {"c0": c0, "start": [l_max, args.iso_gamma]},
    });
    let dir = emit(&args.common, "exact-surface", &value)?;
    if let Some(dir) = &dir {
        write_jsonl(&dir.join("surface.jsonl"), &rows)?;
        let mut series = Vec::new();
        for (j, &g) in gammas.iter().enumerate() {
            // Closed-form curve over a fine lambda range at this gamma.
            let fine: Vec<(f64, f64)> = (0..=60)
                .filter_map(|k| {
                    let l = lambdas[0] + (l_max - lambdas[0]) * k as f64 / 60.0;
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
                points: trained_grid
                    .points
                    .iter()
                    .map(|row| (row[j].distortion, row[j].rate))
                    .collect(),
                mark: Mark::Points,
                color: j,
            });
        }
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
    if !args.common.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
        if let Some(dir) = dir {
            println!("wrote {}", dir.display());
        }
    }
    Ok(())
}
