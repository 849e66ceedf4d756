# fep: thermodynamics of representation learning on Burn.
# `just --list` shows every recipe. Commands run on the default CPU backend (flex);
# add a GPU with e.g. `just features=cuda backend=cuda exact-demo`.

features := "flex"
backend := "flex"
fep := "cargo run --release --no-default-features --features " + features + " --bin fep -- --backend " + backend

# The exact model on the bundled data: dataset summary, then the exact iso-classification process.
demo:
    {{fep}} data inspect datasets/mnist-subset --out runs/demo/data --force
    {{fep}} exact iso-classification --config experiments/exact.toml --out runs/demo/iso-classification --force

# The README's test command.
test:
    cargo test --workspace

# Everything CI runs.
ci:
    bash .ci/run

# Exact model: closed form, trained model and the three sensitivity estimators at (lambda, gamma).
exact-solve lambda="2" gamma="1":
    {{fep}} exact solve --config experiments/exact.toml --lambda {{lambda}} --gamma {{gamma}}

# Exact model: closed-form and trained surface with its checks and a plot.
exact-surface:
    {{fep}} exact surface --config experiments/exact.toml --out runs/exact-surface --force

# Exact model: iso-classification with both integrators.
exact-iso:
    {{fep}} exact iso-classification --config experiments/exact.toml --integrator predictor-corrector --out runs/exact-iso-pc --force
    {{fep}} exact iso-classification --config experiments/exact.toml --integrator euler --out runs/exact-iso-euler --force

# Summaries and a sample grid of a dataset folder (default: the bundled MNIST subset).
inspect-data dir="datasets/mnist-subset":
    {{fep}} data inspect {{dir}} --out runs/data-inspect --force

# Download a full dataset (mnist or cifar10) with checksums; needs internet.
fetch-data dataset="mnist" dir="data/mnist":
    {{fep}} data fetch {{dataset}} --dir {{dir}}

# Load the complete MNIST from a folder (default: the shared copy) and check its checksums.
test-full-mnist dir="../shared/datasets/mnist-full":
    FEP_MNIST_FULL_DIR={{dir}} cargo test -p fep-data --test full_mnist -- --ignored

# The mission end to end on the bundled data (the README's first command): train the source
# model on digits 0-4, carry it to 5-9 with C held, beside fine-tuning and the paper's heuristic.
demo-deep:
    {{fep}} demo --out runs/demo --force

# Train the source model (mnist-small, digits 0-4, lambda = gamma = 0.25) -> runs/train-source/.
train-source *args:
    {{fep}} train-source --config experiments/train-source.toml --out runs/train-source --force {{args}}

# Continue an interrupted train-source run from its checkpoint.
train-source-resume *args:
    {{fep}} train-source --config experiments/train-source.toml --out runs/train-source --resume {{args}}

# Full MNIST (60k/10k) for the scientific runs: `just fetch-data` or the shared copy.
full := "../shared/datasets/mnist-full"

# The scientific setting: the source on full MNIST digits 0-4 (8 epochs of 924 steps, about 2 min on 2 cores).
train-source-full data=full:
    {{fep}} train-source --config experiments/train-source-full.toml --data-dir {{data}} --out runs/train-source-full --force

# Iso-classification on full MNIST: C held on the training split, measured on the full test split.
iso-classification-full data=full *args:
    @test -f runs/train-source-full/checkpoint.ckpt || just features={{features}} backend={{backend}} train-source-full {{data}}
    {{fep}} iso-classification --config experiments/iso-classification-full.toml --data-dir {{data}} --out runs/iso-classification-full --force {{args}}

# Transfer on full MNIST: C held on both training splits (about 29,000 images each), measured on the full test splits (about 17 min on 2 cores for ours; add --no-baselines).
transfer-iso-classification-full data=full *args:
    @test -f runs/train-source-full/checkpoint.ckpt || just features={{features}} backend={{backend}} train-source-full {{data}}
    {{fep}} transfer-iso-classification --config experiments/transfer-iso-classification-full.toml --data-dir {{data}} --out runs/transfer-iso-classification-full --force {{args}}

