//! `surface`: the equilibrium surface of a deep model over a (lambda, gamma) grid. Every
//! point is trained to equilibrium warm-started from its grid neighbour (the sweep of
//! `fep-thermo`), in shards for job arrays; `merge` joins the shards, measures the
//! identities of the surface and draws it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use fep_data::{DataConfig, Domains, ProbeSplit};
use fep_models::StandardErrors;
use fep_models::assemble::{SystemSpec, system_from_checkpoint};
use fep_thermo::Functionals;
use fep_thermo::surface::{
    CheckSettings, GridCell, GridSpec, QuadraticFit, Shard, SurfaceChecks, SurfaceGrid,
    SurfacePoint, Sweep, SweepPoint, assemble_grid, shard_points, snake_order,
};
use fep_thermo::{EquilibriumReport, StationarityTest, StoppingRule};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Outcome;
use crate::error::{Result, ResultExt, invalid};
use crate::format::{Result2, SUMMARY_FORMAT, Versioned};
use crate::io::{create_dir, read_jsonl, read_toml, write_json, write_jsonl, write_toml};
use crate::maps::{Field, Maps, SURFACE_QUANTITIES, bilinear, linspace, pchip, write_maps};
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
    /// Held-out examples on which R, D, C are also measured (the train/held-out gap).
    pub probe_size: usize,
    /// Fresh noise draws per training example when the surface is measured on the
    /// training data (the functionals the identities are about).
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// When a residual counts as a violation (`factor` error estimates; `floor`).
    #[serde(default)]
    pub checks: CheckSettings,
    /// When the equilibration of a point (after the first) stops: a measured criterion
    /// (`{ rule = "stationary", ... }`), or `steps_per_point` fixed steps where absent;
    /// the first point of a shard gets `first_point_steps` as its budget (`max_steps`).
    #[serde(default)]
    pub equilibrium: Option<StoppingRule>,
    /// Seed of noise and data order.
    pub seed: u64,
}

fn default_samples() -> usize {
    8
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
    /// A process trace (`trace.jsonl` of `fep iso-classification`) whose (lambda, gamma)
    /// path is drawn on the maps of the surface, if the file exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_trace: Option<PathBuf>,
}

impl SurfaceConfig {
    /// Reads and validates a surface config.
    pub fn load(path: &Path) -> Result<Self> {
        let cfg: SurfaceConfig = read_toml(path)?;
        cfg.grid
            .validate()
            .and_then(|()| cfg.sweep.checks.validate())
            .context_with(|| format!("in {}", path.display()))?;
        if cfg.sweep.samples < 2 {
            return Err(invalid(format!(
                "in {}: [sweep] samples must be at least 2 (noise is estimated from the spread of the draws)",
                path.display()
            )));
        }
        Ok(cfg)
    }
}

/// Where and how a surface sweep runs.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct SurfaceOptions {
    /// TOML with source_checkpoint, [data], [grid], [sweep].
    #[cfg_attr(
        feature = "cli",
        arg(long, global = true, default_value = "experiments/surface.toml")
    )]
    pub config: PathBuf,
    /// Folder with the dataset files (default: the bundled subset).
    #[cfg_attr(feature = "cli", arg(long, global = true))]
    pub data_dir: Option<PathBuf>,
    /// Result directory (shards go to <out>/shards/).
    #[cfg_attr(
        feature = "cli",
        arg(long, global = true, default_value = "runs/surface")
    )]
    pub out: PathBuf,
    /// Run only shard i of n (1-based), e.g. `--shard 3/8` for task 3 of a job array of 8.
    #[cfg_attr(feature = "cli", arg(long, default_value = "1/1"))]
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
    /// The equilibrium point measured on the training data with fresh noise (`samples`
    /// draws per example), with the noise covariance of its functionals.
    pub point: SurfacePoint,
    /// Standard errors of the training-data functionals (noise only).
    pub standard_errors: StandardErrors,
    /// R, D, C on the held-out probe (validation split).
    pub held_out: Functionals,
    /// Test accuracy at the point.
    pub accuracy: f64,
    /// Seed of the sweep.
    pub seed: u64,
    /// Training examples measured.
    pub examples: usize,
    /// Seconds spent on this point.
    pub wall_seconds: f64,
    /// How its equilibration went.
    pub equilibrium: EquilibriumReport,
}

/// One line of `surface.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurfaceRow {
    /// The equilibrium point (training data, fresh noise).
    #[serde(flatten)]
    pub point: SurfacePoint,
    /// Standard errors of its functionals (noise only).
    pub standard_errors: StandardErrors,
    /// R, D, C on the held-out probe.
    pub held_out: Functionals,
    /// Test accuracy at the point.
    pub accuracy: f64,
    /// The shard that measured it.
    pub shard: usize,
    /// How its equilibration went.
    pub equilibrium: EquilibriumReport,
}

