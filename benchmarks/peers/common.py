"""What every peer of the side-by-side benchmark shares: the two models' settings
(the ones `fep bench` uses), the random data, the parameter counts and the thread
limit. Importing this module imports neither jax nor torch."""

import os
import sys
import time

import numpy as np

_IMPORTED = time.time()

MODELS = ("reference", "mnist-paper")
# The batch the comparison runs each model at (issue 14).
DEFAULT_BATCH = {"reference": 128, "mnist-paper": 64}
# Where the peers run: `cpu` (the default; the comparison of issue 14) or `cuda` (one
# NVIDIA GPU, issue 23).
DEVICES = ("cpu", "cuda")
# The batches of the GPU comparison: those of `fep bench` on the GPU (issue 23).
GPU_BATCHES = {"reference": (128, 1024), "mnist-paper": (64, 512)}

LATENT = 16  # latent dimension (ModelConfig default)
CLASSES = 10
LAMBDA = 2.0  # weight of the reconstruction (Bernoulli NLL) term
GAMMA = 2.0  # weight of the classification (cross-entropy) term
LR = 1e-3
# Burn's AdamConfig defaults, which fep's trainer uses: betas (0.9, 0.999), eps 1e-5,
# no weight decay, no gradient clipping in `fep bench`.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-5
LEAK = 0.2  # leaky-ReLU slope of the mnist-paper encoder
BN_EPS = 1e-5  # Burn BatchNormConfig defaults
BN_MOMENTUM = 0.1
PIXEL_P = 0.13  # Bernoulli probability of the random binary images

# fep's own parameter counts (`Module::num_params`, which also counts the BatchNorm
# running mean and variance): the reference model's from `fep bench reference --json`,
# the mnist-paper one as `fep train-source` prints it for that architecture with the
# bench's settings (16-d latent, linear classifier, Bernoulli decoder).
FEP_NUM_PARAMS = {"reference": 220_555, "mnist-paper": 15_798_795}

# Layer tables: (name, in, out, kernel, stride, padding); the same in every peer.
PAPER_ENCODER_CONVS = (
    ("conv1", 1, 64, 4, 2, 1),
    ("conv2", 64, 128, 4, 2, 1),  # + BatchNorm
    ("conv3", 128, 256, 3, 2, 1),  # + BatchNorm
    ("conv4", 256, 1024, 4, 1, 0),
)
PAPER_ENCODER_BN = {"conv2", "conv3"}
PAPER_DECODER_DECONVS = (
    ("deconv1", 1024, 512, 4, 1, 0),  # 1 -> 4, + BatchNorm
    ("deconv2", 512, 256, 3, 2, 1),  # 4 -> 7, + BatchNorm
    ("deconv3", 256, 128, 4, 2, 1),  # 7 -> 14, + BatchNorm
    ("deconv4", 128, 1, 4, 2, 1),  # 14 -> 28: Bernoulli logits
)


def data(batch, seed):
    """Random binary images (batch, 28, 28, 1) float32 and labels (batch,) int32.
    NHWC with one channel has the same memory order as NCHW."""
    rng = np.random.default_rng(seed)
    x = (rng.random((batch, 28, 28, 1)) < PIXEL_P).astype(np.float32)
    y = rng.integers(0, CLASSES, size=batch).astype(np.int32)
    return x, y


def check_model(model):
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")


def limit_threads(n):
    """Give this process (and the children it starts) `n` CPUs: pins the process to the
    first `n` CPUs it may run on when that is fewer than it has, and sets the variables
    rayon (fep's flex backend) and OpenMP (torch) read. XLA sizes its CPU thread pool
    from the affinity mask when jax is imported, so it must run before that. Returns a
    description of what it did."""
    if n is None:
        return "unrestricted"
    if n < 1:
        raise ValueError(f"threads must be at least 1, got {n}")
    if "jax" in sys.modules:
        raise RuntimeError("limit_threads must be called before jax is imported")
    os.environ["RAYON_NUM_THREADS"] = str(n)
    os.environ["OMP_NUM_THREADS"] = str(n)
    cpus = sorted(os.sched_getaffinity(0))
    if n < len(cpus):
        os.sched_setaffinity(0, cpus[:n])
        return f"pinned to CPUs {cpus[:n]} of {cpus}"
    if n > len(cpus):
        return f"{n} threads requested, {len(cpus)} CPUs available"
    return f"all {n} CPUs"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def process_start_time():
    """The wall-clock time (as `time.time()`) at which this process started: from
    /proc/self/stat on Linux (10 ms resolution), else the time this module was imported."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        started = time.time() - uptime + int(fields[19]) / os.sysconf("SC_CLK_TCK")
        if started <= _IMPORTED + 0.05 and started > _IMPORTED - 3600:
            return started
    except (OSError, ValueError, IndexError):
        pass
    return _IMPORTED


_PEERS_BUILT = [0]


class TimedPeer:
    """What every in-process peer shares: a subclass implements `_steps(n)`, which runs n
    train steps and leaves `self.loss` materialised (the work finished, not only queued)."""

    def _first_step(self, build_started):
        """The first train step (with torch.compile or jax.jit: the compilation), timed:
        sets `build_seconds` (model, optimiser and data before it), `first_step_seconds`,
        `time_to_first_step_s` (from the start of this process to the end of the first
        step: cold only for the first peer built in the process) and `first_in_process`."""
        started = time.perf_counter()
        self._steps(1)
        done = time.perf_counter()
        self.build_seconds = started - build_started
        self.first_step_seconds = done - started
        self.time_to_first_step_s = time.time() - process_start_time()
        self.first_in_process = _PEERS_BUILT[0] == 0
        _PEERS_BUILT[0] += 1

    def warmup(self, steps):
        self._steps(steps)

    def run_rep(self, steps):
        """Time `steps` train steps (results materialised at the end); return steps/s."""
        import time

        t0 = time.perf_counter()
        self._steps(steps)
        return steps / (time.perf_counter() - t0)

    def losses(self, steps):
        """Train `steps` steps (untimed) and return the loss of each."""
        out = []
        for _ in range(steps):
            self._steps(1)
            out.append(float(self.loss))
        return out

    def last_loss(self):
        return float(self.loss)


def timed_reps(peer, args):
    """The first step's timing (cuda), the losses asked for, the warm-up, then `args.reps`
    timed repetitions of `args.steps` steps of a built peer, printed as they come; returns
    the steps per second of each repetition."""
    if peer.device == "cuda":
        print(
            f"first step {peer.first_step_seconds:.3f} s (after {peer.build_seconds:.3f} s of "
            f"building); {peer.time_to_first_step_s:.2f} s from the start of the process"
            f"{'' if peer.first_in_process else ' (not the first peer of this process)'}",
            flush=True,
        )
    if args.show_losses:
        print("losses:", " ".join(f"{v:.2f}" for v in peer.losses(args.show_losses)))
    peer.warmup(args.warmup)
    sps = []
    print(f"{'rep':>3}  {'steps/s':>9}  {'images/s':>10}")
    for i in range(args.reps):
        sps.append(peer.run_rep(args.steps))
        print(f"{i:>3}  {sps[-1]:>9.2f}  {sps[-1] * peer.batch:>10.1f}", flush=True)
    return sps
