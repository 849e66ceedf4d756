"""JAX peer of `fep bench reference`: the same small VAE + classifier, trained
with Adam on CPU, timed in steps per second.

Layout is NHWC (what XLA's CPU convolutions prefer); weights are HWIO.
Everything is float32. One train step (forward, backward, Adam update) is a
single jitted function; it takes a PRNG key for the reparameterisation noise
and hands back a fresh key for the next step.

jax is imported lazily (inside `build`) so that the command line can set
XLA_FLAGS for `--threads` before jax is loaded. A driver may import this
module and call `build(batch, seed)`; set XLA_FLAGS first if it needs to.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

LATENT = 16
CLASSES = 10
LAMBDA = 2.0  # weight of the reconstruction (BCE) term
GAMMA = 2.0  # weight of the classification (cross-entropy) term
LR = 1e-3
PIXEL_P = 0.13  # Bernoulli probability of the random binary images
DECONV_IMPLS = ("lax", "subpixel")


def set_threads(n):
    """Restrict XLA's CPU intra-op parallelism; must run before jax is imported."""
    if "jax" in sys.modules:
        raise RuntimeError("set_threads must be called before jax is imported")
    flags = f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={n}"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()


class Reference:
    """A compiled train step with its parameters, optimiser state and data."""

    def __init__(self, batch, seed, deconv_impl="lax"):
        if deconv_impl not in DECONV_IMPLS:
            raise ValueError(f"deconv_impl must be one of {DECONV_IMPLS}")
        import jax
        import jax.numpy as jnp
        import numpy as np
        import optax

        self.jax, self.batch, self.deconv_impl = jax, batch, deconv_impl
        lax = jax.lax
        dn = ("NHWC", "HWIO", "NHWC")

        def dense_init(key, fan_in, fan_out):
            bound = 1.0 / np.sqrt(fan_in)
            kw, kb = jax.random.split(key)
            return {
                "w": jax.random.uniform(kw, (fan_in, fan_out), jnp.float32, -bound, bound),
                "b": jax.random.uniform(kb, (fan_out,), jnp.float32, -bound, bound),
            }

        def conv_init(key, cin, cout):
            bound = 1.0 / np.sqrt(cin * 16)
            kw, kb = jax.random.split(key)
            return {
                "w": jax.random.uniform(kw, (4, 4, cin, cout), jnp.float32, -bound, bound),
                "b": jax.random.uniform(kb, (cout,), jnp.float32, -bound, bound),
            }

        keys = jax.random.split(jax.random.PRNGKey(seed), 8)
        params = {
            "enc1": conv_init(keys[0], 1, 32),
            "enc2": conv_init(keys[1], 32, 64),
            "enc_fc": dense_init(keys[2], 64 * 7 * 7, 2 * LATENT),
            "dec_fc": dense_init(keys[3], LATENT, 64 * 7 * 7),
            "dec1": conv_init(keys[4], 64, 32),
            "dec2": conv_init(keys[5], 32, 1),
            "cls": dense_init(keys[6], LATENT, CLASSES),
        }

        def conv(p, x):  # kernel 4, stride 2, padding 1: 28 -> 14 -> 7
            y = lax.conv_general_dilated(x, p["w"], (2, 2), ((1, 1), (1, 1)), dimension_numbers=dn)
            return y + p["b"]

        # sub-pixel form of the transposed conv: output phase r in {0, 1} of each axis
        # reads a 3-tap window of the input through kernel taps SEL[r] (0 = none)
        sel = np.zeros((2, 3, 4), np.float32)
        sel[0, 0, 0] = sel[0, 1, 2] = sel[1, 1, 1] = sel[1, 2, 3] = 1.0
        sel = jnp.asarray(sel)

        def deconv(p, x):  # transposed conv, kernel 4, stride 2, padding 1: 7 -> 14 -> 28
            w = p["w"]
            if deconv_impl == "lax":
                # explicit padding applies to the dilated input: k - 1 - p = 2 per side
                y = lax.conv_transpose(x, w, (2, 2), ((2, 2), (2, 2)), dimension_numbers=dn)
                return y + p["b"]
            # "subpixel": the same function as one stride-1 3x3 conv to 4x the
            # channels, then depth-to-space; avoids XLA CPU's slow dilated conv
            # in the weight gradient
            n, h, wd, cin = x.shape
            cout = w.shape[3]
            k = jnp.einsum("rai,sbj,ijco->abcrso", sel, sel, w).reshape(3, 3, cin, 4 * cout)
            y = lax.conv_general_dilated(x, k, (1, 1), ((1, 1), (1, 1)), dimension_numbers=dn)
            y = y.reshape(n, h, wd, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5)
            return y.reshape(n, 2 * h, 2 * wd, cout) + p["b"]

        def dense(p, x):
            return x @ p["w"] + p["b"]

        def loss_fn(params, x, y, key):
            n = x.shape[0]
            h = jax.nn.relu(conv(params["enc1"], x))
            h = jax.nn.relu(conv(params["enc2"], h))
            stats = dense(params["enc_fc"], h.reshape(n, -1))
            mu, logvar = stats[:, :LATENT], stats[:, LATENT:]
            eps = jax.random.normal(key, mu.shape, jnp.float32)
            z = mu + jnp.exp(0.5 * logvar) * eps
            d = jax.nn.relu(dense(params["dec_fc"], z)).reshape(n, 7, 7, 64)
            d = jax.nn.relu(deconv(params["dec1"], d))
            logits = deconv(params["dec2"], d)  # (n, 28, 28, 1) Bernoulli logits
            kl = -0.5 * jnp.sum(1.0 + logvar - mu**2 - jnp.exp(logvar), axis=1)
            bce = optax.sigmoid_binary_cross_entropy(logits, x).reshape(n, -1).sum(axis=1)
            ce = optax.softmax_cross_entropy_with_integer_labels(dense(params["cls"], z), y)
            return jnp.mean(kl + LAMBDA * bce + GAMMA * ce)

        opt = optax.adam(LR)

        def train_step(params, opt_state, key, x, y):
            key, sub = jax.random.split(key)
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y, sub)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, key, loss

        rng = np.random.default_rng(seed)
        self.x = jnp.asarray((rng.random((batch, 28, 28, 1)) < PIXEL_P).astype(np.float32))
        self.y = jnp.asarray(rng.integers(0, CLASSES, size=batch).astype(np.int32))
        self.params, self.opt_state = params, opt.init(params)
        self.key = jax.random.PRNGKey(seed + 1)
        self.num_params = sum(int(a.size) for a in jax.tree_util.tree_leaves(params))
        self.step = jax.jit(train_step, donate_argnums=(0, 1, 2))
        self.loss = None
        self._steps(1)  # compile

    def _steps(self, n):
        for _ in range(n):
            self.params, self.opt_state, self.key, self.loss = self.step(
                self.params, self.opt_state, self.key, self.x, self.y
            )
        self.jax.block_until_ready((self.params, self.opt_state, self.loss))

    def warmup(self, steps):
        self._steps(steps)

    def run_rep(self, steps):
        """Time `steps` train steps (results materialised at the end); return steps/s."""
        t0 = time.perf_counter()
        self._steps(steps)
        return steps / (time.perf_counter() - t0)

    def last_loss(self):
        return float(self.loss)


