#!/usr/bin/env bash
# Side-by-side CPU training throughput: fep against the JAX peer.
# Usage: bash benchmarks/peers/run.sh OUT_DIR [FEP_BINARY]
# Extra settings via environment: REPS, STEPS, WARMUP, BATCH, DECONV (lax|subpixel).
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
  echo "       build it first: cargo build --release -p fep-runner" >&2
  exit 1
fi
fep="$(cd "$(dirname "$fep")" && pwd)/$(basename "$fep")"

venv="$here/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "creating virtual environment in $venv"
  python3 -m venv "$venv"
fi
echo "installing $here/requirements.txt"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

exec "$venv/bin/python" "$here/compare.py" --fep "$fep" --out "$out" \
  --reps "${REPS:-5}" --steps "${STEPS:-20}" --warmup "${WARMUP:-5}" --batch "${BATCH:-128}" \
  --deconv "${DECONV:-lax}"
