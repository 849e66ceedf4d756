"""Side-by-side CPU training throughput, in one sitting: fep (`fep bench reference`
and `fep bench --arch mnist-paper`) against its peers, JAX (jit, with
`lax.conv_transpose` and with the same function as sub-pixel convolutions) and
PyTorch (eager, and `torch.compile` where it works), on the reference model (batch
128) and the mnist-paper network (batch 64, one latent sample). Every system gets the
same threads; repetitions alternate between the systems (the order rotates each
repetition) so that all see the same machine conditions. Writes OUT/bench-peers.json.

With `--device cuda` the same comparison runs on one NVIDIA GPU (`fep --backend cuda`,
the peers with `--device cuda`), at the batches of `fep bench` on the GPU (reference
128 and 1024, mnist-paper 64 and 512), every system in a fresh process per model with
its own warm-up, so that each reports its cold time to the first step; see
`run_cuda` and README.md.
"""

import argparse
import datetime
import gc
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (imports neither jax nor torch)

DEFAULT_STEPS = {"reference": 20, "mnist-paper": 5}
DEFAULT_WARMUP = {"reference": 5, "mnist-paper": 2}
# On the GPU: every model the same (a step takes milliseconds).
CUDA_STEPS, CUDA_WARMUP, CUDA_REPS = 20, 5, 5
# The systems of the GPU comparison (`--systems`); jax-subpixel is a CPU formulation.
# torch.compile last: its compilations take the longest.
CUDA_SYSTEMS = ("torch-eager", "jax-lax", "torch-compile")
ALL_SYSTEMS = ("torch-eager", "jax-lax", "jax-subpixel", "torch-compile")


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



# ---------------------------------------------------------------------------------------
# The GPU comparison (`--device cuda`): every system in fresh processes.

HERE = os.path.dirname(os.path.abspath(__file__))
_CHILDREN = set()


def _end_children():
    """Ends every process group this driver started and that is still running."""
    for proc in list(_CHILDREN):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass


def _on_term(signum, _frame):
    _end_children()
    sys.exit(128 + signum)


def run_child(cmd, log_path, timeout, env=None):
    """Runs `cmd` in a process group of its own, stdout and stderr into `log_path`, for at
    most `timeout` seconds. Returns (exit status, or None when it timed out; seconds)."""
    started = time.time()
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        try:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=os.setpgrp
            )
        except OSError as e:
            log.write(f"cannot start: {e}\n")
            return 127, time.time() - started
        _CHILDREN.add(proc)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            try:  # also what it left behind (compile workers)
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
            _CHILDREN.discard(proc)
    seconds = time.time() - started
    if rc is None:
        with open(log_path, "a") as log:
            log.write(f"\n[compare.py: timed out after {timeout} s; process group killed]\n")
    return rc, seconds


def log_tail(path, lines=3):
    try:
        with open(path, errors="replace") as f:
            text = [line.strip() for line in f if line.strip()]
        return " | ".join(text[-lines:])[-500:]
    except OSError:
        return ""


def unavailable(reason, log=None):
    rec = {"available": False, "error": reason}
    if log:
        rec["log"] = log
    return rec


