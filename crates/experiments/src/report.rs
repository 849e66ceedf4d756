//! `docs/REPRODUCTION.md` from the typed summaries under `runs/`, with the figures copied
//! next to it and every number labelled with machine, backend, data, seed and wall time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fep_models::train::Metrics;
use serde::de::DeserializeOwned;

use crate::error::{ExperimentError, Result};
use crate::exact::ExactSurfaceSummary;
use crate::findings::{self, SurfaceContext};
use crate::format::{Versioned, read_summary};
use crate::io::read_json;
use crate::process::{IsoClassificationSummary, Method, MethodResult, TransferSummary};
use crate::provenance::machine;
use crate::seeds::TransferAggregate;
use crate::surface::SurfaceSummary;
use crate::train_source::TrainSourceSummary;

/// Where the report reads and writes.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ReportOptions {
    /// Folder holding train-source/, iso-classification/, transfer-iso-classification/, surface/.
    #[cfg_attr(feature = "cli", arg(long, default_value = "runs"))]
    pub runs: PathBuf,
    /// Markdown file to write (figures go to a figures/ folder beside it).
    #[cfg_attr(feature = "cli", arg(long, default_value = "docs/REPRODUCTION.md"))]
    pub out: PathBuf,
}

/// A summary of `dir/summary.json`: `None` if the experiment was not run, an error naming
/// the file if it is there but unreadable.
fn summary<T: DeserializeOwned>(dir: &Path) -> Result<Option<T>> {
    let path = dir.join("summary.json");
    if !path.is_file() {
        return Ok(None);
    }
    read_json(&path).map(Some)
}

/// The versioned summary of `dir/summary.json`, upgraded to the current format.
fn versioned<T: Versioned>(dir: &Path) -> Result<Option<T>> {
    let path = dir.join("summary.json");
    if !path.is_file() {
        return Ok(None);
    }
    read_summary(&path).map(Some)
}

fn copy_figure(src: &Path, figures: &Path, name: &str) -> Result<Option<String>> {
    if !src.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(src).map_err(|source| ExperimentError::Io {
        action: "read",
        path: src.to_path_buf(),
        source,
    })?;
    fep_data::atomic_write(figures.join(name), &bytes)?;
    Ok(Some(format!("figures/{name}")))
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn opt_pct(x: Option<f64>) -> String {
    x.map(pct).unwrap_or_else(|| "-".into())
}

fn label(device: &str, data_dir: &Path, seed: u64, wall: f64) -> String {
    format!(
        "backend `{device}`, data `{}`, seed {seed}, wall time {wall:.0} s",
        data_dir.display()
    )
}

struct Figures<'a> {
    runs: &'a Path,
    dir: PathBuf,
}

impl Figures<'_> {
    /// Copies `<runs>/<experiment>/<file>` as `figures/<name>` and links it with `caption`.
    fn embed(
        &self,
        md: &mut String,
        experiment: &str,
        file: &str,
        name: &str,
        caption: &str,
    ) -> Result<()> {
        let src = self.runs.join(experiment).join(file);
        if let Some(rel) = copy_figure(&src, &self.dir, name)? {
            writeln!(md, "![{caption}]({rel})\n").map_err(fmt_error)?;
        }
        Ok(())
    }
}

fn fmt_error(e: std::fmt::Error) -> ExperimentError {
    ExperimentError::Invalid(format!("formatting the report: {e}"))
}

