"""PyTorch peers of `fep bench`: the reference model (mnist-small layers, Bernoulli
decoder, linear classifier) and the mnist-paper network (the authors' DCGAN-style
encoder and decoder with BatchNorm), trained with Adam on the CPU (or, with `--device
cuda`, on one NVIDIA GPU), eager (or with `torch.compile`), timed in steps per second.

Layout is NCHW with nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d (training mode) and
nn.Linear, everything float32, and the same layers, loss, data, batch and Adam
settings as jax_reference.py and fep. The default initialisation of torch's layers
is Burn's (uniform in +-1/sqrt(fan_in), a transposed convolution's fan_in being its
output channels times k * k).

torch is imported lazily (inside `build`), after the command line has limited the
threads.

On cuda (`--device cuda`) the model, the data and the noise live on the GPU, Adam is
the fused implementation, every timed block of steps ends with
`torch.cuda.synchronize()`, and the record adds the time of the first step (with
torch.compile: the compilation) and the time from the start of the process to the end
of that first step (`time_to_first_step_s`, cold for the first batch of the process).
"""

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import (  # noqa: E402
    ADAM_BETAS,
    ADAM_EPS,
    BN_EPS,
    BN_MOMENTUM,
    CLASSES,
    GAMMA,
    LAMBDA,
    LATENT,
    LEAK,
    LR,
    PAPER_DECODER_DECONVS,
    PAPER_ENCODER_BN,
    PAPER_ENCODER_CONVS,
)


def make_net(model):
    """The network of `model` as an nn.Module whose forward(x, y, eps) is the mean
    over the batch of KL + LAMBDA * BCE + GAMMA * CE. Parameter names follow
    jax_reference.py's."""
    common.check_model(model)
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Net(nn.Module):
        def loss(self, mu, logvar, eps, x, y):
            z = mu + torch.exp(0.5 * logvar) * eps
            logits = self.decode(z)  # (n, 1, 28, 28) Bernoulli logits
            kl = -0.5 * torch.sum(1.0 + logvar - mu * mu - torch.exp(logvar), dim=1)
            bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
            ce = F.cross_entropy(self.cls(z), y, reduction="none")
            return torch.mean(kl + LAMBDA * bce + GAMMA * ce)

        def forward(self, x, y, eps):
            mu, logvar = self.encode(x)
            return self.loss(mu, logvar, eps, x, y)

    class Reference(Net):
        def __init__(self):
            super().__init__()
            self.enc1 = nn.Conv2d(1, 32, 4, 2, 1)
            self.enc2 = nn.Conv2d(32, 64, 4, 2, 1)
            self.enc_fc = nn.Linear(64 * 7 * 7, 2 * LATENT)
            self.dec_fc = nn.Linear(LATENT, 64 * 7 * 7)
            self.dec1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
            self.dec2 = nn.ConvTranspose2d(32, 1, 4, 2, 1)
            self.cls = nn.Linear(LATENT, CLASSES)

        def encode(self, x):
            h = F.relu(self.enc2(F.relu(self.enc1(x))))
            stats = self.enc_fc(h.flatten(1))
            return stats[:, :LATENT], stats[:, LATENT:]

        def decode(self, z):
            d = F.relu(self.dec_fc(z)).view(-1, 64, 7, 7)
            return self.dec2(F.relu(self.dec1(d)))

    def bn(c):
        return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)

    class Paper(Net):
        def __init__(self):
            super().__init__()
            for name, cin, cout, k, s, p in PAPER_ENCODER_CONVS:
                setattr(self, name, nn.Conv2d(cin, cout, k, s, p))
                if name in PAPER_ENCODER_BN:
                    setattr(self, "bn_" + name, bn(cout))
            self.fc = nn.Linear(1024, 512)
            self.mean = nn.Linear(512, LATENT)
            self.log_var = nn.Linear(512, LATENT)
            self.fc1 = nn.Linear(LATENT, 512)
            self.fc2 = nn.Linear(512, 1024)
            for name, cin, cout, k, s, p in PAPER_DECODER_DECONVS:
                setattr(self, name, nn.ConvTranspose2d(cin, cout, k, s, p))
                if name != "deconv4":
                    setattr(self, "bn_" + name, bn(cout))
            self.cls = nn.Linear(LATENT, CLASSES)

        def encode(self, x):
            h = x
            for name, *_ in PAPER_ENCODER_CONVS:
                h = getattr(self, name)(h)
                if name in PAPER_ENCODER_BN:
                    h = getattr(self, "bn_" + name)(h)
                h = F.leaky_relu(h, LEAK)
            h = F.leaky_relu(self.fc(h.flatten(1)), LEAK)  # (n, 1024): 1x1 spatial
            return self.mean(h), self.log_var(h)

        def decode(self, z):
            d = F.relu(self.fc2(F.relu(self.fc1(z)))).view(-1, 1024, 1, 1)
            for name, *_ in PAPER_DECODER_DECONVS:
                d = getattr(self, name)(d)
                if name != "deconv4":
                    d = F.relu(getattr(self, "bn_" + name)(d))
            return d

    return Reference() if model == "reference" else Paper()


