#!/usr/bin/env bash
# The equilibrium surface as a Slurm job array: one shard of the grid per task, then one
# merge job after all of them (checks, maps, summary).
#
#   jid=$(sbatch --parsable --array=1-8 scripts/slurm/surface.sh)
#   sbatch --dependency=afterok:$jid --wrap "./target/release/fep surface merge --config experiments/surface.toml --out runs/surface"
#
# Needs runs/train-source/checkpoint.ckpt (just train-source) and a release build.
#SBATCH --job-name=fep-surface
#SBATCH --cpus-per-task=2
#SBATCH --mem=8G
#SBATCH --time=01:00:00
#SBATCH --output=runs/slurm/%x-%A_%a.out
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/../..}"
TASK="${SLURM_ARRAY_TASK_ID:-1}"
TASKS="${SLURM_ARRAY_TASK_COUNT:-1}"
BACKEND="${BACKEND:-flex}"
mkdir -p runs/slurm
./target/release/fep --backend "$BACKEND" surface \
    --config experiments/surface.toml --out runs/surface --shard "$TASK/$TASKS"
