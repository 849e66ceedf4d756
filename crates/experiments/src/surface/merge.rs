//! Merging the shards of a surface: the grid assembled and checked for completeness, the
//! identities measured, quadratic fits, the summary, the maps and charts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fep_models::StandardErrors;
use fep_thermo::Functionals;
use fep_thermo::surface::{
    GridCell, QuadraticFit, SurfaceChecks, SurfaceGrid, SurfacePoint, assemble_grid,
};
use serde::Deserialize;

use super::config::SurfaceConfig;
use super::records::{
    HeldOutGap, ShardRecord, SurfaceMeasurement, SurfaceRow, SurfaceSummary, SweepEquilibrium,
};
use crate::Outcome;
use crate::error::{Result, invalid};
use crate::format::SUMMARY_FORMAT;
use crate::io::{read_jsonl, write_json, write_jsonl};
use crate::maps::{
    Field, Maps, SURFACE_QUANTITIES, bilinear, linspace, node_points, pchip, write_maps,
};
use crate::plot::{Chart, Mark, Series, write_chart_files};

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
    let summary = summarise(
        cfg,
        &records,
        SurfaceChecks::of(&places, cfg.sweep.checks),
        quadratic_fits(&grid),
        device.clone(),
    );
    let summary_path = out.join("summary.json");
    write_json(&summary_path, &summary)?;
    let charts = write_surface_charts(out, &grid, path_overlay(cfg)?, &device)?;
    let mut files = vec![summary_path];
    files.extend(charts);
    Ok(Outcome { summary, files })
}

/// Least-squares quadratics in (lambda, gamma) of R, D, C and F. A grid with fewer than
/// three values on an axis has no quadratic fit: the summary then holds none (the checks
/// and the pictures do not use it).
fn quadratic_fits(grid: &SurfaceGrid) -> BTreeMap<String, [f64; 6]> {
    type Get = fn(&SurfacePoint) -> f64;
    let quantities: [(&str, Get); 4] = [
        ("rate", |p| p.functionals.rate),
        ("distortion", |p| p.functionals.distortion),
        ("classification", |p| p.functionals.classification),
        ("free_energy", |p| p.free_energy),
    ];
    let mut fits = BTreeMap::new();
    for (name, get) in quantities {
        match QuadraticFit::fit(grid, get) {
            Ok(fit) => {
                fits.insert(name.to_string(), fit.coefficients);
            }
            Err(e) => tracing::info!("no quadratic fit of {name}: {e}"),
        }
    }
    fits
}

/// The summary of the merged shards.
fn summarise(
    cfg: &SurfaceConfig,
    records: &[ShardRecord],
    checks: SurfaceChecks,
    quadratic_fits: BTreeMap<String, [f64; 6]>,
    device: String,
) -> SurfaceSummary {
    let gap = |get: fn(&Functionals) -> f64| {
        max_of(records, |r| {
            (get(&r.held_out) - get(&r.point.functionals)).abs()
        })
    };
    SurfaceSummary {
        format: SUMMARY_FORMAT,
        lambdas: cfg.grid.lambdas.clone(),
        gammas: cfg.grid.gammas.clone(),
        checks,
        measurement: SurfaceMeasurement {
            examples: records.first().map_or(0, |r| r.examples),
            samples: cfg.sweep.samples,
            max_standard_errors: StandardErrors {
                rate: max_of(records, |r| r.standard_errors.rate),
                distortion: max_of(records, |r| r.standard_errors.distortion),
                classification: max_of(records, |r| r.standard_errors.classification),
            },
        },
        held_out_gap: HeldOutGap {
            rate: gap(|f| f.rate),
            distortion: gap(|f| f.distortion),
            classification: gap(|f| f.classification),
        },
        quadratic_fits,
        fit_basis: "a + b lambda + c gamma + d lambda^2 + e lambda gamma + f gamma^2".into(),
        shards: records.iter().map(|r| r.of).max(),
        seed: cfg.sweep.seed,
        device,
        wall_seconds_summed_over_points: records.iter().map(|r| r.wall_seconds).sum(),
        equilibrium: Some(SweepEquilibrium {
            rule: cfg.sweep.point_rule(),
            points: records.len(),
            met: records.iter().filter(|r| r.equilibrium.met).count(),
            optimizer_steps: records.iter().map(|r| r.equilibrium.steps).sum(),
        }),
        config: cfg.clone(),
    }
}

/// A path in (lambda, gamma) with its legend.
type LabelledPath = (String, Vec<(f64, f64)>);

/// The process path of `path_trace`, to draw across the maps (none where not given or
/// not found).
fn path_overlay(cfg: &SurfaceConfig) -> Result<Option<LabelledPath>> {
    Ok(match &cfg.path_trace {
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
    })
}

fn max_of(records: &[ShardRecord], get: impl Fn(&ShardRecord) -> f64) -> f64 {
    records.iter().map(get).fold(0.0, f64::max)
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
                points: node_points(grid, *get),
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
