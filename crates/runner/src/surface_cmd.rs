//! `fep surface`: the equilibrium surface of a deep model over a (lambda, gamma) grid,
//! each point trained to equilibrium warm-started from its neighbour, sharded for job
//! arrays (`--shard i/n`), joined by `fep surface merge`, with the measured checks of the
//! thermodynamic identities and plots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, Subcommand};
use fep_models::checkpoint;
use fep_models::system::{DeepSystem, EquilibrationSettings};
use fep_models::train::Trainer;
use fep_thermo::{Multipliers, SurfaceGrid, SurfacePoint, ThermodynamicSystem};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::backend::device_name;
use crate::deep::{DataConfig, load_domains, read_toml};
use crate::output::{write_json, write_jsonl};
use crate::plot::{Chart, Mark, Series, write_chart};
use crate::progress::bar;

/// The `[grid]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridConfig {
    /// lambda values, increasing.
    pub lambdas: Vec<f64>,
    /// gamma values, increasing.
    pub gammas: Vec<f64>,
}

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
    /// Seed of noise and data order.
    pub seed: u64,
}

/// The config file of `fep surface`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurfaceConfig {
    /// Model every shard starts from.
    pub source_checkpoint: PathBuf,
    /// Data (source classes only).
    pub data: DataConfig,
    /// The grid.
    pub grid: GridConfig,
    /// Training per point.
    pub sweep: SweepConfig,
}

/// `fep surface`.
#[derive(Debug, Args)]
pub struct SurfaceArgs {
    /// Run or merge.
    #[command(subcommand)]
    pub action: Option<SurfaceAction>,
    /// TOML with source_checkpoint, [data], [grid], [sweep].
    #[arg(long, default_value = "experiments/surface.toml")]
    pub config: PathBuf,
    /// Folder with the dataset files (default: the bundled subset).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Result directory (shards go to <out>/shards/).
    #[arg(long, default_value = "runs/surface")]
    pub out: PathBuf,
    /// Run only shard i of n (1-based), e.g. `--shard 3/8` for task 3 of a job array of 8.
    #[arg(long)]
    pub shard: Option<String>,
}

/// `fep surface merge`.
#[derive(Debug, Subcommand)]
pub enum SurfaceAction {
    /// Join the shards in <out>/shards/, check completeness, run the checks and plot.
    Merge,
}

/// A shard `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based index.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

/// Parses `i/n` (1-based i).
pub fn parse_shard(spec: &str) -> Result<Shard> {
    let (i, n) = spec
        .split_once('/')
        .with_context(|| format!("--shard must look like i/n (for example 3/8), got `{spec}`"))?;
    let i: usize = i
        .trim()
        .parse()
        .with_context(|| format!("--shard: `{i}` is not a number"))?;
    let n: usize = n
        .trim()
        .parse()
        .with_context(|| format!("--shard: `{n}` is not a number"))?;
    if n == 0 || i == 0 || i > n {
        bail!("--shard i/n needs 1 <= i <= n, got {spec}");
    }
    Ok(Shard {
        index: i - 1,
        count: n,
    })
}

/// Grid indices `(i, j)` in boustrophedon order: lambda rows in turn, gamma alternately
/// up and down, so consecutive points are neighbours (warm starts move one grid step).
pub fn snake_order(n_lambda: usize, n_gamma: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(n_lambda * n_gamma);
    for i in 0..n_lambda {
        if i % 2 == 0 {
            out.extend((0..n_gamma).map(|j| (i, j)));
        } else {
            out.extend((0..n_gamma).rev().map(|j| (i, j)));
        }
    }
    out
}

/// The contiguous slice of the snake order that a shard runs (sizes differ by at most one).
pub fn shard_points(order: &[(usize, usize)], shard: Shard) -> Vec<(usize, usize)> {
    let n = order.len();
    let start = shard.index * n / shard.count;
    let end = (shard.index + 1) * n / shard.count;
    order[start..end].to_vec()
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
}