def fep_cuda(args, model, batch, warmup, steps, reps):
    """One fresh `fep --backend cuda` process for (model, batch). The reference model runs
    as `bench reference --warmup 0 --steps 1 --reps N`: every step timed alone, so the
    first step (cold), the warm-up and the timed blocks come from one process; the first
    `warmup` steps are left out of the rates. mnist-paper runs the `bench` suite with the
    usual warm-up. Returns (record, timed_out)."""
    tag = f"fep_{model}_b{batch}"
    log = os.path.join(args.out, tag + ".log")
    if model == "reference":
        path = os.path.join(args.out, tag + ".json")
        cmd = [
            args.fep, "--backend", "cuda", "bench", "reference", "--batch", str(batch),
            "--warmup", "0", "--steps", "1", "--reps", str(warmup + reps * steps), "--json", path,
        ]  # fmt: skip
    else:
        folder = os.path.join(args.out, tag)
        path = os.path.join(folder, "bench.json")
        cmd = [
            args.fep, "--backend", "cuda", "bench", "--arch", model, "--batch", str(batch),
            "--num-z", "1", "--warmup", str(warmup), "--steps", str(steps), "--reps", str(reps),
            "--out", folder, "--force",
        ]  # fmt: skip
    if os.path.exists(path):
        os.remove(path)
    env = dict(os.environ)
    if args.threads is not None:
        env["RAYON_NUM_THREADS"] = str(args.threads)
    print(f"  fep {model} batch {batch}", flush=True)
    rc, seconds = run_child(cmd, log, args.fep_timeout, env)
    rel_log = os.path.relpath(log, args.out)
    if rc is None:
        return unavailable(f"timed out after {args.fep_timeout} s", rel_log), True
    if rc != 0:
        return unavailable(f"exited with status {rc}: {log_tail(log)}", rel_log), False
    try:
        with open(path) as f:
            rec = json.load(f)
        per_step = None
        if model == "reference":
            per_step = [1.0 / float(v) for v in rec["steps_per_second"]]
            timed = per_step[warmup:]
            sps = [steps / sum(timed[k * steps : (k + 1) * steps]) for k in range(reps)]
        else:
            (row,) = [m for m in rec["models"] if m["architecture"] == model]
            sps = [float(v) for v in row["train_steps_per_second"]["values"]]
    except (OSError, ValueError, KeyError, IndexError, TypeError, ZeroDivisionError) as e:
        return unavailable(f"no usable steps/s in {path}: {e!r}", rel_log), False
    fep = {
        "system": "fep",
        "framework": "fep",
        "backend": rec.get("backend") or rec.get("device"),
        "device": "cuda",
        "threads": rec.get("threads"),
        "rayon_num_threads": args.threads,
        "batch": batch,
        "steps_per_rep": steps,
        "warmup_steps": warmup,
        **stats(sps, batch),
        "num_params": rec.get("num_params", common.FEP_NUM_PARAMS[model]),
        "num_params_source": (
            "fep JSON" if "num_params" in rec else "fep train-source (common.FEP_NUM_PARAMS)"
        ),
        "git_commit": rec.get("git_commit"),
        "rep_files": [os.path.relpath(path, args.out)],
        "log": rel_log,
        "process_seconds": seconds,
        "first_step_seconds": per_step[0] if per_step else None,
        # from the start of the process to the end of the first step: the process's wall
        # time less the later steps (an upper bound: it includes writing the JSON and exit)
        "time_to_first_step_s": seconds - sum(per_step[1:]) if per_step else None,
        "per_step_seconds": per_step,
        "note": (
            "one fresh process: `bench reference --warmup 0 --steps 1 --reps N`, every step "
            "timed alone; the first warmup_steps steps are left out, the rest summed in blocks "
            "of steps_per_rep"
            if per_step
            else "one fresh process: `bench --arch ... --num-z 1` with its own warm-up; the "
            "process also measures evaluation and Hessian-vector products (untimed here), so "
            "no first-step time"
        ),
    }
    if model != "reference":
        fep["versions"] = rec.get("versions")
    return fep, False


