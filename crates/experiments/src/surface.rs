//! `surface`: the equilibrium surface of a deep model over a (lambda, gamma) grid. Every
//! point is trained to equilibrium warm-started from its grid neighbour (the sweep of
//! `fep-thermo`), in shards for job arrays; `merge` joins the shards, measures the
//! identities of the surface and draws it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use fep_data::{DataConfig, Domains, ProbeSplit};
use fep_models::assemble::{SystemSpec, system_from_checkpoint};
use fep_thermo::surface::{
    GridCell, GridSpec, QuadraticFit, Shard, SurfaceChecks, SurfaceGrid, SurfacePoint, Sweep,
    SweepPoint, assemble_grid, shard_points, snake_order,
};
use fep_thermo::{EquilibriumReport, StationarityTest, StoppingRule};
use serde::{Deserialize, Serialize};

use crate::Outcome;
use crate::error::{ExperimentError, Result, ResultExt, invalid};
use crate::io::{create_dir, read_jsonl, read_toml, write_json, write_jsonl, write_toml};
use crate::plot::{Chart, Mark, Series, write_chart_files};
use crate::progress::bar;

/// The `[sweep]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Adam steps at each point after the warm start.
    pub steps_per_point: usize,
    /// Adam steps at the first point of a shard (from the source checkpoint).
    pub first_point_steps: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Examples per Adam step.
    pub batch_size: usize,
    /// Held-out examples on which R, D, C are measured.
    pub probe_size: usize,
    /// Residual (nats) above which a check counts as violated.
    pub tolerance: f64,
    /// When the equilibration of a point (after the first) stops: a measured criterion
    /// (`{ rule = "stationary", ... }`), or `steps_per_point` fixed steps where absent;
    /// the first point of a shard gets `first_point_steps` as its budget (`max_steps`).
    #[serde(default)]
    pub equilibrium: Option<StoppingRule>,
    /// Seed of noise and data order.
    pub seed: u64,
}

impl SweepConfig {
    /// The rule of the first point of a shard (from the checkpoint, farther away): the
    /// stationarity test with at least `first_point_steps` steps and twice that budget,
    /// or `first_point_steps` fixed steps.
    pub fn first_rule(&self) -> StoppingRule {
        match self.equilibrium {
            Some(StoppingRule::Stationary(t)) => StoppingRule::Stationary(StationarityTest {
                min_steps: self.first_point_steps.max(t.min_steps),
                max_steps: (2 * self.first_point_steps).max(t.max_steps),
                ..t
            }),
            Some(rule) => rule,
            None => StoppingRule::fixed(self.first_point_steps),
        }
    }

    /// The rule of every other point.
    pub fn point_rule(&self) -> StoppingRule {
        self.equilibrium
            .unwrap_or(StoppingRule::fixed(self.steps_per_point))
    }
}

/// The config file of `surface`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurfaceConfig {
    /// Model every shard starts from.
    pub source_checkpoint: PathBuf,
    /// Data (source classes only).
    pub data: DataConfig,
    /// The grid.
    pub grid: GridSpec,
    /// Training per point.
    pub sweep: SweepConfig,
}

impl SurfaceConfig {
    /// Reads and validates a surface config.
    pub fn load(path: &Path) -> Result<Self> {
        let cfg: SurfaceConfig = read_toml(path)?;
        cfg.grid
            .validate()
            .context_with(|| format!("in {}", path.display()))?;
        Ok(cfg)
    }
}

/// Where and how a surface sweep runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SurfaceOptions {
    /// The config file.
    pub config: PathBuf,
    /// Folder with the dataset files (default: the bundled subset).
    pub data_dir: Option<PathBuf>,
    /// Result directory (shards go to `<out>/shards/`).
    pub out: PathBuf,
    /// The shard to run (all of the grid in one shard by default).
    pub shard: Shard,
}

/// One line of a shard file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// 1-based shard.
    pub shard: usize,
    /// Shards in all.
    pub of: usize,
    /// Grid index of lambda.
    pub i: usize,
    /// Grid index of gamma.
    pub j: usize,
    /// The equilibrium point measured on the probe.
    pub point: SurfacePoint,
    /// Test accuracy at the point.
    pub accuracy: f64,
    /// Seed of the sweep.
    pub seed: u64,
    /// Seconds spent on this point.
    pub wall_seconds: f64,
    /// How its equilibration went (absent in shard files of earlier versions).
    #[serde(default)]
    pub equilibrium: EquilibriumReport,
}

/// One line of `surface.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurfaceRow {
    /// The equilibrium point.
    #[serde(flatten)]
    pub point: SurfacePoint,
    /// Test accuracy at the point.
    pub accuracy: f64,
    /// The shard that measured it.
    pub shard: usize,
    /// How its equilibration went.
    pub equilibrium: EquilibriumReport,
}