fn validate_grid(grid: &GridConfig) -> Result<()> {
    for (name, v) in [("lambdas", &grid.lambdas), ("gammas", &grid.gammas)] {
        if v.len() < 2 {
            bail!("[grid] {name} needs at least two values");
        }
        if v.windows(2).any(|w| w[0] >= w[1]) || v.iter().any(|x| !x.is_finite() || *x < 0.0) {
            bail!("[grid] {name} must be finite, non-negative and strictly increasing: {v:?}");
        }
    }
    Ok(())
}

/// Joins shard records into the grid, refusing duplicates, foreign points and gaps.
pub fn merge_records(grid: &GridConfig, records: &[ShardRecord]) -> Result<SurfaceGrid> {
    let (nl, ng) = (grid.lambdas.len(), grid.gammas.len());
    let mut cells: BTreeMap<(usize, usize), &ShardRecord> = BTreeMap::new();
    for r in records {
        if r.i >= nl || r.j >= ng {
            bail!(
                "shard {}/{} has a point ({}, {}) outside the {nl} x {ng} grid",
                r.shard,
                r.of,
                r.i,
                r.j
            );
        }
        let (l, g) = (grid.lambdas[r.i], grid.gammas[r.j]);
        if (r.point.lambda - l).abs() > 1e-9 || (r.point.gamma - g).abs() > 1e-9 {
            bail!(
                "shard {}/{}: point ({}, {}) was run at (lambda, gamma) = ({}, {}) but the grid says ({l}, {g}); was the config changed between shards?",
                r.shard,
                r.of,
                r.i,
                r.j,
                r.point.lambda,
                r.point.gamma
            );
        }
        if let Some(prev) = cells.insert((r.i, r.j), r) {
            bail!(
                "point (lambda {l}, gamma {g}) appears twice (shards {}/{} and {}/{})",
                prev.shard,
                prev.of,
                r.shard,
                r.of
            );
        }
    }
    let missing: Vec<String> = (0..nl)
        .flat_map(|i| (0..ng).map(move |j| (i, j)))
        .filter(|c| !cells.contains_key(c))
        .map(|(i, j)| format!("(lambda {}, gamma {})", grid.lambdas[i], grid.gammas[j]))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} of {} grid points are missing: {}; run the shards that hold them",
            missing.len(),
            nl * ng,
            missing.join(", ")
        );
    }
    let points = (0..nl)
        .map(|i| (0..ng).map(|j| cells[&(i, j)].point).collect())
        .collect();
    Ok(SurfaceGrid {
        lambdas: grid.lambdas.clone(),
        gammas: grid.gammas.clone(),
        points,
    })
}

fn shard_path(out: &Path, shard: Shard) -> PathBuf {
    out.join("shards").join(format!(
        "shard-{}-of-{}.jsonl",
        shard.index + 1,
        shard.count
    ))
}

/// `fep surface [--shard i/n]` and `fep surface merge` on backend B.
pub fn surface<B: AutodiffBackend>(device: &B::Device, args: &SurfaceArgs) -> Result<()> {
    let cfg: SurfaceConfig = read_toml(&args.config)?;
    validate_grid(&cfg.grid).with_context(|| format!("in {}", args.config.display()))?;
    if let Some(SurfaceAction::Merge) = args.action {
        return merge(&cfg, &args.out, device_name::<B>(device));
    }
    let shard = match &args.shard {
        Some(s) => parse_shard(s)?,
        None => Shard { index: 0, count: 1 },
    };
    run_shard::<B>(device, &cfg, args, shard)?;
    if shard.count == 1 {
        merge(&cfg, &args.out, device_name::<B>(device))?;
    } else {
        println!(
            "shard {}/{} done; when all shards are, run `fep surface merge --config {} --out {}`",
            shard.index + 1,
            shard.count,
            args.config.display(),
            args.out.display()
        );
    }
    Ok(())
}