/// `summary.json` of a merged surface (format [`SUMMARY_FORMAT`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurfaceSummary {
    /// The version of this file's layout ([`crate::format`] upgrades older ones).
    pub format: u32,
    /// Grid values of lambda.
    pub lambdas: Vec<f64>,
    /// Grid values of gamma.
    pub gammas: Vec<f64>,
    /// The measured identities, on the training-data functionals.
    pub checks: SurfaceChecks,
    /// Where the functionals of the checks come from.
    pub measurement: SurfaceMeasurement,
    /// How far the held-out functionals are from the training ones.
    pub held_out_gap: HeldOutGap,
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
    /// How the points' equilibrations went (`None`: not recorded, in files upgraded from
    /// format 1).
    pub equilibrium: Option<SweepEquilibrium>,
    /// The config.
    pub config: SurfaceConfig,
}

impl Versioned for SurfaceSummary {
    fn upgrade_step(map: &mut Map<String, Value>, from: u32) -> Result2 {
        debug_assert_eq!(from, 1, "format 2 is the current one");
        map.entry("equilibrium").or_insert(Value::Null);
        Ok(())
    }
}

/// Where the functionals of the checks come from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SurfaceMeasurement {
    /// Training examples measured at every point.
    pub examples: usize,
    /// Fresh noise draws per example.
    pub samples: usize,
    /// Largest standard error of R, D, C over the points (noise only, nats).
    pub max_standard_errors: StandardErrors,
}

