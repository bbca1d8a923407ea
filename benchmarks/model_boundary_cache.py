"""Benchmark of the boundary-activation cache (`aigciqa train`, preset `small` by default), as ratios within
one process, robust to the load of a shared machine.

For each fix rate, the same training with and without the cache runs in one process, in two threads that
take turns epoch by epoch (A B, B A, A B, ...: one computes while the other waits, so each epoch has the
machine's cores to itself, and the two epochs of a pair run seconds apart under the same load). Each
thread keeps its own torch random state across turns, so the two runs give the weights they give alone
(checked: the largest difference of their final weights is reported). Reported per fix rate:

- the speed-up of each pair of epochs after the first (uncached epoch time / cached epoch time), in CPU time
  (robust to other jobs) and in wall time: its
  median, and its lowest and highest over the pairs; the median epoch and step times;
- the first epoch's cost of filling the cache (the fill's own time, inside the first cached epoch);
- the process's peak RSS (both runs live in it) and the cache's bytes per image;
- where a cached step's time goes (``--profile``, on by default): the trainable encoder blocks above the
  boundary (forward and backward), the Q-Former and heads (forward and backward), the Adam update, and the
  frozen blocks' forward that the cache removes, each the median of repeated runs on one batch.

Writes the ``## Boundary cache`` section of benchmarks/RESULTS.md.

    python benchmarks/model_boundary_cache.py [--preset small] [--images 20] [--pairs 5] [--rates 0.5 0.7 0.9]
                                              [--paper-shapes STEPS]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TOPIC = "Boundary cache"  # its section of RESULTS.md
RUNS = ("plain", "cached")
FROZEN_PART = "frozen forward (removed by the cache)"


class Turns:
    """Epoch-by-epoch turn taking between the two training threads. A thread holds its turn from the start
    of an epoch until the start of its next one (validation and the checkpoint write included), so nothing
    of the other run overlaps a timed epoch; the order alternates (A B, B A, ...) so drift in the machine's
    load hits both runs alike. Each thread's torch random state is kept across its turns."""

    def __init__(self, epochs: int):
        self.order = [name for epoch in range(epochs) for name in (RUNS if epoch % 2 == 0 else RUNS[::-1])]
        self.position = 0
        self.condition = threading.Condition()
        self.rng: dict[str, object] = {}
        self.failed = False
        self.epoch_seconds = {name: [] for name in RUNS}  # wall time
        self.epoch_cpu = {name: [] for name in RUNS}  # the process's CPU time (the other run waits meanwhile)
        # Whole epochs as `aigciqa train` runs them: batches, validation and the checkpoint write, from one
        # epoch's first batch to the next epoch's (so the last epoch, with no next one, has none).
        self.whole_seconds = {name: [] for name in RUNS}
        self.whole_cpu = {name: [] for name in RUNS}
        self.epoch_start: dict[str, tuple[float, float]] = {}
        self.steps = 0

    def take(self, name: str) -> None:
        import torch
        with self.condition:
            self.condition.wait_for(lambda: self.failed or self.order[self.position] == name)
            if self.failed:
                raise RuntimeError("the other training thread failed")
        if name in self.rng:
            torch.set_rng_state(self.rng[name])

    def give(self, name: str) -> None:
        import torch
        self.rng[name] = torch.get_rng_state()
        with self.condition:
            self.position += 1
            self.condition.notify_all()

    def fail(self) -> None:
        with self.condition:
            self.failed = True
            self.condition.notify_all()

    def epoch_batches(self, items, label, show):
        """Stands in for the training loop's progress bar: the turn change at an epoch's start, and the
        epoch's own time (its batches: forward, backward, update) without the wait."""
        name = threading.current_thread().name
        if name in self.epoch_start:  # the previous epoch ends here (its validation and checkpoint included)
            started, cpu = self.epoch_start[name]
            self.whole_seconds[name].append(time.perf_counter() - started)
            self.whole_cpu[name].append(time.process_time() - cpu)
        if self.epoch_seconds[name]:  # the first epoch runs in the turn the thread started with
            self.give(name)
            self.take(name)
        self.steps = len(items)
        started, cpu = time.perf_counter(), time.process_time()
        self.epoch_start[name] = (started, cpu)
        yield from items
        self.epoch_seconds[name].append(time.perf_counter() - started)
        self.epoch_cpu[name].append(time.process_time() - cpu)


