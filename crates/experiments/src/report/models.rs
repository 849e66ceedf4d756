//! The report's sections on single models and surfaces: the source model, the deep
//! surface and the exact model's surface.

use std::fmt::Write as _;

use fep_models::train::Metrics;

use super::markdown::{Figures, fmt_error, label, pct};
use crate::error::Result;
use crate::exact::ExactSurfaceSummary;
use crate::findings::{self, SurfaceContext};
use crate::surface::SurfaceSummary;
use crate::train_source::TrainSourceSummary;

pub(super) fn train_source_section(
    md: &mut String,
    s: &TrainSourceSummary,
    fig: &Figures,
) -> Result<()> {
    writeln!(
        md,
        "{} on digits {:?} at (lambda, gamma) = ({}, {}), {} epochs; {}.\n",
        s.config.model.architecture.name(),
        s.config.data.source_classes,
        s.lambda,
        s.gamma,
        s.epochs,
        label(
            &s.device,
            (&s.data_dir, s.config.data.resplit_seed),
            s.seed,
            s.wall_seconds,
        )
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

pub(super) fn surface_section(md: &mut String, s: &SurfaceSummary, fig: &Figures) -> Result<()> {
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

pub(super) fn exact_surface_section(
    md: &mut String,
    s: &ExactSurfaceSummary,
    fig: &Figures,
) -> Result<()> {
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