fn train_source_section(md: &mut String, s: &TrainSourceSummary, fig: &Figures) -> Result<()> {
    writeln!(
        md,
        "{} on digits {:?} at (lambda, gamma) = ({}, {}), {} epochs; {}.\n",
        s.config.model.architecture.name(),
        s.config.data.source_classes,
        s.lambda,
        s.gamma,
        s.epochs,
        label(&s.device, &s.data_dir, s.seed, s.wall_seconds)
    )
    .map_err(fmt_error)?;
    writeln!(
        md,
        "| split | R | D | C | accuracy | -ELBO |\n|---|---|---|---|---|---|"
    )
    .map_err(fmt_error)?;
    let rows: [(&str, &Metrics); 3] = [
        ("train", &s.train),
        ("validation", &s.validation),
        ("test", &s.test),
    ];
    for (split, m) in rows {
        let f = &m.functionals;
        writeln!(
            md,
            "| {split} | {:.3} | {:.3} | {:.4} | {} | {:.3} |",
            f.rate,
            f.distortion,
            f.classification,
            pct(m.accuracy),
            m.neg_elbo
        )
        .map_err(fmt_error)?;
    }
    writeln!(md).map_err(fmt_error)?;
    for (file, name, caption) in [
        ("curves.png", "train-source-curves.png", "Learning curves"),
        (
            "reconstructions.png",
            "train-source-reconstructions.png",
            "Test images (odd rows) and reconstructions",
        ),
        (
            "samples.png",
            "train-source-samples.png",
            "Samples from the prior",
        ),
    ] {
        fig.embed(md, "train-source", file, name, caption)?;
    }
    Ok(())
}

fn iso_section(md: &mut String, s: &IsoClassificationSummary, fig: &Figures) -> Result<()> {
    writeln!(
        md,
        "lambda {} -> {} with C held at C0 = {:.4} on the controller's probe ({}), beside the naive path (gamma fixed); {}. {}\n",
        s.start.lambda,
        s.end.lambda,
        s.held.c0,
        s.integrator,
        label(&s.device, &s.data_dir, s.seed, s.wall_seconds.total),
        independence_note(s.held.test_samples, s.held.c0_test)
    )
    .map_err(fmt_error)?;
    writeln!(
        md,
        "| path | max relative drift of C (test split, fresh noise) | on the controller's probe | final gamma | final R | final D | final C | accuracy |\n|---|---|---|---|---|---|---|---|"
    )
    .map_err(fmt_error)?;
    let measured = s.held.test_samples > 0;
    let mut line = |name: &str,
                    drift: f64,
                    controller: f64,
                    end: Option<&crate::process::iso_classification::PathEnd>| {
        let (independent, probe) = drifts(measured, drift, Some(controller));
        let cells = end.map_or_else(
            || "- | - | - | - | -".to_string(),
            |e| {
                format!(
                    "{:.3} | {:.3} | {:.3} | {:.4} | {}",
                    e.gamma,
                    e.functionals.rate,
                    e.functionals.distortion,
                    e.functionals.classification,
                    pct(e.accuracy)
                )
            },
        );
        writeln!(md, "| {name} | {independent} | {probe} | {cells} |")
    };
    line(
        "iso-classification",
        s.held.max_relative_drift,
        s.held.controller_max_relative_drift,
        Some(&s.end),
    )
    .map_err(fmt_error)?;
    line(
        "naive (gamma fixed)",
        s.naive.max_relative_drift,
        s.naive.controller_max_relative_drift,
        s.naive.end.as_ref(),
    )
    .map_err(fmt_error)?;
    writeln!(
        md,
        "\nRelative change of R along the iso-classification path: {}; steps where the corrector missed its tolerance: {}.\n",
        pct(s.rate_relative_change),
        s.held.unconverged_steps
    )
    .map_err(fmt_error)?;
    if let Some(e) = &s.held.equilibrium {
        writeln!(md, "Equilibrium: {}.\n", e.describe()).map_err(fmt_error)?;
    }
    for stem in ["classification", "rate", "gamma"] {
        fig.embed(
            md,
            "iso-classification",
            &format!("{stem}.png"),
            &format!("iso-{stem}.png"),
            &format!("iso-classification: {stem}"),
        )?;
    }
    Ok(())
}

