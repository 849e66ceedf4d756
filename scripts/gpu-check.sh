#!/usr/bin/env bash
# GPU check (issue 23), one prepared script for a machine with an NVIDIA GPU and no Rust:
# a carried cuda build of fep timed per training step (the first step cold, the warm steps
# apart) with CubeCL's compilation and autotune logs, side by side with PyTorch (eager and
# torch.compile) and JAX on the same GPU, the exact solve, one epoch of train-source-paper
# on full MNIST, the cuda model tests when they were carried, and the demo. Every step runs
# under its own `timeout`; the whole check ends within GPU_CHECK_BUDGET seconds (default
# 470: 8 minutes less the packing). What a step cannot finish in its time is recorded as
# timed out, and the later steps still run while time is left.
#
# Prepare here (CPU machine):  bash scripts/gpu-prepare.sh [--tests]   (just gpu-prepare)
# On the device machine:       run(command="bash scripts/gpu-check.sh", carry=["gpu-carry"], timeout_s=560)
# On a machine of your own:    OUT=runs/gpu-check bash scripts/gpu-check.sh
#
# Results go to $OUT (or the first argument, default runs/gpu-check): summary.txt and
# summary.json (scripts/gpu_check_report.py), gpu-check.log, and results.tar.gz with every
# file the steps wrote (logs, JSON, CubeCL's logs, the autotune cache, nvidia-smi and ps
# samples); they are refreshed after every step, so a run cut short keeps what it did.
# The device returns at most 8 files from $OUT; this writes 4.
#
# Settings (environment, all optional):
#   GPU_CHECK_BUDGET   seconds for the whole check (default 470)
#   GPU_CHECK_SKIP     steps to leave out, comma-separated: first-step, per-step, peers,
#                      exact, paper-epoch, tests, demo
#   GPU_CHECK_WARM=1   keep CubeCL's caches (target/autotune, target/cuda) from an earlier run
#   GPU_CARRY          the carried folder (default gpu-carry)
#   FEP_BIN            a fep binary with cuda to use instead of $GPU_CARRY/fep.gz
#   PEER_SYSTEMS       the peers (default torch-eager,jax-lax,torch-compile)
#   PER_STEP_STEPS     steps of the per-step run (default 30)
#   GPU_TEST_ARGS      arguments for every carried test binary (default none)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT="$(pwd -P)"
START=$SECONDS
BUDGET="${GPU_CHECK_BUDGET:-470}"
RESERVE=12          # seconds kept for the report and the packing at the end
OUT="${OUT:-${1:-runs/gpu-check}}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd -P)"
CARRY="${GPU_CARRY:-gpu-carry}"
SKIP=",${GPU_CHECK_SKIP:-},"
PEER_SYSTEMS="${PEER_SYSTEMS:-torch-eager,jax-lax,torch-compile}"
PER_STEP_STEPS="${PER_STEP_STEPS:-30}"
W="$(mktemp -d /tmp/gpu-check.XXXXXX)"
mkdir -p "$W/bin" "$W/cubecl"
LOG="$OUT/gpu-check.log"
: > "$LOG"
printf 'step\tstatus\trc\tseconds\tlimit\tstart\tend\n' > "$W/steps.tsv"
export PYTHONUNBUFFERED=1
export FEP_DATASETS_DIR="$ROOT/datasets"
export RUST_BACKTRACE=0
# torch.compile's and Triton's caches inside this run: the peers start cold too.
export TORCHINDUCTOR_CACHE_DIR="$W/cache/torchinductor" TRITON_CACHE_DIR="$W/cache/triton"

log() { echo "== $*" | tee -a "$LOG"; }
left() { echo $(( BUDGET - (SECONDS - START) )); }
now() { date +%s.%N; }
skipped() { [[ "$SKIP" == *",$1,"* ]]; }

# ---- the end: samplers stopped, caches copied, report, pack ------------------------------
SAMPLERS=()
CUBECL_TOML="$ROOT/cubecl.toml"
CUBECL_BACKUP=""
if [[ -e "$CUBECL_TOML" ]]; then
    CUBECL_BACKUP="$W/cubecl.toml.orig"
    cp "$CUBECL_TOML" "$CUBECL_BACKUP"
