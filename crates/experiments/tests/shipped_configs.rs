//! The configs shipped under `experiments/` load and validate through the same loaders as
//! the commands, and the defaults fit together: the processes start from the default source
//! model's (lambda, gamma), the iso-classification moves lambda, and the transfer's target
//! digits are ones the source never saw.

use std::path::{Path, PathBuf};

use fep_experiments::process::{ProcessConfig, ProcessOptions};
use fep_experiments::surface::SurfaceConfig;
use fep_experiments::train_source::{TrainSourceConfig, TrainSourceOptions, load_config};

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments")
        .join(name)
}

fn source_config(name: &str) -> TrainSourceConfig {
    let options = TrainSourceOptions {
        config: shipped(name),
        ..TrainSourceOptions::default()
    };
    load_config(&options).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn process_config(name: &str) -> ProcessConfig {
    let options = ProcessOptions {
        config: Some(shipped(name)),
        ..ProcessOptions::default()
    };
    options
        .load_config("unused")
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_shipped_config_loads_and_validates() {
    for name in [
        "train-source.toml",
        "train-source-paper.toml",
        "train-source-cifar.toml",
    ] {
        source_config(name);
    }
    for name in [
        "iso-classification.toml",
        "transfer-iso-classification.toml",
        "transfer-iso-classification-paper.toml",
    ] {
        process_config(name);
    }
    SurfaceConfig::load(&shipped("surface.toml")).expect("surface.toml");
    fep_experiments::exact::load_config(&shipped("exact.toml")).expect("exact.toml");
    // Every file in the folder is one of the above: a new config must be added here.
    let mut names: Vec<String> = std::fs::read_dir(shipped(""))
        .expect("experiments/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "exact.toml",
            "iso-classification.toml",
            "surface.toml",
            "train-source-cifar.toml",
            "train-source-paper.toml",
            "train-source.toml",
            "transfer-iso-classification-paper.toml",
            "transfer-iso-classification.toml",
        ]
    );
}

#[test]
fn the_default_processes_fit_the_default_source() {
    let source = source_config("train-source.toml");
    let iso = process_config("iso-classification.toml");
    let transfer = process_config("transfer-iso-classification.toml");
    let lambda = source.training.lambda;

    // The iso-classification moves lambda down from the source's value (C rises as the
    // posterior gets noisier, which gamma > 0 can answer; moving lambda up would need
    // gamma below zero from a source at small gamma: docs/DEEP_MODELS.md).
    assert!(
        iso.process.lambda_end < lambda,
        "iso-classification ends at lambda {} but the source is at {lambda}",
        iso.process.lambda_end
    );
    // The transfer's lambda path ends inside (0, source lambda]; its gamma cap is above the
    // source's gamma, or the corrector could not raise gamma at all.
    assert!(transfer.process.lambda_end > 0.0 && transfer.process.lambda_end <= lambda);
    assert!(transfer.process.max_gamma > source.training.gamma);

    // Both processes read the source's classes; the transfer's target is disjoint from them.
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
    // The processes hold out the same validation examples the source training held out.
    assert_eq!(iso.data.validation_size, source.data.validation_size);
    assert_eq!(transfer.data.validation_size, source.data.validation_size);
}
