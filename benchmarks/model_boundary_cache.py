"""Benchmark of the boundary-activation cache (`aigciqa train`, preset `small` by default), as ratios within
one run: for each fix rate, the same training with and without the cache (each in its own process, so
peak RSS is its own), reporting

- steady-state step and epoch time (epochs after the first) and their ratio (the two runs of a fix rate run
  at the same time, one thread each, so load from other jobs hits both),
- the first epoch's cost of filling the cache (the fill's own time, inside the first epoch),
- peak RSS of the whole training process,
- cache bytes per image (files on disk / images cached),
- the largest weight difference between the two runs' final models.

Writes the ``## Boundary cache`` section of benchmarks/RESULTS.md.

    python benchmarks/model_boundary_cache.py [--preset small] [--images 20] [--epochs 3] [--rates 0.5 0.7 0.9]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TOPIC = "Boundary cache"  # its section of RESULTS.md


def one_run(args) -> None:
    """Train once (in this process) and print a JSON line of its figures."""
    from aigciqa.database import DatabaseFolder
    from aigciqa.database.info import cache_report
    from aigciqa.model import boundary_cache
    from aigciqa.model.scorer import TrainOptions, train
    fill_seconds = []
    original_fill = boundary_cache.BoundaryInputs._fill

    def timed_fill(self):  # the fill's own time (inside the first epoch)
        started = time.perf_counter()
        original_fill(self)
        fill_seconds.append(time.perf_counter() - started)

    boundary_cache.BoundaryInputs._fill = timed_fill
    started = time.perf_counter()
    result = train(args.folder, TrainOptions(preset=args.preset, split="split1", epochs=args.epochs, batch_size=8,
                                             fix_rate=args.rate, cache_features=args.cache, progress=False,
                                             cpu=True, run="bench"))
    caches = cache_report(DatabaseFolder(args.folder))
    steps = len(result.losses) // args.epochs
    print(json.dumps({"epochs": [h["seconds"] for h in result.history], "steps_per_epoch": steps,
                      "wall": time.perf_counter() - started, "caches": caches, "fill": sum(fill_seconds),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def weight_difference(a: Path, b: Path) -> float:
    from safetensors.torch import load_file
    first, second = load_file(str(a)), load_file(str(b))
    return max(float((first[k].float() - second[k].float()).abs().max()) for k in first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.5, 0.7, 0.9])
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: one training run
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--cache", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one_run(args)

    sys.path.insert(0, str(HERE))
    from model_speed import build_folder  # the speed benchmark's synthetic folder (64x64 PNGs, train/val parts)
    base = Path(tempfile.mkdtemp(prefix="boundary-cache-"))
    # The runs import this checkout's aigciqa (not another installed copy).
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
    rows = []
    for rate in args.rates:
        # Both runs at the same time, one thread each: they see the same machine load, so their ratio holds
        # even when other jobs come and go (the cached run ends first; the uncached one then has the machine
        # to itself, which favours it: the speed-up is, if anything, understated).
        running, figures = {}, {}
        for cache in (False, True):
            folder = build_folder(base / f"{rate}-{cache}", args.images)
            command = [sys.executable, str(Path(__file__).resolve()), "--one", "--folder", str(folder.root),
                       "--rate", str(rate), "--preset", args.preset, "--epochs", str(args.epochs)]
            running[cache] = (folder, subprocess.Popen(command + (["--cache"] if cache else []), env=env, text=True,
                                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        for cache, (folder, process) in running.items():
            out, err = process.communicate()
            if process.returncode:
                raise SystemExit(f"training run failed: {err[-2000:]}")
            figures[cache] = json.loads(out.strip().splitlines()[-1])
            figures[cache]["weights"] = folder.root / "runs/bench/last/model.safetensors"
        plain, cached = figures[False], figures[True]
        steady = lambda f: float(np.mean(f["epochs"][1:]))  # noqa: E731
        cache_entry = cached["caches"][0] if cached["caches"] else {"bytes_per_image": 0, "images": 0}
        row = {"rate": rate, "steps": plain["steps_per_epoch"],
               "epoch_plain": steady(plain), "epoch_cached": steady(cached),
               "first_plain": plain["epochs"][0], "first_cached": cached["epochs"][0],
               "rss_plain": plain["peak_rss_mb"], "rss_cached": cached["peak_rss_mb"],
               "bytes_per_image": cache_entry["bytes_per_image"], "images": cache_entry["images"],
               "weight_diff": weight_difference(plain["weights"], cached["weights"])}
        row["fill"] = cached["fill"]
        rows.append(row)
        print(f"fix rate {rate}: epoch {row['epoch_plain']:.2f} s -> {row['epoch_cached']:.2f} s "
              f"({row['epoch_plain'] / row['epoch_cached']:.2f}x), fill {row['fill']:.2f} s, "
              f"RSS {row['rss_plain']:.0f} / {row['rss_cached']:.0f} MB, {row['bytes_per_image'] / 1e3:.0f} kB/image, "
              f"max weight difference {row['weight_diff']:.2e}", flush=True)
    write_results(rows, args)


def write_results(rows: list[dict], args) -> None:
    lines = [f"`python benchmarks/model_boundary_cache.py --preset {args.preset} --images {args.images} "
             f"--epochs {args.epochs} --rates {' '.join(map(str, args.rates))}` "
             f"({platform.machine()}, {_cpus()} CPU cores shared with other work, torch CPU; "
             f"{time.strftime('%Y-%m-%d')}). Batch 8; each configuration trains in its own process "
             "(model build and checkpoint writes are outside the epoch times); the two runs of a fix rate run at the same "
             "time, one thread each, so they share the machine's load. A steady epoch is the mean of "
             "the epochs after the first; the fill time is measured around the fill itself (part of the first cached epoch).",
             "",
             "| fix rate | steps/epoch | step s (no cache) | step s (cache) | epoch s (no cache) | epoch s (cache) "
             "| speed-up | first epoch s (no cache / cache) | fill s | peak RSS MB (no cache / cache) "
             "| cache bytes/image | max weight diff |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['rate']} | {r['steps']} | {r['epoch_plain'] / r['steps']:.2f} | {r['epoch_cached'] / r['steps']:.2f} "
            f"| {r['epoch_plain']:.2f} | {r['epoch_cached']:.2f} | {r['epoch_plain'] / r['epoch_cached']:.2f}x "
            f"| {r['first_plain']:.2f} / {r['first_cached']:.2f} | {r['fill']:.2f} "
            f"| {r['rss_plain']:.0f} / {r['rss_cached']:.0f} | {r['bytes_per_image']:,} | {r['weight_diff']:.1e} |")
    from results import RESULTS, write_section  # benchmarks/results.py: one section, the others kept
    write_section(TOPIC, "\n".join(lines))
    print(f"wrote the '## {TOPIC}' section of {RESULTS}")


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    main()