fi

pack() {
    # every file the steps wrote except checkpoints, the peers' compile caches and
    # anything over 4 MB (the device returns files of up to 16 MiB)
    rm -rf "$W/autotune"
    [[ -d "$ROOT/target/autotune" ]] && cp -r "$ROOT/target/autotune" "$W/autotune"
    python3 "$ROOT/scripts/gpu_check_report.py" "$W" "$OUT" > "$W/report.out" 2>&1 \
        || echo "report failed: $(tail -3 "$W/report.out")" >> "$LOG"
    cp "$LOG" "$W/gpu-check.log" 2>/dev/null
    (cd "$W" && find . -type f -size -4M ! -name '*.ckpt' ! -path './cache/*' ! -path './bin/*' -print0 \
        | tar --null -czf "$OUT/results.tar.gz.part" -T - ) \
        && mv "$OUT/results.tar.gz.part" "$OUT/results.tar.gz"
}

# shellcheck disable=SC2317  # called by the trap
finish() {
    local pid
    for pid in "${SAMPLERS[@]}"; do kill "$pid" 2>/dev/null; done
    if [[ -n "$CUBECL_BACKUP" ]]; then cp "$CUBECL_BACKUP" "$CUBECL_TOML"; else rm -f "$CUBECL_TOML"; fi
    log "done in $(( SECONDS - START )) s; results in $OUT"
    pack
    cat "$OUT/summary.txt" 2>/dev/null
}
trap finish EXIT
trap 'exit 143' TERM INT

# ---- steps ----------------------------------------------------------------------------
# run_step NAME LIMIT [--ts] -- COMMAND...: runs COMMAND from the repository root for at most
# LIMIT seconds (less when the budget is nearly spent; skipped under 10 s), stdout into
# $W/NAME.out and stderr into $W/NAME.err (with --ts: every stderr line prefixed with the
# time it arrived, into $W/NAME.err.ts). Records the step in $W/steps.tsv, then packs.
run_step() {
    local name=$1 limit=$2 ts=0
    shift 2
    if [[ "$1" == --ts ]]; then ts=1; shift; fi
    [[ "$1" == -- ]] && shift
    local avail=$(( $(left) - RESERVE ))
    (( avail < limit )) && limit=$avail
    if (( limit < 10 )); then
        log "$name: skipped (budget spent)"
        printf '%s\tskipped\t\t0\t%s\t\t\n' "$name" "$limit" >> "$W/steps.tsv"
        return 0
    fi
    log "$name (at most $limit s): $*"
    local t0 t1 rc
    t0=$(now)
    if (( ts )); then
        timeout -k 5 "$limit" "$@" 2>&1 >"$W/$name.out" | python3 -u -c '
import sys, time
for line in sys.stdin:
    sys.stdout.write(f"{time.time():.3f} {line}")
    sys.stdout.flush()' > "$W/$name.err.ts"
        rc=${PIPESTATUS[0]}
    else
        timeout -k 5 "$limit" "$@" >"$W/$name.out" 2>"$W/$name.err"
        rc=$?
    fi
    t1=$(now)
    local status=ok secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
    if (( rc == 124 || rc == 137 )); then status=timeout; elif (( rc != 0 )); then status=failed; fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$secs" "$limit" "$t0" "$t1" >> "$W/steps.tsv"
    log "$name: $status (rc $rc) in $secs s"
    if [[ $status != ok ]]; then
        tail -n 5 "$W/$name.err" "$W/$name.err.ts" 2>/dev/null | sed 's/^/    /' | tee -a "$LOG"
    fi
    pack
    return 0
}