def peer_cuda(args, system, model, batches, warmup, steps, reps):
    """One fresh process of a peer for `model`, its batches in turn. Returns {batch: record}."""
    tag = f"{system}_{model}"
    path = os.path.join(args.out, tag + ".json")
    log = os.path.join(args.out, tag + ".log")
    if os.path.exists(path):
        os.remove(path)
    common_args = [
        "--device", "cuda", "--model", model, "--batch", *[str(b) for b in batches],
        "--warmup", str(warmup), "--steps", str(steps), "--reps", str(reps), "--json", path,
    ]  # fmt: skip
    if system.startswith("torch"):
        cmd = [sys.executable, os.path.join(HERE, "torch_reference.py"), *common_args]
        cmd += ["--tf32", args.tf32]
        if system == "torch-compile":
            cmd.append("--compile")
            if args.compile_mode:
                cmd += ["--compile-mode", args.compile_mode]
        if args.cudnn_benchmark:
            cmd.append("--cudnn-benchmark")
    else:
        impl = system.split("-", 1)[1]
        cmd = [sys.executable, os.path.join(HERE, "jax_reference.py"), *common_args]
        cmd += ["--deconv", impl, "--matmul-precision", args.matmul_precision]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    print(f"  {system} {model} batches {' '.join(map(str, batches))}", flush=True)
    rc, seconds = run_child(cmd, log, args.peer_timeout, env)
    rel_log = os.path.relpath(log, args.out)
    records = []
    try:
        with open(path) as f:
            got = json.load(f)
        records = got if isinstance(got, list) else [got]
    except (OSError, ValueError):
        pass
    out, failure = {}, None
    for rec in records:
        if rec.get("available", True):
            rec["log"] = rel_log
            rec["process_seconds"] = seconds
            out[rec["batch"]] = rec
        else:
            failure = rec.get("error")
    if rc is None:
        reason = f"timed out after {args.peer_timeout} s"
    elif failure:
        reason = failure
    else:
        reason = f"exited with status {rc} before this batch: {log_tail(log)}"
    for b in batches:
        if b not in out:
            out[b] = unavailable(reason, rel_log)
    return out


def assemble(model, batch, records, warmup, steps, reps):
    """The result of one (model, batch): the shape of the CPU comparison's, plus the first
    steps side by side."""
    fep = records.get("fep")
    fep_ok = fep is not None and fep.get("available", True)
    measured = [n for n, r in records.items() if n != "fep" and r.get("available", True)]
    for name in measured:
        rec = records[name]
        rec.setdefault("warmup_steps", warmup)
        if fep_ok:
            rec["num_params_equal_fep"] = rec["num_params_fep_convention"] == fep["num_params"]
    result = {
        "model": model,
        "batch": batch,
        "num_z": 1,
        "device": "cuda",
        "steps_per_rep": steps,
        "warmup_steps": warmup,
        "reps": reps,
        "systems": records,
        "first_step": {
            n: {
                "first_step_seconds": r.get("first_step_seconds"),
                "time_to_first_step_s": r.get("time_to_first_step_s"),
                "first_in_process": r.get("first_in_process", n == "fep"),
            }
            for n, r in records.items()
            if r.get("available", True)
        },
        "fastest_peer": None,
        "fastest_peer_median_steps_per_second": None,
        "fep_median_steps_per_second": fep["median_steps_per_second"] if fep_ok else None,
        "ratio_fep_over_fastest_peer": None,
        "ratio_fep_over_peer": {},
    }
    if measured:
        fastest = max(measured, key=lambda n: records[n]["median_steps_per_second"])
        result["fastest_peer"] = fastest
        result["fastest_peer_median_steps_per_second"] = records[fastest]["median_steps_per_second"]
        if fep_ok:
            med = fep["median_steps_per_second"]
            result["ratio_fep_over_fastest_peer"] = med / records[fastest]["median_steps_per_second"]
            result["ratio_fep_over_peer"] = {
                n: med / records[n]["median_steps_per_second"] for n in measured
            }
    return result


def gpu_info():
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"


def peer_versions(results):
    """Versions as the peer processes reported them."""
    keys = ("torch_version", "jax_version", "jaxlib_version", "optax_version", "python")
    found = {}
    for result in results.values():
        for rec in result["systems"].values():
            for k in keys:
                if k in rec and k not in found:
                    found[k.removesuffix("_version")] = rec[k]
    return found


