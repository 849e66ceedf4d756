#!/usr/bin/env bash
# PyTorch reproduces fep's numbers (`just torch-compare`): for each model, `fep export` writes
# it as safetensors, `fep evaluate --dump-inputs` measures R, D, C and accuracy on the first
# LIMIT test images with SAMPLES noise draws each and records the images and noise it used,
# load_fep.py rebuilds the network in PyTorch and measures on the very same inputs (exit 1
# past TOLERANCE relative), and `fep import` of the exported file must evaluate exactly as
# the checkpoint did (every number of the JSON equal).
#
#   benchmarks/peers/compare_fep.sh NAME CHECKPOINT CONFIG [CLASSES]
#
# CONFIG is the train-source TOML the import stores (its [model] must match); CLASSES
# (e.g. 5,6,7,8,9) overrides the classes evaluated. Results: $OUT/NAME/{fep,torch,imported}.json.
# Needs python3 with torch and numpy (pip install torch numpy; not part of the Rust build).
set -euo pipefail

NAME=$1 CKPT=$2 CONFIG=$3 CLASSES=${4:-}
FEP=${FEP:-target/release/fep}  # a command line: e.g. "target/release/fep --backend flex"
OUT=${OUT:-runs/torch-compare}
LIMIT=${LIMIT:-1000}
SAMPLES=${SAMPLES:-8}
TOLERANCE=${TOLERANCE:-1e-4}
HERE=$(cd "$(dirname "$0")" && pwd)

if ! python3 -c "import torch, numpy" 2>/dev/null; then
    echo "needs PyTorch and numpy in python3: pip install torch numpy" \
        "(CPU wheels: --index-url https://download.pytorch.org/whl/cpu)" >&2
    exit 2
fi

dir=$OUT/$NAME
mkdir -p "$dir"
# EVAL_ARGS: more options of `fep evaluate` (e.g. "--kind cifar10 --validation-size 2").
read -r -a extra <<< "${EVAL_ARGS:-}"
eval_args=(--limit "$LIMIT" --samples "$SAMPLES" --json "${extra[@]}")
if [ -n "$CLASSES" ]; then eval_args+=(--classes "$CLASSES"); fi

$FEP export --checkpoint "$CKPT" --out "$dir/model.safetensors" --force
$FEP evaluate --checkpoint "$CKPT" "${eval_args[@]}" \
    --dump-inputs "$dir/inputs.safetensors" > "$dir/fep.json"
python3 "$HERE/load_fep.py" "$dir/model.safetensors" --inputs "$dir/inputs.safetensors" \
    --tolerance "$TOLERANCE" --json "$dir/torch.json"

$FEP import --safetensors "$dir/model.safetensors" --config "$CONFIG" \
    --out "$dir/imported.ckpt" --force
$FEP evaluate --checkpoint "$dir/imported.ckpt" "${eval_args[@]}" > "$dir/imported.json"
python3 - "$dir/fep.json" "$dir/imported.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
keys = ["rate", "distortion", "classification", "accuracy", "standard_errors", "covariance"]
diff = [k for k in keys if a[k] != b[k]]
if diff:
    sys.exit(f"the imported checkpoint evaluates differently: {diff}")
print(f"imported checkpoint: R, D, C, accuracy, errors and covariances equal to the last bit")
EOF