# cubecl_config NAME [stderr]: CubeCL's settings for the next fep process (it reads
# cubecl.toml from the working directory): kernel compilations (level basic: one line per
# kernel compiled, none for one found in the persistent PTX cache) and autotune runs (level
# minimal: one "Fastest result" line per tuned key) into $W/cubecl/NAME.*.log, and with
# `stderr` also to stderr, where run_step --ts stamps them with the time.
cubecl_config() {
    local name=$1 to_stderr=false
    [[ "${2:-}" == stderr ]] && to_stderr=true
    cat > "$CUBECL_TOML" <<EOF
# written by scripts/gpu-check.sh for step $name (removed at the end)
[compilation]
cache = "target"

[compilation.logger]
level = "basic"
file = "$W/cubecl/$name.compilation.log"
append = true
stderr = $to_stderr

[autotune]
cache = "target"

[autotune.logger]
level = "minimal"
file = "$W/cubecl/$name.autotune.log"
append = true
stderr = $to_stderr
EOF
}

# ---- setup ----------------------------------------------------------------------------
log "gpu-check in $ROOT, work folder $W, budget $BUDGET s, at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
log "environment: CUBECL_AUTOTUNE_LEVEL=${CUBECL_AUTOTUNE_LEVEL:-unset} CUBEK_MATMUL_ALLOW_TF32=${CUBEK_MATMUL_ALLOW_TF32:-unset}"
{ uname -a; nproc; free -g 2>/dev/null; } > "$W/machine.txt" 2>&1
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi > "$W/nvidia-smi.txt" 2>&1
    head -20 "$W/nvidia-smi.txt" | tee -a "$LOG"
    # GPU load once a second, with the time (epoch seconds) to match the steps
    (
        while :; do
            printf '%s,%s\n' "$(now)" "$(nvidia-smi --query-gpu=utilization.gpu,utilization.memory,memory.used,power.draw,clocks.sm,temperature.gpu --format=csv,noheader,nounits 2>&1 | head -1)"
            sleep 1
        done
    ) > "$W/nvidia-smi.csv" &
    SAMPLERS+=($!)
else
    log "no nvidia-smi: no NVIDIA GPU visible here; the cuda steps will fail"
fi
# the busiest host processes every 2 s (fep on one core at 100% means host-bound)
(
    while :; do
        echo "@ $(now)"
        ps -eo pcpu,rss,etimes,comm --sort=-pcpu 2>/dev/null | head -6
        sleep 2
    done
) > "$W/ps.txt" &
SAMPLERS+=($!)

# The build and its provenance
BUILD_ROOT="" BUILD_TARGET_DIR="" BUILD_TESTS=""
if [[ -f "$CARRY/BUILD_INFO" ]]; then
    cp "$CARRY/BUILD_INFO" "$W/build-info.txt"
    # shellcheck disable=SC1091
    source "$CARRY/BUILD_INFO"
    log "carried build: $(tr '\n' ' ' < "$CARRY/BUILD_INFO")"
fi
# The tests and fep-runner's GPU tests look for files where they were built
# (CARGO_MANIFEST_DIR, CARGO_BIN_EXE_fep): make that folder this one.
if [[ -n "$BUILD_ROOT" && "$BUILD_ROOT" != "$ROOT" && ! -e "$BUILD_ROOT" ]]; then
    mkdir -p "$(dirname "$BUILD_ROOT")" && ln -s "$ROOT" "$BUILD_ROOT" \
        && log "linked the build folder $BUILD_ROOT -> $ROOT"
fi

REAL_FEP=""
if [[ -n "${FEP_BIN:-}" ]]; then
    REAL_FEP="$(cd "$(dirname "$FEP_BIN")" && pwd -P)/$(basename "$FEP_BIN")"
elif [[ -f "$CARRY/fep.gz" ]]; then
    gzip -dc "$CARRY/fep.gz" > "$W/bin/fep.real" && chmod +x "$W/bin/fep.real" \
        && REAL_FEP="$W/bin/fep.real"
elif [[ -x "$ROOT/target/cuda-build/release/fep" ]]; then
    REAL_FEP="$ROOT/target/cuda-build/release/fep"
fi
if [[ -z "$REAL_FEP" || ! -x "$REAL_FEP" ]]; then
    log "no fep binary: run scripts/gpu-prepare.sh and carry $CARRY, or set FEP_BIN"
    exit 1