# Seeds 1..n of the full-MNIST transfer with each domain's train and test images pooled and dealt again, each seed its own dealing (see the config; every baseline beside ours: about 45 min per seed on 2 cores).
transfer-full-resplit-seeds n="3" data=full *args:
    {{fep}} transfer-iso-classification --config experiments/transfer-iso-classification-full-resplit.toml --train-config experiments/train-source-full-resplit.toml --data-dir {{data}} --out runs/transfer-full-dealt-seeds --seeds {{n}} --deal-per-seed {{args}}

# Seeds 1..n of the full-MNIST transfer with C held on 10,000 held-out images per domain, each seed its own dealing (see the config).
transfer-full-heldout-seeds n="3" data=full *args:
    {{fep}} transfer-iso-classification --config experiments/transfer-iso-classification-full-heldout.toml --train-config experiments/train-source-full-heldout.toml --data-dir {{data}} --out runs/transfer-full-heldout-seeds --seeds {{n}} --deal-per-seed {{args}}

# Seeds 1..n of the transfer-full-resplit-seeds ablation: the same sources and dealings, the process holding C on 10,000 training images per domain it never trains on (see the config).
transfer-full-reserved-seeds n="3" data=full *args:
    {{fep}} transfer-iso-classification --config experiments/transfer-iso-classification-full-reserved.toml --train-config experiments/train-source-full-resplit.toml --data-dir {{data}} --out runs/transfer-full-reserved-seeds --seeds {{n}} --deal-per-seed {{args}}

# Seeds 1..n of the full-MNIST iso-classification (source and process per seed).
iso-classification-full-seeds n="3" data=full *args:
    {{fep}} iso-classification --config experiments/iso-classification-full.toml --train-config experiments/train-source-full.toml --data-dir {{data}} --out runs/iso-classification-full-seeds --seeds {{n}} {{args}}

# The full-MNIST results (docs/full-mnist/REPRODUCTION.md): the source, three seeds of the
# iso-classification (seed 1 is the single run of section 2), the transfer on the official
# splits, and three seeds of the transfer with every baseline, each seed on its own dealing
# of the splits (about 3 hours on a 2-core Intel Xeon with flex; a GPU backend by features/backend).
reproduce-full data=full:
    just features={{features}} backend={{backend}} train-source-full {{data}}
    just features={{features}} backend={{backend}} iso-classification-full-seeds 3 {{data}} --force
    just features={{features}} backend={{backend}} transfer-iso-classification-full {{data}} --no-baselines
    just features={{features}} backend={{backend}} transfer-full-resplit-seeds 3 {{data}} --force
    mkdir -p runs/full
    ln -sfn ../train-source-full runs/full/train-source
    ln -sfn ../iso-classification-full-seeds/seed-1 runs/full/iso-classification
    ln -sfn ../iso-classification-full-seeds runs/full/iso-classification-seeds
    ln -sfn ../transfer-iso-classification-full runs/full/transfer-iso-classification
    ln -sfn ../transfer-full-dealt-seeds runs/full/transfer-seeds
    {{fep}} report --runs runs/full --setting full-mnist --out docs/full-mnist/REPRODUCTION.md

# Seeds 1..n of the full-MNIST transfer on the official splits (source and transfer per seed).
transfer-full-seeds n="3" data=full *args:
    {{fep}} transfer-iso-classification --config experiments/transfer-iso-classification-full.toml --train-config experiments/train-source-full.toml --data-dir {{data}} --out runs/transfer-full-seeds --seeds {{n}} {{args}}

# GPU-sized source runs (full MNIST with the authors' network; CIFAR-10); see the configs.
train-source-paper data="data/mnist":
    {{fep}} train-source --config experiments/train-source-paper.toml --data-dir {{data}} --out runs/train-source-paper --force

# The paper's transfer at its size (GPU): the authors' network on full MNIST, 25 steps of
# 2 epochs, 8 latent samples. Use with a GPU backend, e.g.
#   just features=cuda backend=cuda paper-transfer data/mnist
paper-transfer data="data/mnist":
    {{fep}} train-source --config experiments/train-source-paper.toml --data-dir {{data}} --out runs/train-source-paper --force
    {{fep}} transfer-iso-classification --config experiments/transfer-iso-classification-paper.toml --data-dir {{data}} --out runs/transfer-paper --force

train-source-cifar data="data/cifar10":
    {{fep}} train-source --config experiments/train-source-cifar.toml --data-dir {{data}} --out runs/train-source-cifar --force

