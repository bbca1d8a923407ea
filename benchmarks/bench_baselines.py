"""Speed of NIQE and BRISQUE (aigciqa.baselines) against the reference packages, at 512 x 512 pixels.

The reference packages do not run on current numpy/scipy as installed, so this benchmark (and only it) applies
compatibility shims before importing them:
- scikit-video 1.1.11's ``niqe``: the numpy aliases it uses (``np.int``, ...) and ``scipy.misc.imresize``
  (removed in scipy 1.3), re-created as what it was: Pillow's bicubic resize of a float ('F') image;
- brisque 0.2.0: each feature flattened before ``float()`` (numpy >= 2.4); where OpenCV or libsvm are not
  installed, ``cv2.resize`` is replaced by :func:`aigciqa.baselines.natural_scene.half_size_cubic` and the
  libsvm prediction by :class:`aigciqa.baselines.parameters.SupportVectorRegression` (the table says which).

Images: scikit-image's astronaut (grey, 512 x 512) clean, blurred, noisy and JPEG-compressed, and coffee
resized to 512 x 512. Each method scores every image ``--repeats`` times; the table gives the median time per
image and the largest score difference from the reference on the same images. Writes the ``## Baselines``
section of benchmarks/RESULTS.md.

    python benchmarks/bench_baselines.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Baselines"


def images() -> dict[str, np.ndarray]:
    """Grey images in [0, 1], 512 x 512."""
    from PIL import Image
    from skimage import color, data, filters
    grey = color.rgb2gray(data.astronaut())
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray((grey * 255).astype(np.uint8)).save(buffer, "JPEG", quality=10)
    coffee = Image.fromarray(data.coffee()).resize((512, 512), Image.Resampling.BICUBIC)
    return {"astronaut": grey, "blur 2": filters.gaussian(grey, sigma=2),
            "noise 0.05": np.clip(grey + rng.normal(0, 0.05, grey.shape), 0, 1),
            "jpeg 10": np.asarray(Image.open(buffer), np.float64) / 255,
            "coffee": color.rgb2gray(np.asarray(coffee))}


def reference_niqe():
    """scikit-video's niqe with the shims above."""
    import scipy
    import scipy.misc
    from PIL import Image
    for name, value in {"int": int, "float": float, "complex": complex}.items():
        if name not in np.__dict__:
            setattr(np, name, value)

    def imresize(array, size, interp="bilinear", mode=None):
        image = Image.fromarray(np.asarray(array, np.float32), mode="F")
        shape = tuple((np.array(image.size) * size).astype(int))
        return np.asarray(image.resize(shape, {"nearest": 0, "bilinear": 2, "bicubic": 3}[interp]))

    scipy.misc.imresize = imresize
    from skvideo.measure import niqe
    return lambda grey: float(niqe(grey * 255.0)[0])


def reference_brisque() -> tuple[object, str]:
    """brisque 0.2.0's BRISQUE.score with the shims above; returns (score function, shim note)."""
    from aigciqa.baselines.natural_scene import half_size_cubic
    from aigciqa.baselines.parameters import brisque_model
    notes = []
    if importlib.util.find_spec("cv2") is None:
        cv2 = types.ModuleType("cv2")
        cv2.INTER_CUBIC = 2
        cv2.resize = lambda image, size, fx, fy, interpolation: half_size_cubic(image)
        sys.modules["cv2"] = cv2
        notes.append("cv2.resize replaced by ours")
    has_libsvm = importlib.util.find_spec("libsvm") is not None
    if not has_libsvm:
        libsvm = types.ModuleType("libsvm")
        libsvm.svmutil = types.ModuleType("libsvm.svmutil")
        sys.modules["libsvm"], sys.modules["libsvm.svmutil"] = libsvm, libsvm.svmutil
        notes.append("libsvm's prediction replaced by ours")
    if importlib.util.find_spec("requests") is None:
        sys.modules["requests"] = types.ModuleType("requests")
    import brisque.brisque as reference
    scorer = reference.BRISQUE.__new__(reference.BRISQUE)
    scorer.url = False
    model = brisque_model()
    scorer.scale_params = {"min_": list(model.low), "max_": list(model.high)}
    flatten = reference.BRISQUE.calculate_brisque_features

    def features(self, image, kernel_size=7, sigma=7 / 6):  # numpy >= 2.4: float() of a 1-element array fails
        return np.array([float(np.ravel(value)[0]) for value in flatten(self, image, kernel_size, sigma)])

    reference.BRISQUE.calculate_brisque_features = features
    if not has_libsvm:
        reference.BRISQUE.calculate_image_quality_score = (
            lambda self, feats: float(model.svr.predict(self.scale_features(feats))[0]))
    else:
        from libsvm import svmutil
        scorer.model = svmutil.svm_load_model(str(Path(importlib.util.find_spec("brisque").submodule_search_locations[0])
                                                  / "models" / "svm.txt"))
    return (lambda grey: float(scorer.score(np.stack([grey] * 3, axis=-1)))), ", ".join(notes)