def interleaved_pair(folders: dict, preset: str, rate: float, epochs: int) -> dict:
    """Train the uncached and the cached run of a fix rate in turns; their epoch times and fill time."""
    from aigciqa.model import boundary_cache, loop
    from aigciqa.model.scorer import TrainOptions, train
    turns = Turns(epochs)
    fill_seconds = []
    original_fill, original_progress = boundary_cache.BoundaryInputs._fill, loop.progress_bar

    def timed_fill(self):
        started = time.perf_counter()
        original_fill(self)
        fill_seconds.append(time.perf_counter() - started)

    errors = []

    def run(name: str) -> None:
        try:
            turns.take(name)
            train(folders[name], TrainOptions(preset=preset, split="split1", epochs=epochs, batch_size=8,
                                              fix_rate=rate, cache_features=name == "cached", progress=False,
                                              cpu=True, run="bench"))
            turns.give(name)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
            turns.fail()

    boundary_cache.BoundaryInputs._fill, loop.progress_bar = timed_fill, turns.epoch_batches
    try:
        threads = [threading.Thread(target=run, args=(name,), name=name) for name in RUNS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        boundary_cache.BoundaryInputs._fill, loop.progress_bar = original_fill, original_progress
    if errors:
        raise errors[0]
    return {"epochs": turns.epoch_seconds, "cpu": turns.epoch_cpu, "whole": turns.whole_seconds,
            "whole_cpu": turns.whole_cpu, "fill": sum(fill_seconds), "steps": turns.steps}


def step_profile(preset_name: str, rate: float, repeats: int) -> dict:
    """Median seconds of the parts of one batch-8 training step on the cache, and of the frozen forward the
    cache removes, measured on the scorer the training builds (random images and a typical prompt)."""
    import torch
    from aigciqa.model.inference import encode_text
    from aigciqa.model.loop import adam_kernel
    from aigciqa.model.network import frozen_step_count, run_vision_steps
    from aigciqa.model.scorer import build_model
    config = {"preset": preset_name, "perspectives": ["quality"], "bins": 1,  # as the benchmark's folder
              "lora_rank": 0, "num_queries": 32 if preset_name != "tiny" else 4, "fix_rate": rate,
              "mos_range": [0, 100]}
    model, tokenizer, preset, _ = build_model(config, pretrained=True)
    model.train()
    steps = frozen_step_count(model.vision)
    pixels = torch.randn(8, 3, preset.image_size, preset.image_size, generator=torch.Generator().manual_seed(0))
    text = "a red bicycle leaning on a wall at sunset. style: photograph. content: a bicycle. atmosphere: warm"
    input_ids, mask = encode_text(tokenizer, [text] * 8, "cpu", preset.max_text_tokens)
    target = torch.rand(8, 1)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=1e-5, **adam_kernel(trainable))
    with torch.no_grad():
        boundary = run_vision_steps(model.vision, pixels, 0, steps)
        embeds = run_vision_steps(model.vision, boundary, steps)

    def frozen():
        with torch.no_grad():
            run_vision_steps(model.vision, pixels, 0, steps)

    def trainable_blocks():
        out = run_vision_steps(model.vision, boundary, steps)
        if out.requires_grad:
            out.sum().backward()

    def qformer_and_heads():
        torch.nn.functional.l1_loss(model(input_ids, mask, image_embeds=embeds), target).backward()

    def whole(inputs):
        def step():
            optimizer.zero_grad()
            torch.nn.functional.l1_loss(model(input_ids, mask, **inputs), target).backward()
            optimizer.step()
        return step

    def adam():
        optimizer.step()

    def median_seconds(function) -> float:
        function()  # warm-up (allocator, first-call overheads)
        times = []
        for _ in range(repeats):
            started = time.process_time()  # CPU time: what the part costs, whatever else the machine runs
            function()
            times.append(time.process_time() - started)
        return statistics.median(times)

    state = {k: v.clone() for k, v in model.state_dict().items()}
    parts = {"trainable encoder blocks": median_seconds(trainable_blocks),
             "Q-Former and heads": median_seconds(qformer_and_heads)}
    whole(inputs={"boundary": (steps, boundary)})()  # gradients in every parameter: Adam's full update
    parts["Adam update"] = median_seconds(adam)
    parts["cached step"] = median_seconds(whole({"boundary": (steps, boundary)}))
    parts["uncached step"] = median_seconds(whole({"pixel_values": pixels}))
    parts[FROZEN_PART] = median_seconds(frozen)
    model.load_state_dict(state)
    layers = len(model.vision.encoder.layer if hasattr(model.vision.encoder, "layer") else model.vision.encoder.layers)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"parts": parts, "steps": steps, "layers": layers, "trainable_m": trainable / 1e6}


