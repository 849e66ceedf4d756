"""JAX peers of `fep bench`: the reference model (`fep bench reference`: mnist-small
layers, Bernoulli decoder, linear classifier) and the mnist-paper network (`fep bench
--arch mnist-paper`: the authors' DCGAN-style encoder and decoder with BatchNorm),
trained with Adam on CPU (or, with `--device cuda`, on one NVIDIA GPU through JAX's
CUDA plugin) and timed in steps per second.

Layout is NHWC (what XLA's CPU convolutions prefer); weights are HWIO. Everything is
float32. One train step (forward, backward, Adam update, BatchNorm running statistics)
is a single jitted function; it takes a PRNG key for the reparameterisation noise and
hands back a fresh key for the next step.

Transposed convolutions come in two formulations of the same function: `lax`
(`jax.lax.conv_transpose`, what flax's ConvTranspose uses) and `subpixel` (each
stride-2 transposed convolution as one stride-1 convolution to 4x the channels
followed by depth-to-space, and the mnist-paper decoder's first one, a 1x1 -> 4x4
transposed convolution with padding 0, as one matrix product). `--check` shows that
the two agree on every transposed convolution of both models.

jax is imported lazily (inside `build`) so that the command line can limit the
threads (`common.limit_threads`) and choose the platform (`select_platform`) before jax
is loaded.

On cuda every timed block ends with `block_until_ready` as on the CPU; the record adds
the time of the first step (the jit compilation) and the time from the start of the
process to the end of that first step (`time_to_first_step_s`, cold for the first batch
of the process). XLA chooses the precision of float32 convolutions and matrix products
on the GPU (`--matmul-precision` sets `jax_default_matmul_precision`; `highest` asks for
full float32).
"""

import argparse
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

DECONV_IMPLS = ("lax", "subpixel")
DECONV_HELP = (
    "transposed-conv formulation: lax.conv_transpose (default; what flax's "
    "ConvTranspose uses) or the same function as sub-pixel convolutions, faster on XLA CPU"
)


def set_threads(n):
    """Limit this process to `n` CPUs before jax is imported (see common.limit_threads)."""
    return common.limit_threads(n)


PLATFORMS = {"cpu": "cpu", "cuda": "cuda"}
MATMUL_PRECISIONS = ("default", "high", "highest")


def select_platform(device):
    """Make jax use `device` (cpu or cuda): sets JAX_PLATFORMS unless it is set already.
    Must run before jax is imported; with an installed CUDA plugin, jax would otherwise
    take the GPU for a CPU measurement."""
    if device not in common.DEVICES:
        raise ValueError(f"device must be one of {common.DEVICES}, got {device!r}")
    if "jax" in sys.modules:
        raise RuntimeError("select_platform must be called before jax is imported")
    os.environ.setdefault("JAX_PLATFORMS", PLATFORMS[device])


