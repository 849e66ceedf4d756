//! Tables of the typed summaries on stdout.

use std::path::PathBuf;

use fep_experiments::bench::{BenchReport, ModelBench, ReferenceReport};
use fep_experiments::exact::{ExactIsoSummary, ExactSolveSummary};
use fep_experiments::process::rows::EquilibriumTally;
use fep_experiments::process::{
    IsoClassificationSummary, MethodResult, TestOverProbe, TransferSummary,
};
use fep_experiments::train_source::TrainSourceSummary;

/// `wrote <first>` and the others indented below.
pub fn files(files: &[PathBuf]) {
    for (i, f) in files.iter().enumerate() {
        let lead = if i == 0 { "wrote" } else { "     " };
        println!("{lead} {}", f.display());
    }
}

/// The R / D / C / accuracy / -ELBO table of a trained source model.
pub fn train_source(s: &TrainSourceSummary) {
    println!(
        "\n{} at lambda = {}, gamma = {} after {} epochs (nats per example)",
        s.config.model.architecture.name(),
        s.lambda,
        s.gamma,
        s.epochs
    );
    println!(
        "{:<12}{:>10}{:>11}{:>10}{:>10}{:>11}",
        "split", "R", "D", "C", "acc %", "-ELBO"
    );
    for (name, m) in [
        ("train", &s.train),
        ("validation", &s.validation),
        ("test", &s.test),
    ] {
        let f = &m.functionals;
        println!(
            "{name:<12}{:>10.3}{:>11.3}{:>10.4}{:>10.2}{:>11.3}",
            f.rate,
            f.distortion,
            f.classification,
            100.0 * m.accuracy,
            m.neg_elbo
        );
    }
    println!("\nwall time {:.1} s on {}", s.wall_seconds, s.device);
}

/// One line on how the equilibrations of a process went.
pub fn equilibrium(tally: Option<&EquilibriumTally>) {
    if let Some(e) = tally {
        println!("equilibrium: {}", e.describe());
    }
}

/// The iso-classification path beside the naive one.
pub fn iso_classification(s: &IsoClassificationSummary) {
    let p = &s.run.config.process;
    println!(
        "iso-classification, lambda {} -> {}, C0 = {:.4} on the test split ({} noise draws per example); the controller held C0 = {:.4}{} on its probe of {} {} examples",
        s.start.lambda,
        p.lambda_end,
        s.held.c0_test,
        s.held.test_samples,
        s.held.c0,
        probe_error(s.held.probe_relative_se),
        p.probe_size,
        p.probe_split.describe()
    );
    println!(
        "{:<24}{:>12}{:>14}{:>12}{:>10}{:>10}{:>10}",
        "path", "max |drift|", "probe |drift|", "R change", "gamma", "C", "acc %"
    );
    println!(
        "{:<24}{:>11.2}%{:>13.2}%{:>11.1}%{:>10.3}{:>10.4}{:>10.2}",
        "iso-classification",
        100.0 * s.held.max_relative_drift,
        100.0 * s.held.controller_max_relative_drift,
        100.0 * s.rate_relative_change,
        s.end.gamma,
        s.end.functionals.classification,
        100.0 * s.end.accuracy
    );
    if let Some(end) = &s.naive.end {
        println!(
            "{:<24}{:>11.2}%{:>13.2}%{:>11}{:>10.3}{:>10.4}{:>10.2}",
            "naive (gamma fixed)",
            100.0 * s.naive.max_relative_drift,
            100.0 * s.naive.controller_max_relative_drift,
            "-",
            end.gamma,
            end.functionals.classification,
            100.0 * end.accuracy
        );
    }
    println!(
        "(max |drift|: C on the test split ({} images, {} fresh noise draws each), apart from the controller; the process's is {:.2} +- {:.2}%, its standard error paired with the start on the same examples and draws)",
        s.held.test_examples.0,
        s.held.test_samples,
        100.0 * s.held.max_relative_drift,
        100.0 * s.held.max_relative_drift_se
    );
    equilibrium(s.held.equilibrium.as_ref());
    probe_bias(s.held.test_over_probe.as_ref());
}

