"""Speed benchmark of `aigciqa train` / `score` (tiny preset by default), as ratios within one run:

1. overhead: wall time of ``train()`` (accelerate, validation each epoch, checkpoint writes) against a
   hand-written PyTorch loop over the same model, batches, optimizer and schedule (no validation, no
   checkpoints), same number of epochs;
2. the frozen-encoder feature cache: mean epoch time (epochs after the first) with and without it,
   at fix rate 1;
3. scoring throughput (images per second through ``score_images``).

Writes the "train speed" section of benchmarks/RESULTS.md.

    python benchmarks/model_speed.py [--preset tiny] [--images 64] [--epochs 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder's helpers
from results import provenance, write_section  # noqa: E402


def build_folder(root: Path, n_images: int, seed: int = 0):
    from PIL import Image
    from aigciqa.database import DatabaseFolder, default_card
    rng = np.random.default_rng(seed)
    prompts, images, mos, splits, files = [], [], [], [], {}
    for i in range(n_images):
        pid = f"p{i // 4}"
        if i % 4 == 0:
            prompts.append({"prompt_id": pid, "prompt": f"a photo of thing {i // 4}", "category": "", "challenge": ""})
        level = rng.uniform(0.1, 0.9)
        buffer = io.BytesIO()
        Image.fromarray(np.clip(rng.normal(level * 255, 30, (64, 64, 3)), 0, 255).astype(np.uint8)).save(buffer, "PNG")
        path = DatabaseFolder.image_relpath("gen", pid, i % 4 + 1)
        files[path] = buffer.getvalue()
        images.append({"image_id": f"i{i}", "path": path, "prompt_id": pid, "generator": "gen", "sample": i % 4 + 1})
        mos.append({"image_id": f"i{i}", "quality_mos": 100 * level})
        splits.append({"image_id": f"i{i}", "split1": ["train", "train", "train", "val"][(i // 4) % 4]})
    folder = DatabaseFolder(root)
    folder.write({"prompts": pd.DataFrame(prompts), "images": pd.DataFrame(images), "mos": pd.DataFrame(mos),
                  "splits": pd.DataFrame(splits)}, card=default_card("speed", perspectives=["quality"]),
                 stage="benchmark", files=files)
    return folder


def hand_loop(root: Path, preset_name: str, epochs: int, batch: int, seed: int) -> float:
    """The same training as train() written directly in PyTorch; returns wall seconds."""
    import torch
    import torch.nn.functional as F
    from aigciqa.model.data import load_model_data
    from aigciqa.model.loop import adam_kernel
    from aigciqa.model.scorer import build_model
    from aigciqa.model.inference import PixelCache
    data = load_model_data(root, split="split1")
    config = {"preset": preset_name, "perspectives": data.perspectives, "bins": 1, "lora_rank": 0,
              "num_queries": 4 if preset_name == "tiny" else 32, "fix_rate": 0.7, "mos_range": [0, 100]}
    started = time.perf_counter()
    model, tokenizer, preset, _ = build_model(config, pretrained=True, seed=seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=1e-5, betas=(0.9, 0.999), **adam_kernel(trainable))  # as train()
    rows = data.part("train")
    steps = -(-len(rows) // batch)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps * epochs)
    pixels = PixelCache(data, preset)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        for i in range(0, len(rows), batch):
            chunk = [int(rows[j]) for j in order[i:i + batch]]
            tokens = tokenizer([data.texts[r] for r in chunk], padding=True, truncation=True,
                               max_length=preset.max_text_tokens, return_tensors="pt")
            out = model(tokens["input_ids"], tokens["attention_mask"], pixel_values=pixels.get(chunk))
            loss = F.l1_loss(out, torch.tensor(data.targets[chunk], dtype=torch.float32))
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from aigciqa.model.evaluate import score_images
    from aigciqa.model.scorer import TrainOptions, train
    base = Path(tempfile.mkdtemp(prefix="mint-speed-"))
    common = dict(preset=args.preset, split="split1", epochs=args.epochs, progress=False, cpu=True)

    folder = build_folder(base / "a", args.images)

    def timed_train(run: str):
        started = time.perf_counter()
        result = train(folder.root, TrainOptions(**common, run=run))
        return time.perf_counter() - started, result

    # Warm-up of both (imports, first allocations), then alternate so both see the same machine load.
    hand_loop(folder.root, args.preset, args.epochs, 8, 0)
    timed_train("warm-up")
    hands, ours = [], []
    for repeat in range(args.repeats):
        hands.append(hand_loop(folder.root, args.preset, args.epochs, 8, 0))
        seconds, result = timed_train(f"repeat-{repeat}")
        ours.append(seconds)
    hand, own = float(np.median(hands)), float(np.median(ours))
    print(f"train(): {own:.2f} s for {args.epochs} epochs (with validation and checkpoints); hand-written loop: "
          f"{hand:.2f} s (medians of {args.repeats}); overhead ratio {own / hand:.2f}x")

    cached = train(build_folder(base / "b", args.images).root, TrainOptions(**common, fix_rate=1.0))
    plain = train(build_folder(base / "c", args.images).root, TrainOptions(**common, fix_rate=1.0,
                                                                           cache_features=False))
    later = lambda r: float(np.mean([h["seconds"] for h in r.history[1:]]))  # noqa: E731
    print(f"fix rate 1, epochs after the first: {later(cached):.3f} s with the feature cache, {later(plain):.3f} s "
          f"without; ratio {later(plain) / later(cached):.2f}x")

    paths = [folder.path(p) for p in folder.read_table("images")["path"]]
    started = time.perf_counter()
    score_images(result.run_dir, paths, "a photo", batch_size=16, progress=False, cpu=True)
    seconds = time.perf_counter() - started
    print(f"scoring: {len(paths) / seconds:.1f} images/s ({len(paths)} images, batch 16, model load included)")
    shutil.rmtree(base)
    write_section("train speed", f"""\
{provenance()}
Preset `{args.preset}` (random weights where the preset has no local ones), {args.images} synthetic 64 px images,
batch 8, CPU, one process.

| run | s | ratio |
|---|---:|---|
| hand-written PyTorch loop, {args.epochs} epochs (reference: same model, batches, optimizer, schedule; no validation, no checkpoints), median of {args.repeats} | {hand:.2f} | 1.00 |
| `train()`, {args.epochs} epochs (accelerate, validation each epoch, its metrics, fsynced checkpoints), median of {args.repeats} | {own:.2f} | {own / hand:.2f}x the reference |
| fix rate 1, mean epoch after the first, frozen-encoder feature cache on (reference) | {later(cached):.3f} | 1.00 |
| the same without the cache | {later(plain):.3f} | {later(plain) / later(cached):.2f}x the cached epoch |

Scoring (`score_images`, batch 16, model load included): {len(paths) / seconds:.1f} images/s over {len(paths)} images.""")


if __name__ == "__main__":
    main()