def subpixel_plan(k, pad, size):
    """How a stride-2 transposed convolution (kernel k, padding pad, in lax's
    convention: out[o] = sum_t dilated_padded_x[o + t] w[t], with k - 1 - pad zeros
    each side) of a `size`-long input is one stride-1 convolution per output phase.
    Output o = 2m + r reads x[m + d] through tap t where o + t = (k - 1 - pad) + 2i.
    Returns sel[r, a, t] (1 where phase r reads window position a through tap t), the
    (low, high) padding of the stride-1 convolution, the phase length and the length
    of the output."""
    import numpy as np

    p_lax = k - 1 - pad
    out = 2 * (size - 1) - 2 * pad + k
    taps = [
        (r, (r + t - p_lax) // 2, t) for r in (0, 1) for t in range(k) if (r + t - p_lax) % 2 == 0
    ]
    dmin = min(d for _, d, _ in taps)
    width = max(d for _, d, _ in taps) - dmin + 1
    sel = np.zeros((2, width, k), np.float32)
    for r, d, t in taps:
        sel[r, d - dmin, t] = 1.0
    phase = (out + 1) // 2
    low = -dmin
    high = phase - size - low + width - 1
    if low < 0 or high < 0:
        raise ValueError(f"no sub-pixel plan for k={k} pad={pad} size={size}")
    return sel, (low, high), phase, out


def make_deconv(impl):
    """A transposed convolution `deconv(p, x, stride, pad)` in lax's convention (the
    kernel is not flipped; p = {"w": HWIO, "b": O}; x NHWC) in formulation `impl`."""
    if impl not in DECONV_IMPLS:
        raise ValueError(f"deconv formulation must be one of {DECONV_IMPLS}")
    import jax.numpy as jnp
    from jax import lax

    dn = ("NHWC", "HWIO", "NHWC")

    def deconv(p, x, stride, pad):
        w = p["w"]
        k, cout = w.shape[0], w.shape[3]
        n, h, wd, cin = x.shape
        if impl == "lax" or (stride == 1 and (h, wd, pad) != (1, 1, 0)):
            # explicit padding applies to the dilated input: k - 1 - pad per side
            q = k - 1 - pad
            y = lax.conv_transpose(x, w, (stride, stride), ((q, q), (q, q)), dimension_numbers=dn)
            return y + p["b"]
        if stride == 1:
            # 1x1 input, padding 0: out[i, j] = x . w[k-1-i, k-1-j], one matrix product
            y = jnp.einsum("nc,hwco->nhwo", x.reshape(n, cin), w[::-1, ::-1])
            return y + p["b"]
        if stride != 2 or h != wd:
            raise ValueError("the sub-pixel form covers stride 2 on square inputs")
        sel, (lo, hi), phase, out = subpixel_plan(k, pad, h)
        sel = jnp.asarray(sel)
        width = sel.shape[1]
        # kernel [a, b, cin, (r, s, cout)]: phase (r, s) reads window (a, b) through tap sel
        kk = jnp.einsum("rai,sbj,ijco->abcrso", sel, sel, w).reshape(width, width, cin, 4 * cout)
        y = lax.conv_general_dilated(x, kk, (1, 1), ((lo, hi), (lo, hi)), dimension_numbers=dn)
        y = y.reshape(n, phase, phase, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5)
        y = y.reshape(n, 2 * phase, 2 * phase, cout)[:, :out, :out, :]
        return y + p["b"]

    return deconv


class Peer(common.TimedPeer):
    """A compiled train step with its parameters, BatchNorm state, optimiser state and data."""

    def __init__(self, batch, seed, deconv_impl="lax", model="reference", device="cpu"):
        build_started = time.perf_counter()
        if deconv_impl not in DECONV_IMPLS:
            raise ValueError(f"deconv_impl must be one of {DECONV_IMPLS}")
        common.check_model(model)
        if device not in common.DEVICES:
            raise ValueError(f"device must be one of {common.DEVICES}, got {device!r}")
        import jax
        import jax.numpy as jnp
        import numpy as np
        import optax

        if device == "cuda" and jax.default_backend() != "gpu":
            raise RuntimeError(
                f"--device cuda: jax {jax.__version__} runs on {jax.default_backend()!r}, not a GPU "
                f"(devices {jax.devices()}; JAX_PLATFORMS={os.environ.get('JAX_PLATFORMS')!r}); "
                "install jax with its CUDA plugin"
            )
        self.jax, self.batch, self.deconv_impl, self.model = jax, batch, deconv_impl, model
        self.device = device
        lax = jax.lax
        dn = ("NHWC", "HWIO", "NHWC")

        def dense_init(key, fan_in, fan_out):
            bound = 1.0 / np.sqrt(fan_in)
            kw, kb = jax.random.split(key)
            return {
                "w": jax.random.uniform(kw, (fan_in, fan_out), jnp.float32, -bound, bound),
                "b": jax.random.uniform(kb, (fan_out,), jnp.float32, -bound, bound),
            }

        def conv_init(key, cin, cout, k=4, transposed=False):
            # Burn's (and torch's) default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), where a
            # transposed convolution's fan_in is its output channels times k * k
            bound = 1.0 / np.sqrt((cout if transposed else cin) * k * k)
            kw, kb = jax.random.split(key)
            return {
                "w": jax.random.uniform(kw, (k, k, cin, cout), jnp.float32, -bound, bound),
                "b": jax.random.uniform(kb, (cout,), jnp.float32, -bound, bound),
            }

        def conv(p, x, stride, pad):
            y = lax.conv_general_dilated(
                x, p["w"], (stride, stride), ((pad, pad), (pad, pad)), dimension_numbers=dn
            )
            return y + p["b"]

        deconv = make_deconv(deconv_impl)

        def dense(p, x):
            return x @ p["w"] + p["b"]

        def batch_norm(p, s, h):
            """Training mode: batch statistics (biased variance) normalise; the running
            statistics are updated as Burn's BatchNorm does (momentum 0.1)."""
            mean = jnp.mean(h, axis=(0, 1, 2))
            var = jnp.mean(jnp.square(h - mean), axis=(0, 1, 2))
            y = (h - mean) * lax.rsqrt(var + BN_EPS) * p["scale"] + p["bias"]
            m = BN_MOMENTUM
            new = {
                "mean": (1 - m) * s["mean"] + m * lax.stop_gradient(mean),
                "var": (1 - m) * s["var"] + m * lax.stop_gradient(var),
            }
            return y, new

        def bn_init(c):
            params = {"scale": jnp.ones((c,), jnp.float32), "bias": jnp.zeros((c,), jnp.float32)}
            state = {"mean": jnp.zeros((c,), jnp.float32), "var": jnp.ones((c,), jnp.float32)}
            return params, state

        def leaky(h):
            return jnp.where(h >= 0, h, LEAK * h)

        relu = jax.nn.relu

        if model == "reference":
            keys = jax.random.split(jax.random.PRNGKey(seed), 8)
            params = {
                "enc1": conv_init(keys[0], 1, 32),
                "enc2": conv_init(keys[1], 32, 64),
                "enc_fc": dense_init(keys[2], 64 * 7 * 7, 2 * LATENT),
                "dec_fc": dense_init(keys[3], LATENT, 64 * 7 * 7),
                "dec1": conv_init(keys[4], 64, 32, transposed=True),
                "dec2": conv_init(keys[5], 32, 1, transposed=True),
                "cls": dense_init(keys[6], LATENT, CLASSES),
            }
            state = {}

            def encode(params, state, x):
                n = x.shape[0]
                h = relu(conv(params["enc1"], x, 2, 1))
                h = relu(conv(params["enc2"], h, 2, 1))
                stats = dense(params["enc_fc"], h.reshape(n, -1))
                return stats[:, :LATENT], stats[:, LATENT:], {}

            def decode(params, state, z):
                n = z.shape[0]
                d = relu(dense(params["dec_fc"], z)).reshape(n, 7, 7, 64)
                d = relu(deconv(params["dec1"], d, 2, 1))
                return deconv(params["dec2"], d, 2, 1), {}  # (n, 28, 28, 1) logits

        else:  # mnist-paper
            keys = iter(jax.random.split(jax.random.PRNGKey(seed), 16))
            params, state = {}, {}
            for name, cin, cout, k, _, _ in PAPER_ENCODER_CONVS:
                params[name] = conv_init(next(keys), cin, cout, k)
            for name in sorted(PAPER_ENCODER_BN):
                params["bn_" + name], state["bn_" + name] = bn_init(params[name]["b"].shape[0])
            params["fc"] = dense_init(next(keys), 1024, 512)
            params["mean"] = dense_init(next(keys), 512, LATENT)
            params["log_var"] = dense_init(next(keys), 512, LATENT)
            params["fc1"] = dense_init(next(keys), LATENT, 512)
            params["fc2"] = dense_init(next(keys), 512, 1024)
            for name, cin, cout, k, _, _ in PAPER_DECODER_DECONVS:
                params[name] = conv_init(next(keys), cin, cout, k, transposed=True)
                if name != "deconv4":
                    params["bn_" + name], state["bn_" + name] = bn_init(cout)
            params["cls"] = dense_init(next(keys), LATENT, CLASSES)

            def encode(params, state, x):
                n, h, new = x.shape[0], x, {}
                for name, _, _, _, stride, pad in PAPER_ENCODER_CONVS:
                    h = conv(params[name], h, stride, pad)
                    if name in PAPER_ENCODER_BN:
                        h, new["bn_" + name] = batch_norm(
                            params["bn_" + name], state["bn_" + name], h
                        )
                    h = leaky(h)
                h = leaky(dense(params["fc"], h.reshape(n, -1)))  # (n, 1024): 1x1 spatial
                return dense(params["mean"], h), dense(params["log_var"], h), new

            def decode(params, state, z):
                n, new = z.shape[0], {}
                d = relu(dense(params["fc1"], z))
                d = relu(dense(params["fc2"], d)).reshape(n, 1, 1, 1024)
                for name, _, _, _, stride, pad in PAPER_DECODER_DECONVS:
                    d = deconv(params[name], d, stride, pad)
                    if name != "deconv4":
                        d, new["bn_" + name] = batch_norm(
                            params["bn_" + name], state["bn_" + name], d
                        )
                        d = relu(d)
                return d, new  # (n, 28, 28, 1) Bernoulli logits

        def forward_loss(params, state, x, y, eps):
            """Mean over the batch of KL + LAMBDA * BCE + GAMMA * CE, and the new state."""
            n = x.shape[0]
            mu, logvar, enc_state = encode(params, state, x)
            z = mu + jnp.exp(0.5 * logvar) * eps
            logits, dec_state = decode(params, state, z)
            kl = -0.5 * jnp.sum(1.0 + logvar - mu**2 - jnp.exp(logvar), axis=1)
            bce = optax.sigmoid_binary_cross_entropy(logits, x).reshape(n, -1).sum(axis=1)
            ce = optax.softmax_cross_entropy_with_integer_labels(dense(params["cls"], z), y)
            return jnp.mean(kl + LAMBDA * bce + GAMMA * ce), {**enc_state, **dec_state}

        opt = optax.adam(LR, b1=ADAM_BETAS[0], b2=ADAM_BETAS[1], eps=ADAM_EPS)

        def train_step(params, state, opt_state, key, x, y):
            key, sub = jax.random.split(key)
            eps = jax.random.normal(sub, (x.shape[0], LATENT), jnp.float32)
            (loss, state), grads = jax.value_and_grad(forward_loss, has_aux=True)(
                params, state, x, y, eps
            )
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), state, opt_state, key, loss

        x, y = common.data(batch, seed)
        self.x, self.y = jnp.asarray(x), jnp.asarray(y)
        self.params, self.state, self.opt_state = params, state, opt.init(params)
        self.key = jax.random.PRNGKey(seed + 1)
        self.num_params = sum(int(a.size) for a in jax.tree_util.tree_leaves(params))
        self.num_state = sum(int(a.size) for a in jax.tree_util.tree_leaves(state))
        self.forward_loss = jax.jit(forward_loss)
        self.step = jax.jit(train_step, donate_argnums=(0, 1, 2, 3))
        self.loss = None
        self._first_step(build_started)  # compiles here

    def _steps(self, n):
        for _ in range(n):
            self.params, self.state, self.opt_state, self.key, self.loss = self.step(
                self.params, self.state, self.opt_state, self.key, self.x, self.y
            )
        self.jax.block_until_ready((self.params, self.state, self.opt_state, self.loss))



