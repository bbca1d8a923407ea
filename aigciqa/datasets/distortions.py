"""A content-disjoint quality database from real photographs with synthetic distortions.

No AIGC image set is reachable offline, so the model's learning benchmark (and its reduced CI test)
uses the sample photographs inside scikit-image's wheel: each source image, pristine and under
Gaussian blur, Gaussian noise, JPEG compression and contrast loss at four levels, with a quality
target derived from the level (MOS = 100 - 20 x level x the type's severity weight). Splits are by
source image (column ``by_content``), so no test content is ever seen in training. It is a check
that a scorer learns a monotonic quality signal that transfers to unseen content, not AIGC
quality and not human opinion. Needs ``scikit-image`` and Pillow.
"""

from __future__ import annotations

import io
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
    """A scikit-image sample as a 224 px RGB square (grey images repeated over three channels)."""
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
    """One distortion type at level 1-4 (level 4 is the worst)."""
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


def build_distortion_folder(root: Path, seed: int = 0, sources: dict[str, list[str]] | None = None,
                            distortions: dict[str, float] | None = None):
    """Write the database folder (card marked synthetic) and return its DatabaseFolder."""
    from aigciqa.database import DatabaseFolder, default_card
    sources = SOURCES if sources is None else sources
    distortions = DISTORTIONS if distortions is None else distortions
    rng = np.random.default_rng(seed)
    prompts, images, mos, splits, files = [], [], [], [], {}
    for part, names in sources.items():
        for name in names:
            prompts.append({"prompt_id": name, "prompt": f"a photograph: {name.replace('_', ' ')}",
                            "category": "", "challenge": ""})
            pristine = source_image(name)
            variants = [("pristine", 0, pristine)] + [(k, lv, distort(pristine, k, lv, rng))
                                                      for k in distortions for lv in LEVELS]
            for sample, (kind, level, image) in enumerate(variants, start=1):
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                path = DatabaseFolder.image_relpath(kind, name, sample)
                files[path] = buffer.getvalue()
                image_id = f"{name}-{kind}-{level}"
                images.append({"image_id": image_id, "path": path, "prompt_id": name, "generator": kind,
                               "sample": sample})
                mos.append({"image_id": image_id,
                            "quality_mos": 100 - 20 * level * distortions.get(kind, 0.0)})
                splits.append({"image_id": image_id, "by_content": part})
    card = default_card("skimage-distortions", perspectives=["quality"], synthetic=True,
                        description="scikit-image sample photographs with synthetic distortions (a learning check, "
                                    "not human opinion)")
    folder = DatabaseFolder(root)
    folder.write({"prompts": pd.DataFrame(prompts), "images": pd.DataFrame(images), "mos": pd.DataFrame(mos),
                  "splits": pd.DataFrame(splits)}, card=card, stage="distortions", files=files)
    return folder