def build(batch=128, seed=0, deconv_impl="lax"):
    return Reference(batch, seed, deconv_impl)


def describe(model, sps, steps, threads=None):
    """The JSON record for a list of per-repetition steps/s."""
    import jax
    import jaxlib
    import optax

    med = statistics.median(sps)
    return {
        "framework": "jax",
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "optax_version": optax.__version__,
        "python": platform.python_version(),
        "device": str(jax.devices()[0]),
        "threads": threads if threads is not None else os.cpu_count(),
        "layout": "NHWC",
        "deconv": model.deconv_impl,
        "batch": model.batch,
        "steps_per_rep": steps,
        "steps_per_second": sps,
        "images_per_second": [s * model.batch for s in sps],
        "median_steps_per_second": med,
        "images_per_second_median": med * model.batch,
        "num_params": model.num_params,
        "last_loss": model.last_loss(),
    }


DECONV_HELP = (
    "transposed-conv implementation: lax.conv_transpose (default; what flax's "
    "ConvTranspose uses) or an equal sub-pixel conv that is faster on XLA CPU"
)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--deconv", choices=DECONV_IMPLS, default="lax", help=DECONV_HELP)
    ap.add_argument(
        "--threads",
        type=int,
        help="limit XLA CPU intra-op threads (sets XLA_FLAGS before importing jax)",
    )
    args = ap.parse_args(argv)
    if args.threads is not None:
        set_threads(args.threads)

    model = build(args.batch, args.seed, args.deconv)
    model.warmup(args.warmup)
    sps = []
    print(f"{'rep':>3}  {'steps/s':>9}  {'images/s':>10}")
    for i in range(args.reps):
        sps.append(model.run_rep(args.steps))
        print(f"{i:>3}  {sps[-1]:>9.2f}  {sps[-1] * args.batch:>10.1f}")
    rec = describe(model, sps, args.steps, args.threads)
    print(
        f"median {rec['median_steps_per_second']:.2f} steps/s, "
        f"{rec['images_per_second_median']:.1f} images/s "
        f"({rec['num_params']} params, {rec['device']}, threads {rec['threads']})"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rec, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