/// Largest `held-out - training` difference of each functional over the points (nats):
/// where the identities would be tested if they were measured on held-out data.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct HeldOutGap {
    /// Of R.
    pub rate: f64,
    /// Of D.
    pub distortion: f64,
    /// Of C.
    pub classification: f64,
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
        let held_out = point.functionals;
        let measured = sweep
            .system()
            .measure(&domains.source.train, s.samples, s.seed)?;
        let point = SurfacePoint::new(point.multipliers(), measured.functionals)
            .with_covariance(measured.noise_covariance);
        let standard_errors = standard_errors(&measured.noise_covariance);
        let f = point.functionals;
        progress.suspend(|| {
            eprintln!(
                "surface: lambda {:.3} gamma {:.3}  train R {:.3}  D {:.3} (+-{:.3})  C {:.4}  acc {:.2}%  ({} steps{})",
                point.lambda,
                point.gamma,
                f.rate,
                f.distortion,
                standard_errors.distortion,
                f.classification,
                100.0 * accuracy,
                equilibrium.steps,
                if equilibrium.met { "" } else { ", criterion not met" }
            )
        });
        records.push(ShardRecord {
            shard: options.shard.index + 1,
            of: options.shard.count,
            i,
            j,
            point,
            standard_errors,
            held_out,
            accuracy,
            seed: s.seed,
            examples: measured.examples,
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
    let places = grid.check_places(cfg.sweep.checks)?;
    write_jsonl(&out.join("checks.jsonl"), &places)?;
    let checks = SurfaceChecks::of(&places, cfg.sweep.checks);
    let rows: Vec<SurfaceRow> = records
        .iter()
        .map(|r| SurfaceRow {
            point: r.point,
            standard_errors: r.standard_errors,
            held_out: r.held_out,
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
        // A grid with fewer than three values on an axis has no quadratic fit: the
        // summary then holds none (the checks and the pictures do not use it).
        match QuadraticFit::fit(&grid, get) {
            Ok(fit) => {
                fits.insert(name.to_string(), fit);
            }
            Err(e) => tracing::info!("no quadratic fit of {name}: {e}"),
        }
    }
    let summary = SurfaceSummary {
        format: SUMMARY_FORMAT,
        lambdas: cfg.grid.lambdas.clone(),
        gammas: cfg.grid.gammas.clone(),
        checks,
        measurement: SurfaceMeasurement {
            examples: records.first().map_or(0, |r| r.examples),
            samples: cfg.sweep.samples,
            max_standard_errors: StandardErrors {
                rate: max_of(&records, |r| r.standard_errors.rate),
                distortion: max_of(&records, |r| r.standard_errors.distortion),
                classification: max_of(&records, |r| r.standard_errors.classification),
            },
        },
        held_out_gap: HeldOutGap {
            rate: max_of(&records, |r| {
                (r.held_out.rate - r.point.functionals.rate).abs()
            }),
            distortion: max_of(&records, |r| {
                (r.held_out.distortion - r.point.functionals.distortion).abs()
            }),
            classification: max_of(&records, |r| {
                (r.held_out.classification - r.point.functionals.classification).abs()
            }),
        },
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
    let path = match &cfg.path_trace {
        Some(trace) if trace.is_file() => {
            let points: Vec<PathPoint> = read_jsonl(trace)?;
            Some((
                format!("path of {}", trace.display()),
                points.iter().map(|p| (p.lambda, p.gamma)).collect(),
            ))
        }
        Some(trace) => {
            tracing::warn!(
                "{} not found: the maps are drawn without a path",
                trace.display()
            );
            None
        }
        None => None,
    };
    let charts = write_surface_charts(out, &grid, path, &device)?;
    let mut files = vec![summary_path];
    files.extend(charts);
    Ok(Outcome { summary, files })
}

fn max_of(records: &[ShardRecord], get: impl Fn(&ShardRecord) -> f64) -> f64 {
    records.iter().map(get).fold(0.0, f64::max)
}

/// Square roots of the diagonal of a covariance.
fn standard_errors(cov: &[[f64; 3]; 3]) -> StandardErrors {
    StandardErrors {
        rate: cov[0][0].max(0.0).sqrt(),
        distortion: cov[1][1].max(0.0).sqrt(),
        classification: cov[2][2].max(0.0).sqrt(),
    }
}

/// A `(lambda, gamma)` of a process trace (other fields ignored).
#[derive(Debug, Clone, Copy, Deserialize)]
struct PathPoint {
    lambda: f64,
    gamma: f64,
}

/// The maps of F, R, D, C: bilinear between the measured nodes (no model of the surface),
/// the nodes on top, the process path of `path_trace` across.
fn surface_maps(grid: &SurfaceGrid, path: Option<(String, Vec<(f64, f64)>)>, device: &str) -> Maps {
    let lambdas = linspace(grid.lambdas[0], grid.lambdas[grid.lambdas.len() - 1], 80);
    let gammas = linspace(grid.gammas[0], grid.gammas[grid.gammas.len() - 1], 80);
    let fields = SURFACE_QUANTITIES
        .iter()
        .map(|(name, get)| {
            let nodes: Vec<Vec<f64>> = grid
                .points
                .iter()
                .map(|row| row.iter().map(get).collect())
                .collect();
            Field {
                name: name.to_string(),
                values: lambdas
                    .iter()
                    .map(|&l| {
                        gammas
                            .iter()
                            .map(|&g| bilinear(&grid.lambdas, &grid.gammas, &nodes, l, g))
                            .collect()
                    })
                    .collect(),
                points: grid
                    .points
                    .iter()
                    .flatten()
                    .map(|p| (p.lambda, p.gamma, get(p)))
                    .collect(),
            }
        })
        .collect();
    Maps {
        title: format!(
            "equilibrium surface on the training data (bilinear between measured points), {device}"
        ),
        lambdas,
        gammas,
        fields,
        path,
        points_label: "measured equilibria".into(),
    }
}

/// The rate-distortion curve of each gamma column: the measured points and a monotone
/// (PCHIP in lambda) interpolation of D and R through them.
pub(crate) fn rate_distortion_series(grid: &SurfaceGrid) -> Vec<Series> {
    let mut series = Vec::new();
    for (j, &g) in grid.gammas.iter().enumerate() {
        let (ls, ds, rs): (Vec<f64>, Vec<f64>, Vec<f64>) = grid
            .points
            .iter()
            .filter_map(|row| row.get(j))
            .map(|p| (p.lambda, p.functionals.distortion, p.functionals.rate))
            .fold(
                (vec![], vec![], vec![]),
                |(mut a, mut b, mut c), (l, d, r)| {
                    a.push(l);
                    b.push(d);
                    c.push(r);
                    (a, b, c)
                },
            );
        let fine = linspace(ls[0], ls[ls.len() - 1], 60);
        series.push(Series {
            label: format!("gamma = {g:.2}, monotone interpolation"),
            points: fine
                .iter()
                .map(|&l| (pchip(&ls, &ds, l), pchip(&ls, &rs, l)))
                .collect(),
            mark: Mark::Line,
            color: j,
        });
        series.push(Series {
            label: format!("gamma = {g:.2}, measured"),
            points: grid.rate_distortion_at_gamma(j),
            mark: Mark::Points,
            color: j,
        });
    }
    series
}

fn write_surface_charts(
    out: &Path,
    grid: &SurfaceGrid,
    path: Option<(String, Vec<(f64, f64)>)>,
    device: &str,
) -> Result<Vec<PathBuf>> {
    let rd = Chart {
        title: format!("equilibrium surface projected on (D, R), training data, {device}"),
        x_label: "distortion D (nats)".into(),
        y_label: "rate R (nats)".into(),
        series: rate_distortion_series(grid),
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
        title: format!("C against gamma at each lambda, training data, {device}"),
        x_label: "gamma".into(),
        y_label: "classification loss C (nats)".into(),
        series,
    };
    Ok(vec![
        write_maps(&out.join("surface_maps"), &surface_maps(grid, path, device))?,
        write_chart_files(&out.join("surface_rate_distortion"), &rd)?,
        write_chart_files(&out.join("surface_classification"), &cg)?,
    ])
}