def make_adam(params):
    """torch.optim.Adam with fep's settings, in the fastest implementation this torch
    offers for the parameters' device (fused, else foreach, else the loop): the same
    update."""
    import torch

    params = list(params)
    kw = dict(lr=LR, betas=ADAM_BETAS, eps=ADAM_EPS)
    for impl in ("fused", "foreach"):
        try:
            opt = torch.optim.Adam(params, **kw, **{impl: True})
            return opt, impl
        except (RuntimeError, TypeError, ValueError):
            continue
    return torch.optim.Adam(params, **kw), "for-loop"


def _compile_counts():
    """(graphs compiled, graph breaks) so far in this process."""
    from torch._dynamo.utils import counters

    return int(counters["stats"].get("unique_graphs", 0)), int(
        sum(counters["graph_break"].values())
    )


TF32_CHOICES = ("default", "on", "off")


def set_tf32(torch, choice):
    """TF32 in float32 matrix products and convolutions on cuda: `default` leaves torch's
    defaults (matrix products off, cuDNN convolutions on), `on` / `off` set both."""
    if choice not in TF32_CHOICES:
        raise ValueError(f"tf32 must be one of {TF32_CHOICES}, got {choice!r}")
    if choice != "default":
        torch.backends.cuda.matmul.allow_tf32 = choice == "on"
        torch.backends.cudnn.allow_tf32 = choice == "on"


class Peer(common.TimedPeer):
    """A model, its Adam optimiser, the data and a train step (eager or compiled)."""

    def __init__(
        self,
        model,
        batch,
        seed,
        threads=None,
        compile=False,
        device="cpu",
        cudnn_benchmark=False,
        tf32="default",
        compile_mode=None,
    ):
        build_started = time.perf_counter()
        import numpy as np
        import torch

        common.check_model(model)
        if device not in common.DEVICES:
            raise ValueError(f"device must be one of {common.DEVICES}, got {device!r}")
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"--device cuda: torch {torch.__version__} sees no CUDA GPU "
                f"(built for CUDA {torch.version.cuda})"
            )
        if threads is not None:
            torch.set_num_threads(threads)
        self.torch, self.model, self.batch, self.compiled = torch, model, batch, compile
        self.device, self.compile_mode = device, compile_mode
        if device == "cuda":
            torch.backends.cudnn.benchmark = cudnn_benchmark
            set_tf32(torch, tf32)
            torch.cuda.reset_peak_memory_stats()
        torch.manual_seed(seed)
        self.net = make_net(model).train().to(device)
        self.opt, self.adam_impl = make_adam(self.net.parameters())
        x, y = common.data(batch, seed)
        # C = 1: NHWC = NCHW
        self.x = torch.from_numpy(x.reshape(batch, 1, 28, 28).copy()).to(device)
        self.y = torch.from_numpy(y.astype(np.int64)).to(device)
        self.gen = torch.Generator(device=device).manual_seed(seed + 1)
        self.num_params = sum(p.numel() for p in self.net.parameters())
        self.num_state = sum(
            b.numel()
            for name, b in self.net.named_buffers()
            if name.endswith(("running_mean", "running_var"))
        )
        if not compile:
            self.forward = self.net
        elif device == "cpu":
            self.forward = torch.compile(self.net)
        else:  # one static graph per batch (no dynamic-shape recompilation)
            self.forward = torch.compile(self.net, dynamic=False, mode=compile_mode)
        before = _compile_counts()
        self.loss = None
        self._first_step(build_started)  # with compile: compiles here
        after = _compile_counts()
        self.compile_stats = None
        if compile:  # this peer's graphs (the counters are per process)
            self.compile_stats = {
                "backend": "inductor",
                "graphs": after[0] - before[0],
                "graph_breaks": after[1] - before[1],
            }

    def _step(self):
        eps = self.torch.randn((self.batch, LATENT), generator=self.gen, device=self.device)
        self.opt.zero_grad(set_to_none=True)
        loss = self.forward(self.x, self.y, eps)
        loss.backward()
        self.opt.step()
        return loss

    def _steps(self, n):
        for _ in range(n):
            self.loss = self._step()
        self.loss = self.loss.detach()
        if self.device == "cuda":  # the queued kernels finished before the clock stops
            self.torch.cuda.synchronize()

    @property
    def system(self):
        return "torch-compile" if self.compiled else "torch-eager"


def build(model="reference", batch=None, seed=0, threads=None, compile=False, **cuda):
    """A built, compiled peer that has taken one step. `cuda` takes `device`,
    `cudnn_benchmark`, `tf32` and `compile_mode` (see Peer)."""
    return Peer(model, batch or common.DEFAULT_BATCH[model], seed, threads, compile, **cuda)


def versions():
    import torch

    return {"torch": torch.__version__, "python": platform.python_version()}