_source:
    @test -f runs/train-source/checkpoint.ckpt || just features={{features}} backend={{backend}} train-source

# Iso-classification on the source task (lambda 0.25 -> 0.0625, C held), beside the naive path.
iso-classification *args: _source
    {{fep}} iso-classification --config experiments/iso-classification.toml --out runs/iso-classification --force {{args}}

# Transfer digits 0-4 -> 5-9 with C held on p_t, beside fine-tuning and the paper's heuristic.
transfer-iso-classification *args: _source
    {{fep}} transfer-iso-classification --config experiments/transfer-iso-classification.toml --out runs/transfer-iso-classification --force {{args}}

# Several seeds of the whole transfer (source training and process per seed), then mean +- sd:
# runs/transfer-seeds/seed-<s>/ and aggregate.json. On a cluster: scripts/slurm/transfer-seeds.sh.
# A killed run continues with `just transfer-seeds 3 --resume`.
transfer-seeds n="3" *args:
    {{fep}} transfer-iso-classification --config experiments/transfer-iso-classification.toml --out runs/transfer-seeds --seeds {{n}} {{args}}

iso-classification-seeds n="3" *args:
    {{fep}} iso-classification --config experiments/iso-classification.toml --out runs/iso-classification-seeds --seeds {{n}} {{args}}

# The equilibrium surface over a (lambda, gamma) grid, in one process.
surface: _source
    rm -rf runs/surface/shards
    {{fep}} surface --config experiments/surface.toml --out runs/surface

# One shard of the surface (for a job array: i = task index, n = array size), then merge.
surface-shard i n: _source
    {{fep}} surface --config experiments/surface.toml --out runs/surface --shard {{i}}/{{n}}

surface-merge:
    {{fep}} surface merge --config experiments/surface.toml --out runs/surface

# All three experiments at CPU-sized defaults, then docs/REPRODUCTION.md from their results.
# (about 75 minutes on 2 CPU cores, most of it the three transfer seeds; `reproduce-quick` skips
# the seeds: about 20 minutes)
reproduce:
    just features={{features}} backend={{backend}} train-source
    just features={{features}} backend={{backend}} iso-classification
    just features={{features}} backend={{backend}} transfer-iso-classification
    just features={{features}} backend={{backend}} iso-classification-seeds 3 --force
    just features={{features}} backend={{backend}} transfer-seeds 3 --force
    just features={{features}} backend={{backend}} surface
    just features={{features}} backend={{backend}} exact-surface
    {{fep}} report --runs runs --out docs/REPRODUCTION.md

reproduce-quick:
    just features={{features}} backend={{backend}} train-source
    just features={{features}} backend={{backend}} iso-classification
    just features={{features}} backend={{backend}} transfer-iso-classification
    just features={{features}} backend={{backend}} surface
    just features={{features}} backend={{backend}} exact-surface
    {{fep}} report --runs runs --out docs/REPRODUCTION.md

# Throughput of training, evaluation, Hessian-vector products and data loading.
bench *args:
    {{fep}} bench --out runs/bench --force {{args}}

# How the cost grows with the batch (32 to 512) and with num_z (1, 4, 8), with the peak
# memory of each configuration (mnist-small and the authors' network; about 20 min on 2 cores).
bench-scaling:
    {{fep}} bench --arch mnist-small mnist-paper --batch 32 64 128 256 512 --num-z 1 4 8 --steps 2 --reps 3 --out runs/bench-scaling --force

# Side by side with JAX (CPU, jit) on the reference model: installs JAX into benchmarks/peers/.venv.
bench-peers:
    cargo build --release --bin fep
    bash benchmarks/peers/run.sh runs/bench-peers target/release/fep