fi
# fep-runner's GPU tests run the binary at the path it was built to (CARGO_BIN_EXE_fep).
if [[ " $BUILD_TESTS " == *" gpu "* && -n "$BUILD_TARGET_DIR" ]]; then
    dest="$BUILD_TARGET_DIR/release/fep"
    if ! cmp -s "$REAL_FEP" "$dest"; then
        if ! { mkdir -p "$(dirname "$dest")" && cp "$REAL_FEP" "$dest"; }; then
            log "could not put fep at $dest: the gpu tests will not find it"
        fi
    fi
fi

# libcuda (the driver's folder) and libnvrtc (inside the PyTorch installation where there is
# no CUDA toolkit) on LD_LIBRARY_PATH, for fep and the test binaries only; the stub
# libcuda of a toolkit is left out.
timeout 120 find / \( -path /proc -o -path /sys -o -path /dev -o -path "$W" -o -path "$ROOT" \) -prune -o \
    \( -name 'libnvrtc.so*' -o -name 'libcuda.so*' \) -print 2>/dev/null > "$W/cuda-libs.txt"
grep -v '/stubs/' "$W/cuda-libs.txt" > "$W/cuda-libs.use" || true
CUDA_DIRS="$( { grep '/libcuda\.so' "$W/cuda-libs.use"; grep '/libnvrtc\.so' "$W/cuda-libs.use"; } \
    | xargs -r -n1 dirname | awk '!seen[$0]++' | paste -sd: -)"
log "CUDA libraries: $(wc -l < "$W/cuda-libs.use") files; LD_LIBRARY_PATH for fep: $CUDA_DIRS"
# CubeCL compiles kernels with NVRTC and passes it CUDA_PATH/include (default /usr/local/cuda).
FEP_CUDA_PATH="${CUDA_PATH:-}"
if [[ -z "$FEP_CUDA_PATH" && ! -d /usr/local/cuda && ! -d /opt/cuda && ! -x /usr/bin/nvcc ]]; then
    # the CUDA runtime's headers of NVIDIA's Python packages first (nvidia/cu13, nvidia/cuda_runtime)
    timeout 60 find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -name cuda_runtime.h \
        -path '*/include/*' -print 2>/dev/null > "$W/cuda-headers.txt"
    hdr="$( { grep -E '/nvidia/(cu[0-9]+|cuda_runtime)/include/' "$W/cuda-headers.txt"; cat "$W/cuda-headers.txt"; } | head -1)"
    [[ -n "$hdr" ]] && FEP_CUDA_PATH="$(dirname "$(dirname "$hdr")")"
    log "no CUDA toolkit folder; CUDA_PATH for fep: ${FEP_CUDA_PATH:-none found}"
fi
{
    echo '#!/bin/sh'
    echo "# fep's and the test binaries' environment on this machine (scripts/gpu-check.sh)"
    if [[ -n "$CUDA_DIRS" ]]; then
        # shellcheck disable=SC2016  # expanded by the wrapper, not here
        printf 'export LD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"\n' "$CUDA_DIRS"
    fi
    if [[ -n "$FEP_CUDA_PATH" ]]; then printf 'export CUDA_PATH="%s"\n' "$FEP_CUDA_PATH"; fi
    # shellcheck disable=SC2016
    echo 'exec "$@"'
} > "$W/bin/cuda-env"
printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$W/bin/cuda-env" "$REAL_FEP" > "$W/bin/fep"
chmod +x "$W/bin/cuda-env" "$W/bin/fep"
FEP="$W/bin/fep"

cubecl_config info
run_step info 30 -- "$FEP" --backend cuda info
tee -a "$LOG" < "$W/info.out"

# Cold start: no CubeCL caches from an earlier run on this machine (or from `info`).
if [[ "${GPU_CHECK_WARM:-0}" != 1 ]]; then
    rm -rf "$ROOT/target/autotune" "$ROOT/target/cuda"
fi