fn run_shard<B: AutodiffBackend>(
    device: &B::Device,
    cfg: &SurfaceConfig,
    args: &SurfaceArgs,
    shard: Shard,
) -> Result<()> {
    let domains = load_domains(&cfg.data, args.data_dir.as_deref())?;
    let points = shard_points(
        &snake_order(cfg.grid.lambdas.len(), cfg.grid.gammas.len()),
        shard,
    );
    let path = &cfg.source_checkpoint;
    if !path.is_file() {
        bail!(
            "source checkpoint {} not found: train one first with `fep train-source`",
            path.display()
        );
    }
    let (model, header) = checkpoint::load_model::<B>(path, device)?;
    let s = &cfg.sweep;
    let mut train = header.train.clone();
    train.batch_size = s.batch_size;
    train.learning_rate = s.learning_rate;
    train.seed = s.seed;
    let trainer = Trainer::new(model, train, device.clone())?;
    let source = &domains.source;
    let probe = source.validation.take(s.probe_size);
    let mut system = DeepSystem::new(
        trainer,
        source.train.clone(),
        source.train.clone(),
        &probe,
        &probe,
        EquilibrationSettings {
            learning_rate: s.learning_rate,
            binarization: cfg.data.binarization(s.seed),
        },
    )?;
    std::fs::create_dir_all(args.out.join("shards"))
        .with_context(|| format!("cannot create {}", args.out.join("shards").display()))?;
    fep_data::atomic_write(
        args.out.join("config.toml"),
        toml::to_string_pretty(cfg)?.as_bytes(),
    )?;
    let file = shard_path(&args.out, shard);
    let progress = bar(points.len() as u64, "surface");
    let mut records = Vec::new();
    for (k, &(i, j)) in points.iter().enumerate() {
        let clock = Instant::now();
        let m = Multipliers::new(cfg.grid.lambdas[i], cfg.grid.gammas[j]);
        let steps = if k == 0 {
            s.first_point_steps
        } else {
            s.steps_per_point
        };
        let f = system.equilibrate(m, steps)?;
        f.check_finite(m)?;
        let accuracy = system.evaluate(&source.test)?.accuracy;
        let record = ShardRecord {
            shard: shard.index + 1,
            of: shard.count,
            i,
            j,
            point: SurfacePoint::new(m, f),
            accuracy,
            seed: s.seed,
            wall_seconds: clock.elapsed().as_secs_f64(),
        };
        progress.suspend(|| {
            eprintln!(
                "surface: lambda {:.3} gamma {:.3}  R {:.3}  D {:.3}  C {:.4}  acc {:.2}%",
                m.lambda,
                m.gamma,
                f.rate,
                f.distortion,
                f.classification,
                100.0 * accuracy
            )
        });
        records.push(record);
        // Rewritten atomically after every point: a killed shard keeps what it finished.
        write_jsonl(&file, &records)?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    println!("wrote {} ({} points)", file.display(), records.len());
    Ok(())
}

fn read_shards(out: &Path) -> Result<Vec<ShardRecord>> {
    let dir = out.join("shards");
    let entries = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "no shard directory {} (run `fep surface --shard i/n` first)",
            dir.display()
        )
    })?;
    let mut records = Vec::new();
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    for f in files {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let r: ShardRecord = serde_json::from_str(line).with_context(|| {
                format!("{}: line {} is not a surface point", f.display(), n + 1)
            })?;
            records.push(r);
        }
    }
    Ok(records)
}

/// Least-squares fit of `a + b l + c g + d l^2 + e l g + f g^2` to values on the grid.
fn fit_quadratic(grid: &SurfaceGrid, get: fn(&SurfacePoint) -> f64) -> [f64; 6] {
    let mut ata = nalgebra::DMatrix::<f64>::zeros(6, 6);
    let mut atb = nalgebra::DVector::<f64>::zeros(6);
    for row in &grid.points {
        for p in row {
            let x = [
                1.0,
                p.lambda,
                p.gamma,
                p.lambda * p.lambda,
                p.lambda * p.gamma,
                p.gamma * p.gamma,
            ];
            for a in 0..6 {
                atb[a] += x[a] * get(p);
                for b in 0..6 {
                    ata[(a, b)] += x[a] * x[b];
                }
            }
        }
    }
    let sol = ata
        .clone()
        .lu()
        .solve(&atb)
        .unwrap_or_else(|| nalgebra::DVector::zeros(6));
    [sol[0], sol[1], sol[2], sol[3], sol[4], sol[5]]
}

