"""Learning benchmark: does the MINT-IQA pipeline learn quality from real photographs? (content-disjoint)

The database is :mod:`aigciqa.datasets.distortions`: scikit-image's sample photographs, pristine and
under four distortion types at four levels, a quality target derived from the level, split by source
image so that no test content is seen in training. Trains the ``small`` preset (real DINOv2-S + MiniLM
Q-Former) on the CPU and compares, in the same run, with a baseline: ridge regression on the pretrained,
frozen encoder's pooled features (alpha chosen on val).

What it is not: AIGC quality, human opinion scores, or the paper's backbones. It checks that the
scorer, its training loop and its evaluation learn a monotonic quality signal that transfers to
unseen content.

Writes the section "Learning: small, fix rate F, N epochs, lr L, seed S" of benchmarks/RESULTS.md (one
section per setting, so runs with other settings keep theirs).

    python benchmarks/model_learning.py [--fix-rate 0.7] [--epochs 12] [--lr 1e-4] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from aigciqa.datasets.distortions import DISTORTIONS, LEVELS, SOURCES, build_distortion_folder

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder's helpers
from results import markdown_table, provenance, write_section  # noqa: E402


def ridge_baseline(root: Path) -> dict:
    """Ridge regression on the pretrained, frozen encoder's CLS + mean patch token, alpha chosen on val
    (the encoder as the preset loads it, whatever the trained model did to its own copy): the ``ridge``
    baseline of :mod:`aigciqa.baselines.ridge`."""
    from aigciqa.baselines.ridge import encoder_features, fit_ridge
    from aigciqa.model.data import load_model_data
    from aigciqa.model.metrics import correlation_metrics
    data = load_model_data(root, split="by_content")
    x = encoder_features(data, "small")
    y = data.to_mos(data.targets[:, 0])
    test = data.part("test")
    ridge = fit_ridge(x, y, data.part("train"), data.part("val"))
    return {"alpha": ridge.alpha, **correlation_metrics(ridge.predict(x[test]), y[test])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fix-rate", type=float, default=0.7,
                        help="the paper's best, 0.7, fine-tunes the top 4 of 12 blocks; 1 freezes the encoder "
                             "(features cached)")
    parser.add_argument("--out", help="keep the folder here (default: a temporary folder)")
    args = parser.parse_args()
    from aigciqa.model.scorer import TrainOptions, train
    root = Path(args.out or tempfile.mkdtemp(prefix="mint-learning-")) / "db"
    started = time.perf_counter()
    build_distortion_folder(root, args.seed)
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
    best = max(result.history, key=lambda h: h["val"]["quality"]["srcc"])
    metrics = ["srcc", "krcc", "plcc_raw", "plcc_logistic"]
    table = markdown_table(
        [f"test set ({n['test']} images, unseen content)", "SRCC", "KRCC", "PLCC raw", "PLCC logistic",
         "SRCC - ridge SRCC"],
        [[f"baseline (reference): ridge on the frozen DINOv2-S features, alpha {baseline['alpha']}",
          *(f"{baseline[m]:.3f}" for m in metrics), ""],
         [f"MINT-IQA `small`, best epoch {best['epoch']} by val SRCC", *(f"{test[m]:.3f}" for m in metrics),
          f"{test['srcc'] - baseline['srcc']:+.3f}"]], "lrrrrr")
    write_section(f"Learning: small, fix rate {args.fix_rate:g}, {args.epochs} epochs, lr {args.lr:g}, seed {args.seed}",
                  f"""\
{provenance()}
The content-disjoint distorted-photograph database of `aigciqa.datasets.distortions` ({n['train']} train,
{n['val']} val, {n['test']} test images; scikit-image's photographs, not AIGC images, not human opinion); the
`small` preset trained on the CPU in {seconds:.0f} s; the baseline in the same run.

{table}

Training L1 loss (normalised MOS) from {result.history[0]['train_loss']:.3f} to {result.history[-1]['train_loss']:.3f};
val SRCC per epoch: {', '.join(f"{h['val']['quality']['srcc']:.2f}" for h in result.history)}.""")


if __name__ == "__main__":
    main()