def weight_difference(a: Path, b: Path) -> float:
    from safetensors.torch import load_file
    first, second = load_file(str(a)), load_file(str(b))
    assert first.keys() == second.keys()
    return max(float((first[k].float() - second[k].float()).abs().max()) for k in first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=5, help="pairs of epochs after the first (default 5)")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.5, 0.7, 0.9])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of each profiled part (default 5)")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--paper-shapes", type=int, default=0, metavar="STEPS",
                        help="also time STEPS alternated training steps of the `paper` preset's shapes (random "
                             "ViT-g/14 + Q-Former, fix rate 0.7, batch 8) with and without the cache on this "
                             "machine, with gpu_check.py's code (minutes per step on a CPU; default 0: not run)")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(HERE))
    base = Path(tempfile.mkdtemp(prefix="boundary-cache-"))
    try:
        rows = measure_rates(args, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)  # checkpoints with optimizer state: about 0.7 GB per run on `small`
    paper = None
    if args.paper_shapes:
        import gpu_check  # benchmarks/gpu_check.py: part 4 measures the same thing on a GPU
        paper = gpu_check.boundary_cache_step(gpu_check.Device(dry_run=False, cpu=True), False,
                                              measured_steps=args.paper_shapes)
        print(f"paper shapes: step CPU s {paper['step_cpu_plain']:.1f} / {paper['step_cpu_cached']:.1f} "
              f"({paper['step_cpu_plain'] / paper['step_cpu_cached']:.2f}x), wall {paper['speed_up']:.2f}x", flush=True)
    write_results(rows, args, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, paper)


def measure_rates(args, base: Path) -> list[dict]:
    """The interleaved training pair (and the step profile) of each fix rate, in folders under ``base``."""
    from model_speed import build_folder  # the speed benchmark's synthetic folder (64x64 PNGs, train/val parts)
    from aigciqa.database import DatabaseFolder
    from aigciqa.database.info import cache_report
    rows = []
    for rate in args.rates:
        folders = {name: build_folder(base / f"{rate}-{name}", args.images).root for name in RUNS}
        figures = interleaved_pair(folders, args.preset, rate, 1 + args.pairs)
        wall, cpu, whole_cpu = ({name: np.array(figures[kind][name]) for name in RUNS}
                                for kind in ("epochs", "cpu", "whole_cpu"))
        caches = cache_report(DatabaseFolder(folders["cached"]))
        row = {"rate": rate, "steps": figures["steps"], "wall": wall, "cpu": cpu,
               "cpu_ratios": cpu["plain"][1:] / cpu["cached"][1:], "wall_ratios": wall["plain"][1:] / wall["cached"][1:],
               "whole_cpu": whole_cpu, "whole_ratios": whole_cpu["plain"][1:] / whole_cpu["cached"][1:],
               "fill": figures["fill"], "bytes_per_image": caches[0]["bytes_per_image"] if caches else 0,
               "weight_diff": weight_difference(*(folders[n] / "runs/bench/last/model.safetensors" for n in RUNS)),
               "load": os.getloadavg()[0]}
        for folder in folders.values():  # checkpoints with optimizer state: about 0.7 GB per run on `small`
            shutil.rmtree(folder)  # (main removes ``base`` too, also when a run fails)
        if not args.no_profile:
            row["profile"] = step_profile(args.preset, rate, args.repeats)
        rows.append(row)
        print(f"fix rate {rate}: speed-up (CPU time) median {np.median(row['cpu_ratios']):.2f}x "
              f"[{', '.join(f'{r:.2f}' for r in row['cpu_ratios'])}], whole epochs "
              f"[{', '.join(f'{r:.2f}' for r in row['whole_ratios'])}], wall median {np.median(row['wall_ratios']):.2f}x "
              f"[{', '.join(f'{r:.2f}' for r in row['wall_ratios'])}], fill {row['fill']:.2f} s, "
              f"max weight difference {row['weight_diff']:.1e}", flush=True)
        if "profile" in row:
            print("  step parts (CPU s): " + ", ".join(f"{k} {v:.3f}" for k, v in row["profile"]["parts"].items()),
                  flush=True)
    return rows