# ---- 1. fep: the first step from a cold start, then every step of one process ---------
# `bench reference` (mnist-small layers, batch 128, the model of benchmarks/peers) with
# --warmup 0 --steps 1: each repetition is one step timed alone. The first run takes one
# step with no caches: its wall time is the time to the first step, its logs the kernels
# compiled and tuned for it. The second runs PER_STEP_STEPS steps with the caches the first
# left (kernels found in the PTX cache are not logged), its stderr stamped with the time,
# so that what is compiled or tuned after the first step shows.
if ! skipped first-step; then
    cubecl_config fep-first-step stderr
    run_step fep-first-step 60 --ts -- "$FEP" --backend cuda bench reference --batch 128 \
        --warmup 0 --steps 1 --reps 1 --json "$W/fep-first-step.json"
fi
if ! skipped per-step; then
    cubecl_config fep-per-step stderr
    run_step fep-per-step 60 --ts -- "$FEP" --backend cuda bench reference --batch 128 \
        --warmup 0 --steps 1 --reps "$PER_STEP_STEPS" --json "$W/fep-per-step.json"
fi

# ---- 2. fep and the peers side by side ------------------------------------------------
# benchmarks/peers/compare.py --device cuda: fep (`bench reference` at batch 128 and 1024,
# `bench --arch mnist-paper --num-z 1` at 64 and 512) and the peers, each in fresh processes
# with their own warm-up, the first step and the time to it apart. When fep could not take
# its steps above, it is left out here (the peers alone).
if ! skipped peers; then
    cubecl_config peers
    fep_arg=(--fep "$FEP")
    if [[ -f "$W/steps.tsv" ]] && awk -F'\t' '$1 == "fep-per-step" && $2 != "ok" {bad = 1} END {exit !bad}' "$W/steps.tsv"; then
        fep_arg=()
        log "peers: fep left out (its per-step run did not finish)"
    fi
    mkdir -p "$W/peers"
    run_step peers 230 -- python3 benchmarks/peers/compare.py --device cuda "${fep_arg[@]}" \
        --out "$W/peers" --systems "$PEER_SYSTEMS" --fep-timeout 60 --peer-timeout 150
fi

# ---- 3. the exact model: the same science on cuda --------------------------------------
if ! skipped exact; then
    cubecl_config exact-solve
    run_step exact-solve 60 -- "$FEP" --backend cuda exact solve --config experiments/exact.toml \
        --lambda 2 --gamma 1 --json
fi

# ---- 4. one epoch of the paper's source model on full MNIST ---------------------------
if ! skipped paper-epoch; then
    if [[ -d "$CARRY/mnist-full" ]]; then
        cubecl_config paper-epoch
        run_step paper-epoch 90 -- "$FEP" --backend cuda train-source \
            --config experiments/train-source-paper.toml --data-dir "$CARRY/mnist-full" \
            --epochs 1 --out "$W/paper-epoch" --force
    else
        log "paper-epoch: skipped ($CARRY/mnist-full not carried)"
    fi
fi

# ---- 5. the cuda model tests (carried by gpu-prepare.sh --tests) ----------------------
if ! skipped tests; then
    shopt -s nullglob
    tests=("$CARRY"/tests/*.gz)
    shopt -u nullglob
    if (( ${#tests[@]} == 0 )); then
        log "tests: none carried (bash scripts/gpu-prepare.sh --tests)"
    else
        mkdir -p "$W/bin/tests"
        tests_end=$(( SECONDS + 120 ))
        for gz in "${tests[@]}"; do
            name="$(basename "$gz" .gz)"
            gzip -dc "$gz" > "$W/bin/tests/$name" && chmod +x "$W/bin/tests/$name"
            extra=()
            [[ $name == gpu ]] && extra=(--ignored)   # fep-runner's tests/gpu.rs: marked "needs a GPU"
            cubecl_config "test-$name"
            # shellcheck disable=SC2086
            run_step "test-$name" $(( tests_end - SECONDS )) -- "$W/bin/cuda-env" \
                "$W/bin/tests/$name" "${extra[@]}" ${GPU_TEST_ARGS:-}
        done
    fi
fi

# ---- 6. the demo, with what time is left ----------------------------------------------
if ! skipped demo; then
    cubecl_config demo
    run_step demo 100000 -- "$FEP" --backend cuda demo --out "$W/demo" --force
fi
exit 0
