"""Checks that the peers compute the same thing: for each model, the parameter counts
of the JAX and PyTorch peers against fep's; the loss and every gradient of the PyTorch
network against the JAX one (lax and subpixel) with the JAX weights copied into it and
the same data and noise; and the first few training losses of each peer.

    benchmarks/peers/.venv/bin/python benchmarks/peers/check_peers.py [--batch 8] [--steps 4]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def jax_to_torch(model, name, leaf, value):
    """The torch tensor (as numpy) for JAX parameter `name`/`leaf`."""
    import numpy as np

    v = np.asarray(value)
    if leaf in ("scale", "bias"):  # BatchNorm weight / bias
        return v
    if v.ndim == 4:  # conv HWIO -> OIHW; deconv (lax convention) -> torch (I, O, H, W), flipped
        if name.startswith("dec") and not name.startswith("dec_fc"):
            return np.ascontiguousarray(np.flip(v, (0, 1)).transpose(2, 3, 0, 1))
        return np.ascontiguousarray(v.transpose(3, 2, 0, 1))
    if model == "reference" and name == "enc_fc" and leaf == "w":
        # JAX flattens (h, w, c), torch (c, h, w)
        return np.ascontiguousarray(
            v.reshape(7, 7, 64, -1).transpose(2, 0, 1, 3).reshape(3136, -1).T
        )
    if model == "reference" and name == "dec_fc":
        if leaf == "w":
            return np.ascontiguousarray(
                v.reshape(-1, 7, 7, 64).transpose(0, 3, 1, 2).reshape(-1, 3136).T
            )
        return np.ascontiguousarray(v.reshape(7, 7, 64).transpose(2, 0, 1).reshape(-1))
    if leaf == "w":  # dense (in, out) -> Linear (out, in)
        return np.ascontiguousarray(v.T)
    return v


def torch_param(net, name, leaf):
    module = getattr(net, name)
    return {"w": module.weight, "b": module.bias, "scale": module.weight, "bias": module.bias}[leaf]


def compare(model, batch, seed):
    import jax
    import numpy as np
    import torch

    import jax_reference
    import torch_reference

    worst = 0.0
    for impl in jax_reference.DECONV_IMPLS:
        jp = jax_reference.build(batch, seed, impl, model)
        net = torch_reference.make_net(model).train()
        with torch.no_grad():
            for name, leaves in jp.params.items():
                for leaf, value in leaves.items():
                    torch_param(net, name, leaf).copy_(
                        torch.from_numpy(jax_to_torch(model, name, leaf, value).copy())
                    )
        eps = (
            np.random.default_rng(seed + 7)
            .standard_normal((batch, common.LATENT))
            .astype(np.float32)
        )
        x, y = common.data(batch, seed)

        def jloss(params):
            return jp.forward_loss(params, jp.state, jp.x, jp.y, eps)[0]

        jl, jg = jax.value_and_grad(jloss)(jp.params)
        tl = net(
            torch.from_numpy(x.reshape(batch, 1, 28, 28).copy()),
            torch.from_numpy(y.astype(np.int64)),
            torch.from_numpy(eps),
        )
        tl.backward()
        rel_loss = abs(float(jl) - tl.item()) / abs(float(jl))
        # Relative to the largest gradient entry of the whole model: the gradient of a
        # convolution bias followed by BatchNorm is zero up to rounding in both.
        pairs = [
            (
                f"{name}.{leaf}",
                jax_to_torch(model, name, leaf, g),
                torch_param(net, name, leaf).grad.numpy(),
            )
            for name, leaves in jg.items()
            for leaf, g in leaves.items()
        ]
        scale = max(float(np.max(np.abs(want))) for _, want, _ in pairs)
        grad_err, worst_leaf = max(
            (float(np.max(np.abs(want - got))) / scale, where) for where, want, got in pairs
        )
        print(
            f"  jax-{impl:<8} loss {float(jl):.4f}  torch (same weights, data, noise) {tl.item():.4f}  "
            f"relative difference {rel_loss:.1e}; largest gradient difference {grad_err:.1e} of the largest "
            f"gradient entry ({worst_leaf})"
        )
        worst = max(worst, rel_loss, grad_err)
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4, help="training losses to show per peer")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default=",".join(common.MODELS))
    args = ap.parse_args()
    common.limit_threads(args.threads)
    import jax_reference
    import torch_reference

    ok = True
    for model in args.models.split(","):
        common.check_model(model)
        print(f"{model} (batch {args.batch}; fep counts {common.FEP_NUM_PARAMS[model]} parameters)")
        worst = compare(model, args.batch, args.seed)
        ok &= worst < 1e-3
        peers = [
            (f"jax-{impl}", jax_reference.build(args.batch, args.seed, impl, model))
            for impl in jax_reference.DECONV_IMPLS
        ]
        peers.append(
            ("torch-eager", torch_reference.build(model, args.batch, args.seed, args.threads))
        )
        for label, peer in peers:
            count = peer.num_params + peer.num_state
            ok &= count == common.FEP_NUM_PARAMS[model]
            losses = " ".join(f"{v:.1f}" for v in [peer.last_loss()] + peer.losses(args.steps))
            print(
                f"  {label:<12} {peer.num_params} trainable + {peer.num_state} BatchNorm running = {count} "
                f"({'= fep' if count == common.FEP_NUM_PARAMS[model] else 'DIFFERS from fep'}); losses {losses}"
            )
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
