"""Benchmark of ``aigciqa generate``: what the run machinery costs on top of the pipeline itself.

1. Images per second of the tiny Stable Diffusion pipeline called directly in a loop (the reference)
   against the same pipeline driven by ``run_generate`` (seeds, PNG encoding, atomic writes, sha256,
   manifest writes, progress), in the same process, alternating to share the machine's noise.
   Steady state: the time between the first and the last image of each run (pipeline building apart).
2. The resume check of a full 2400-image manifest (100 prompts x 6 generators x 4 samples, 64 px
   PNGs): a rerun that finds everything finished, against reading and hashing the same files alone.

Writes the "generate" section of benchmarks/RESULTS.md.

Usage: python benchmarks/bench_generate.py [--images 24] [--repeats 3] [--size 64] [--steps 2]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder's helpers
from results import markdown_table, provenance, write_section  # noqa: E402


def bare_loop(pipeline, prompts, seeds, settings) -> float:
    """Seconds per image: the diffusers pipeline alone, PIL image out."""
    from aigciqa.generate.diffusers_common import cpu_generator
    started = time.perf_counter()
    for prompt, seed in zip(prompts, seeds):
        pipeline(prompt=prompt, num_inference_steps=settings["steps"], guidance_scale=settings["guidance"],
                 height=settings["height"], width=settings["width"], generator=cpu_generator(seed)).images[0]
    return (time.perf_counter() - started) / len(prompts)


def run_loop(root: Path, n_prompts: int, per_prompt: int, config: dict) -> tuple[float, float]:
    """Seconds per image through run_generate, first to last image (load excluded), and of that the
    seconds per image spent inside the generator's own call (measured in the same run, so the
    difference is the machinery's cost even on a loaded machine)."""
    from aigciqa.generate.run import run_generate
    from aigciqa.generate.stable_diffusion import StableDiffusion
    stamps, inside = [], []
    real = StableDiffusion.generate

    def timed(self, *args):
        started = time.perf_counter()
        try:
            return real(self, *args)
        finally:
            inside.append(time.perf_counter() - started)

    StableDiffusion.generate = timed
    try:
        summary = run_generate(root, generators=["stable_diffusion"], per_prompt=per_prompt,
                               limit_prompts=n_prompts, weights={"*": "tiny"}, config=config, progress=True,
                               on_image=lambda _: stamps.append(time.perf_counter()))
    finally:
        StableDiffusion.generate = real
    assert summary.generated == n_prompts * per_prompt
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1), sum(inside[1:]) / (len(inside) - 1)


