"""Evaluation of a trained run on a database folder (its own or another: cross-database, Table IX) and
scoring of loose image files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aigciqa.errors import InputError
from aigciqa.model import runs
from aigciqa.model.data import check_targets, load_model_data
from aigciqa.model.inference import (PixelCache, check_image_files, image_files_data, pick_device, predict_rows,
                                     rows_metrics)
from aigciqa.model.metrics import preference_accuracy
from aigciqa.model.stages import load_run


def evaluate_run(run: str | Path, root: str | Path, *, split: str | None = None, part: str = "test",
                 batch_size: int = 8, cpu: bool = False, progress: bool = False) -> dict:
    """Metrics per perspective (and their average), plus preference accuracy on pairs.csv when present.

    Without ``split`` every image of the folder is evaluated (a cross-database test).
    """
    config = runs.read_config(Path(run))
    data = load_model_data(root, perspectives=config["perspectives"], split=split,
                           use_segments=config.get("segments", True), need_mos=False, need_parts=(part,) if split else ())
    rows = data.part(part) if split else np.arange(len(data.image_ids))
    model, tokenizer, preset, _ = load_run(run, device=pick_device(cpu))
    predicted = predict_rows(model, tokenizer, preset, data, rows, batch_size, pick_device(cpu), show_progress=progress,
                             features=_cached(model, preset, data, data.root, cpu))
    result: dict = {"run": str(run), "database": data.card["name"], "split": split, "part": part if split else "all",
                    "images": int(len(rows))}
    return {**result, **prediction_metrics(data, rows, predicted, part if split else "evaluated")}


def prediction_metrics(data, rows, predicted: np.ndarray, what: str) -> dict:
    """What ``aigciqa evaluate`` reports for predictions of ``rows`` (one column per perspective), whoever
    made them (a trained run or a baseline): metrics per perspective and on average against mos.csv, and
    preference accuracy on pairs.csv (a pair of any perspective, -1, is judged on the first)."""
    result: dict = {}
    if data.targets is not None:
        check_targets(data, rows, what)
        result["metrics"] = rows_metrics(data, rows, predicted)
    if not data.pairs.empty:
        position = {int(r): k for k, r in enumerate(rows)}
        pairs = data.pairs[data.pairs["better"].isin(position) & data.pairs["worse"].isin(position)]
        if len(pairs):
            b = np.array([position[int(i)] for i in pairs["better"]])
            w = np.array([position[int(i)] for i in pairs["worse"]])
            column = np.where(pairs["perspective"].to_numpy() < 0, 0, pairs["perspective"].to_numpy())
            result["preference_accuracy"] = preference_accuracy(predicted[b, column], predicted[w, column])
            result["pairs"] = int(len(pairs))
    if not result:
        raise InputError("nothing to evaluate against: the folder has neither mos.csv nor pairs.csv",
                         file=str(data.root))
    return result


def score_images(run: str | Path, images: list[str | Path], prompt: str, *, batch_size: int = 8,
                 cpu: bool = False, progress: bool = True) -> tuple[list[str], np.ndarray]:
    """Scores per perspective (MOS scale of the run's training data) for image files and one prompt."""
    check_image_files(images)
    model, tokenizer, preset, config = load_run(run, device=pick_device(cpu))
    data = image_files_data(images, prompt, config)
    # Images of the run's own database folder (found by content) come from its boundary cache.
    database = Path(run).resolve().parent.parent
    predicted = predict_rows(model, tokenizer, preset, data, np.arange(len(images)), batch_size, pick_device(cpu),
                             show_progress=progress, features=_cached(model, preset, data, database, cpu))
    return config["perspectives"], predicted


def _cached(model, preset, data, root: Path, cpu: bool):
    """Read-only use of a folder's boundary cache (images it lacks are computed, not stored)."""
    from aigciqa.model.boundary_cache import frozen_inputs
    return frozen_inputs(model, PixelCache(data, preset), pick_device(cpu), root=root, preset=preset)
