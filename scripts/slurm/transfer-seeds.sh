#!/usr/bin/env bash
# Seeds of the transfer as a Slurm job array: one task per share of the seeds; every task
# aggregates the seeds finished so far, so the last one to finish leaves the full
# runs/transfer-seeds/aggregate.json (or run `fep aggregate --out runs/transfer-seeds`).
#
#   sbatch --array=1-3 scripts/slurm/transfer-seeds.sh          # 3 seeds, one per task
#   SEEDS=6 sbatch --array=1-3 scripts/slurm/transfer-seeds.sh  # 6 seeds, two per task
#
# A task that was killed (time limit, preemption) continues where it stopped when the
# array is submitted again with RESUME=1: finished seeds are kept, the unfinished one
# continues from its last completed step.
#
# Each seed trains its source model (~1.5 min on 2 CPU cores) and runs the transfer with its
# baselines and ablations (~30 min on 2 CPU cores at the default config). Build first:
#   cargo build --release --bin fep   (add --features cuda and BACKEND=cuda for GPUs)
#SBATCH --job-name=fep-transfer-seeds
#SBATCH --cpus-per-task=2
#SBATCH --mem=8G
#SBATCH --time=01:00:00
#SBATCH --output=runs/slurm/%x-%A_%a.out
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/../..}"
SEEDS="${SEEDS:-3}"
TASK="${SLURM_ARRAY_TASK_ID:-1}"
TASKS="${SLURM_ARRAY_TASK_COUNT:-1}"
BACKEND="${BACKEND:-flex}"
mkdir -p runs/slurm
./target/release/fep --backend "$BACKEND" transfer-iso-classification \
    --config experiments/transfer-iso-classification.toml \
    --out runs/transfer-seeds --seeds "$SEEDS" --seed-shard "$TASK/$TASKS" \
    ${RESUME:+--resume}