/// `summary.json` of a merged surface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurfaceSummary {
    /// Grid values of lambda.
    pub lambdas: Vec<f64>,
    /// Grid values of gamma.
    pub gammas: Vec<f64>,
    /// The violation threshold of the checks (nats).
    pub tolerance_nats: f64,
    /// The measured identities.
    pub checks: SurfaceChecks,
    /// Least-squares quadratic fits of R, D, C and F in (lambda, gamma).
    pub quadratic_fits: BTreeMap<String, [f64; 6]>,
    /// The basis of the fits.
    pub fit_basis: String,
    /// Number of shards.
    pub shards: Option<usize>,
    /// Seed.
    pub seed: u64,
    /// Backend and device of the merge.
    pub device: String,
    /// Training time summed over points, seconds.
    pub wall_seconds_summed_over_points: f64,
    /// How the points' equilibrations went (absent in summaries of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equilibrium: Option<SweepEquilibrium>,
    /// The config.
    pub config: SurfaceConfig,
}

/// How the equilibrations of a sweep's points went.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepEquilibrium {
    /// The rule of the points after each shard's first.
    pub rule: StoppingRule,
    /// Points.
    pub points: usize,
    /// Points whose equilibration met the rule's criterion.
    pub met: usize,
    /// Adam steps of all points.
    pub optimizer_steps: usize,
}

/// The shard file of `shard` under `out`.
pub fn shard_path(out: &Path, shard: Shard) -> PathBuf {
    out.join("shards").join(format!(
        "shard-{}-of-{}.jsonl",
        shard.index + 1,
        shard.count
    ))
}

/// Runs one shard of the sweep on backend B: every point of the shard's slice of the
/// boustrophedon order, each written to the shard file as soon as it is measured (a killed
/// shard keeps what it finished). Returns the shard file.
pub fn run_shard<B: AutodiffBackend>(
    device: &B::Device,
    cfg: &SurfaceConfig,
    options: &SurfaceOptions,
) -> Result<PathBuf> {
    let domains = Domains::load(&cfg.data, options.data_dir.as_deref())?;
    let points = shard_points(
        &snake_order(cfg.grid.lambdas.len(), cfg.grid.gammas.len()),
        options.shard,
    );
    let s = &cfg.sweep;
    let spec = SystemSpec {
        batch_size: s.batch_size,
        learning_rate: s.learning_rate,
        seed: s.seed,
        probe_size: s.probe_size,
        probe_split: ProbeSplit::Validation,
        gradient_probe_size: None,
        binarization: cfg.data.binarization(s.seed),
    };
    let mut assembled =
        system_from_checkpoint::<B>(&cfg.source_checkpoint, device, &domains.source, None, &spec)?;
    create_dir(&options.out.join("shards"))?;
    write_toml(&options.out.join("config.toml"), cfg)?;
    let file = shard_path(&options.out, options.shard);
    let progress = bar(points.len() as u64, "surface");
    let mut records = Vec::new();
    let mut sweep = Sweep::new(
        &mut assembled.system,
        &cfg.grid,
        points,
        s.first_point_steps,
        s.steps_per_point,
    )?
    .with_equilibrium(s.first_rule(), s.point_rule());
    let mut clock = Instant::now();
    while let Some(item) = sweep.next() {
        let SweepPoint {
            i,
            j,
            point,
            equilibrium,
        } = item?;
        let accuracy = sweep.system().evaluate(&domains.source.test)?.accuracy;
        let f = point.functionals;
        progress.suspend(|| {
            eprintln!(
                "surface: lambda {:.3} gamma {:.3}  R {:.3}  D {:.3}  C {:.4}  acc {:.2}%",
                point.lambda,
                point.gamma,
                f.rate,
                f.distortion,
                f.classification,
                100.0 * accuracy
            )
        });
        records.push(ShardRecord {
            shard: options.shard.index + 1,
            of: options.shard.count,
            i,
            j,
            point,
            accuracy,
            seed: s.seed,
            wall_seconds: clock.elapsed().as_secs_f64(),
            equilibrium,
        });
        write_jsonl(&file, &records)?;
        progress.inc(1);
        clock = Instant::now();
    }
    progress.finish_and_clear();
    Ok(file)
}