/// What the drift columns say: the drift on the test splits (where measured) and on the
/// controller's probe.
fn drifts(measured: bool, drift: f64, controller: Option<f64>) -> (String, String) {
    let independent = if measured {
        pct(drift)
    } else {
        "not measured".into()
    };
    (independent, opt_pct(controller))
}

fn independence_note(samples: usize, c0_test: f64) -> String {
    if samples > 0 {
        format!(
            "Drift is measured apart from the controller: C on the test split(s) with fresh noise ({samples} draws per example), against C0 = {c0_test:.4} measured the same way at the start."
        )
    } else {
        "This run was not measured apart from the controller (a format-1 summary): its drift is the controller's own, on its probe.".into()
    }
}

fn method_row(name: &str, v: &MethodResult, drift: (String, String)) -> String {
    let (independent, probe) = drift;
    let steps = v
        .optimizer_steps
        .map_or_else(|| "-".to_string(), |n| n.to_string());
    format!(
        "| {name} | {} | {} | {:.3} | {:.3} | {:.4} | {independent} | {probe} | {steps} |",
        pct(v.target_accuracy),
        pct(v.source_accuracy),
        v.target.rate,
        v.target.distortion,
        v.target.classification
    )
}

fn transfer_section(md: &mut String, s: &TransferSummary, fig: &Figures) -> Result<()> {
    writeln!(
        md,
        "C on the {} probe of p_t held at C0 = {:.4}; {} path steps, t = s^{}; {} Adam steps of budget for every method; {}. {}\n",
        s.config.process.probe_split.describe(),
        s.held.c0,
        s.config.process.steps,
        s.config.process.data_exponent,
        s.budget.optimizer_steps,
        label(&s.device, &s.data_dir, s.seed, s.wall_seconds.total),
        independence_note(s.held.test_samples, s.held.c0_test)
    )
    .map_err(fmt_error)?;
    writeln!(
        md,
        "| method | target accuracy | source accuracy | R | D | C | max relative drift of C on p_t (test splits, fresh noise) | on the controller's probe | Adam steps |\n|---|---|---|---|---|---|---|---|---|"
    )
    .map_err(fmt_error)?;
    let measured = s.held.test_samples > 0;
    let method_drifts = |v: &MethodResult| match v.max_relative_drift {
        Some(d) => drifts(measured, d, v.controller_max_relative_drift),
        None => ("-".to_string(), "-".to_string()),
    };
    for (method, result) in s.methods() {
        let drift = if method == Method::IsoClassification {
            drifts(
                measured,
                s.held.max_relative_drift,
                Some(s.held.controller_max_relative_drift),
            )
        } else {
            method_drifts(result)
        };
        writeln!(md, "{}", method_row(method.name(), result, drift)).map_err(fmt_error)?;
    }
    writeln!(
        md,
        "\nR, D, C of the final models on the target test set. Steps where the corrector missed its tolerance (accepted and flagged): {}.\n",
        s.held.unconverged_steps
    )
    .map_err(fmt_error)?;
    if let Some(e) = &s.held.equilibrium {
        writeln!(
            md,
            "Equilibrium of the process: {}. The baselines train fixed budgets (the process's number of Adam steps).\n",
            e.describe()
        )
        .map_err(fmt_error)?;
    }
    for stem in [
        "classification",
        "accuracy",
        "gamma",
        "lambda",
        "rate",
        "distortion",
    ] {
        fig.embed(
            md,
            "transfer-iso-classification",
            &format!("{stem}.png"),
            &format!("transfer-{stem}.png"),
            &format!("transfer: {stem}"),
        )?;
    }
    Ok(())
}