fn method_line(name: &str, v: &MethodResult, drift: Option<f64>) {
    let se = v
        .max_relative_drift_se
        .map_or_else(String::new, |se| format!(" +- {:.1}", 100.0 * se));
    println!(
        "{name:<28}{:>10.2}{:>10.2}{:>10.3}{:>10.3}{:>10.4}{:>18}{:>12}",
        100.0 * v.target_accuracy,
        100.0 * v.source_accuracy,
        v.target.rate,
        v.target.distortion,
        v.target.classification,
        drift
            .map(|d| format!("{:.1}{se}%", 100.0 * d))
            .unwrap_or_else(|| "-".into()),
        v.optimizer_steps
            .map_or_else(|| "-".to_string(), |n| n.to_string())
    );
}

/// ` (+-x%: the probe's standard error)` where measured.
fn probe_error(relative_se: Option<f64>) -> String {
    relative_se.map_or_else(String::new, |se| {
        format!(" (+-{:.1}%: the probe's standard error)", 100.0 * se)
    })
}

/// The transfer's table: ours beside the baselines.
pub fn transfer(s: &TransferSummary) {
    let probe = s.run.config.process.probe_split.describe();
    println!(
        "\ntransfer digits source -> target with C held at C0 = {:.4}{} on the controller's {probe} probe of p_t; C0 = {:.4} on the test splits ({} noise draws per example)",
        s.held.c0,
        probe_error(s.held.probe_relative_se),
        s.held.c0_test,
        s.held.test_samples
    );
    println!(
        "{:<28}{:>10}{:>10}{:>10}{:>10}{:>10}{:>18}{:>12}",
        "method", "target %", "source %", "R", "D", "C", "max |drift| +- se", "Adam steps"
    );
    for (method, result) in s.methods() {
        method_line(method.name(), result, result.max_relative_drift);
    }
    println!(
        "(R, D, C on the target test set; max |drift|: C on p_t from the test splits ({} source and {} target test images, {} fresh noise draws each), apart from the controller, with its standard error paired with the start on the same examples and draws; the controller's own probe drift was {:.2}%{})",
        s.held.test_examples.0,
        s.held.test_examples.1,
        s.held.test_samples,
        100.0 * s.held.controller_max_relative_drift,
        s.held
            .controller_max_relative_drift_se
            .map_or(String::new(), |se| format!(
                ", resolved to +-{:.2}% or better (paired on the probe)",
                100.0 * se
            ))
    );
    if s.held.test_examples.0 < SMALL_TEST_SPLIT {
        println!(
            "(these test splits are small: read each drift against its standard error; with --data-dir and full MNIST the drift is measured on about 5,000 test images per task)"
        );
    }
    equilibrium(s.held.equilibrium.as_ref());
    probe_bias(s.held.test_over_probe.as_ref());
}

/// The probe's offset from unseen data per domain, where measured.
fn probe_bias(ratios: Option<&TestOverProbe>) {
    if let Some(r) = ratios {
        println!(
            "({}: near 1 within the test split's standard error where the probe is unbiased)",
            r.describe()
        );
    }
}

/// Below this many test images per task, the tables say that the drift is measured on a
/// small test split.
const SMALL_TEST_SPLIT: usize = 2000;

