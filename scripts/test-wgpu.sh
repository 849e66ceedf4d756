#!/usr/bin/env bash
# The backend-generic tests on wgpu, on whatever adapter wgpu finds (without a GPU, Mesa's
# software Vulkan device llvmpipe). Fails when any test fails.
#
#   bash scripts/test-wgpu.sh           # build, then the tests (summary in runs/test-wgpu/)
#   bash scripts/test-wgpu.sh --smoke   # build, then `fep --backend wgpu exact solve` only
#
# Autotuning is minimal (the software device would spend minutes on it) and the wgpu
# artefacts live in their own target folder (CARGO_TARGET_DIR, default target/wgpu) so
# that they do not evict the CPU build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CUBECL_AUTOTUNE_LEVEL="${CUBECL_AUTOTUNE_LEVEL:-minimal}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/wgpu}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"   # Mesa warns on every call without it
OUT=runs/test-wgpu
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"

have_vulkan_driver() {
    compgen -G "/usr/share/vulkan/icd.d/*.json" >/dev/null || compgen -G "/etc/vulkan/icd.d/*.json" >/dev/null
}
if ! have_vulkan_driver && command -v apt-get >/dev/null 2>&1; then
    log "no Vulkan driver: installing mesa-vulkan-drivers (software device llvmpipe)"
    SUDO=""; [[ "$(id -u)" != 0 ]] && SUDO="sudo"
    $SUDO apt-get install -y mesa-vulkan-drivers >/dev/null || log "apt-get failed; trying anyway"
fi

log "build (cargo build --release --features wgpu)"
cargo build --release -p fep-runner --features wgpu 2>&1 | tail -1
FEP="$CARGO_TARGET_DIR/release/fep"
"$FEP" --backend wgpu info | tee -a "$OUT/summary.txt"

if [[ "${1:-}" == "--smoke" ]]; then
    "$FEP" --backend wgpu exact solve --config experiments/exact.toml --lambda 2 --gamma 1
    exit 0
fi

status=0
run() {
    local name=$1; shift
    local start=$SECONDS
    set +e
    "$@" > "$OUT/$name.txt" 2>&1
    local rc=$?
    set -e
    local passed failed
    passed=$(grep -E '^test result' "$OUT/$name.txt" | grep -oE '[0-9]+ passed' | awk '{s += $1} END {print s + 0}')
    failed=$(grep -E '^test result' "$OUT/$name.txt" | grep -oE '[0-9]+ failed' | awk '{s += $1} END {print s + 0}')
    log "$name: $passed passed, $failed failed (rc $rc, $((SECONDS - start)) s)"
    grep -E '^test .* FAILED|panicked' "$OUT/$name.txt" | tee -a "$OUT/summary.txt" || true
    [[ $rc == 0 ]] || status=1
}

# The exact model (trained equilibrium and IFT / surface sensitivities against the closed
# form, at the flex tests' tolerances; first instance and point on the software device) and
# the deep models (shapes, single steps of all three architectures, micro-batching, resume,
# the NaN guard, the IFT estimator on a deep system). One cargo call: one feature set, one
# build of the backend crates.
run models cargo test --release -p fep-thermo -p fep-models \
    --features fep-thermo/test-wgpu,fep-models/test-wgpu --test exact_model --test training -- \
    trained_model_reaches_the_closed_form_equilibrium estimated_sensitivities_match_the_closed_form \
    architectures one_training_step micro_batches resume nan_in_the_loss deep_system_feeds
# The command line on wgpu: exact solve within the flex tolerances, a deep model trained
# and carried through a two-step iso-classification, the bench.
run cli env FEP_TEST_BACKEND=wgpu cargo test --release -p fep-runner --features wgpu --test gpu -- \
    --ignored --test-threads=1
log "status $status (0: every test passed); logs in $OUT/"
exit $status
