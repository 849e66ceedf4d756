//! `exact surface`: the trained exact model over a (lambda, gamma) grid beside the closed
//! form, the identities of both surfaces measured, maps and the (D, R) projection.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use fep_thermo::exact::{ClosedForm, ExactConfig, ExactSystem};
use fep_thermo::surface::{
    CheckSettings, GridSpec, Place, SurfaceChecks, SurfaceGrid, SurfacePoint,
};
use fep_thermo::{Multipliers, ThermodynamicSystem};
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::io::{write_json, write_jsonl};
use crate::maps::{Field, Maps, SURFACE_QUANTITIES, linspace, node_points, write_maps};
use crate::plot::{Chart, Mark, Series, write_chart};
use crate::progress::bar;
use crate::provenance::device_name;

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
            points: node_points(trained, *get),
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
    let Some(&l_max) = grid.lambdas.last() else {
        return Err(invalid("the lambda grid is empty"));
    };
    let cf = ClosedForm::new(
        &config.source_moments()?,
        config.model.sigma0,
        config.model.sigmac,
    )?;
    let sweep = sweep::<B>(device, config, grid, &cf)?;
    let (trained_places, exact_places) = (
        sweep.trained.check_places(settings.trained)?,
        sweep.exact.check_places(settings.closed_form)?,
    );
    let c0 = cf
        .point(Multipliers::new(l_max, iso_gamma))?
        .functionals
        .classification;
    let summary = ExactSurfaceSummary {
        seed: config.model.seed,
        device: device_name::<B>(device),
        lambdas: grid.lambdas.clone(),
        gammas: grid.gammas.clone(),
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
        write_jsonl(&dir.join("surface.jsonl"), &sweep.rows)?;
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
        write_surface_plots(dir, &cf, &sweep.trained, c0)?;
    }
    Ok(summary)
}

/// The trained and the closed-form surface over the same grid.
struct Sweep {
    trained: SurfaceGrid,
    exact: SurfaceGrid,
    rows: Vec<ExactSurfaceRow>,
}

/// Trains the exact model at every grid point: a cold start at the first, warm starts
/// from the neighbour after, each until the training's stopping rule.
fn sweep<B: AutodiffBackend>(
    device: &B::Device,
    config: &ExactConfig,
    grid: &GridSpec,
    cf: &ClosedForm,
) -> Result<Sweep> {
    let mut system = ExactSystem::<B>::from_config(config, device)?;
    let rule = config.training.equilibrium_rule();
    let progress = bar((grid.lambdas.len() * grid.gammas.len()) as u64, "surface");
    let (mut trained, mut exact, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &l) in grid.lambdas.iter().enumerate() {
        let (mut trained_row, mut exact_row) = (Vec::new(), Vec::new());
        for (j, &g) in grid.gammas.iter().enumerate() {
            let m = Multipliers::new(l, g);
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
        lambdas: grid.lambdas.clone(),
        gammas: grid.gammas.clone(),
        points,
    };
    Ok(Sweep {
        trained: to_grid(trained),
        exact: to_grid(exact),
        rows,
    })
}

/// The maps of F, R, D, C with the closed-form iso-classification path at `c0`, and the
/// surface projected on (D, R): closed-form curves and trained points per gamma, the
/// iso-classification curve on top.
fn write_surface_plots(dir: &Path, cf: &ClosedForm, trained: &SurfaceGrid, c0: f64) -> Result<()> {
    let (lambdas, gammas) = (&trained.lambdas, &trained.gammas);
    let (l_first, l_max) = (lambdas[0], lambdas[lambdas.len() - 1]);
    let mut series = Vec::new();
    for (j, &g) in gammas.iter().enumerate() {
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
            points: trained.rate_distortion_at_gamma(j),
            mark: Mark::Points,
            color: j,
        });
    }
    let (mut iso, mut iso_path) = (Vec::new(), Vec::new());
    for k in 0..=40 {
        let l = l_max + (l_first - l_max) * k as f64 / 40.0;
        if let Ok(g) = cf.gamma_for_classification(l, c0) {
            let p = cf.point(Multipliers::new(l, g))?.functionals;
            iso.push((p.distortion, p.rate));
            iso_path.push((l, g));
        }
    }
    let label = format!("closed-form iso-classification C = {c0:.3}");
    write_maps(
        &dir.join("surface_maps"),
        &exact_maps(cf, trained, (label, iso_path))?,
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
    Ok(())
}
