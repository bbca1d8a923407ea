"""Learning benchmark: does the MINT-IQA pipeline learn quality from real photographs? (content-disjoint)

No AIGC image set is reachable offline, so this builds a database folder from the sample photographs
inside scikit-image's wheel: each source image, pristine and under four distortion types (Gaussian
blur, Gaussian noise, JPEG compression, contrast loss) at four levels, with a quality target derived
from the level (MOS = 100 - 20 x level x type weight). Sources are split train/val/test, so no test
content is ever seen in training. Trains the ``small`` preset (real DINOv2-S + MiniLM Q-Former) on the
CPU with the encoder frozen (fix rate 1, feature cache), and compares, in the same run, with a baseline:
ridge regression on the same frozen encoder's pooled features.

What it is not: AIGC quality, human opinion scores, or the paper's backbones. It checks that the
scorer, its training loop and its evaluation learn a monotonic quality signal that transfers to
unseen content.

    python benchmarks/model_learning.py [--epochs 6] [--lr 1e-4] [--out DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

SOURCES = {  # scikit-image sample images that are photographs or real scans
    "train": ["astronaut", "brick", "camera", "cat", "coins", "grass", "immunohistochemistry", "text",
              "retina", "hubble_deep_field", "cell"],
    "val": ["clock", "page"],
    "test": ["coffee", "moon", "rocket", "gravel"],
}
DISTORTIONS = {"blur": 1.0, "noise": 0.9, "jpeg": 0.8, "contrast": 0.7}  # type -> severity weight
LEVELS = (1, 2, 3, 4)


def source_image(name: str):
    from PIL import Image
    import skimage.data
    array = getattr(skimage.data, name)()
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    array = array[..., :3]
    if array.dtype != np.uint8:
        array = (255 * (array - array.min()) / max(np.ptp(array), 1e-9)).astype(np.uint8)
    image = Image.fromarray(array)
    side = min(image.size)  # centre square crop, then 224 px: the small preset's input size
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((224, 224), Image.Resampling.BICUBIC)


def distort(image, kind: str, level: int, rng):
    from PIL import Image, ImageEnhance, ImageFilter
    if kind == "blur":
        return image.filter(ImageFilter.GaussianBlur(radius=[0.8, 1.6, 3.2, 6.4][level - 1]))
    if kind == "noise":
        array = np.asarray(image, dtype=np.float32) + rng.normal(0, [8, 16, 32, 64][level - 1], (224, 224, 3))
        return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    if kind == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=[40, 20, 10, 4][level - 1])
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return ImageEnhance.Contrast(image).enhance([0.7, 0.5, 0.3, 0.15][level - 1])


def build_folder(root: Path, seed: int = 0):
    from aigciqa.database import DatabaseFolder, default_card
    rng = np.random.default_rng(seed)
    prompts, images, mos, splits, files = [], [], [], [], {}
    for part, names in SOURCES.items():
        for name in names:
            prompts.append({"prompt_id": name, "prompt": f"a photograph: {name.replace('_', ' ')}",
                            "category": "", "challenge": ""})
            pristine = source_image(name)
            variants = [("pristine", 0, pristine)] + [(k, lv, distort(pristine, k, lv, rng))
                                                      for k in DISTORTIONS for lv in LEVELS]
            for sample, (kind, level, image) in enumerate(variants, start=1):
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                path = DatabaseFolder.image_relpath(kind, name, sample)
                files[path] = buffer.getvalue()
                image_id = f"{name}-{kind}-{level}"
                images.append({"image_id": image_id, "path": path, "prompt_id": name, "generator": kind,
                               "sample": sample})
                mos.append({"image_id": image_id,
                            "quality_mos": 100 - 20 * level * DISTORTIONS.get(kind, 0.0)})
                splits.append({"image_id": image_id, "by_content": part})
    card = default_card("skimage-distortions", perspectives=["quality"], synthetic=True,
                        description="scikit-image sample photographs with synthetic distortions (benchmark)")
    folder = DatabaseFolder(root)
    folder.write({"prompts": pd.DataFrame(prompts), "images": pd.DataFrame(images), "mos": pd.DataFrame(mos),
                  "splits": pd.DataFrame(splits)}, card=card, stage="benchmark", files=files)
    return folder


def ridge_baseline(root: Path) -> dict:
    """Ridge regression on the pretrained, frozen encoder's CLS + mean patch token, alpha chosen on val
    (the encoder as the preset loads it, whatever the trained model did to its own copy)."""
    import torch
    from aigciqa.model.data import load_model_data
    from aigciqa.model.metrics import correlation_metrics
    from aigciqa.model.presets import build_components, get_preset
    from aigciqa.model.train import PixelCache
    preset = get_preset("small")
    vision = build_components(preset, pretrained=True)[0].eval()
    data = load_model_data(root, split="by_content")
    pixels = PixelCache(data, preset)
    features = []
    with torch.no_grad():
        for start in range(0, len(data.image_ids), 16):
            rows = list(range(start, min(start + 16, len(data.image_ids))))
            tokens = vision(pixel_values=pixels.get(rows)).last_hidden_state
            features.append(torch.cat([tokens[:, 0], tokens[:, 1:].mean(1)], dim=1).numpy())
    x = np.concatenate(features)
    y = data.to_mos(data.targets[:, 0])
    train, val, test = data.part("train"), data.part("val"), data.part("test")
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    z = (x - mean) / std

    def fit(rows, alpha):
        a = np.c_[z[rows], np.ones(len(rows))]
        return np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ y[rows])

    def predict(weights, rows):
        return np.c_[z[rows], np.ones(len(rows))] @ weights

    alphas = [0.1, 1, 10, 100, 1000, 10000]
    best = max(alphas, key=lambda a: correlation_metrics(predict(fit(train, a), val), y[val])["srcc"])
    return {"alpha": best, **correlation_metrics(predict(fit(train, best), test), y[test])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fix-rate", type=float, default=1.0,
                        help="1 freezes the encoder (features cached); the paper's best is 0.7")
    parser.add_argument("--out", help="keep the folder here (default: a temporary folder)")
    args = parser.parse_args()
    from aigciqa.model.train import TrainOptions, train
    root = Path(args.out or tempfile.mkdtemp(prefix="mint-learning-")) / "db"
    started = time.perf_counter()
    build_folder(root, args.seed)
    n = {part: len(names) * (1 + len(DISTORTIONS) * len(LEVELS)) for part, names in SOURCES.items()}
    print(f"folder {root}: {n} images (train/val/test by source content), built in "
          f"{time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    result = train(root, TrainOptions(preset="small", split="by_content", epochs=args.epochs, lr=args.lr,
                                      fix_rate=args.fix_rate, seed=args.seed, progress=False, cpu=True))
    seconds = time.perf_counter() - started
    baseline = ridge_baseline(root)
    test = result.test["quality"]
    for h in result.history:
        print(f"epoch {h['epoch']}: train L1 {h['train_loss']:.4f}, val SRCC {h['val']['quality']['srcc']:.4f}")
    print(f"MINT-IQA small (fix rate {args.fix_rate}, {args.epochs} epochs, lr {args.lr}, {seconds:.0f} s): test SRCC "
          f"{test['srcc']:.4f}, PLCC raw {test['plcc_raw']:.4f}, PLCC logistic {test['plcc_logistic']:.4f}, "
          f"KRCC {test['krcc']:.4f}")
    print(f"baseline ridge on frozen DINOv2-S features (alpha {baseline['alpha']}): test SRCC "
          f"{baseline['srcc']:.4f}, PLCC raw {baseline['plcc_raw']:.4f}, PLCC logistic "
          f"{baseline['plcc_logistic']:.4f}, KRCC {baseline['krcc']:.4f}")
    print(json.dumps({"model": test, "baseline": baseline, "history": result.history}, default=float))


if __name__ == "__main__":
    main()