fn surface_section(md: &mut String, s: &SurfaceSummary, fig: &Figures) -> Result<()> {
    let m = &s.measurement;
    writeln!(
        md,
        "Grid lambda = {:?}, gamma = {:?}; device `{}`, seed {}, {:.0} s of training summed over points. The identities are about the training objective, so R, D, C are measured on the training data ({} examples) with fresh noise, {} draws per example; their noise standard errors reach {:.4} (R), {:.4} (D), {:.5} (C) nats.\n",
        s.lambdas,
        s.gammas,
        s.device,
        s.seed,
        s.wall_seconds_summed_over_points,
        m.examples,
        m.samples,
        m.max_standard_errors.rate,
        m.max_standard_errors.distortion,
        m.max_standard_errors.classification,
    )
    .map_err(fmt_error)?;
    md.push_str(&findings::checks_table(&s.checks));
    writeln!(md).map_err(fmt_error)?;
    let ctx = SurfaceContext {
        not_at_equilibrium: s.equilibrium.map(|e| (e.points - e.met, e.points)),
    };
    md.push_str(&findings::check_prose(&s.checks, &ctx));
    writeln!(md).map_err(fmt_error)?;
    if let Some(e) = &s.equilibrium {
        writeln!(
            md,
            "Equilibrium: {} of {} points met {}; {} Adam steps in all.\n",
            e.met,
            e.points,
            crate::process::rows::describe_rule(&e.rule),
            e.optimizer_steps
        )
        .map_err(fmt_error)?;
    }
    let g = &s.held_out_gap;
    writeln!(
        md,
        "On held-out data (the validation probe) the functionals differ from the training ones by up to {:.2} nats in R, {:.2} in D and {:.3} in C: that gap, not a failure of the identities, is what checks on held-out data would measure.\n",
        g.rate, g.distortion, g.classification
    )
    .map_err(fmt_error)?;
    for (stem, what) in [
        (
            "surface_maps",
            "F, R, D, C over (lambda, gamma), measured points and the iso-classification path",
        ),
        (
            "surface_rate_distortion",
            "rate-distortion curves at each gamma",
        ),
        ("surface_classification", "C against gamma at each lambda"),
    ] {
        fig.embed(
            md,
            "surface",
            &format!("{stem}.png"),
            &format!("{stem}.png"),
            what,
        )?;
    }
    Ok(())
}

fn transfer_seeds_section(md: &mut String, a: &TransferAggregate, fig: &Figures) -> Result<()> {
    writeln!(
        md,
        "Seeds {:?} (each: its own source training and process), `{}`; mean +- sample standard deviation over seeds. C0 on the test splits: {}.\n",
        a.seeds,
        a.device,
        a.c0_test.show(1.0, 4)
    )
    .map_err(fmt_error)?;
    writeln!(
        md,
        "| method | target accuracy (%) | source accuracy (%) | R | D | C | max drift of C on p_t (%) | Adam steps |\n|---|---|---|---|---|---|---|---|"
    )
    .map_err(fmt_error)?;
    for (name, m) in &a.methods {
        writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            m.target_accuracy.show(100.0, 2),
            m.source_accuracy.show(100.0, 2),
            m.rate.show(1.0, 2),
            m.distortion.show(1.0, 2),
            m.classification.show(1.0, 4),
            m.drift_cell(),
            m.steps_cell(),
        )
        .map_err(fmt_error)?;
    }
    writeln!(md).map_err(fmt_error)?;
    for line in crate::seeds::transfer_differences(a) {
        writeln!(md, "- {line}").map_err(fmt_error)?;
    }
    writeln!(
        md,
        "\nC on p_t held within 5% of C0 (test splits, fresh noise), seed by seed:\n"
    )
    .map_err(fmt_error)?;
    for band in &a.bands {
        writeln!(md, "- {}", band.describe("t")).map_err(fmt_error)?;
    }
    writeln!(md).map_err(fmt_error)?;
    for (stem, what) in [
        (
            "seeds_drift_by_steps",
            "drift of C on p_t against the Adam steps spent, every method, mean and +- 1 sd over seeds",
        ),
        (
            "seeds_drift_by_t",
            "drift of C on p_t against t, the path methods, mean and +- 1 sd over seeds",
        ),
        (
            "seeds_target_accuracy_by_steps",
            "target test accuracy against the Adam steps spent, mean and +- 1 sd over seeds",
        ),
        (
            "seeds_source_accuracy_by_steps",
            "source test accuracy kept, mean and +- 1 sd over seeds",
        ),
    ] {
        fig.embed(
            md,
            "transfer-seeds",
            &format!("{stem}.png"),
            &format!("transfer_{stem}.png"),
            what,
        )?;
    }
    Ok(())
}

