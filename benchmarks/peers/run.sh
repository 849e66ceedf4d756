#!/usr/bin/env bash
# Side-by-side CPU training throughput in one sitting: fep against JAX (two formulations)
# and PyTorch (eager, torch.compile) on the reference model and the mnist-paper network.
# Usage: bash benchmarks/peers/run.sh OUT_DIR [FEP_BINARY]
# Settings via environment (all optional):
#   REPS     alternating repetitions per system (default 5)
#   STEPS    timed steps per repetition, every model (default 20 reference, 5 mnist-paper)
#   WARMUP   untimed steps first, every model (default 5 reference, 2 mnist-paper)
#   THREADS  threads/CPUs of every system (default 2)
#   MODELS   comma-separated subset of reference,mnist-paper (default both)
#   BATCH    override every model's batch (default 128 reference, 64 mnist-paper)
#   TORCH_COMPILE=0  skip torch.compile
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: bash benchmarks/peers/run.sh OUT_DIR [FEP_BINARY]" >&2
  exit 2
fi
out="$1"
fep="${2:-$root/target/release/fep}"
if [[ ! -x "$fep" ]]; then
  echo "error: fep binary not found or not executable: $fep" >&2
  echo "       build it first: cargo build --release --bin fep" >&2
  exit 1
fi
fep="$(cd "$(dirname "$fep")" && pwd)/$(basename "$fep")"
if [[ -n "${DECONV:-}" ]]; then
  echo "note: DECONV is no longer used: both JAX formulations (lax, subpixel) always run" >&2
fi

venv="$here/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
  if ! command -v python3 >/dev/null; then
    echo "error: python3 not found (needed for the JAX and PyTorch peers)" >&2
    exit 1
  fi
  echo "creating virtual environment in $venv"
  python3 -m venv "$venv" || {
    echo "error: could not create $venv (on Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
echo "installing $here/requirements.txt (JAX, optax, PyTorch; the first time downloads several GB)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" || {
  echo "error: pip could not install $here/requirements.txt into $venv" >&2
  exit 1
}

args=(--fep "$fep" --out "$out" --reps "${REPS:-5}" --threads "${THREADS:-2}")
[[ -n "${STEPS:-}" ]] && args+=(--steps "$STEPS")
[[ -n "${WARMUP:-}" ]] && args+=(--warmup "$WARMUP")
[[ -n "${MODELS:-}" ]] && args+=(--models "$MODELS")
[[ -n "${BATCH:-}" ]] && args+=(--batch "$BATCH")
[[ "${TORCH_COMPILE:-1}" == "0" ]] && args+=(--no-torch-compile)

exec "$venv/bin/python" "$here/compare.py" "${args[@]}"
