//! The `fep` binary as a user runs it: outputs, exit codes, error messages.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fep"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("run fep")
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn info_lists_the_compiled_backends() {
    let o = fep(&["info"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("compiled backends: flex"), "{text}");
    assert!(text.contains("burn 0.21.0"));
}

#[test]
fn missing_backend_names_the_cargo_feature() {
    let o = fep(&["--backend", "cuda", "info"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--features cuda"), "{}", stderr(&o));
}

#[test]
fn exact_solve_json_matches_the_closed_form() {
    let o = fep(&[
        "exact",
        "solve",
        "--config",
        "experiments/exact.toml",
        "--lambda",
        "1.5",
        "--gamma",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    for key in ["rate", "distortion", "classification", "free_energy"] {
        let a = v["closed_form"][key].as_f64().unwrap();
        let b = v["trained"][key].as_f64().unwrap();
        assert!((a - b).abs() < 0.01, "{key}: {a} vs {b}");
    }
    for est in ["closed_form", "ift", "finite_difference"] {
        for key in ["dD_dlambda", "dD_dgamma", "dC_dlambda", "dC_dgamma"] {
            assert!(v["sensitivities"][est][key].is_f64(), "{est}.{key}");
        }
    }
    let exact = v["sensitivities"]["closed_form"]["dD_dlambda"]
        .as_f64()
        .unwrap();
    let ift = v["sensitivities"]["ift"]["dD_dlambda"].as_f64().unwrap();
    assert!(((ift - exact) / exact).abs() < 0.05);
}

#[test]
fn exact_iso_classification_writes_a_path_that_holds_c() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("iso");
    let o = fep(&[
        "exact",
        "iso-classification",
        "--config",
        "experiments/exact.toml",
        "--lambda-start",
        "2",
        "--gamma-start",
        "1",
        "--lambda-end",
        "1",
        "--integrator",
        "predictor-corrector",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c0 = v["c0"].as_f64().unwrap();
    for p in v["path"].as_array().unwrap() {
        assert!(((p["classification"].as_f64().unwrap() - c0) / c0).abs() < 1e-3);
        let (g, ge) = (
            p["gamma"].as_f64().unwrap(),
            p["gamma_exact"].as_f64().unwrap(),
        );
        assert!(((g - ge) / ge).abs() < 0.02, "{g} vs {ge}");
    }
    for f in [
        "summary.json",
        "trace.jsonl",
        "trace.csv",
        "gamma.svg",
        "gamma.png",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    // A second run into the same directory refuses without --force.
    let again = fep(&[
        "exact",
        "iso-classification",
        "--config",
        "experiments/exact.toml",
        "--lambda-end",
        "1.5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"));
}

#[test]
fn bad_configs_fail_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let o = fep(&[
        "exact",
        "solve",
        "--config",
        missing.to_str().unwrap(),
        "--lambda",
        "1",
        "--gamma",
        "1",
        "--json",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nope.toml"), "{}", stderr(&o));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[data]\nsigma = [[1.0, 2.0], [2.0, 1.0]]\nw = [[1.0, 0.0]]\nnoise_std = 0.3\n[model]\nsigma0 = 0.5\nsigmac = 0.7\nlatent_dim = 2\nseed = 1\n",
    )
    .unwrap();
    let o = fep(&[
        "exact",
        "solve",
        "--config",
        bad.to_str().unwrap(),
        "--lambda",
        "1",
        "--gamma",
        "1",
        "--json",
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("bad.toml") && e.contains("positive definite"),
        "{e}"
    );

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(
        &unknown,
        "[data]\nsigma = [[1.0]]\nw = [[1.0]]\nnoise_std = 0.3\ncolour = 1\n",
    )
    .unwrap();
    let o = fep(&[
        "exact",
        "solve",
        "--config",
        unknown.to_str().unwrap(),
        "--lambda",
        "1",
        "--gamma",
        "1",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("colour"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
fn data_inspect_reads_the_bundled_subset_and_writes_a_grid() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("inspect");
    let o = fep(&[
        "data",
        "inspect",
        "datasets/mnist-subset",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let splits = v["splits"].as_array().unwrap();
    let counts: Vec<u64> = splits
        .iter()
        .map(|s| s["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, vec![10000, 2000]);
    let png = std::fs::read(out.join("samples.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn corrupt_dataset_gives_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = workspace_root().join("datasets/mnist-subset");
    for f in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let bytes = std::fs::read(dir.path().join("t10k-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(
        dir.path().join("t10k-images-idx3-ubyte.gz"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = fep(&[
        "data",
        "inspect",
        dir.path().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("t10k-images-idx3-ubyte.gz"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn dealing_per_seed_needs_seeds_and_excludes_a_fixed_dealing() {
    let o = fep(&["transfer-iso-classification", "--deal-per-seed"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--seeds"), "{}", stderr(&o));
    let o = fep(&[
        "iso-classification",
        "--seeds",
        "2",
        "--deal-per-seed",
        "--resplit-seed",
        "4",
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("--deal-per-seed") && e.contains("--resplit-seed"),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");
}
