"""Side-by-side CPU training throughput: `fep bench reference` against the JAX
peer in jax_reference.py, alternating one repetition of each so that both see
the same machine conditions."""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jax_reference  # noqa: E402  (imports jax lazily)


def ours_rep(args, k):
    path = os.path.join(args.out, f"ours_rep_{k}.json")
    cmd = [
        args.fep, "bench", "reference",
        "--batch", str(args.batch), "--warmup", str(args.warmup),
        "--steps", str(args.steps), "--reps", "1", "--json", path,
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        sys.exit(f"error: cannot run fep binary {args.fep!r}: {e}")
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(f"error: `{' '.join(cmd)}` exited with status {proc.returncode}")
    try:
        with open(path) as f:
            rec = json.load(f)
        return rec, float(rec["steps_per_second"][0])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        sys.exit(f"error: fep wrote no usable steps_per_second[0] to {path}: {e!r}")


def spread(xs):
    return f"{min(xs):.2f}-{max(xs):.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fep", required=True, help="path to the fep binary")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument(
        "--deconv",
        choices=jax_reference.DECONV_IMPLS,
        default="lax",
        help=jax_reference.DECONV_HELP,
    )
    ap.add_argument("--out", required=True, help="directory for peers.json and per-rep files")
    args = ap.parse_args()
    if shutil.which(args.fep) is None:
        sys.exit(f"error: fep binary not found or not executable: {args.fep}")
    os.makedirs(args.out, exist_ok=True)

    print(f"building the JAX peer (batch {args.batch}, deconv {args.deconv})", flush=True)
    peer = jax_reference.build(args.batch, 0, args.deconv)
    peer.warmup(args.warmup)

    peer_sps, ours_sps, fep_first = [], [], None
    print(f"{'rep':>3}  {'jax steps/s':>11}  {'fep steps/s':>11}")
    for k in range(args.reps):
        peer_sps.append(peer.run_rep(args.steps))
        rec, sps = ours_rep(args, k)
        ours_sps.append(sps)
        fep_first = fep_first if fep_first is not None else rec
        print(f"{k:>3}  {peer_sps[-1]:>11.2f}  {ours_sps[-1]:>11.2f}", flush=True)

    peer_rec = jax_reference.describe(peer, peer_sps, args.steps)
    ours_med = statistics.median(ours_sps)
    peer_med = peer_rec["median_steps_per_second"]
    ratio = ours_med / peer_med
    print(f"jax median {peer_med:.2f} steps/s (spread {spread(peer_sps)})")
    print(f"fep median {ours_med:.2f} steps/s (spread {spread(ours_sps)})")
    print(f"ratio fep/jax of medians: {ratio:.3f}")

    result = {
        "peer": peer_rec,
        "ours": {
            "steps_per_second": ours_sps,
            "median_steps_per_second": ours_med,
            "fep_json": fep_first,
        },
        "ratio_ours_over_peer": ratio,
        "alternating": True,
        "reps": args.reps,
    }
    path = os.path.join(args.out, "peers.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