fn eval_quadratic(c: &[f64; 6], l: f64, g: f64) -> f64 {
    c[0] + c[1] * l + c[2] * g + c[3] * l * l + c[4] * l * g + c[5] * g * g
}

fn merge(cfg: &SurfaceConfig, out: &Path, device: String) -> Result<()> {
    let records = read_shards(out)?;
    let grid = merge_records(&cfg.grid, &records)?;
    let checks = grid.checks(cfg.sweep.tolerance);
    let rows: Vec<serde_json::Value> = records
        .iter()
        .map(|r| json!({"lambda": r.point.lambda, "gamma": r.point.gamma, "rate": r.point.rate,
                        "distortion": r.point.distortion, "classification": r.point.classification,
                        "free_energy": r.point.free_energy, "accuracy": r.accuracy, "shard": r.shard}))
        .collect();
    write_jsonl(&out.join("surface.jsonl"), &rows)?;
    let fits: BTreeMap<&str, [f64; 6]> = [
        ("rate", fit_quadratic(&grid, |p| p.rate)),
        ("distortion", fit_quadratic(&grid, |p| p.distortion)),
        ("classification", fit_quadratic(&grid, |p| p.classification)),
        ("free_energy", fit_quadratic(&grid, |p| p.free_energy)),
    ]
    .into_iter()
    .collect();
    let wall: f64 = records.iter().map(|r| r.wall_seconds).sum();
    let summary = json!({
        "lambdas": cfg.grid.lambdas,
        "gammas": cfg.grid.gammas,
        "tolerance_nats": cfg.sweep.tolerance,
        "checks": checks,
        "quadratic_fits": fits,
        "fit_basis": "a + b lambda + c gamma + d lambda^2 + e lambda gamma + f gamma^2",
        "shards": records.iter().map(|r| r.of).max(),
        "seed": cfg.sweep.seed,
        "device": device,
        "wall_seconds_summed_over_points": wall,
        "config": cfg,
    });
    write_json(&out.join("summary.json"), &summary)?;
    // Projection on (D, R): measured points per gamma and the fitted surface's curves.
    let mut series = Vec::new();
    let (l0, l1) = (grid.lambdas[0], *grid.lambdas.last().expect("two lambdas"));
    for (j, &g) in grid.gammas.iter().enumerate() {
        series.push(Series {
            label: format!("measured, gamma = {g:.2}"),
            points: grid
                .points
                .iter()
                .map(|row| (row[j].distortion, row[j].rate))
                .collect(),
            mark: Mark::Points,
            color: j,
        });
        series.push(Series {
            label: format!("quadratic fit, gamma = {g:.2}"),
            points: (0..=40)
                .map(|k| {
                    let l = l0 + (l1 - l0) * k as f64 / 40.0;
                    (
                        eval_quadratic(&fits["distortion"], l, g),
                        eval_quadratic(&fits["rate"], l, g),
                    )
                })
                .collect(),
            mark: Mark::Line,
            color: j,
        });
    }
    write_chart(
        &out.join("surface_rate_distortion"),
        &Chart {
            title: format!("equilibrium surface projected on (D, R), {device}"),
            x_label: "distortion D (nats)".into(),
            y_label: "rate R (nats)".into(),
            series,
        },
    )?;
    let mut series = Vec::new();
    for (i, &l) in grid.lambdas.iter().enumerate() {
        series.push(Series {
            label: format!("lambda = {l:.2}"),
            points: grid.points[i]
                .iter()
                .map(|p| (p.gamma, p.classification))
                .collect(),
            mark: Mark::Line,
            color: i,
        });
    }
    write_chart(
        &out.join("surface_classification"),
        &Chart {
            title: format!("C against gamma at each lambda, {device}"),
            x_label: "gamma".into(),
            y_label: "classification loss C (nats)".into(),
            series,
        },
    )?;
    println!("{}", serde_json::to_string_pretty(&checks)?);
    println!("wrote {}", out.join("summary.json").display());
    println!(
        "      {}",
        out.join("surface_rate_distortion.png").display()
    );
    println!("      {}", out.join("surface_classification.png").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(shard: usize, of: usize, i: usize, j: usize, grid: &GridConfig) -> ShardRecord {
        let m = Multipliers::new(grid.lambdas[i], grid.gammas[j]);
        ShardRecord {
            shard,
            of,
            i,
            j,
            point: SurfacePoint::new(
                m,
                fep_thermo::Functionals {
                    rate: 1.0,
                    distortion: 2.0,
                    classification: 0.5,
                },
            ),
            accuracy: 0.9,
            seed: 1,
            wall_seconds: 0.1,
        }
    }

    #[test]
    fn shard_spec_is_one_based_and_checked() {
        assert_eq!(parse_shard("3/8").unwrap(), Shard { index: 2, count: 8 });
        assert!(parse_shard("0/8").is_err());
        assert!(parse_shard("9/8").is_err());
        assert!(parse_shard("x/8").is_err());
        assert!(parse_shard("3").is_err());
    }

    #[test]
    fn snake_order_visits_neighbours_and_shards_partition_it() {
        let order = snake_order(3, 4);
        assert_eq!(order.len(), 12);
        for w in order.windows(2) {
            let d = w[0].0.abs_diff(w[1].0) + w[0].1.abs_diff(w[1].1);
            assert_eq!(d, 1, "{:?} -> {:?} is not a grid step", w[0], w[1]);
        }
        for n in 1..=13 {
            let mut all = Vec::new();
            let mut sizes = Vec::new();
            for k in 0..n {
                let part = shard_points(&order, Shard { index: k, count: n });
                sizes.push(part.len());
                all.extend(part);
            }
            assert_eq!(
                all, order,
                "{n} shards cover the order exactly once, in order"
            );
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 1, "{n} shards: sizes {sizes:?}");
        }
    }

    #[test]
    fn merge_needs_every_point_once() {
        let grid = GridConfig {
            lambdas: vec![1.0, 2.0],
            gammas: vec![0.5, 1.0, 2.0],
        };
        let order = snake_order(2, 3);
        let mut recs = Vec::new();
        for k in 0..2 {
            for (i, j) in shard_points(&order, Shard { index: k, count: 2 }) {
                recs.push(record(k + 1, 2, i, j, &grid));
            }
        }
        let merged = merge_records(&grid, &recs).unwrap();
        assert_eq!(merged.points.len(), 2);
        assert_eq!(merged.points[1][2].gamma, 2.0);
        assert_eq!(merged.points[1][2].lambda, 2.0);
        // A missing point is named.
        let err = merge_records(&grid, &recs[1..]).unwrap_err().to_string();
        assert!(
            err.contains("missing") && err.contains("lambda 1, gamma 0.5"),
            "{err}"
        );
        // A duplicate is refused.
        let mut dup = recs.clone();
        dup.push(recs[0].clone());
        assert!(
            merge_records(&grid, &dup)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        // A point run on another grid is refused.
        let mut foreign = recs.clone();
        foreign[0].point.lambda = 7.0;
        assert!(
            merge_records(&grid, &foreign)
                .unwrap_err()
                .to_string()
                .contains("config")
        );
    }

    #[test]
    fn quadratic_fit_recovers_a_quadratic() {
        let lambdas = vec![0.5, 1.0, 2.0, 3.0];
        let gammas = vec![0.5, 1.0, 1.5];
        let truth = [1.0, -2.0, 0.5, 0.25, -0.1, 0.3];
        let points = lambdas
            .iter()
            .map(|&l| {
                gammas
                    .iter()
                    .map(|&g| {
                        let v = eval_quadratic(&truth, l, g);
                        SurfacePoint {
                            lambda: l,
                            gamma: g,
                            rate: v,
                            distortion: 0.0,
                            classification: 0.0,
                            free_energy: 0.0,
                        }
                    })
                    .collect()
            })
            .collect();
        let grid = SurfaceGrid {
            lambdas,
            gammas,
            points,
        };
        let fit = fit_quadratic(&grid, |p| p.rate);
        for (a, b) in fit.iter().zip(&truth) {
            assert!((a - b).abs() < 1e-9, "{fit:?}");
        }
    }
}