# The train-source model, the final model of a transfer (run with --no-baselines here if
# absent) and a one-epoch mnist-paper model (BatchNorm) are exported, measured by `fep
# evaluate` and by benchmarks/peers/load_fep.py on the same 1,000 test images and noise draws
# (relative agreement within 1e-4 required), and imported back (the same evaluation to the
# last bit); about 12 minutes on 2 cores without the runs present, most of it the transfer and
# the mnist-paper epoch. Needs python3 with torch and numpy; not part of `cargo test`.
# PyTorch reproduces fep's numbers (docs/MODEL_EXCHANGE.md).
torch-compare: _source
    cargo build --release --no-default-features --features {{features}} --bin fep
    FEP="target/release/fep --backend {{backend}}" bash benchmarks/peers/compare_fep.sh train-source runs/train-source/checkpoint.ckpt experiments/train-source.toml
    test -f runs/torch-compare/transfer-run/models/iso_classification.ckpt || {{fep}} transfer-iso-classification --out runs/torch-compare/transfer-run --force --no-baselines
    FEP="target/release/fep --backend {{backend}}" bash benchmarks/peers/compare_fep.sh transfer runs/torch-compare/transfer-run/models/iso_classification.ckpt experiments/train-source.toml 0,1,2,3,4,5,6,7,8,9
    test -f runs/torch-compare/paper-run/checkpoint.ckpt || {{fep}} train-source --config experiments/train-source-paper.toml --out runs/torch-compare/paper-run --epochs 1 --force
    EVAL_ARGS="--binarization none" FEP="target/release/fep --backend {{backend}}" bash benchmarks/peers/compare_fep.sh mnist-paper runs/torch-compare/paper-run/checkpoint.ckpt experiments/train-source-paper.toml
    python3 benchmarks/peers/load_fep.py --summary runs/torch-compare

# One epoch each on bundled data (benchmarks/peers/variants/*.toml; about 2 minutes).
# torch-compare for the other decoders, priors and classifiers, and for cifar-resnet.
torch-compare-variants:
    cargo build --release --no-default-features --features {{features}} --bin fep
    for v in mnist-small-vamp mnist-paper-mixture cifar-resnet; do {{fep}} train-source --config benchmarks/peers/variants/$v.toml --out runs/torch-compare/variants/$v --force; done
    OUT=runs/torch-compare/variants EVAL_ARGS="--binarization none" FEP="target/release/fep --backend {{backend}}" bash benchmarks/peers/compare_fep.sh mnist-small-vamp runs/torch-compare/variants/mnist-small-vamp/checkpoint.ckpt benchmarks/peers/variants/mnist-small-vamp.toml
    OUT=runs/torch-compare/variants FEP="target/release/fep --backend {{backend}}" bash benchmarks/peers/compare_fep.sh mnist-paper-mixture runs/torch-compare/variants/mnist-paper-mixture/checkpoint.ckpt benchmarks/peers/variants/mnist-paper-mixture.toml
    OUT=runs/torch-compare/variants EVAL_ARGS="--kind cifar10 --validation-size 2 --split train --binarization none" FEP="target/release/fep --backend {{backend}}" bash benchmarks/peers/compare_fep.sh cifar-resnet runs/torch-compare/variants/cifar-resnet/checkpoint.ckpt benchmarks/peers/variants/cifar-resnet.toml
    python3 benchmarks/peers/load_fep.py --summary runs/torch-compare/variants

# Builds in target/cuda-build (about 10 min on 2 cores); gpu-carry/ then holds fep.gz, full
# MNIST and, with --tests, the cuda test binaries; the device call is printed at the end.
# For the GPU machine: fep with cuda and what scripts/gpu-check.sh needs (docs/BACKENDS.md).
gpu-prepare *args:
    bash scripts/gpu-prepare.sh {{args}}

# Per-step timing beside PyTorch and JAX, the exact solve, an epoch of the paper's model, the
# carried tests and the demo, in at most 8 minutes; results in summary.txt and results.tar.gz.
# The GPU check on this machine's NVIDIA GPU, after gpu-prepare (docs/BACKENDS.md).
gpu-check out="runs/gpu-check":
    OUT={{out}} bash scripts/gpu-check.sh

# Compile-check the GPU backends (no GPU needed; wgpu takes 10+ minutes on 2 cores).
check-gpu:
    cargo check -p fep-runner --features cuda
    cargo check -p fep-runner --features wgpu

# Opt-in wgpu smoke test on Mesa's software Vulkan (Debian: mesa-vulkan-drivers): the
# exact model trained on wgpu, its IFT sensitivities beside the closed form (about 5 min).
wgpu-smoke:
    bash scripts/test-wgpu.sh --smoke

# The backend-generic tests on wgpu (opt-in; the wgpu build alone is about 13 minutes on 2
# cores, the tests about 20 more on the software device): installs Mesa's software Vulkan
# where there is no adapter and apt can, then the exact-model, model and CLI tests.
test-wgpu:
    bash scripts/test-wgpu.sh
