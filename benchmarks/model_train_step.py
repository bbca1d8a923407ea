"""Benchmark: MINT-IQA training step time and peak memory, small preset against tiny, in one run.

Each preset runs in its own child process (so peak resident memory is its own): build the model with
the paper's fix rate 0.7, then time forward + L1 loss + backward + Adam step on a batch of 8 random
images with short prompts, after warm-up steps. Prints absolute numbers and the small/tiny ratios.

Writes the "train step" section of benchmarks/RESULTS.md.

    python benchmarks/model_train_step.py [--steps 5] [--batch 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder's helpers (also in spawned children)
from results import markdown_table, provenance, write_section  # noqa: E402


def measure(preset: str, steps: int, batch: int, queue) -> None:
    import torch
    from aigciqa.model.loop import adam_kernel
    from aigciqa.model.scorer import build_model
    torch.set_num_threads(2)
    config = {"preset": preset, "perspectives": ["quality", "authenticity", "correspondence"], "bins": 1,
              "lora_rank": 0, "num_queries": 32 if preset != "tiny" else 4, "fix_rate": 0.7, "mos_range": [0, 100]}
    model, tokenizer, spec, frozen = build_model(config, pretrained=True)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=1e-5, **adam_kernel(trainable))
    tokens = tokenizer(["a red bicycle leaning on a wall at sunset"] * batch, padding=True, return_tensors="pt")
    pixels = torch.randn(batch, 3, spec.image_size, spec.image_size)
    target = torch.rand(batch, 3)
    step_s = median_step(lambda: torch.nn.functional.l1_loss(
        model(tokens["input_ids"], tokens["attention_mask"], pixel_values=pixels), target), optimizer, steps, warmup=2)
    queue.put({"preset": preset, "step_s": step_s, "frozen_blocks": frozen,
               "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
               "trainable_m": sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def median_step(loss_fn, optimizer, steps: int, warmup: int) -> float:
    """Median seconds of loss + backward + optimizer step, after ``warmup`` untimed steps."""
    times = []
    for step in range(steps + warmup):
        started = time.perf_counter()
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step >= warmup:
            times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    results = {}
    for preset in ("tiny", "small"):
        queue = context.Queue()
        process = context.Process(target=measure, args=(preset, args.steps, args.batch, queue))
        process.start()
        results[preset] = queue.get()
        process.join()
    for r in results.values():
        print(f"{r['preset']:>6}: median step {r['step_s'] * 1000:9.1f} ms (batch {args.batch}), peak RSS "
              f"{r['peak_rss_mb']:7.0f} MB, {r['params_m']:.2f} M parameters ({r['trainable_m']:.2f} M trainable, "
              f"{r['frozen_blocks']} encoder blocks frozen)")
    tiny, small = results["tiny"], results["small"]
    print(f"ratio small/tiny: step time {small['step_s'] / tiny['step_s']:.1f}x, "
          f"peak memory {small['peak_rss_mb'] / tiny['peak_rss_mb']:.1f}x")
    print(json.dumps(results))
    table = markdown_table(
        ["preset", "median step s", "peak RSS MB", "parameters M (trainable)", "encoder blocks frozen",
         "step / tiny step", "peak RSS / tiny"],
        [[f"`{r['preset']}`", f"{r['step_s']:.3f}", f"{r['peak_rss_mb']:.0f}",
          f"{r['params_m']:.2f} ({r['trainable_m']:.2f})", r["frozen_blocks"], f"{r['step_s'] / tiny['step_s']:.1f}x",
          f"{r['peak_rss_mb'] / tiny['peak_rss_mb']:.1f}x"] for r in results.values()], "lrrlrrr")
    write_section("train step", f"""\
{provenance()}
One training step of the MINT-IQA scorer (forward + L1 + backward + Adam, fix rate 0.7, batch {args.batch} random
images with short prompts), median of {args.steps} steps after 2 warm-up steps, 2 torch threads, CPU. Each
preset in its own child process (peak resident memory is its own); the reference is the `tiny` preset.

""" + table)


if __name__ == "__main__":
    main()