def write_results(rows: list[dict], args, peak_rss_mb: float, paper: dict | None = None) -> None:
    lines = [f"`python benchmarks/model_boundary_cache.py --preset {args.preset} --images {args.images} "
             f"--pairs {args.pairs} --rates {' '.join(map(str, args.rates))} --threads {args.threads}"
             + (f" --paper-shapes {args.paper_shapes}" if args.paper_shapes else "") + "` "
             f"({platform.machine()}, {_cpus()} CPU cores shared with other work, {args.threads} torch thread(s); "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). Batch 8. For each fix rate the uncached (A) and "
             "the cached (B) training run in one process and take turns epoch by epoch (A B, B A, A B, ...), so each "
             "epoch has the process to itself and the two epochs of a pair see the same machine load. The speed-up "
             f"of a pair is A's epoch time over B's, for the pairs after the first epoch: median, and "
             "lowest-highest. CPU time (the process's) is what an epoch costs whatever else the machine runs; wall "
             "time also carries the load of other jobs. *Training batches* times cover the epochs' batches (forward, "
             "backward, update); *whole epochs* are the epochs as `aigciqa train` runs them, from one epoch's first "
             "batch to the next's: the batches, the validation pass (1 batch of the folder's 4 val images against 2 "
             "of its 16 train images) and the checkpoint write (so the last epoch, with no next one, is not counted). "
             "Neither includes the wait for the other run. The fill time is measured around the fill itself (part of "
             "the first cached epoch). The max weight difference compares the two runs' final weights.",
             "",
             "| fix rate | steps/epoch | speed-up, training batches, CPU time | speed-up, whole epochs, CPU time "
             "| speed-up, training batches, wall time | batches CPU s (no cache / cache) "
             "| whole epoch CPU s (no cache / cache) | step CPU s (no cache / cache) "
             "| first epoch's batches CPU s (no cache / cache) | fill s | cache bytes/image | max weight diff "
             "| load average |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def spread(ratios) -> str:
        if not len(ratios):  # --pairs 1: the last epoch has no whole-epoch time, so no pair after the first
            return "n/a"
        return f"{np.median(ratios):.2f}x ({ratios.min():.2f}-{ratios.max():.2f})"

    for r in rows:
        plain, cached = float(np.median(r["cpu"]["plain"][1:])), float(np.median(r["cpu"]["cached"][1:]))
        whole_plain, whole_cached = (float(np.median(r["whole_cpu"][n][1:])) if len(r["whole_cpu"][n]) > 1
                                     else float("nan") for n in RUNS)
        lines.append(
            f"| {r['rate']} | {r['steps']} | **{spread(r['cpu_ratios'])}** | **{spread(r['whole_ratios'])}** "
            f"| {spread(r['wall_ratios'])} | {plain:.2f} / {cached:.2f} | {whole_plain:.2f} / {whole_cached:.2f} "
            f"| {plain / r['steps']:.2f} / {cached / r['steps']:.2f} "
            f"| {r['cpu']['plain'][0]:.2f} / {r['cpu']['cached'][0]:.2f} | {r['fill']:.2f} | {r['bytes_per_image']:,} "
            f"| {r['weight_diff']:.1e} | {r['load']:.1f} |")
    lines += ["", "Peak RSS of the process (every run of the table, and the paper shapes when measured; both runs "
                  f"of a fix rate live in it at once): {peak_rss_mb:.0f} MB."]
    profiled = [r for r in rows if "profile" in r]
    if profiled:
        names = list(profiled[0]["profile"]["parts"])
        lines += ["", f"Where a batch-8 training step's CPU time goes (median of {args.repeats} runs of each part on "
                      "one batch of random images, same process). A cached step is the trainable encoder blocks, the "
                      "Q-Former and heads (each forward and backward) and the Adam update; an uncached step adds the "
                      "frozen blocks' forward. The last column is the speed-up these parts predict for a "
                      "training step, (cached step + frozen forward) / cached step: what removing the frozen forward "
                      "gives and no more (epochs measured above can differ from it by the noise of single steps).", "",
                  "| fix rate | cached steps | trainable params | " + " | ".join(f"{n} s" for n in names)
                  + " | predicted speed-up |",
                  "|---|---|---|" + "---|" * (len(names) + 1)]
        for r in profiled:
            p = r["profile"]
            bound = (p["parts"]["cached step"] + p["parts"][FROZEN_PART]) / p["parts"]["cached step"]
            lines.append(f"| {r['rate']} | embedding + {p['steps'] - 1} of {p['layers']} blocks | "
                         f"{p['trainable_m']:.1f} M | " + " | ".join(f"{p['parts'][n]:.3f}" for n in names)
                         + f" | {bound:.2f}x |")
    if paper:
        lines += ["", f"The `paper` preset's shapes on this machine (`--paper-shapes {args.paper_shapes}`: "
                      "benchmarks/gpu_check.py's part 4 on the CPU; random InstructBLIP ViT-g/14 and Q-Former, "
                      f"fix rate 0.7: {paper['frozen']} blocks frozen, batch 8, {args.threads} torch thread(s)): "
                      f"median of {args.paper_shapes} training steps of each kind, alternated step by step.", "",
                  "| step CPU s (no cache / cache) | speed-up, CPU time | speed-up, wall time | fill s per image "
                  "| cache bytes/image |", "|---|---|---|---|---|",
                  f"| {paper['step_cpu_plain']:.1f} / {paper['step_cpu_cached']:.1f} "
                  f"| **{paper['step_cpu_plain'] / paper['step_cpu_cached']:.2f}x** | {paper['speed_up']:.2f}x "
                  f"| {paper['fill_per_image']:.2f} | {paper['bytes_per_image']:,.0f} |"]
    from results import RESULTS, write_section  # benchmarks/results.py: one section, the others kept
    write_section(TOPIC, "\n".join(lines))
    print(f"wrote the '## {TOPIC}' section of {RESULTS}")


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    main()
