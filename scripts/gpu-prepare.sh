#!/usr/bin/env bash
# Prepares scripts/gpu-check.sh for a GPU machine that has no Rust and no network (the
# device machine of docs/BACKENDS.md, "Checking the GPU"): builds fep with the cuda backend
# here, on the CPU machine, and puts what the check needs into gpu-carry/ (ignored by git):
#
#   gpu-carry/fep.gz           the release binary, stripped and gzipped (about 14 MB)
#   gpu-carry/mnist-full/      full MNIST (copied from ../shared/datasets/mnist-full)
#   gpu-carry/tests/NAME.gz    with --tests: the cuda model tests (see below)
#   gpu-carry/BUILD_INFO       commit, build folder, date, sizes (read by gpu-check.sh)
#
#   bash scripts/gpu-prepare.sh                 # fep only (about 10 min on 2 cores)
#   bash scripts/gpu-prepare.sh --tests         # also the cuda test binaries (much longer)
#   GPU_TESTS="exact_model training gpu" bash scripts/gpu-prepare.sh --tests
#
# The build goes to its own target folder (CARGO_TARGET_DIR, default target/cuda-build) so
# that it does not evict the CPU build. With --tests, `cargo test --no-run` builds the
# model and exact-model tests of fep-models and fep-thermo with `test-cuda` (they then run
# on cuda) and fep-runner's GPU-marked tests (tests/gpu.rs) with `cuda`; the binaries named
# in GPU_TESTS (default: exact_model training gpu cg_and_ift) are carried, in that order,
# as long as the whole working tree that travels stays under the device's 64 MiB.
# At the end it prints the device call to make.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd -P)"

WITH_TESTS=0
case "${1:-}" in
    --tests) WITH_TESTS=1 ;;
    "") ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "usage: bash scripts/gpu-prepare.sh [--tests]" >&2; exit 2 ;;
esac

CARRY=gpu-carry
MNIST="${FEP_MNIST_FULL_DIR:-../shared/datasets/mnist-full}"
TESTS="${GPU_TESTS:-exact_model training gpu cg_and_ift}"
LIMIT_MIB=64
MARGIN_MIB=2
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cuda-build}"
case "$CARGO_TARGET_DIR" in
    /*) TARGET_ABS="$CARGO_TARGET_DIR" ;;
    *) TARGET_ABS="$ROOT/$CARGO_TARGET_DIR" ;;
esac

say() { echo "== $*"; }

if ! git check-ignore -q "$CARRY/fep.gz"; then
    echo "error: $CARRY/ is not ignored by git (.gitignore lists /gpu-carry/)" >&2
    exit 1
fi
if [[ ! -f "$MNIST/train-images-idx3-ubyte.gz" ]]; then
    echo "error: full MNIST not found in $MNIST (set FEP_MNIST_FULL_DIR)" >&2
    exit 1
fi

mkdir -p "$CARRY"
rm -f "$CARRY"/fep.gz "$CARRY"/BUILD_INFO
rm -rf "$CARRY/tests"

# Bytes of the working tree that travels besides gpu-carry: tracked and untracked files
# that git does not ignore.
tree_bytes() {
    git ls-files -z --cached --others --exclude-standard \
        | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}'
}
carry_bytes() { du -sb "$CARRY" | awk '{print $1}'; }

if [[ $WITH_TESTS == 1 ]]; then
    say "cargo test --no-run: fep-models and fep-thermo with test-cuda, fep-runner with cuda ($CARGO_TARGET_DIR)"
    json="$(mktemp)"
    cargo test --release --no-run --message-format=json-render-diagnostics \
        -p fep-models -p fep-thermo -p fep-runner \
        --features fep-models/test-cuda,fep-thermo/test-cuda,fep-runner/cuda > "$json"
fi

if [[ $WITH_TESTS == 0 ]]; then
    say "cargo build --release -p fep-runner --features cuda ($CARGO_TARGET_DIR, CUDARC_CUDA_VERSION=$CUDARC_CUDA_VERSION)"
    cargo build --release -p fep-runner --features cuda
fi
# (with --tests, the test build made it, with the features the tests saw: the binary that
# fep-runner's tests/gpu.rs runs)
BIN="$TARGET_ABS/release/fep"
"$BIN" info | grep -q cuda || { echo "error: $BIN has no cuda backend" >&2; exit 1; }

say "strip, gzip -> $CARRY/fep.gz"
tmp="$(mktemp)"
strip -o "$tmp" "$BIN"
gzip -9 -c "$tmp" > "$CARRY/fep.gz"
rm -f "$tmp"

say "full MNIST -> $CARRY/mnist-full"
rm -rf "$CARRY/mnist-full"
cp -r "$MNIST" "$CARRY/mnist-full"
chmod -R u+w "$CARRY/mnist-full"

carried_tests=()
if [[ $WITH_TESTS == 1 ]]; then
    mkdir -p "$CARRY/tests"
    budget=$(( (LIMIT_MIB - MARGIN_MIB) * 1024 * 1024 - $(tree_bytes) ))
    for name in $TESTS; do
        exe="$(python3 - "$json" "$name" <<'EOF'
import json, sys
path, name = sys.argv[1], sys.argv[2]
for line in open(path):
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
            and msg["target"]["name"] == name and "test" in msg["target"]["kind"]:
        print(msg["executable"])
        break
EOF
)"
        if [[ -z "$exe" ]]; then
            echo "warning: no test binary named $name" >&2
            continue
        fi
        tmp="$(mktemp)"
        strip -o "$tmp" "$exe"
        gzip -9 -c "$tmp" > "$CARRY/tests/$name.gz"
        rm -f "$tmp"
        if (( $(carry_bytes) > budget )); then
            echo "warning: $name left out: the carried tree would pass ${LIMIT_MIB} MiB" >&2
            rm -f "$CARRY/tests/$name.gz"
            continue
        fi
        carried_tests+=("$name")
    done
    rm -f "$json"
fi

{
    printf 'BUILD_COMMIT=%q\n' "$(git rev-parse HEAD)"
    printf 'BUILD_DIRTY=%q\n' "$(git status --porcelain --untracked-files=no | wc -l | tr -d ' ')"
    printf 'BUILD_DATE=%q\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'BUILD_ROOT=%q\n' "$ROOT"
    printf 'BUILD_TARGET_DIR=%q\n' "$TARGET_ABS"
    printf 'BUILD_CUDARC_CUDA_VERSION=%q\n' "$CUDARC_CUDA_VERSION"
    printf 'BUILD_TESTS=%q\n' "${carried_tests[*]:-}"
    printf 'BUILD_VERSION=%q\n' "$("$BIN" --version)"
} > "$CARRY/BUILD_INFO"

total=$(( $(tree_bytes) + $(carry_bytes) ))
say "carried: $(du -sh "$CARRY" | cut -f1) in $CARRY (fep.gz $(du -h "$CARRY/fep.gz" | cut -f1), tests: ${carried_tests[*]:-none}); the tree that travels: $(( total / 1024 / 1024 )) MiB of ${LIMIT_MIB}"
if (( total > LIMIT_MIB * 1024 * 1024 )); then
    echo "error: the working tree that travels is over ${LIMIT_MIB} MiB" >&2
    exit 1
fi
cat <<EOF

Ready. On the device machine (one call; the check ends within 8 minutes):
  run(command="bash scripts/gpu-check.sh", carry=["$CARRY"], timeout_s=560)
then give_back, and unpack what came back:
  tar -xzf <files_at>/results.tar.gz -C runs/gpu-check   (summary.txt and summary.json beside it)
EOF
