//! The report's sections on the processes: iso-classification and the transfer, single
//! runs and over seeds.

use std::fmt::Write as _;

use super::markdown::{Figures, fmt_error, label, opt_pct, pct};
use crate::error::Result;
use crate::process::{
    HeldConstraint, IsoClassificationSummary, Method, MethodResult, ProcessRun, TransferSummary,
};
use crate::seeds::{IsoAggregate, TransferAggregate};

pub(super) fn iso_section(
    md: &mut String,
    s: &IsoClassificationSummary,
    fig: &Figures,
) -> Result<()> {
    writeln!(
        md,
        "lambda {} -> {} with C held at C0 = {:.4} on the controller's probe ({}), beside the naive path (gamma fixed); {}. {}\n",
        s.start.lambda,
        s.end.lambda,
        s.held.c0,
        s.integrator,
        run_label(&s.run, s.wall_seconds.total),
        independence_note(&s.held)
    )
    .map_err(fmt_error)?;
    writeln!(
        md,
        "| path | max relative drift of C (test split, fresh noise) | on the controller's probe | final gamma | final R | final D | final C | accuracy |\n|---|---|---|---|---|---|---|---|"
    )
    .map_err(fmt_error)?;
    let measured = s.held.test_samples > 0;
    let held = (
        s.held.max_relative_drift,
        Some(s.held.max_relative_drift_se),
    );
    let ours = drifts(measured, held, Some(s.held.controller_max_relative_drift));
    writeln!(md, "{}", iso_row("iso-classification", ours, Some(&s.end))).map_err(fmt_error)?;
    let naive = (
        s.naive.max_relative_drift,
        Some(s.naive.max_relative_drift_se),
    );
    let naive = drifts(measured, naive, Some(s.naive.controller_max_relative_drift));
    let row = iso_row("naive (gamma fixed)", naive, s.naive.end.as_ref());
    writeln!(md, "{row}").map_err(fmt_error)?;
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

/// A row of the iso-classification table: the path, its drift columns, where it ends.
fn iso_row(
    name: &str,
    (independent, probe): (String, String),
    end: Option<&crate::process::iso_classification::PathEnd>,
) -> String {
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
    format!("| {name} | {independent} | {probe} | {cells} |")
}

/// What the drift columns say: the drift on the test splits (where measured) and on the
/// controller's probe.
/// The drift columns: on the test splits with its standard error where measured, and on
/// the controller's probe.
pub(super) fn drifts(
    measured: bool,
    drift: (f64, Option<f64>),
    controller: Option<f64>,
) -> (String, String) {
    let independent = match (measured, drift.1) {
        (false, _) => "not measured".into(),
        (true, Some(se)) if se > 0.0 => format!("{} +- {:.2}", pct(drift.0), 100.0 * se),
        (true, _) => pct(drift.0),
    };
    (independent, opt_pct(controller))
}

/// Backend, data (and its dealing), seed and wall time of a process run.
fn run_label(run: &ProcessRun, wall: f64) -> String {
    label(
        &run.device,
        (&run.data_dir, run.config.data.resplit_seed),
        run.seed,
        wall,
    )
}

pub(super) fn independence_note(held: &HeldConstraint) -> String {
    let (samples, c0_test) = (held.test_samples, held.c0_test);
    let mut note = if samples > 0 {
        let (source, target) = held.test_examples;
        let examples = match target {
            0 => format!("{source} test examples"),
            _ => format!("{source} source and {target} target test examples"),
        };
        format!(
            "Drift is measured apart from the controller: C on the test split(s) ({examples}) with fresh noise ({samples} draws per example), against C0 = {c0_test:.4} measured the same way at the start, each drift with its standard error paired with the start."
        )
    } else {
        "This run was not measured apart from the controller (a format-1 summary): its drift is the controller's own, on its probe.".into()
    };
    if let Some(se) = held.probe_relative_se {
        note.push_str(&format!(
            " The controller's probe resolves C0 to +-{:.1}% (one standard error as an estimate of C on fresh examples)",
            100.0 * se
        ));
        note.push_str(&match held.controller_max_relative_drift_se {
            Some(d) => format!(
                "; its drift along the path, paired with the start on the probe, to +-{:.1}% at most.",
                100.0 * d
            ),
            None => ".".into(),
        });
    }
    if let Some(r) = &held.test_over_probe {
        note.push_str(&format!(
            " {} (each near 1 within the test split's standard error where the probe is unbiased).",
            r.describe()
        ));
    }
    note
}

pub(super) fn method_row(name: &str, v: &MethodResult, drift: (String, String)) -> String {
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

pub(super) fn transfer_section(md: &mut String, s: &TransferSummary, fig: &Figures) -> Result<()> {
    writeln!(
        md,
        "C on the {} probe of p_t held at C0 = {:.4}; {} path steps, t = s^{}; {} Adam steps of budget for every method; {}. {}\n",
        s.run.config.process.probe_split.describe(),
        s.held.c0,
        s.run.config.process.steps,
        s.run.config.process.data_exponent,
        s.budget.optimizer_steps,
        run_label(&s.run, s.wall_seconds.total),
        independence_note(&s.held)
    )
    .map_err(fmt_error)?;
    writeln!(
        md,
        "| method | target accuracy | source accuracy | R | D | C | max relative drift of C on p_t (test splits, fresh noise) | on the controller's probe | Adam steps |\n|---|---|---|---|---|---|---|---|---|"
    )
    .map_err(fmt_error)?;
    let measured = s.held.test_samples > 0;
    let method_drifts = |v: &MethodResult| match v.max_relative_drift {
        Some(d) => drifts(
            measured,
            (d, v.max_relative_drift_se),
            v.controller_max_relative_drift,
        ),
        None => ("-".to_string(), "-".to_string()),
    };
    for (method, result) in s.methods() {
        let drift = if method == Method::IsoClassification {
            drifts(
                measured,
                (
                    s.held.max_relative_drift,
                    Some(s.held.max_relative_drift_se),
                ),
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

pub(super) fn transfer_seeds_section(
    md: &mut String,
    a: &TransferAggregate,
    fig: &Figures,
) -> Result<()> {
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
        "| method | target accuracy (%) | source accuracy (%) | R | D | C | max drift of C on p_t (%) | its standard error (%) | Adam steps |\n|---|---|---|---|---|---|---|---|---|"
    )
    .map_err(fmt_error)?;
    for (name, m) in &a.methods {
        writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.target_accuracy.show(100.0, 2),
            m.source_accuracy.show(100.0, 2),
            m.rate.show(1.0, 2),
            m.distortion.show(1.0, 2),
            m.classification.show(1.0, 4),
            m.drift_cell(),
            m.drift_se_cell(),
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
    if let Some(pooled) = crate::seeds::MeanDriftOverSeeds::of(&a.bands) {
        writeln!(md, "- {}", pooled.describe()).map_err(fmt_error)?;
    }
    write_seed_times(md, &a.times)?;
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

/// The iso-classification over seeds: C0, the drifts of both paths and the rate change
/// (mean +- sd), the band seed by seed, and the chart.
pub(super) fn iso_seeds_section(
    md: &mut String,
    a: &IsoAggregate,
    fig: &Figures,
    recipe: &str,
) -> Result<()> {
    writeln!(
        md,
        "### Iso-classification over seeds (`just {recipe}`)\n\nSeeds {:?} (each: its own source training and process), `{}`; mean +- sample standard deviation. C0 on the test split {}; largest drift of C (test split, fresh noise) along the iso-classification path {}%, along the naive path (gamma fixed) {}%; R changes by {}% along the path.\n",
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
    if let Some(pooled) = crate::seeds::MeanDriftOverSeeds::of(&a.bands) {
        writeln!(md, "- {}", pooled.describe()).map_err(fmt_error)?;
    }
    write_seed_times(md, &a.times)?;
    writeln!(md).map_err(fmt_error)?;
    fig.embed(
        md,
        "iso-classification-seeds",
        "seeds_drift.png",
        "iso_seeds_drift.png",
        "drift of C along the iso-classification and the naive paths, mean and +- 1 sd over seeds",
    )
}

/// The wall time of each seed, in minutes, as a list.
fn write_seed_times(md: &mut String, times: &[crate::seeds::SeedTime]) -> Result<()> {
    if !times.is_empty() {
        writeln!(
            md,
            "\nWall time per seed, in minutes (a shared machine makes them an upper bound; this report was written on {}):\n",
            crate::provenance::machine()
        )
        .map_err(fmt_error)?;
        for time in times {
            writeln!(md, "- {}", time.describe()).map_err(fmt_error)?;
        }
    }
    Ok(())
}