def make_full_manifest(root: Path, size: int) -> int:
    """A synthetic folder with 2400 finished images as a tiny-weights run would list them."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    from aigciqa.database import DatabaseFolder, default_card
    from aigciqa.datasets.prompt_sets import load_prompt_set
    from aigciqa.generate.base import png_bytes
    from aigciqa.generate.run import plan_tasks
    prompts = load_prompt_set("aigciqa2023")
    names = [f"model_{k}" for k in range(1, 7)]
    tasks = plan_tasks(names, prompts, 4, 0)
    rng = np.random.default_rng(0)
    rows = []
    for task in tasks:
        data = png_bytes(Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)))
        path = root / task.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        rows.append({"image_id": task.image_id, "path": task.relpath, "prompt_id": task.prompt_id,
                     "generator": task.generator, "sample": task.sample, "seed": task.seed, "width": size,
                     "height": size, "sha256": hashlib.sha256(data).hexdigest(), "steps": 2, "guidance": 5.0,
                     "scheduler": "DDIMScheduler", "dtype": "float32", "weights": "tiny"})
    card = default_card("bench", synthetic=True, generators=names)
    DatabaseFolder(root).write({"prompts": prompts, "images": pd.DataFrame(rows)}, card=card)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="images per timed run (multiple of 4)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()

    import torch

    from aigciqa.datasets.prompt_sets import load_prompt_set
    from aigciqa.generate.base import derive_seed
    from aigciqa.generate.registry import resolve
    from aigciqa.generate.run import run_generate

    settings = {"width": args.size, "height": args.size, "steps": args.steps}
    config = {"flush_every": 25, "generators": {"stable_diffusion": settings}}
    generator = resolve("stable_diffusion", config, {"*": "tiny"}, "cpu")
    generator.load()
    per_prompt = 4
    n_prompts = max(1, args.images // per_prompt)
    prompts = load_prompt_set("aigciqa2023").head(n_prompts)
    texts = [p for p in prompts["prompt"] for _ in range(per_prompt)]
    seeds = [derive_seed("stable_diffusion", pid, s) for pid in prompts["prompt_id"] for s in range(1, per_prompt + 1)]
    bare_loop(generator.pipeline, texts[:2], seeds[:2], generator.settings)  # warm-up
    bare, run = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            bare.append(bare_loop(generator.pipeline, texts, seeds, generator.settings))
            run.append(run_loop(Path(tmp) / f"run{repeat}", n_prompts, per_prompt, config))
        b = statistics.median(bare)
        r = statistics.median(total for total, _ in run)
        machinery = statistics.median(total / inside for total, inside in run)
        rows = [("bare pipeline loop (reference)", b, "1.000"),
                ("`run_generate` (seeds, PNG, sha256, atomic writes, manifest, progress)", r, f"{r / b:.3f}")]

        # The machinery alone (pipeline output given): PNG encoding, sha256, atomic write with fsync.
        from aigciqa.database.atomic import Transaction
        from aigciqa.generate.base import png_bytes
        image = generator.generate(texts[0], seeds[0], "x").image
        started = time.perf_counter()
        for k in range(len(texts)):
            data = png_bytes(image)
            hashlib.sha256(data).hexdigest()
            with Transaction() as transaction:
                transaction.stage_bytes(Path(tmp) / "alone" / f"{k}.png", data)
        alone = (time.perf_counter() - started) / len(texts)
        rows.append(("PNG encoding + sha256 + atomic write alone", alone, f"{alone / b:.3f}"))

        root = Path(tmp) / "full"
        n = make_full_manifest(root, args.size)
        started = time.perf_counter()
        for path in sorted((root / "images").rglob("*.png")):
            hashlib.sha256(path.read_bytes()).hexdigest()
        hashing = time.perf_counter() - started
        config_all = {"generators": {f"model_{k}": {"family": "stable_diffusion", **settings}
                                     for k in range(1, 7)}}
        started = time.perf_counter()
        summary = run_generate(root, generators=[f"model_{k}" for k in range(1, 7)], per_prompt=4,
                               weights={"*": "tiny"}, config=config_all, progress=False)
        check = time.perf_counter() - started
        assert summary.finished_before == n and summary.generated == 0

    table = markdown_table(["run (one process)", "ms/image", "/ bare pipeline loop"],
                           [[name, f"{seconds * 1000:.1f}", ratio] for name, seconds, ratio in rows], "lrr")
    body = f"""\
{provenance()}
Tiny random Stable Diffusion pipeline (`weights tiny`), {args.size} px, {args.steps} steps, {n_prompts * per_prompt} images
per run, median of {args.repeats} runs alternating with the bare loop; torch {torch.__version__} on the CPU,
{torch.get_num_threads()} threads. Steady state: first to last image of a run (pipeline building apart).

{table}

- Within each `run_generate` run, time per image / time inside the pipeline call: {machinery:.3f}
  (the machinery's cost measured in the same run, so machine noise between runs drops out).
- Resume check of a finished {n}-image manifest (100 prompts x 6 generators x 4 samples, {args.size} px PNGs):
  {check:.2f} s; reading and hashing the same files alone: {hashing:.2f} s; ratio {check / hashing:.2f}.

Only tiny random weights were run: no real text-to-image weights and no GPU are reachable here, so this says
nothing about 512 px throughput or memory, and the GLIDE/LAFITE adapters have never run."""
    print(body)
    write_section("generate", body)


if __name__ == "__main__":
    main()
