"""Side-by-side CPU training throughput, in one sitting: fep (`fep bench reference`
and `fep bench --arch mnist-paper`) against its peers, JAX (jit, with
`lax.conv_transpose` and with the same function as sub-pixel convolutions) and
PyTorch (eager, and `torch.compile` where it works), on the reference model (batch
128) and the mnist-paper network (batch 64, one latent sample). Every system gets the
same threads; repetitions alternate between the systems (the order rotates each
repetition) so that all see the same machine conditions. Writes OUT/bench-peers.json.
"""

import argparse
import datetime
import gc
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (imports neither jax nor torch)

DEFAULT_STEPS = {"reference": 20, "mnist-paper": 5}
DEFAULT_WARMUP = {"reference": 5, "mnist-paper": 2}


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def fep_rep(args, model, batch, steps, warmup, k):
    """One fresh `fep` process: warm-up, then one timed repetition. Returns (record, steps/s)."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    if model == "reference":
        path = os.path.join(args.out, f"fep_reference_rep_{k}.json")
        cmd = [
            args.fep, "bench", "reference", "--batch", str(batch), "--warmup", str(warmup),
            "--steps", str(steps), "--reps", "1", "--json", path,
        ]  # fmt: skip
    else:
        folder = os.path.join(args.out, f"fep_{model}_rep_{k}")
        path = os.path.join(folder, "bench.json")
        cmd = [
            args.fep, "--backend", "flex", "bench", "--arch", model, "--batch", str(batch),
            "--num-z", "1", "--warmup", str(warmup), "--steps", str(steps), "--reps", "1",
            "--out", folder, "--force",
        ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    except OSError as e:
        sys.exit(f"error: cannot run fep binary {args.fep!r}: {e}")
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(f"error: `{' '.join(cmd)}` exited with status {proc.returncode}")
    try:
        with open(path) as f:
            rec = json.load(f)
        if model == "reference":
            sps = float(rec["steps_per_second"][0])
        else:
            (row,) = [m for m in rec["models"] if m["architecture"] == model]
            sps = float(row["train_steps_per_second"]["values"][0])
        return rec, sps, path
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        sys.exit(f"error: fep wrote no usable steps/s to {path}: {e!r}")


def fep_version(binary):
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"


def stats(sps, batch):
    med = statistics.median(sps)
    return {
        "steps_per_second": sps,
        "images_per_second": [s * batch for s in sps],
        "median_steps_per_second": med,
        "images_per_second_median": med * batch,
        "min_steps_per_second": min(sps),
        "max_steps_per_second": max(sps),
    }


def build_peers(args, model, batch, seed=0):
    """Every in-process peer of `model`, built, compiled and warmed up: a list of
    (system name, peer, describe function); plus records of peers that are unavailable."""
    import jax_reference
    import torch_reference

    peers, unavailable = [], {}
    for impl in jax_reference.DECONV_IMPLS:
        print(f"  building jax-{impl}", flush=True)
        peers.append(
            (f"jax-{impl}", jax_reference.build(batch, seed, impl, model), jax_reference.describe)
        )
    print("  building torch-eager", flush=True)
    peers.append(
        (
            "torch-eager",
            torch_reference.build(model, batch, seed, args.threads),
            torch_reference.describe,
        )
    )
    if args.torch_compile:
        print("  building torch-compile (compiles now; may take minutes)", flush=True)
        try:
            peer = torch_reference.build(model, batch, seed, args.threads, compile=True)
            peers.append(("torch-compile", peer, torch_reference.describe))
        except Exception as e:  # noqa: BLE001  (torch.compile fails in many ways offline)
            reason = torch_reference.compile_error(e)
            print(f"  torch.compile unavailable: {reason}", flush=True)
            unavailable["torch-compile"] = {"available": False, "error": reason}
    return peers, unavailable


def run_model(args, model):
    batch = args.batch or common.DEFAULT_BATCH[model]
    steps = args.steps or DEFAULT_STEPS[model]
    warmup = args.warmup if args.warmup is not None else DEFAULT_WARMUP[model]
    print(
        f"\n== {model}: batch {batch}, {args.reps} reps of {steps} steps after {warmup} warm-up steps",
        flush=True,
    )
    peers, unavailable = build_peers(args, model, batch)
    for name, peer, _ in peers:
        print(f"  warming up {name}", flush=True)
        peer.warmup(warmup)

    systems = ["fep"] + [name for name, _, _ in peers]
    by_name = {name: (peer, describe) for name, peer, describe in peers}
    sps = {name: [] for name in systems}
    fep_records, fep_files = [], []
    print("  " + "  ".join(["rep"] + [f"{s:>14}" for s in systems]) + "   (steps/s)", flush=True)
    for k in range(args.reps):
        order = systems[k % len(systems) :] + systems[: k % len(systems)]
        for name in order:
            if name == "fep":
                rec, rate, path = fep_rep(args, model, batch, steps, warmup, k)
                fep_records.append(rec)
                fep_files.append(os.path.relpath(path, args.out))
            else:
                rate = by_name[name][0].run_rep(steps)
            sps[name].append(rate)
        print("  " + "  ".join([f"{k:>3}"] + [f"{sps[s][-1]:>14.3f}" for s in systems]), flush=True)

    first = fep_records[0]
    fep = {
        "system": "fep",
        "framework": "fep",
        "backend": first.get("backend") or first.get("device"),
        "threads": first.get("threads"),
        "rayon_num_threads": args.threads,
        "batch": batch,
        "steps_per_rep": steps,
        "warmup_steps": warmup,
        **stats(sps["fep"], batch),
        "num_params": first.get("num_params", common.FEP_NUM_PARAMS[model]),
        "num_params_source": (
            "fep JSON" if "num_params" in first else "fep train-source (common.FEP_NUM_PARAMS)"
        ),
        "git_commit": first.get("git_commit"),
        "rep_files": fep_files,
        "note": "each repetition is a fresh fep process with its own warm-up",
    }
    if model != "reference":
        fep["versions"] = first.get("versions")
    records = {"fep": fep}
    for name, (peer, describe) in by_name.items():
        rec = describe(peer, sps[name], steps)
        rec["warmup_steps"] = warmup
        rec["num_params_equal_fep"] = rec["num_params_fep_convention"] == fep["num_params"]
        if not rec["num_params_equal_fep"]:
            print(
                f"  warning: {name} has {rec['num_params_fep_convention']} parameters, fep {fep['num_params']}"
            )
        if not math.isfinite(rec["last_loss"]):
            print(
                f"  warning: {name}'s loss is {rec['last_loss']}: its timings may not be representative"
            )
        records[name] = rec
    records.update(unavailable)

    measured = [n for n in systems if n != "fep"]
    fastest = max(measured, key=lambda n: records[n]["median_steps_per_second"])
    fep_med = fep["median_steps_per_second"]
    result = {
        "model": model,
        "batch": batch,
        "num_z": 1,
        "steps_per_rep": steps,
        "warmup_steps": warmup,
        "reps": args.reps,
        "systems": records,
        "fastest_peer": fastest,
        "fastest_peer_median_steps_per_second": records[fastest]["median_steps_per_second"],
        "fep_median_steps_per_second": fep_med,
        "ratio_fep_over_fastest_peer": fep_med / records[fastest]["median_steps_per_second"],
        "ratio_fep_over_peer": {
            n: fep_med / records[n]["median_steps_per_second"] for n in measured
        },
    }
    del peers, by_name
    gc.collect()
    return result


def print_table(result):
    print(
        f"\n{result['model']} (batch {result['batch']}, {result['reps']} alternating reps of "
        f"{result['steps_per_rep']} steps, medians)"
    )
    head = f"  {'system':<14} {'steps/s':>9} {'spread':>17} {'images/s':>10} {'fep/system':>10} {'params':>10}"
    print(head)
    for name, rec in result["systems"].items():
        if not rec.get("available", True):
            print(f"  {name:<14} unavailable: {rec['error']}")
            continue
        ratio = result["ratio_fep_over_peer"].get(name)
        spread = f"{rec['min_steps_per_second']:.3f}-{rec['max_steps_per_second']:.3f}"
        params = rec.get("num_params_fep_convention", rec["num_params"])
        print(
            f"  {name:<14} {rec['median_steps_per_second']:>9.3f} {spread:>17} "
            f"{rec['images_per_second_median']:>10.1f} {'' if ratio is None else f'{ratio:.3f}':>10} {params:>10}"
        )
    print(
        f"  ratio fep / fastest peer ({result['fastest_peer']}): {result['ratio_fep_over_fastest_peer']:.3f}"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fep", required=True, help="path to the fep binary")
    ap.add_argument(
        "--out", required=True, help="folder for bench-peers.json and the per-rep fep files"
    )
    ap.add_argument(
        "--models", default=",".join(common.MODELS), help="comma-separated: reference,mnist-paper"
    )
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument(
        "--steps", type=int, help="timed steps per repetition (default 20 reference, 5 mnist-paper)"
    )
    ap.add_argument(
        "--warmup", type=int, help="untimed steps first (default 5 reference, 2 mnist-paper)"
    )
    ap.add_argument("--threads", type=int, default=2, help="threads (and CPUs) of every system")
    ap.add_argument(
        "--batch",
        type=int,
        help="override every model's batch (default 128 reference, 64 mnist-paper)",
    )
    ap.add_argument(
        "--no-torch-compile", dest="torch_compile", action="store_false", help="skip torch.compile"
    )
    args = ap.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if m not in common.MODELS:
            sys.exit(f"error: unknown model {m!r} (choose from {', '.join(common.MODELS)})")
    if not models:
        sys.exit("error: no models given")
    if args.reps < 1 or (args.steps is not None and args.steps < 1):
        sys.exit("error: --reps and --steps must be at least 1")
    if shutil.which(args.fep) is None:
        sys.exit(f"error: fep binary not found or not executable: {args.fep}")
    args.fep = os.path.abspath(args.fep) if os.path.exists(args.fep) else args.fep
    os.makedirs(args.out, exist_ok=True)

    # Before jax or torch is imported: XLA sizes its pool from the affinity mask.
    thread_control = common.limit_threads(args.threads)
    print(f"threads: {args.threads} ({thread_control}); CPU: {common.cpu_model()}", flush=True)
    import jax_reference
    import torch_reference

    load_start = os.getloadavg()
    if load_start[0] > 0.5:
        print(
            f"warning: load average {load_start[0]:.2f} before the sitting: other work on this machine "
            "skews the timings (PyTorch's OpenMP threads most of all); measure on an idle machine",
            flush=True,
        )
    started = now()
    results = {m: run_model(args, m) for m in models}
    finished = now()
    load_end = os.getloadavg()
    for m in models:
        print_table(results[m])

    out = {
        "sitting": {
            "started": started,
            "finished": finished,
            "host": platform.node(),
            "cpu": common.cpu_model(),
            "cpus_available": os.cpu_count(),
            "threads": args.threads,
            "thread_control": thread_control
            + "; fep: RAYON_NUM_THREADS, JAX: XLA's pool sized by the CPU affinity, torch: set_num_threads",
            "loadavg_before": list(load_start),
            "loadavg_after": list(load_end),
            "reps": args.reps,
            "alternating": True,
            "order": "fep, jax-lax, jax-subpixel, torch-eager, torch-compile, rotated by one each repetition",
            "one_process": "JAX and torch peers in this process, fep a fresh subprocess per repetition",
        },
        "versions": {
            "fep": fep_version(args.fep),
            **jax_reference.versions(),
            **{k: v for k, v in torch_reference.versions().items() if k != "python"},
            "numpy": __import__("numpy").__version__,
        },
        "models": results,
    }
    path = os.path.join(args.out, "bench-peers.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