/// The exact model at a point: closed form, trained, and the three sensitivity estimates.
pub fn exact_solve(s: &ExactSolveSummary) {
    println!("{:<16}{:>12}{:>12}{:>12}{:>12}", "", "R", "D", "C", "F");
    for (name, p) in [("closed form", &s.closed_form), ("trained", &s.trained)] {
        let f = &p.functionals;
        println!(
            "{name:<16}{:>12.6}{:>12.6}{:>12.6}{:>12.6}",
            f.rate, f.distortion, f.classification, p.free_energy
        );
    }
    let e = &s.equilibrium;
    println!(
        "equilibrium: |grad J| = {}, {} Adam steps, {} L-BFGS iterations, criterion {}",
        e.criterion.map_or("-".into(), |g| format!("{g:.2e}")),
        e.steps,
        e.quasi_newton_iterations,
        if e.met { "met" } else { "NOT met" }
    );
    println!(
        "\n{:<16}{:>12}{:>12}{:>12}{:>12}",
        "", "dD/dl", "dD/dg", "dC/dl", "dC/dg"
    );
    let t = &s.sensitivities;
    for (name, row) in [
        ("closed form", &t.closed_form),
        ("IFT", &t.ift),
        ("finite diff.", &t.finite_difference),
    ] {
        let v = &row.values;
        println!(
            "{name:<16}{:>12.6}{:>12.6}{:>12.6}{:>12.6}",
            v.dD_dlambda, v.dD_dgamma, v.dC_dlambda, v.dC_dgamma
        );
    }
}

/// The exact iso-classification path beside the closed form's gamma.
pub fn exact_iso(s: &ExactIsoSummary) {
    println!("c0 = {:.6}", s.c0);
    println!(
        "{:>8}{:>10}{:>12}{:>10}{:>10}{:>10}{:>11}{:>10}{:>8}{:>10}{:>5}",
        "lambda",
        "gamma",
        "gamma_exact",
        "R",
        "D",
        "C",
        "drift",
        "|grad J|",
        "steps",
        "L-BFGS",
        "met"
    );
    for p in &s.path {
        let f = &p.functionals;
        let e = &p.equilibrium;
        println!(
            "{:>8.4}{:>10.4}{:>12.4}{:>10.4}{:>10.4}{:>10.4}{:>+11.2e}{:>10}{:>8}{:>10}{:>5}",
            p.lambda,
            p.gamma,
            p.gamma_exact,
            f.rate,
            f.distortion,
            f.classification,
            p.relative_drift,
            e.criterion.map_or("-".into(), |g| format!("{g:.1e}")),
            e.steps,
            e.quasi_newton_iterations,
            if e.met { "yes" } else { "no" }
        );
    }
    println!("max relative drift {:.2e}", s.max_relative_drift);
}

/// The header of the benchmark table.
pub fn bench_header() {
    println!(
        "{:<14}{:>7}{:>6}{:>22}{:>10}{:>15}{:>10}{:>12}",
        "model",
        "batch",
        "num_z",
        "train steps/s",
        "images/s",
        "eval images/s",
        "HVP/grad",
        "peak MiB"
    );
}

/// One row of the benchmark table.
pub fn bench_row(m: &ModelBench) {
    let t = &m.train_steps_per_second;
    let steps = format!("{:.2} ({:.2}-{:.2})", t.median, t.min, t.max);
    let memory = m
        .peak_rss_mib
        .map_or_else(|| "-".to_string(), |p| format!("{p:.0}"));
    println!(
        "{:<14}{:>7}{:>6}{:>22}{:>10.0}{:>15.0}{:>10.2}{:>12}",
        m.architecture,
        m.batch,
        m.num_z,
        steps,
        m.train_images_per_second_median,
        m.eval_images_per_second.median,
        m.hvp_over_gradient.median,
        memory
    );
}

/// The end of the benchmark: data loading and memory.
pub fn bench_footer(r: &BenchReport) {
    println!(
        "data loading (MNIST, dynamic binarisation, to device): {:.0} images/s median",
        r.data_loading_images_per_second.median
    );
    if let Some(p) = r.peak_rss_mib {
        println!("peak resident memory: {p:.0} MiB");
    }
}

/// The reference model's throughput.
pub fn bench_reference(r: &ReferenceReport) {
    println!(
        "reference model, batch {} (micro-batches {:?}): {:.2} steps/s median ({:.2}-{:.2}), {:.0} images/s, {} threads, {}",
        r.batch,
        r.micro_batch,
        r.median_steps_per_second,
        r.range[0],
        r.range[1],
        r.images_per_second_median,
        r.threads,
        r.backend
    );
}