def describe(peer, sps, steps):
    """The JSON record for a list of per-repetition steps/s."""
    torch = peer.torch
    med = statistics.median(sps)
    rec = {
        "framework": "torch",
        "system": peer.system,
        "model": peer.model,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "device": peer.device,
        "threads": torch.get_num_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "compile": peer.compiled,
        "compile_stats": peer.compile_stats,
        "adam": peer.adam_impl,
        "layout": "NCHW",
        "batch": peer.batch,
        "steps_per_rep": steps,
        "steps_per_second": sps,
        "images_per_second": [s * peer.batch for s in sps],
        "median_steps_per_second": med,
        "images_per_second_median": med * peer.batch,
        "min_steps_per_second": min(sps),
        "max_steps_per_second": max(sps),
        "num_params": peer.num_params,
        "num_params_fep_convention": peer.num_params + peer.num_state,
        "last_loss": peer.last_loss(),
    }
    if peer.device == "cuda":
        rec.update(cuda_fields(peer))
    return rec


def cuda_fields(peer):
    """What a cuda record adds: the GPU, the settings that change its kernels, the
    synchronisation and the first step."""
    torch = peer.torch
    return {
        "gpu": torch.cuda.get_device_name(),
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version(),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "compile_mode": peer.compile_mode if peer.compiled else None,
        "sync": "torch.cuda.synchronize() after every timed block",
        "build_seconds": peer.build_seconds,
        "first_step_seconds": peer.first_step_seconds,
        "time_to_first_step_s": peer.time_to_first_step_s,
        "first_in_process": peer.first_in_process,
        "peak_gpu_memory_mib": torch.cuda.max_memory_allocated() / 2**20,
    }


def compile_error(exc):
    """A one-line reason why torch.compile did not work."""
    text = f"{type(exc).__name__}: {exc}".strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return " | ".join(lines[:3])[:500]


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def measure(peer, args):
    """Warm-up, then the timed repetitions of one built peer; prints them and returns the
    record."""
    batch = peer.batch
    how = args.thread_control
    where = "" if peer.device == "cpu" else f" on {peer.device}"
    print(
        f"{peer.system} {args.model}{where}, batch {batch}: {peer.num_params} trainable "
        f"parameters, {peer.num_params + peer.num_state} with BatchNorm running statistics "
        f"(fep: {common.FEP_NUM_PARAMS[args.model]}); threads: {how}, torch {peer.torch.get_num_threads()}; "
        f"Adam {peer.adam_impl}"
    )
    sps = common.timed_reps(peer, args)
    rec = describe(peer, sps, args.steps)
    if peer.device == "cuda":
        rec["warmup_steps"] = args.warmup
    print(
        f"median {rec['median_steps_per_second']:.2f} steps/s, "
        f"{rec['images_per_second_median']:.1f} images/s ({rec['num_params']} params, threads {rec['threads']})",
        flush=True,
    )
    return rec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=common.MODELS, default="reference")
    ap.add_argument(
        "--batch",
        type=int,
        nargs="+",
        help="default: 128 (reference), 64 (mnist-paper); several: one after the other in "
        "this process, --json then writes a list of records",
    )
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="CPUs for the process and torch.set_num_threads")
    ap.add_argument("--compile", action="store_true", help="train with torch.compile")
    ap.add_argument("--device", choices=common.DEVICES, default="cpu")
    ap.add_argument(
        "--cudnn-benchmark",
        action="store_true",
        help="cuda: let cuDNN time its convolution algorithms in the first steps (off: torch's default)",
    )
    ap.add_argument(
        "--tf32",
        choices=TF32_CHOICES,
        default="default",
        help="cuda: TF32 in float32 matrix products and convolutions (default: torch's own: "
        "matrix products off, cuDNN convolutions on)",
    )
    ap.add_argument(
        "--compile-mode",
        help="cuda: torch.compile's mode (default, reduce-overhead, max-autotune, ...)",
    )
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument(
        "--show-losses",
        type=int,
        default=0,
        metavar="N",
        help="first print the loss of N untimed steps",
    )
    args = ap.parse_args(argv)
    args.thread_control = (
        common.limit_threads(args.threads) if args.threads is not None else "unrestricted"
    )
    cuda = {}
    if args.device == "cuda":
        cuda = dict(
            device="cuda",
            cudnn_benchmark=args.cudnn_benchmark,
            tf32=args.tf32,
            compile_mode=args.compile_mode,
        )

    batches = args.batch or [common.DEFAULT_BATCH[args.model]]
    records = []
    for k, batch in enumerate(batches):
        try:
            peer = build(args.model, batch, args.seed, args.threads, args.compile, **cuda)
        except Exception as e:  # noqa: BLE001  (torch.compile can fail in many ways offline)
            if not args.compile:
                raise
            reason = compile_error(e)
            print(f"torch.compile is not available here: {reason}")
            if args.json:
                failed = {"system": "torch-compile", "available": False, "error": reason}
                if args.device == "cuda":
                    failed["batch"] = batch
                write_json(args.json, failed if len(batches) == 1 else records + [failed])
            sys.exit(3)
        records.append(measure(peer, args))
        if args.json:  # after every batch: a run stopped later keeps the batches done
            write_json(args.json, records[0] if len(batches) == 1 else records)
        if args.device == "cuda" and k + 1 < len(batches):  # the next batch starts afresh
            torch = peer.torch
            del peer
            gc.collect()
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
