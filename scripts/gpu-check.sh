#!/usr/bin/env bash
# GPU check: build fep with the cuda (and wgpu) features, run the GPU-marked tests and the
# benchmark of the mnist-paper model on the GPU, and write everything under OUT_DIR.
#
#   bash scripts/gpu-check.sh OUT_DIR            # build here, then run on this machine's GPU
#   FEP_BIN=path/to/fep bash scripts/gpu-check.sh OUT_DIR   # reuse a binary built elsewhere
#   FEP_GPU_SKIP_WGPU=1 ...                      # skip the (10+ minute) wgpu build
#
# burn 0.21's cuda and wgpu backends build offline, so the binary can be built on a CPU
# machine and carried to a GPU machine without network access. Without a GPU the script
# still builds (and says so), which is what CI-like machines can check.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: scripts/gpu-check.sh OUT_DIR}"
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/gpu-check.log"; }

log "machine: $(uname -a)"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi | tee "$OUT/nvidia-smi.txt" || true
    HAVE_GPU=1
else
    log "no nvidia-smi: no CUDA GPU visible; building only"
    HAVE_GPU=0
fi

if [[ -n "${FEP_BIN:-}" ]]; then
    BIN="$FEP_BIN"
    log "using prebuilt binary $BIN"
else
    log "cargo build --release --features cuda"
    cargo build --release -p fep-runner --features cuda 2>&1 | tail -3 | tee -a "$OUT/gpu-check.log"
    BIN=target/release/fep
    cp "$BIN" "$OUT/fep-cuda" 2>/dev/null || true
fi
"$BIN" info | tee "$OUT/info.txt"

if [[ "${FEP_GPU_SKIP_WGPU:-0}" != "1" && -z "${FEP_BIN:-}" ]]; then
    log "cargo check --features wgpu"
    cargo check -p fep-runner --features wgpu 2>&1 | tail -3 | tee -a "$OUT/gpu-check.log"
fi

if [[ "$HAVE_GPU" == "1" ]]; then
    log "GPU tests: the exact model and a training step on the cuda backend"
    "$BIN" --backend cuda exact solve --config experiments/exact.toml --lambda 2 --gamma 1 --json \
        > "$OUT/exact-solve-cuda.json"
    "$BIN" --backend cuda train-source --config experiments/train-source.toml --epochs 1 \
        --out "$OUT/train-source-cuda" --force | tee "$OUT/train-source-cuda.txt"
    if [[ -z "${FEP_BIN:-}" ]]; then
        # The same model tests as on the CPU, on the cuda backend; failures fail the script.
        set +e
        FEP_TEST_BACKEND=cuda cargo test --release -p fep-runner --features cuda --test gpu -- --ignored \
            2>&1 | tee "$OUT/gpu-tests.txt"
        status_cli=${PIPESTATUS[0]}
        cargo test --release -p fep-models -p fep-thermo --features fep-models/test-cuda,fep-thermo/test-cuda \
            2>&1 | tee "$OUT/model-tests-cuda.txt"
        status_models=${PIPESTATUS[0]}
        set -e
        log "GPU test status: cli $status_cli, models $status_models"
        FAILED=$(( status_cli != 0 || status_models != 0 ))
    fi
    log "bench on the GPU (mnist-paper and mnist-small, batch 64 and 128)"
    "$BIN" --backend cuda bench --arch mnist-paper mnist-small --batch 64 128 --num-z 8 \
        --out "$OUT/bench-cuda" --force | tee "$OUT/bench-cuda.txt"
    "$BIN" --backend cuda bench reference --json "$OUT/reference-cuda.json" | tee "$OUT/reference-cuda.txt"
else
    log "skipping GPU runs (no GPU)"
fi
log "done; results in $OUT"
exit "${FAILED:-0}"