fn exact_surface_section(md: &mut String, s: &ExactSurfaceSummary, fig: &Figures) -> Result<()> {
    writeln!(
        md,
        "Grid lambda = {:?}, gamma = {:?}; device `{}`, model seed {}. The closed form is the equilibrium surface itself; the trained model is the Burn model of the same functionals trained to its gradient-norm criterion at every node.\n",
        s.lambdas, s.gammas, s.device, s.seed
    )
    .map_err(fmt_error)?;
    for (what, checks) in [
        ("Closed form", &s.checks.closed_form),
        ("Trained model", &s.checks.trained),
    ] {
        writeln!(md, "**{what}.**\n").map_err(fmt_error)?;
        md.push_str(&findings::checks_table(checks));
        writeln!(md).map_err(fmt_error)?;
        md.push_str(&findings::check_prose(checks, &SurfaceContext::default()));
        writeln!(md).map_err(fmt_error)?;
    }
    for (stem, what) in [
        (
            "surface_maps",
            "closed-form F, R, D, C with the trained points",
        ),
        (
            "surface_rate_distortion",
            "rate-distortion curves: closed form and trained",
        ),
    ] {
        fig.embed(
            md,
            "exact-surface",
            &format!("{stem}.png"),
            &format!("exact-{stem}.png"),
            what,
        )?;
    }
    Ok(())
}

const DEPARTURES: &str = "- Equilibrium is measured by a stationarity test of the minibatch functionals (each point records its steps and whether the test was met), not proven: each point is the average of the last window of Adam iterates, not the minimiser of J, and its functionals carry optimisation error and SGD noise of the order of the corrector tolerance.\n\
- Sensitivities come from truncated conjugate gradients on a damped, subsampled Hessian (finite-difference products); the predictor is therefore rough and a trust region caps it. The corrector, not the tangent, holds the constraint.\n\
- The surface checks are measured on finite grids: each residual is weighed against its own discretisation estimate (the embedded lower-order formula) and the noise of the functionals; what neither covers is distance from equilibrium.\n\
- Transfer: the target digits are unseen at t = 0. Holding C on p_t needs them learnt while their weight t is small, so the path spends its first steps at tiny t (t = s^3); where the corrector could not meet the tolerance within its iterations the step is accepted and flagged, and the drift is reported, not hidden. The corrector raises gamma (up to max_gamma) as the target's weight grows. Whether C can be held depends on the source's C0, not on its accuracy alone: C is measured on sampled z, accuracy at the posterior mean, and a source with a noisy posterior (small lambda) has a C0 that gamma can lower, which is the room the unseen digits need; from a confident source (C0 near the five-class limit) gamma reaches its cap and C leaves the band (measurements in docs/DEEP_MODELS.md).\n";