/// Reads every shard file under `<out>/shards/`.
pub fn read_shards(out: &Path) -> Result<Vec<ShardRecord>> {
    let dir = out.join("shards");
    let entries = std::fs::read_dir(&dir).map_err(|_| {
        invalid(format!(
            "no shard directory {} (run `fep surface --shard i/n` first)",
            dir.display()
        ))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut records = Vec::new();
    for f in files {
        records.extend(read_jsonl::<ShardRecord>(&f)?);
    }
    Ok(records)
}

/// Joins the shards under `out`, measures the identities, fits the surface and draws it.
pub fn merge(cfg: &SurfaceConfig, out: &Path, device: String) -> Result<Outcome<SurfaceSummary>> {
    let records = read_shards(out)?;
    let cells: Vec<GridCell> = records
        .iter()
        .map(|r| GridCell {
            shard: r.shard,
            of: r.of,
            i: r.i,
            j: r.j,
            point: r.point,
        })
        .collect();
    let grid = assemble_grid(&cfg.grid, &cells)?;
    let checks = grid.checks(cfg.sweep.tolerance);
    let rows: Vec<SurfaceRow> = records
        .iter()
        .map(|r| SurfaceRow {
            point: r.point,
            accuracy: r.accuracy,
            shard: r.shard,
            equilibrium: r.equilibrium,
        })
        .collect();
    write_jsonl(&out.join("surface.jsonl"), &rows)?;
    type Get = fn(&SurfacePoint) -> f64;
    let quantities: [(&str, Get); 4] = [
        ("rate", |p| p.functionals.rate),
        ("distortion", |p| p.functionals.distortion),
        ("classification", |p| p.functionals.classification),
        ("free_energy", |p| p.free_energy),
    ];
    let mut fits = BTreeMap::new();
    for (name, get) in quantities {
        fits.insert(name.to_string(), QuadraticFit::fit(&grid, get)?);
    }
    let summary = SurfaceSummary {
        lambdas: cfg.grid.lambdas.clone(),
        gammas: cfg.grid.gammas.clone(),
        tolerance_nats: cfg.sweep.tolerance,
        checks,
        quadratic_fits: fits
            .iter()
            .map(|(k, f)| (k.clone(), f.coefficients))
            .collect(),
        fit_basis: "a + b lambda + c gamma + d lambda^2 + e lambda gamma + f gamma^2".into(),
        shards: records.iter().map(|r| r.of).max(),
        seed: cfg.sweep.seed,
        device: device.clone(),
        wall_seconds_summed_over_points: records.iter().map(|r| r.wall_seconds).sum(),
        equilibrium: Some(SweepEquilibrium {
            rule: cfg.sweep.point_rule(),
            points: records.len(),
            met: records.iter().filter(|r| r.equilibrium.met).count(),
            optimizer_steps: records.iter().map(|r| r.equilibrium.steps).sum(),
        }),
        config: cfg.clone(),
    };
    let summary_path = out.join("summary.json");
    write_json(&summary_path, &summary)?;
    let charts = write_surface_charts(out, &grid, &fits, &device)?;
    let mut files = vec![summary_path];
    files.extend(charts);
    Ok(Outcome { summary, files })
}

fn fit_of<'a>(fits: &'a BTreeMap<String, QuadraticFit>, name: &str) -> Result<&'a QuadraticFit> {
    fits.get(name)
        .ok_or_else(|| ExperimentError::Invalid(format!("no fit of {name}")))
}

fn write_surface_charts(
    out: &Path,
    grid: &SurfaceGrid,
    fits: &BTreeMap<String, QuadraticFit>,
    device: &str,
) -> Result<Vec<PathBuf>> {
    let (fit_d, fit_r) = (fit_of(fits, "distortion")?, fit_of(fits, "rate")?);
    let mut series = Vec::new();
    let l0 = grid.lambdas[0];
    let l1 = grid.lambdas[grid.lambdas.len() - 1];
    for (j, &g) in grid.gammas.iter().enumerate() {
        series.push(Series {
            label: format!("measured, gamma = {g:.2}"),
            points: grid.rate_distortion_at_gamma(j),
            mark: Mark::Points,
            color: j,
        });
        series.push(Series {
            label: format!("quadratic fit, gamma = {g:.2}"),
            points: (0..=40)
                .map(|k| {
                    let l = l0 + (l1 - l0) * k as f64 / 40.0;
                    (fit_d.eval(l, g), fit_r.eval(l, g))
                })
                .collect(),
            mark: Mark::Line,
            color: j,
        });
    }
    let rd = Chart {
        title: format!("equilibrium surface projected on (D, R), {device}"),
        x_label: "distortion D (nats)".into(),
        y_label: "rate R (nats)".into(),
        series,
    };
    let mut series = Vec::new();
    for (i, &l) in grid.lambdas.iter().enumerate() {
        series.push(Series {
            label: format!("lambda = {l:.2}"),
            points: grid.points[i]
                .iter()
                .map(|p| (p.gamma, p.functionals.classification))
                .collect(),
            mark: Mark::Line,
            color: i,
        });
    }
    let cg = Chart {
        title: format!("C against gamma at each lambda, {device}"),
        x_label: "gamma".into(),
        y_label: "classification loss C (nats)".into(),
        series,
    };
    Ok(vec![
        write_chart_files(&out.join("surface_rate_distortion"), &rd)?,
        write_chart_files(&out.join("surface_classification"), &cg)?,
    ])
}
