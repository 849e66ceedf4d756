//! The typed summaries read the `summary.json` files written by the previous version of
//! the experiments (fixtures from a real `fep demo` run), and the report is built from
//! them through serde, with the measured numbers in its tables.

use std::path::{Path, PathBuf};

use fep_experiments::format::{SUMMARY_FORMAT, read_summary};
use fep_experiments::io::{read_json, write_json};
use fep_experiments::process::{Method, TransferSummary};
use fep_experiments::report::{ReportOptions, ReportSetting, report};
use fep_experiments::train_source::TrainSourceSummary;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runs")
}

#[test]
fn summaries_of_the_previous_version_parse_and_round_trip() {
    let transfer: TransferSummary =
        read_summary(&fixtures().join("transfer-iso-classification/summary.json"))
            .expect("the format-1 transfer summary is upgraded and parses");
    assert_eq!(transfer.format, SUMMARY_FORMAT);
    assert!((transfer.held.c0 - 0.14699947834014893).abs() < 1e-15);
    assert_eq!(transfer.held.unconverged_steps, 1);
    assert_eq!(transfer.budget.optimizer_steps, 3520);
    let heuristic = transfer
        .baselines
        .get(&Method::PaperHeuristic)
        .expect("the heuristic ran");
    assert_eq!(heuristic.optimizer_steps, Some(3504));
    assert!((heuristic.target.rate - 17.263406101661392).abs() < 1e-12);
    assert!(transfer.baselines.contains_key(&Method::FineTune));
    assert_eq!(transfer.baselines.len(), 2, "format 1 ran two baselines");
    // Format 1 had no test measurement: its drifts were the controller's.
    assert_eq!(transfer.held.test_samples, 0);
    assert_eq!(
        heuristic.controller_max_relative_drift,
        heuristic.max_relative_drift
    );
    assert!(
        transfer
            .wall_seconds
            .by_method
            .contains_key(&Method::IsoClassification)
    );
    assert_eq!(transfer.run.config.process.steps, 8);

    let dir = tempfile::tempdir().expect("temp dir");
    let again = dir.path().join("summary.json");
    write_json(&again, &transfer).expect("write");
    let back: TransferSummary = read_summary(&again).expect("read back");
    assert_eq!(back, transfer);

    let source: TrainSourceSummary = read_json(&fixtures().join("train-source/summary.json"))
        .expect("the old train-source summary parses");
    assert!(
        (source.test.functionals.rate + source.test.functionals.distortion - source.test.neg_elbo)
            .abs()
            < 1e-9
    );
    assert_eq!(source.seed, source.config.training.seed);
}

#[test]
fn a_full_mnist_report_names_its_recipes_and_has_no_surfaces() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("docs/full-mnist/REPRODUCTION.md");
    report(&ReportOptions {
        runs: fixtures(),
        out: out.clone(),
        setting: ReportSetting::FullMnist,
    })
    .expect("report");
    let md = std::fs::read_to_string(&out).expect("read the report");
    for recipe in [
        "`just reproduce-full`",
        "`just train-source-full`",
        "`just iso-classification-full`",
        "`just transfer-iso-classification-full`",
    ] {
        assert!(md.contains(recipe), "{recipe} missing:\n{md}");
    }
    assert!(!md.contains("`just transfer-iso-classification`"), "{md}");
    assert!(!md.contains("## 4. Equilibrium surface"), "{md}");
    assert!(md.contains("pooled and dealt again"), "{md}");
    assert!(out.parent().unwrap().join("figures").is_dir());
}

#[test]
fn report_tables_hold_the_measured_numbers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("docs/REPRODUCTION.md");
    let written = report(&ReportOptions {
        runs: fixtures(),
        out: out.clone(),
        setting: ReportSetting::Bundled,
    })
    .expect("report");
    assert_eq!(written, out);
    let md = std::fs::read_to_string(&out).expect("read the report");
    // Transfer: C0, ours, and the heuristic's drift as measured.
    assert!(md.contains("C0 = 0.1470"), "{md}");
    assert!(
        md.contains(
            "| paper heuristic | 93.78% | 27.95% | 17.263 | 93.069 | 0.2776 | not measured | 144.09% | 3504 |"
        ),
        "{md}"
    );
    assert!(md.contains("| fine-tune | 90.82% | 0.00% |"), "{md}");
    assert!(
        md.contains("not measured apart from the controller"),
        "{md}"
    );
    // Train-source: the test row.
    let source: TrainSourceSummary =
        read_json(&fixtures().join("train-source/summary.json")).expect("parses");
    let row = format!(
        "| test | {:.3} | {:.3} | {:.4} |",
        source.test.functionals.rate,
        source.test.functionals.distortion,
        source.test.functionals.classification
    );
    assert!(md.contains(&row), "{row} not in {md}");
    // Experiments without results say so.
    assert!(md.contains("## 2. Iso-classification") && md.contains("Not run."));
}

#[test]
fn an_unreadable_summary_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runs = dir.path().join("runs");
    std::fs::create_dir_all(runs.join("surface")).expect("mkdir");
    std::fs::write(runs.join("surface/summary.json"), "{\"lambdas\": [1, 2]}").expect("write");
    let err = report(&ReportOptions {
        runs: runs.clone(),
        out: dir.path().join("r.md"),
        setting: ReportSetting::Bundled,
    })
    .expect_err("a truncated summary is an error");
    let text = format!("{err}");
    assert!(text.contains("surface/summary.json"), "{text}");
}

