# fep: thermodynamics of representation learning on Burn.
# `just --list` shows every recipe. Commands run on the default CPU backend (flex);
# add a GPU with e.g. `just features=cuda backend=cuda exact-demo`.

features := "flex"
backend := "flex"
fep := "cargo run --release --no-default-features --features " + features + " --bin fep -- --backend " + backend

# The main job on the bundled data: dataset summary, then the exact model's iso-classification process.
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

# Deep-model experiments: not built yet (issues: models, processes, performance).
train-source:
    @echo "just train-source: the deep models are not built yet (see the models issue); try 'just demo'" >&2; exit 1

iso-classification:
    @echo "just iso-classification on deep models is not built yet; the exact model's version is 'just exact-iso'" >&2; exit 1

transfer-iso-classification:
    @echo "just transfer-iso-classification is not built yet (see the processes issue)" >&2; exit 1

surface:
    @echo "just surface on deep models is not built yet; the exact model's surface is 'just exact-surface'" >&2; exit 1

bench:
    @echo "just bench is not built yet (see the performance issue)" >&2; exit 1

# Compile-check the GPU backends (no GPU needed; wgpu takes 10+ minutes on 2 cores).
check-gpu:
    cargo check -p fep-runner --features cuda
    cargo check -p fep-runner --features wgpu

# Opt-in wgpu smoke test on Mesa's software Vulkan (Debian: mesa-vulkan-drivers).
wgpu-smoke:
    CUBECL_AUTOTUNE_LEVEL=minimal cargo run --release --features wgpu --bin fep -- --backend wgpu exact solve --config experiments/exact.toml --lambda 2 --gamma 1
