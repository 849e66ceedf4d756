"""What every peer of the side-by-side benchmark shares: the two models' settings
(the ones `fep bench` uses), the random data, the parameter counts and the thread
limit. Importing this module imports neither jax nor torch."""

import os
import sys

import numpy as np

MODELS = ("reference", "mnist-paper")
# The batch the comparison runs each model at (issue 14).
DEFAULT_BATCH = {"reference": 128, "mnist-paper": 64}

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


class TimedPeer:
    """What every in-process peer shares: a subclass implements `_steps(n)`, which runs n
    train steps and leaves `self.loss` materialised (the work finished, not only queued)."""

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