def timed(function, pictures, repeats) -> tuple[float, list[float]]:
    """Median seconds per image over ``repeats`` passes, and the scores."""
    scores = [function(p) for p in pictures]  # warm-up (parameter files, caches)
    passes = []
    for _ in range(repeats):
        started = time.perf_counter()
        for picture in pictures:
            function(picture)
        passes.append((time.perf_counter() - started) / len(pictures))
    return statistics.median(passes), scores


def write_section(text: str, section: str = SECTION) -> None:
    """Replace (or add) one section of RESULTS.md (``## ...`` up to the next), leaving the others as they are."""
    content = RESULTS.read_text("utf-8") if RESULTS.is_file() else "# Benchmark results\n"
    lines = content.splitlines()
    if section in lines:
        start = lines.index(section)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = text.rstrip().splitlines() + [""]
    else:
        lines += ["", *text.rstrip().splitlines()]
    RESULTS.write_text("\n".join(lines).rstrip() + "\n", "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from aigciqa.baselines.brisque import brisque
    from aigciqa.baselines.niqe import niqe
    pictures = images()
    names = list(pictures)
    reference_brisque_score, brisque_note = reference_brisque()
    rows = []
    for method, ours, reference, note in (
            ("NIQE", lambda g: niqe(g * 255.0), reference_niqe(), "scikit-video 1.1.11 (imresize, np aliases shimmed)"),
            ("BRISQUE", brisque, reference_brisque_score,
             "brisque 0.2.0 (features flattened" + (f"; {brisque_note})" if brisque_note else ")"))):
        ours_time, ours_scores = timed(ours, list(pictures.values()), args.repeats)
        reference_time, reference_scores = timed(reference, list(pictures.values()), args.repeats)
        difference = max(abs(a - b) for a, b in zip(ours_scores, reference_scores))
        rows.append((method, ours_time, reference_time, note, difference, ours_scores, reference_scores))
        print(f"{method}: ours {ours_time * 1e3:.0f} ms/image, reference {reference_time * 1e3:.0f} ms/image "
              f"({note}); largest score difference {difference:.4f}")
    lines = [SECTION, "",
             f"`python benchmarks/bench_baselines.py --repeats {args.repeats}`: median time per 512 x 512 grey image "
             f"over {len(pictures)} images ({', '.join(names)}), this machine, one process. The reference packages "
             "run with the compatibility shims the benchmark's docstring lists.", "",
             "| method | aigciqa.baselines (ms/image) | reference (ms/image) | reference / ours | reference run "
             "| largest score difference |", "|---|---|---|---|---|---|"]
    for method, ours_time, reference_time, note, difference, _, _ in rows:
        lines.append(f"| {method} | {ours_time * 1e3:.0f} | {reference_time * 1e3:.0f} | "
                     f"{reference_time / ours_time:.1f}x | {note} | {difference:.4f} |")
    lines += ["", "Scores (ours / reference):", "",
              "| image | " + " | ".join(r[0] for r in rows) + " |", "|---|" + "---|" * len(rows)]
    for k, name in enumerate(names):
        lines.append(f"| {name} | " + " | ".join(f"{r[5][k]:.3f} / {r[6][k]:.3f}" for r in rows) + " |")
    write_section("\n".join(lines) + "\n")
    print(f"wrote the '{SECTION}' section of {RESULTS}")


if __name__ == "__main__":
    main()
