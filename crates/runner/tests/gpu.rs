//! GPU-marked tests: run only with `--features cuda` (or `wgpu`) and `--ignored` on a
//! machine with a GPU (`scripts/gpu-check.sh` does both). They check that the GPU backend
//! reproduces the exact model's closed forms and trains a deep model step.
#![cfg(any(feature = "cuda", feature = "wgpu"))]

use std::process::Command;

fn backend() -> String {
    std::env::var("FEP_TEST_BACKEND").unwrap_or_else(|_| "cuda".into())
}

fn fep(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fep"))
        .args(["--backend", &backend()])
        .args(args)
        .current_dir(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("run fep")
}

#[test]
#[ignore = "needs a GPU"]
fn exact_model_on_the_gpu_matches_the_closed_form() {
    let o = fep(&[
        "exact",
        "solve",
        "--config",
        "experiments/exact.toml",
        "--lambda",
        "2",
        "--gamma",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in ["rate", "distortion", "classification"] {
        let a = v["closed_form"][key].as_f64().unwrap();
        let b = v["trained"][key].as_f64().unwrap();
        assert!((a - b).abs() < 0.01, "{key}: {a} vs {b}");
    }
}

#[test]
#[ignore = "needs a GPU"]
fn bench_runs_on_the_gpu() {
    let dir = std::env::temp_dir().join("fep-gpu-bench.json");
    let o = fep(&[
        "bench",
        "--arch",
        "mnist-small",
        "--batch",
        "64",
        "--steps",
        "2",
        "--reps",
        "1",
        "--warmup",
        "1",
        "--json",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
