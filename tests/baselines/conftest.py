"""Tiny random transformers models of the baselines' classes, saved as local folders (no network)."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory, tiny_image_text) -> Path:
    return tiny_image_text.clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory, tiny_image_text) -> Path:
    return tiny_image_text.blip(tmp_path_factory.mktemp("tiny-blip"))


@pytest.fixture(scope="session")
def image_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for k in range(3):
        path = folder / f"{k}.png"
        Image.fromarray(rng.integers(0, 256, (40 + 8 * k, 48, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def distorted_template(tmp_path_factory) -> Path:
    """A small content-disjoint database of distorted scikit-image photographs (224 px, split by_content)."""
    pytest.importorskip("skimage")
    from aigciqa.datasets.distortions import build_distortion_folder
    root = tmp_path_factory.mktemp("distorted") / "db"
    build_distortion_folder(root, sources={"train": ["astronaut", "camera", "brick"], "val": ["clock"],
                                           "test": ["coffee", "rocket"]},
                            distortions={"blur": 1.0, "noise": 0.9})
    return root


@pytest.fixture
def distorted(distorted_template, tmp_path) -> Path:
    """A fresh copy of the distorted-photograph database for one test."""
    return Path(shutil.copytree(distorted_template, tmp_path / "db"))