/// `fep exact surface` at its default grid: the trained model and the closed form pass
/// every identity with the command's settings; the summary, the places and the maps are
/// written, and the report's exact section carries the generated prose.
#[test]
fn exact_surface_passes_every_check_at_the_default_grid() {
    use fep_experiments::exact::{self, ExactCheckSettings};
    type B = burn::backend::Autodiff<burn::backend::Flex>;
    let config = exact::load_config(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/exact.toml"),
    )
    .expect("the shipped exact config");
    let grid = fep_thermo::GridSpec {
        lambdas: exact::parse_grid("0.5:3:6", "lambdas").unwrap(),
        gammas: exact::parse_grid("0.25:3:6", "gammas").unwrap(),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let runs = dir.path().join("runs");
    let out = runs.join("exact-surface");
    std::fs::create_dir_all(&out).unwrap();
    let s = exact::surface::<B>(
        &Default::default(),
        &config,
        &grid,
        1.0,
        ExactCheckSettings::default(),
        Some(&out),
    )
    .expect("exact surface");
    for (surface, checks) in [
        ("trained", &s.checks.trained),
        ("closed form", &s.checks.closed_form),
    ] {
        for (name, c) in checks.named() {
            assert!(c.checked > 0 && c.passed(), "{surface} {name}: {c:?}");
        }
    }
    for f in [
        "summary.json",
        "surface.jsonl",
        "checks.jsonl",
        "surface_maps.png",
        "surface_maps.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let md_path = dir.path().join("docs/REPRODUCTION.md");
    report(&ReportOptions {
        runs: runs.clone(),
        out: md_path.clone(),
        setting: ReportSetting::Bundled,
    })
    .expect("report");
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(
        md.contains("## 5. Equilibrium surface of the exact model"),
        "{md}"
    );
    assert!(md.contains("Every identity holds at every place."), "{md}");
    assert!(
        md.contains("| first_law | F(b) - F(a) = path integral"),
        "{md}"
    );
}

/// Every shipped process and source config parses and validates with its schema, and the
/// paper-size pair fits together (the transfer starts from the source config's output,
/// with its data treatment).
#[test]
fn shipped_configs_parse_and_the_paper_pair_fits() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let experiments = root.join("experiments");
    let mut seen = 0;
    for entry in std::fs::read_dir(&experiments).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("train-source") {
            fep_experiments::train_source::load_config(
                &fep_experiments::train_source::TrainSourceOptions {
                    config: path.clone(),
                    data_dir: None,
                    out: PathBuf::new(),
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            seen += 1;
        } else if name.contains("iso-classification") {
            fep_experiments::process::ProcessOptions {
                config: Some(path.clone()),
                ..Default::default()
            }
            .load_config("unused")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            seen += 1;
        }
    }
    assert!(seen >= 6, "{seen} configs");
    fep_experiments::surface::SurfaceConfig::load(&experiments.join("surface.toml"))
        .expect("surface.toml");
    fep_experiments::exact::load_config(&experiments.join("exact.toml")).expect("exact.toml");
    let source: toml::Value = toml::from_str(
        &std::fs::read_to_string(experiments.join("train-source-paper.toml")).unwrap(),
    )
    .unwrap();
    let transfer = fep_experiments::process::ProcessOptions {
        config: Some(experiments.join("transfer-iso-classification-paper.toml")),
        ..Default::default()
    }
    .load_config("unused")
    .unwrap();
    assert_eq!(
        transfer.source_checkpoint,
        PathBuf::from("runs/train-source-paper/checkpoint.ckpt")
    );
    assert_eq!(transfer.process.steps, 25);
    assert_eq!(
        source["data"]["binarization"].as_str(),
        Some("none"),
        "the paper's source sees grey levels"
    );
    assert_eq!(transfer.data.binarization, fep_data::BinarizationKind::None);
}

/// The default processes fit the default source model: the iso-classification moves lambda
/// down from the source's value (C rises as the posterior gets noisier, which gamma > 0 can
/// answer; moving lambda up from a source at small gamma would need gamma below zero), the
/// transfer's lambda path stays in (0, source lambda] with a gamma cap above the source's
/// gamma, its target digits are disjoint from the source's, and both hold out the same
/// validation examples as the source training.
#[test]
fn the_default_processes_fit_the_default_source() {
    let experiments = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let source = fep_experiments::train_source::load_config(
        &fep_experiments::train_source::TrainSourceOptions {
            config: experiments.join("train-source.toml"),
            ..Default::default()
        },
    )
    .expect("train-source.toml");
    let process = |name: &str| {
        fep_experiments::process::ProcessOptions {
            config: Some(experiments.join(name)),
            ..Default::default()
        }
        .load_config("unused")
        .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let iso = process("iso-classification.toml");
    let transfer = process("transfer-iso-classification.toml");
    let lambda = source.training.lambda;

    assert!(
        iso.process.lambda_end < lambda,
        "iso-classification ends at lambda {} but the source is at {lambda}",
        iso.process.lambda_end
    );
    assert!(transfer.process.lambda_end > 0.0 && transfer.process.lambda_end <= lambda);
    assert!(transfer.process.max_gamma > source.training.gamma);

    assert_eq!(iso.data.source_classes, source.data.source_classes);
    assert_eq!(transfer.data.source_classes, source.data.source_classes);
    let target = transfer
        .data
        .target_classes
        .as_ref()
        .expect("the transfer names its target classes");
    assert!(!target.is_empty());
    assert!(
        target
            .iter()
            .all(|c| !source.data.source_classes.contains(c)),
        "target classes {target:?} overlap the source's {:?}",
        source.data.source_classes
    );
    assert_eq!(iso.data.validation_size, source.data.validation_size);
    assert_eq!(transfer.data.validation_size, source.data.validation_size);
}
