"""The summary of a scripts/gpu-check.sh run: reads the work folder the check wrote and
writes summary.json and summary.txt into it and into the output folder.

    python3 scripts/gpu_check_report.py WORK_DIR OUT_DIR

Safe to run on a check cut short (every part is optional). Standard library only.
"""

import json
import os
import re
import statistics
import sys

COMPILED = "[Compiling kernel]"
TUNED = "Fastest result"
WARMUP = 5  # steps of the per-step run counted as warm-up


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return None


def read_json(path):
    text = read(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def steps_table(work):
    rows = []
    text = read(os.path.join(work, "steps.tsv")) or ""
    for line in text.splitlines()[1:]:
        f = line.split("\t")
        if len(f) < 7:
            continue
        rows.append(
            {
                "step": f[0],
                "status": f[1],
                "rc": int(f[2]) if f[2] else None,
                "seconds": float(f[3]) if f[3] else None,
                "limit_s": int(f[4]) if f[4].lstrip("-").isdigit() else None,
                "start": float(f[5]) if f[5] else None,
                "end": float(f[6]) if f[6] else None,
            }
        )
    return rows


def gpu_samples(work):
    """(time, utilisation %, memory used MiB) from nvidia-smi.csv."""
    out = []
    for line in (read(os.path.join(work, "nvidia-smi.csv")) or "").splitlines():
        f = [x.strip() for x in line.split(",")]
        try:
            out.append((float(f[0]), float(f[1]), float(f[3])))
        except (ValueError, IndexError):
            continue
    return out


def host_samples(work):
    """(time, %CPU of the busiest fep process or None, %CPU of the busiest process)."""
    out, stamp, fep, top = [], None, None, None
    for line in (read(os.path.join(work, "ps.txt")) or "").splitlines():
        if line.startswith("@ "):
            if stamp is not None:
                out.append((stamp, fep, top))
            stamp, fep, top = float(line[2:]), None, None
            continue
        f = line.split()
        if len(f) < 4 or not re.match(r"^[0-9.]+$", f[0]):
            continue
        pcpu = float(f[0])
        top = pcpu if top is None else max(top, pcpu)
        if f[3] == "fep":
            fep = pcpu if fep is None else max(fep, pcpu)
    if stamp is not None:
        out.append((stamp, fep, top))
    return out


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def load_during(rows, gpu, host):
    for r in rows:
        if r["start"] is None or r["end"] is None:
            continue
        g = [s for s in gpu if r["start"] <= s[0] <= r["end"]]
        h = [s for s in host if r["start"] <= s[0] <= r["end"]]
        r["gpu_util_mean_pct"] = mean([s[1] for s in g])
        r["gpu_util_max_pct"] = max((s[1] for s in g), default=None)
        r["gpu_memory_max_mib"] = max((s[2] for s in g), default=None)
        r["fep_cpu_mean_pct"] = mean([s[1] for s in h])
        r["top_process_cpu_mean_pct"] = mean([s[2] for s in h])


def count_lines(text, marker):
    return sum(1 for line in (text or "").splitlines() if marker in line)


def winners(text):
    """Kernel names of the autotune winners in an autotune log."""
    names = []
    for line in (text or "").splitlines():
        i = line.find(TUNED)
        if i >= 0:
            names.append(line[i + len(TUNED) :].strip().split("-", 1)[0])
    return names


def tf32_like(names):
    low = [n.lower() for n in names]
    return {
        "tma": sum("tma" in n for n in low),
        "cmma": sum("cmma" in n for n in low),
        "mma (not cmma)": sum("mma" in n and "cmma" not in n for n in low),
        "of": len(names),
    }


def cubecl_logs(work, step):
    base = os.path.join(work, "cubecl", step)
    return read(base + ".compilation.log"), read(base + ".autotune.log")


def first_step(work, rows):
    row = next((r for r in rows if r["step"] == "fep-first-step"), None)
    if row is None:
        return None
    rec = read_json(os.path.join(work, "fep-first-step.json")) or {}
    comp, tune = cubecl_logs(work, "fep-first-step")
    sps = rec.get("steps_per_second") or []
    names = winners(tune)
    return {
        "status": row["status"],
        "process_seconds": row["seconds"],
        "first_step_seconds": 1.0 / sps[0] if sps and sps[0] else None,
        "backend": rec.get("backend"),
        "kernels_compiled": count_lines(comp, COMPILED),
        "autotune_runs": count_lines(tune, TUNED),
        "autotune_winner_kinds": tf32_like(names),
        "note": "a fresh process with no CubeCL caches: model, data, one step; process_seconds is the time to the first step",
    }


def per_step(work, rows):
    row = next((r for r in rows if r["step"] == "fep-per-step"), None)
    if row is None:
        return None
    rec = read_json(os.path.join(work, "fep-per-step.json")) or {}
    sps = [v for v in (rec.get("steps_per_second") or []) if v]
    secs = [1.0 / v for v in sps]
    out = {
        "status": row["status"],
        "process_seconds": row["seconds"],
        "steps": len(secs),
        "step_seconds": secs,
    }
    comp, tune = cubecl_logs(work, "fep-per-step")
    out["kernels_compiled"] = count_lines(comp, COMPILED)
    out["autotune_runs"] = count_lines(tune, TUNED)
    if secs:
        warm = secs[WARMUP:] or secs[1:]
        out["first_step_seconds"] = secs[0]
        out["median_warm_step_seconds"] = statistics.median(warm) if warm else None
        out["warm_steps_per_second"] = len(warm) / sum(warm) if warm else None
        out["time_to_first_step_s"] = row["seconds"] - sum(secs[1:]) if row["seconds"] else None
    # What was compiled or tuned after the first step: the stamped stderr against the end
    # of each step, counted back from when fep wrote its JSON (right after the last step;
    # else the end of the process).
    stamped = read(os.path.join(work, "fep-per-step.err.ts"))
    try:
        anchor = os.path.getmtime(os.path.join(work, "fep-per-step.json"))
    except OSError:
        anchor = row["end"]
    if secs and stamped and anchor is not None:
        end_of = []
        t = anchor
        for s in reversed(secs):
            end_of.append(t)
            t -= s
        end_of.reverse()  # end_of[k]: end of step k + 1
        after_first, after_warm, names = {"compiled": 0, "tuned": 0}, {"compiled": 0, "tuned": 0}, {}
        for line in stamped.splitlines():
            stamp, _, text = line.partition(" ")
            try:
                when = float(stamp)
            except ValueError:
                continue
            kind = "compiled" if COMPILED in text else "tuned" if TUNED in text else None
            if kind is None or when <= end_of[0]:
                continue
            after_first[kind] += 1
            if len(end_of) > WARMUP and when > end_of[WARMUP - 1]:
                after_warm[kind] += 1
            label = text.split(COMPILED)[-1].strip() if kind == "compiled" else winners(text)[0]
            names[f"{kind}: {label}"] = names.get(f"{kind}: {label}", 0) + 1
        out["after_first_step"] = after_first
        out[f"after_step_{WARMUP}"] = after_warm
        out["after_first_step_names"] = dict(sorted(names.items(), key=lambda kv: -kv[1])[:25])
        out["note"] = (
            "the caches of fep-first-step were there, and a kernel found in the PTX cache is not "
            "logged: kernels_compiled and autotune_runs of this process are those the first "
            "step did not need (or that missed the caches); after_first_step counts the log "
            "lines stamped after the end of step 1, placed by the per-step times counted back "
            "from when fep wrote its JSON (to a step or two: CubeCL logs from a thread)"
        )
    return out


def peers(work):
    data = read_json(os.path.join(work, "peers", "bench-peers.json"))
    if not data:
        return None
    out = {"complete": data.get("sitting", {}).get("complete"), "configs": {}}
    for key, res in data.get("models", {}).items():
        systems = {}
        for name, rec in res.get("systems", {}).items():
            if not rec.get("available", True):
                systems[name] = {"error": rec.get("error")}
                continue
            systems[name] = {
                "median_steps_per_second": rec.get("median_steps_per_second"),
                "images_per_second_median": rec.get("images_per_second_median"),
                "first_step_seconds": rec.get("first_step_seconds"),
                "time_to_first_step_s": rec.get("time_to_first_step_s"),
            }
        out["configs"][key] = {
            "systems": systems,
            "fastest_peer": res.get("fastest_peer"),
            "ratio_fep_over_fastest_peer": res.get("ratio_fep_over_fastest_peer"),
            "ratio_fep_over_peer": res.get("ratio_fep_over_peer"),
        }
    return out


def flatten(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        if len(value) <= 8:
            for i, v in enumerate(value):
                yield from flatten(v, f"{prefix}[{i}]")
    else:
        yield prefix, value


def exact(work, rows):
    row = next((r for r in rows if r["step"] == "exact-solve"), None)
    if row is None:
        return None
    out = {"status": row["status"], "seconds": row["seconds"]}
    data = read_json(os.path.join(work, "exact-solve.out"))
    if data is not None:
        keep = re.compile(r"sensitiv|ift|closed|residual|grad|iteration|cg|damping|converged|maxwell", re.I)
        out["values"] = {
            k: v for k, v in flatten(data) if keep.search(k) and isinstance(v, (int, float, bool))
        }
    return out


def paper_epoch(work, rows):
    row = next((r for r in rows if r["step"] == "paper-epoch"), None)
    if row is None:
        return None
    out = {"status": row["status"], "process_seconds": row["seconds"]}
    lines = (read(os.path.join(work, "paper-epoch", "log.jsonl")) or "").splitlines()
    if lines:
        try:
            last = json.loads(lines[-1])
            out["epoch"] = last.get("epoch")
            out["steps"] = last.get("step")
            out["epoch_wall_seconds"] = last.get("wall_seconds")
            out["test_accuracy"] = (last.get("test") or {}).get("accuracy")
        except ValueError:
            pass
    return out


def tests(work, rows):
    out = {}
    for r in rows:
        if not r["step"].startswith("test-"):
            continue
        text = read(os.path.join(work, r["step"] + ".out")) or ""
        counts = {"passed": 0, "failed": 0, "ignored": 0}
        for m in re.finditer(r"(\d+) (passed|failed|ignored)", " ".join(
            line for line in text.splitlines() if line.startswith("test result")
        )):
            counts[m.group(2)] += int(m.group(1))
        failed = re.findall(r"^test (\S+) \.\.\. FAILED", text, re.M)
        out[r["step"][5:]] = {"status": r["status"], "seconds": r["seconds"], **counts, "failed_tests": failed}
    return out or None


def autotune_cache(work):
    root = os.path.join(work, "autotune")
    files = []
    kinds = {"tma": 0, "cmma": 0, "mma": 0}
    for base, _, names in os.walk(root):
        for n in names:
            path = os.path.join(base, n)
            files.append(os.path.relpath(path, work))
            text = (read(path) or "").lower()
            for k in kinds:
                kinds[k] += text.count(k)
    return {"files": files, "mentions": kinds} if files else None


def all_winners(work):
    names = []
    folder = os.path.join(work, "cubecl")
    if os.path.isdir(folder):
        for n in sorted(os.listdir(folder)):
            if n.endswith(".autotune.log"):
                names += winners(read(os.path.join(folder, n)))
    return {"kinds": tf32_like(names), "names": sorted(set(names))[:60]} if names else None


def build_info(work):
    info = {}
    for line in (read(os.path.join(work, "build-info.txt")) or "").splitlines():
        k, _, v = line.partition("=")
        info[k] = v.strip("'\"")
    return info


def fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec) if isinstance(v, (int, float)) else str(v)


def text_summary(s):
    b = s["build"]
    out = [
        f"gpu-check {s['date']}: fep {b.get('BUILD_COMMIT', '?')[:12]} built {b.get('BUILD_DATE', '?')}",
        f"device: {s['fep_info_device'] or '?'}",
        "",
        f"{'step':<22}{'status':<9}{'s':>8}{'limit':>7}{'GPU %':>7}{'fep CPU %':>10}",
    ]
    for r in s["steps"]:
        out.append(
            f"{r['step']:<22}{r['status']:<9}{fmt(r['seconds'], '.1f'):>8}{fmt(r['limit_s'], 'd'):>7}"
            f"{fmt(r.get('gpu_util_mean_pct'), '.0f'):>7}{fmt(r.get('fep_cpu_mean_pct'), '.0f'):>10}"
        )
    f1 = s.get("fep_first_step")
    if f1:
        out += [
            "",
            f"fep cold start, reference b128: time to first step {fmt(f1['process_seconds'], '.2f')} s "
            f"(step alone {fmt(f1['first_step_seconds'], '.2f')} s); {f1['kernels_compiled']} kernels compiled, "
            f"{f1['autotune_runs']} autotune runs; winners {f1['autotune_winner_kinds']}",
        ]
    ps = s.get("fep_per_step")
    if ps and ps.get("steps"):
        out.append(
            f"fep per step ({ps['steps']} steps, caches warm): first {fmt(ps.get('first_step_seconds'))} s, "
            f"warm median {fmt(ps.get('median_warm_step_seconds'), '.4f')} s = "
            f"{fmt(ps.get('warm_steps_per_second'), '.1f')} steps/s; time to first step "
            f"{fmt(ps.get('time_to_first_step_s'), '.2f')} s"
        )
        if "after_first_step" in ps:
            out.append(
                f"  compiled / tuned after step 1: {ps['after_first_step']}, after step {WARMUP}: "
                f"{ps[f'after_step_{WARMUP}']} (whole process: {ps['kernels_compiled']} compiled, "
                f"{ps['autotune_runs']} tuned)"
            )
            for name, n in list(ps["after_first_step_names"].items())[:8]:
                out.append(f"    {n:>4} x {name}")
    p = s.get("peers")
    if p:
        out += ["", f"side by side (steps/s median; first step s; to first step s){'' if p['complete'] else ' [incomplete]'}"]
        for key, cfg in p["configs"].items():
            out.append(f"  {key}: fep / fastest peer ({cfg['fastest_peer']}) = {fmt(cfg['ratio_fep_over_fastest_peer'])}")
            for name, r in cfg["systems"].items():
                if "error" in r:
                    out.append(f"    {name:<14} unavailable: {str(r['error'])[:110]}")
                else:
                    out.append(
                        f"    {name:<14} {fmt(r['median_steps_per_second'], '.1f'):>9} "
                        f"{fmt(r['first_step_seconds'], '.2f'):>8} {fmt(r['time_to_first_step_s'], '.2f'):>8}"
                    )
    e = s.get("exact_solve")
    if e:
        out += ["", f"exact solve: {e['status']} in {fmt(e['seconds'], '.1f')} s"]
        for k, v in list((e.get("values") or {}).items())[:30]:
            out.append(f"  {k} = {v}")
    pe = s.get("paper_epoch")
    if pe:
        out += [
            "",
            f"train-source-paper, one epoch of full MNIST 0-4: {pe['status']}, process {fmt(pe['process_seconds'], '.1f')} s, "
            f"epoch wall {fmt(pe.get('epoch_wall_seconds'), '.1f')} s, {pe.get('steps', '-')} steps, "
            f"test accuracy {fmt(pe.get('test_accuracy'), '.4f')}",
        ]
    t = s.get("tests")
    if t:
        out += [""] + [
            f"tests {n}: {r['status']}, {r['passed']} passed, {r['failed']} failed, {r['ignored']} ignored "
            f"({fmt(r['seconds'], '.1f')} s){' FAILED: ' + ', '.join(r['failed_tests']) if r['failed_tests'] else ''}"
            for n, r in t.items()
        ]
    w = s.get("autotune_winners")
    if w:
        out += ["", f"autotune winners, all steps: {w['kinds']}"]
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: python3 scripts/gpu_check_report.py WORK_DIR OUT_DIR")
    work, out_dir = sys.argv[1], sys.argv[2]
    rows = steps_table(work)
    load_during(rows, gpu_samples(work), host_samples(work))
    info = read(os.path.join(work, "info.out")) or ""
    device = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("chosen device")), None)
    import datetime

    summary = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "build": build_info(work),
        "fep_info_device": device,
        "steps": rows,
        "fep_first_step": first_step(work, rows),
        "fep_per_step": per_step(work, rows),
        "peers": peers(work),
        "exact_solve": exact(work, rows),
        "paper_epoch": paper_epoch(work, rows),
        "tests": tests(work, rows),
        "demo": next(({"status": r["status"], "seconds": r["seconds"]} for r in rows if r["step"] == "demo"), None),
        "autotune_winners": all_winners(work),
        "autotune_cache": autotune_cache(work),
    }
    text = text_summary(summary)
    for folder in (work, out_dir):
        with open(os.path.join(folder, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
        with open(os.path.join(folder, "summary.txt"), "w") as f:
            f.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