# The old name of the class (it held the reference model only).
Reference = Peer


def build(batch=128, seed=0, deconv_impl="lax", model="reference", device="cpu"):
    return Peer(batch, seed, deconv_impl, model, device)


def versions():
    import jax
    import jaxlib
    import optax

    return {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "python": platform.python_version(),
    }


def describe(model, sps, steps, threads=None):
    """The JSON record for a list of per-repetition steps/s."""
    import jax

    med = statistics.median(sps)
    rec = {
        "framework": "jax",
        "system": f"jax-{model.deconv_impl}",
        "model": model.model,
        **{k + "_version": v for k, v in versions().items() if k != "python"},
        "python": platform.python_version(),
        "device": str(jax.devices()[0]),
        "threads": threads if threads is not None else len(os.sched_getaffinity(0)),
        "layout": "NHWC",
        "deconv": model.deconv_impl,
        "batch": model.batch,
        "steps_per_rep": steps,
        "steps_per_second": sps,
        "images_per_second": [s * model.batch for s in sps],
        "median_steps_per_second": med,
        "images_per_second_median": med * model.batch,
        "min_steps_per_second": min(sps),
        "max_steps_per_second": max(sps),
        "num_params": model.num_params,
        "num_params_fep_convention": model.num_params + model.num_state,
        "last_loss": model.last_loss(),
    }
    if getattr(model, "device", "cpu") == "cuda":
        rec.update(cuda_fields(model))
    return rec