/// The identities of a surface, one line each: places, violations, and residuals in
/// units of their error estimates.
pub fn surface_checks(surface: &str, c: &fep_thermo::SurfaceChecks) {
    println!(
        "{surface}: a violation is a residual above {} error estimates (discretisation, noise, floor {:.0e})",
        c.settings.factor, c.settings.floor
    );
    println!(
        "  {:<36} {:>7} {:>10} {:>12} {:>11} {:>11}",
        "identity", "places", "violated", "max |resid|", "max ratio", "median"
    );
    for (name, s) in c.named() {
        println!(
            "  {:<36} {:>7} {:>10} {:>12.3e} {:>11.2} {:>11.2}",
            name, s.checked, s.violations, s.max_residual, s.max_ratio, s.median_ratio
        );
    }
}

/// The measured functionals of a saved model with their standard errors.
pub fn evaluation(s: &fep_experiments::evaluate::EvaluateSummary) {
    let m = &s.measurement;
    let se = &m.standard_errors;
    println!(
        "{} on {} split of classes {:?} ({} examples x {} noise draws, seed {}, {}):",
        s.checkpoint.display(),
        s.split,
        s.classes,
        m.examples,
        m.samples,
        m.seed,
        s.device
    );
    println!(
        "  rate R            {:>10.4} +- {:.4}",
        m.functionals.rate, se.rate
    );
    println!(
        "  distortion D      {:>10.4} +- {:.4}",
        m.functionals.distortion, se.distortion
    );
    println!(
        "  classification C  {:>10.4} +- {:.4}",
        m.functionals.classification, se.classification
    );
    println!("  -ELBO = R + D     {:>10.4}", m.neg_elbo);
    println!("  accuracy          {:>9.2}%", 100.0 * m.accuracy);
}

/// The transfer over seeds: mean +- sd of every method, and which differences exceed the
/// spread.
pub fn transfer_aggregate(a: &fep_experiments::seeds::TransferAggregate) {
    println!(
        "transfer over seeds {:?} ({}): C0 on the test splits {}",
        a.seeds,
        a.device,
        a.c0_test.show(1.0, 4)
    );
    println!(
        "{:<28}{:>18}{:>18}{:>18}{:>18}{:>10}{:>14}",
        "method", "target %", "source %", "C (target)", "max |drift| %", "its se %", "Adam steps"
    );
    for (name, m) in &a.methods {
        println!(
            "{name:<28}{:>18}{:>18}{:>18}{:>18}{:>10}{:>14}",
            m.target_accuracy.show(100.0, 2),
            m.source_accuracy.show(100.0, 2),
            m.classification.show(1.0, 4),
            m.drift_cell(),
            m.drift_se_cell(),
            m.steps_cell()
        );
    }
    for line in fep_experiments::seeds::transfer_differences(a) {
        println!("  {line}");
    }
    for band in &a.bands {
        println!("  {}", band.describe("t"));
    }
    if let Some(pooled) = fep_experiments::seeds::MeanDriftOverSeeds::of(&a.bands) {
        println!("  {}", pooled.describe());
    }
    for time in &a.times {
        println!("  {}", time.describe());
    }
}

/// The iso-classification over seeds.
pub fn iso_aggregate(a: &fep_experiments::seeds::IsoAggregate) {
    println!(
        "iso-classification over seeds {:?} ({}): C0 on the test split {}",
        a.seeds,
        a.device,
        a.c0_test.show(1.0, 4)
    );
    println!(
        "  max |drift| of C (test split, fresh noise): iso-classification {}%, naive {}%",
        a.max_relative_drift.show(100.0, 2),
        a.naive_max_relative_drift.show(100.0, 2)
    );
    println!(
        "  relative change of R along the path: {}%",
        a.rate_relative_change.show(100.0, 1)
    );
    for band in &a.bands {
        println!("  {}", band.describe("s"));
    }
    if let Some(pooled) = fep_experiments::seeds::MeanDriftOverSeeds::of(&a.bands) {
        println!("  {}", pooled.describe());
    }
    for time in &a.times {
        println!("  {}", time.describe());
    }
}