def run_cuda(args, models):
    signal.signal(signal.SIGTERM, _on_term)
    warmup = args.warmup if args.warmup is not None else CUDA_WARMUP
    steps = args.steps or CUDA_STEPS
    reps = args.reps if args.reps is not None else CUDA_REPS
    systems = [n for n in args.systems if args.torch_compile or n != "torch-compile"]
    started = now()
    sitting = {
        "started": started,
        "finished": None,
        "complete": False,
        "host": platform.node(),
        "device": "cuda",
        "gpu": gpu_info(),
        "cpu": common.cpu_model(),
        "cpus_available": os.cpu_count(),
        "threads": args.threads,
        "thread_control": (
            "unrestricted" if args.threads is None else f"{args.threads} (--threads of every peer; RAYON_NUM_THREADS for fep)"
        ),
        "reps": reps,
        "alternating": False,
        "order": "per model: fep at each batch, then " + ", ".join(systems) + " at all its batches",
        "one_process": (
            "fep: a fresh process per (model, batch); each peer: a fresh process per model, its "
            "batches in turn (the first batch cold, time_to_first_step_s from the process start)"
        ),
        "timeouts_s": {"fep": args.fep_timeout, "peer": args.peer_timeout},
        "peer_settings": {
            "torch_tf32": args.tf32,
            "torch_cudnn_benchmark": args.cudnn_benchmark,
            "torch_compile_mode": args.compile_mode or "default",
            "jax_matmul_precision": args.matmul_precision,
        },
    }
    results = {}
    fep_ver = fep_version(args.fep) if args.fep else None

    def write(final):
        sitting["finished"] = now() if final else None
        sitting["complete"] = final
        out = {
            "sitting": sitting,
            "versions": {
                "fep": fep_ver,
                **peer_versions(results),
            },
            "models": results,
        }
        path = os.path.join(args.out, "bench-peers.json")
        with open(path, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
        return path

    for model in models:
        batches = args.batch or list(common.GPU_BATCHES[model])
        print(
            f"\n== {model} on cuda: batches {batches}, {reps} reps of {steps} steps after "
            f"{warmup} warm-up steps",
            flush=True,
        )
        records = {b: {} for b in batches}
        if args.fep:
            skip = None
            for b in batches:
                if skip:
                    records[b]["fep"] = unavailable(skip)
                    continue
                records[b]["fep"], timed_out = fep_cuda(args, model, b, warmup, steps, reps)
                if timed_out:  # a larger batch would take longer still
                    skip = f"skipped: fep timed out at batch {b}"
        for system in systems:
            for b, rec in peer_cuda(args, system, model, batches, warmup, steps, reps).items():
                records[b][system] = rec
        for b in batches:
            key = model if len(batches) == 1 else f"{model}-b{b}"
            results[key] = assemble(model, b, records[b], warmup, steps, reps)
            print_table(results[key])
        write(final=False)
    path = write(final=True)
    print(f"\nwrote {path}")


def print_table(result):
    cuda = result.get("device") == "cuda"
    kind = "reps each (fresh processes)" if cuda else "alternating reps"
    print(
        f"\n{result['model']} (batch {result['batch']}, {result['reps']} {kind} of "
        f"{result['steps_per_rep']} steps, medians)"
    )
    head = f"  {'system':<14} {'steps/s':>9} {'spread':>17} {'images/s':>10} {'fep/system':>10} {'params':>10}"
    if cuda:
        head += f" {'1st step s':>10} {'to 1st s':>9}"
    print(head)
    for name, rec in result["systems"].items():
        if not rec.get("available", True):
            print(f"  {name:<14} unavailable: {rec['error']}")
            continue
        ratio = result["ratio_fep_over_peer"].get(name)
        spread = f"{rec['min_steps_per_second']:.3f}-{rec['max_steps_per_second']:.3f}"
        params = rec.get("num_params_fep_convention", rec["num_params"])
        line = (
            f"  {name:<14} {rec['median_steps_per_second']:>9.3f} {spread:>17} "
            f"{rec['images_per_second_median']:>10.1f} {'' if ratio is None else f'{ratio:.3f}':>10} {params:>10}"
        )
        if cuda:
            first, to_first = rec.get("first_step_seconds"), rec.get("time_to_first_step_s")
            line += f" {'' if first is None else f'{first:.3f}':>10} {'' if to_first is None else f'{to_first:.2f}':>9}"
        print(line)
    if result["ratio_fep_over_fastest_peer"] is not None:
        print(
            f"  ratio fep / fastest peer ({result['fastest_peer']}): {result['ratio_fep_over_fastest_peer']:.3f}"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--fep", help="path to the fep binary (required on the CPU; on cuda without it: peers only)"
    )
    ap.add_argument(
        "--out", required=True, help="folder for bench-peers.json and the per-rep fep files"
    )
    ap.add_argument(
        "--models", default=",".join(common.MODELS), help="comma-separated: reference,mnist-paper"
    )
    ap.add_argument(
        "--device",
        choices=common.DEVICES,
        default="cpu",
        help="cpu (default), or cuda: one NVIDIA GPU, every system in fresh processes",
    )
    ap.add_argument("--reps", type=int, help=f"repetitions (default 5; cuda {CUDA_REPS})")
    ap.add_argument(
        "--steps",
        type=int,
        help=f"timed steps per repetition (default 20 reference, 5 mnist-paper; cuda {CUDA_STEPS})",
    )
    ap.add_argument(
        "--warmup",
        type=int,
        help=f"untimed steps first (default 5 reference, 2 mnist-paper; cuda {CUDA_WARMUP})",
    )
    ap.add_argument(
        "--threads",
        type=int,
        help="threads (and CPUs) of every system (default 2; cuda: unrestricted)",
    )
    ap.add_argument(
        "--batch",
        type=int,
        nargs="+",
        help="override every model's batch (default 128 reference, 64 mnist-paper; cuda: "
        "128 and 1024 reference, 64 and 512 mnist-paper; cuda takes several)",
    )
    ap.add_argument(
        "--no-torch-compile", dest="torch_compile", action="store_false", help="skip torch.compile"
    )
    cuda = ap.add_argument_group("cuda only")
    cuda.add_argument(
        "--systems",
        default=",".join(CUDA_SYSTEMS),
        help=f"comma-separated peers (default {','.join(CUDA_SYSTEMS)}; of {','.join(ALL_SYSTEMS)})",
    )
    cuda.add_argument(
        "--fep-timeout", type=float, default=600, help="seconds per fep process (default 600)"
    )
    cuda.add_argument(
        "--peer-timeout", type=float, default=900, help="seconds per peer process (default 900)"
    )
    cuda.add_argument(
        "--tf32", choices=("default", "on", "off"), default="default", help="torch's TF32 setting"
    )
    cuda.add_argument("--cudnn-benchmark", action="store_true", help="torch: cudnn.benchmark")
    cuda.add_argument("--compile-mode", help="torch.compile's mode (default: its default)")
    cuda.add_argument(
        "--matmul-precision",
        choices=("default", "high", "highest"),
        default="default",
        help="jax_default_matmul_precision",
    )
    args = ap.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if m not in common.MODELS:
            sys.exit(f"error: unknown model {m!r} (choose from {', '.join(common.MODELS)})")
    if not models:
        sys.exit("error: no models given")
    if (args.reps is not None and args.reps < 1) or (args.steps is not None and args.steps < 1):
        sys.exit("error: --reps and --steps must be at least 1")
    if args.device == "cpu" and not args.fep:
        ap.error("the following arguments are required: --fep")
    if args.fep:
        if shutil.which(args.fep) is None:
            sys.exit(f"error: fep binary not found or not executable: {args.fep}")
        args.fep = os.path.abspath(args.fep) if os.path.exists(args.fep) else args.fep
    os.makedirs(args.out, exist_ok=True)

    if args.device == "cuda":
        args.systems = [n.strip() for n in args.systems.split(",") if n.strip()]
        for n in args.systems:
            if n not in ALL_SYSTEMS:
                sys.exit(f"error: unknown system {n!r} (choose from {', '.join(ALL_SYSTEMS)})")
        if args.threads is not None:
            common.limit_threads(args.threads)
        run_cuda(args, models)
        return

    # The CPU comparison, as before.
    if args.batch is not None and len(args.batch) > 1:
        sys.exit("error: on the CPU --batch takes one value")
    args.batch = args.batch[0] if args.batch else None
    args.reps = 5 if args.reps is None else args.reps
    args.threads = 2 if args.threads is None else args.threads

    # Before jax or torch is imported: XLA sizes its pool from the affinity mask.
    thread_control = common.limit_threads(args.threads)
    print(f"threads: {args.threads} ({thread_control}); CPU: {common.cpu_model()}", flush=True)
    import jax_reference
    import torch_reference

    jax_reference.select_platform("cpu")  # not a GPU that jax's CUDA plugin would find

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