def cuda_fields(peer):
    """What a cuda record adds: the GPU, the precision setting, the synchronisation and
    the first step."""
    jax = peer.jax
    dev = jax.devices()[0]
    try:
        peak = dev.memory_stats().get("peak_bytes_in_use", 0) / 2**20
    except Exception:  # noqa: BLE001  (not every plugin reports memory)
        peak = None
    return {
        "gpu": getattr(dev, "device_kind", str(dev)),
        "backend": jax.default_backend(),
        "default_matmul_precision": getattr(jax.config, "jax_default_matmul_precision", None),
        "sync": "jax.block_until_ready after every timed block",
        "build_seconds": peer.build_seconds,
        "first_step_seconds": peer.first_step_seconds,
        "time_to_first_step_s": peer.time_to_first_step_s,
        "first_in_process": peer.first_in_process,
        "peak_gpu_memory_mib": peak,
    }


def check_deconvs(seed=0):
    """(layer, output shape, max |lax - subpixel|, max |output|) over random inputs and
    weights for every transposed convolution of both models, at the shapes they have
    there."""
    import numpy as np

    rng = np.random.default_rng(seed)
    layers = [("reference dec1", 64, 32, 4, 2, 1, 7), ("reference dec2", 32, 1, 4, 2, 1, 14)]
    size = 1
    for name, cin, cout, k, stride, pad in PAPER_DECODER_DECONVS:
        layers.append((f"mnist-paper {name}", cin, cout, k, stride, pad, size))
        size = stride * (size - 1) - 2 * pad + k
    impls = {impl: make_deconv(impl) for impl in DECONV_IMPLS}
    results = []
    for name, cin, cout, k, stride, pad, size in layers:
        x = rng.standard_normal((3, size, size, cin)).astype(np.float32)
        p = {
            "w": (rng.standard_normal((k, k, cin, cout)) / np.sqrt(cin * k * k)).astype(np.float32),
            "b": rng.standard_normal(cout).astype(np.float32),
        }
        outs = {impl: np.asarray(f(p, x, stride, pad)) for impl, f in impls.items()}
        err = float(np.max(np.abs(outs["lax"] - outs["subpixel"])))
        results.append((name, outs["lax"].shape, err, float(np.max(np.abs(outs["lax"])))))
    return results


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def measure(model, args, how):
    """Warm-up, then the timed repetitions of one built peer; prints them and returns the
    record."""
    batch = model.batch
    where = "" if model.device == "cpu" else f" on {model.device}"
    print(
        f"jax {args.model} ({args.deconv}){where}, batch {batch}: {model.num_params} trainable parameters, "
        f"{model.num_params + model.num_state} with BatchNorm running statistics "
        f"(fep: {common.FEP_NUM_PARAMS[args.model]}); threads: {how}"
    )
    sps = common.timed_reps(model, args)
    rec = describe(model, sps, args.steps, args.threads)
    if model.device == "cuda":
        rec["warmup_steps"] = args.warmup
    print(
        f"median {rec['median_steps_per_second']:.2f} steps/s, "
        f"{rec['images_per_second_median']:.1f} images/s "
        f"({rec['num_params']} params, {rec['device']}, threads {rec['threads']})",
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
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--deconv", choices=DECONV_IMPLS, default="lax", help=DECONV_HELP)
    ap.add_argument("--threads", type=int, help="limit the process to N CPUs (before jax loads)")
    ap.add_argument(
        "--device",
        choices=common.DEVICES,
        default="cpu",
        help="cpu, or cuda (one NVIDIA GPU through jax's CUDA plugin); sets JAX_PLATFORMS unless set",
    )
    ap.add_argument(
        "--matmul-precision",
        choices=MATMUL_PRECISIONS,
        default="default",
        help="jax_default_matmul_precision (default: XLA's choice; highest: full float32 on the GPU)",
    )
    ap.add_argument(
        "--show-losses",
        type=int,
        default=0,
        metavar="N",
        help="first print the loss of each of N untimed steps",
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="compare the lax and subpixel transposed convolutions of both models, then exit",
    )
    args = ap.parse_args(argv)
    how = set_threads(args.threads) if args.threads is not None else "unrestricted"
    select_platform(args.device)
    if args.matmul_precision != "default":
        import jax

        jax.config.update("jax_default_matmul_precision", args.matmul_precision)

    if args.check:
        bad = False
        for name, shape, err, scale in check_deconvs(args.seed):
            ok = err <= 1e-4 * max(scale, 1.0)
            bad |= not ok
            print(
                f"{name:<22} out {shape}  max|lax - subpixel| {err:.2e} (max|out| {scale:.2f}) {'ok' if ok else 'DIFFERENT'}"
            )
        sys.exit(1 if bad else 0)

    batches = args.batch or [common.DEFAULT_BATCH[args.model]]
    records = []
    for batch in batches:
        model = build(batch, args.seed, args.deconv, args.model, args.device)
        records.append(measure(model, args, how))
        if args.json:  # after every batch: a run stopped later keeps the batches done
            write_json(args.json, records[0] if len(batches) == 1 else records)
        del model


if __name__ == "__main__":
    main()
