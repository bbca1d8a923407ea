"""Fixtures of the model tests: a tiny database folder with real PNG files."""

import io

import pytest

import numpy as np
import pandas as pd

from aigciqa.database import DatabaseFolder, default_card


def build_folder(root, n_prompts=8, per_prompt=4, seed=0, perspectives=("quality", "authenticity"),
                segments=True, write_images=True):
    """A tiny database folder: random 16x16 PNGs whose brightness sets a learnable MOS.

    Each prompt's images go to one split part (by prompt, like the real splits): 5 train, 1 val, 2 test
    prompts for the default 8.
    """
    from PIL import Image
    rng = np.random.default_rng(seed)
    prompts, images, mos, splits, files = [], [], [], [], {}
    parts = ["train"] * 5 + ["val"] + ["test"] * 2
    for p in range(n_prompts):
        pid = f"p{p}"
        prompts.append({"prompt_id": pid, "prompt": f"a photo of thing {p}", "category": "", "challenge": "",
                        "style": "photo" if segments else "", "content": f"thing {p}", "atmosphere": ""})
        for k in range(per_prompt):
            level = rng.uniform(0.1, 0.9)
            pixels = np.clip(rng.normal(level * 255, 30, size=(16, 16, 3)), 0, 255).astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="PNG")
            path = DatabaseFolder.image_relpath("gen", pid, k + 1)
            if write_images:
                files[path] = buffer.getvalue()
            image_id = f"{pid}-{k}"
            images.append({"image_id": image_id, "path": path, "prompt_id": pid, "generator": "gen",
                           "sample": k + 1})
            row = {"image_id": image_id}
            for j, name in enumerate(perspectives):
                row[f"{name}_mos"] = 100 * level if j == 0 else 100 * (1 - level) * 0.5 + 20
            mos.append(row)
            splits.append({"image_id": image_id, "split1": parts[p % len(parts)]})
    card = default_card("tiny-test", perspectives=list(perspectives), synthetic=True)
    folder = DatabaseFolder(root)
    folder.write({"prompts": pd.DataFrame(prompts), "images": pd.DataFrame(images), "mos": pd.DataFrame(mos),
                  "splits": pd.DataFrame(splits)}, card=card, stage="test", files=files)
    return folder


@pytest.fixture
def make_folder():
    """The folder builder (a fixture, because tests import no helper modules under importlib mode)."""
    return build_folder


@pytest.fixture
def make_vqa_folder(tmp_path, add_labels_and_vqa):
    """A tiny folder with labels.csv and vqa.jsonl (416 template pairs for 32 images)."""
    def make(name="db", **kwargs):
        return add_labels_and_vqa(build_folder(tmp_path / name, **kwargs))
    return make