/// Writes the report of `options` and returns its path.
pub fn report(options: &ReportOptions) -> Result<PathBuf> {
    let doc_dir = options
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let fig = Figures {
        runs: &options.runs,
        dir: doc_dir.join("figures"),
    };
    crate::io::create_dir(&fig.dir)?;
    let runs = &options.runs;
    let mut md = String::new();
    writeln!(md, "# Reproduction report\n").map_err(fmt_error)?;
    writeln!(
        md,
        "Generated by `fep report` from the results under `{}/` (`just reproduce` regenerates everything). Machine: {}. All functionals in nats per example on held-out data unless stated.\n",
        runs.display(),
        machine()
    )
    .map_err(fmt_error)?;
    let not_run = |md: &mut String| writeln!(md, "Not run.\n").map_err(fmt_error);
    writeln!(md, "## 1. Source model (`just train-source`)\n").map_err(fmt_error)?;
    match summary::<TrainSourceSummary>(&runs.join("train-source"))? {
        Some(s) => train_source_section(&mut md, &s, &fig)?,
        None => not_run(&mut md)?,
    }
    writeln!(
        md,
        "## 2. Iso-classification on the source task (`just iso-classification`)\n"
    )
    .map_err(fmt_error)?;
    match versioned::<IsoClassificationSummary>(&runs.join("iso-classification"))? {
        Some(s) => iso_section(&mut md, &s, &fig)?,
        None => not_run(&mut md)?,
    }
    let iso_seeds = runs.join("iso-classification-seeds").join("aggregate.json");
    if iso_seeds.is_file() {
        let a: crate::seeds::IsoAggregate = read_json(&iso_seeds)?;
        writeln!(
            md,
            "### Iso-classification over seeds (`just iso-classification-seeds`)\n\nSeeds {:?} (each: its own source training and process), `{}`; mean +- sample standard deviation. C0 on the test split {}; largest drift of C (test split, fresh noise) along the iso-classification path {}%, along the naive path (gamma fixed) {}%; R changes by {}% along the path.\n",
            a.seeds,
            a.device,
            a.c0_test.show(1.0, 4),
            a.max_relative_drift.show(100.0, 2),
            a.naive_max_relative_drift.show(100.0, 2),
            a.rate_relative_change.show(100.0, 1)
        )
        .map_err(fmt_error)?;
        writeln!(
            md,
            "C held within 3% of C0 (test split, fresh noise), seed by seed:\n"
        )
        .map_err(fmt_error)?;
        for band in &a.bands {
            writeln!(md, "- {}", band.describe("s")).map_err(fmt_error)?;
        }
        writeln!(md).map_err(fmt_error)?;
        fig.embed(
            &mut md,
            "iso-classification-seeds",
            "seeds_drift.png",
            "iso_seeds_drift.png",
            "drift of C along the iso-classification and the naive paths, mean and +- 1 sd over seeds",
        )?;
    }
    writeln!(
        md,
        "## 3. Transfer digits 0-4 -> 5-9 with C held (`just transfer-iso-classification`)\n"
    )
    .map_err(fmt_error)?;
    match versioned::<TransferSummary>(&runs.join("transfer-iso-classification"))? {
        Some(s) => transfer_section(&mut md, &s, &fig)?,
        None => not_run(&mut md)?,
    }
    let seeds = runs.join("transfer-seeds").join("aggregate.json");
    if seeds.is_file() {
        writeln!(md, "### Transfer over seeds (`just transfer-seeds`)\n").map_err(fmt_error)?;
        transfer_seeds_section(&mut md, &read_json(&seeds)?, &fig)?;
    }
    writeln!(md, "## 4. Equilibrium surface (`just surface`)\n").map_err(fmt_error)?;
    match versioned::<SurfaceSummary>(&runs.join("surface"))? {
        Some(s) => surface_section(&mut md, &s, &fig)?,
        None => not_run(&mut md)?,
    }
    writeln!(
        md,
        "## 5. Equilibrium surface of the exact model (`just exact-surface`)\n"
    )
    .map_err(fmt_error)?;
    match summary::<ExactSurfaceSummary>(&runs.join("exact-surface"))? {
        Some(s) => exact_surface_section(&mut md, &s, &fig)?,
        None => not_run(&mut md)?,
    }
    writeln!(
        md,
        "## Where the deep models depart from the ideal identities\n\n{DEPARTURES}"
    )
    .map_err(fmt_error)?;
    fep_data::atomic_write(&options.out, md.as_bytes())?;
    Ok(options.out.clone())
}
