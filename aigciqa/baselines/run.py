"""Scoring a database folder with a baseline, and evaluating the stored scores like a trained run.

A baseline run is a folder ``runs/baseline-<method>/`` of the database folder, laid out like a trained
run where it can be:
- ``config.json``: ``{"kind": "baseline", "method", "higher_is_better", "perspectives", "mos_range",
  "weights", "weights_source", ...}`` (``weights``: the model's repo id or path; ``weights_source``: per weights
  part the spec, repo id, revision, resolved commit and sha256 of every file; ridge adds ``preset``, ``split``
  and the chosen ``alpha`` per perspective);
- ``predictions.csv``: ``image_id``, ``score`` (the method's own output) and ``<perspective>_prediction``
  per perspective (oriented so that higher is better: NIQE and BRISQUE negated; ridge predicts MOS).
Both files are written together, atomically, through the database module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aigciqa.baselines.methods import Baseline
from aigciqa.database import DatabaseFolder
from aigciqa.database.folder import RUNS_DIR
from aigciqa.database.tables import read_csv_text, to_csv_text
from aigciqa.errors import InputError, read_json
from aigciqa.model.data import ModelData, check_targets, load_model_data

CONFIG_FILE = "config.json"
PREDICTIONS_FILE = "predictions.csv"
RUN_PREFIX = "baseline-"


@dataclass
class BaselineOptions:
    weights: dict[str, str] = field(default_factory=dict)  # {part: local path or Hub spec}; {} = the defaults
    split: str | None = None  # ridge: the splits.csv column whose train/val parts fit it
    preset: str = "small"  # ridge: whose image encoder gives the features
    batch_size: int = 8
    cpu: bool = False
    progress: bool = True
    run: str | None = None  # run folder name under runs/ (default baseline-<method>)
    fit_root: str | Path | None = None  # ridge: the folder whose split trains it (default: the scored folder)


def run_name(method: str) -> str:
    return RUN_PREFIX + method


def _device(cpu: bool) -> str:
    import importlib.util
    if cpu or importlib.util.find_spec("torch") is None:
        return "cpu"
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def score_folder(root, baseline: Baseline, options: BaselineOptions) -> Path:
    """Score every image of the folder with ``baseline`` and write its run; returns the run folder."""
    if baseline.learned and not options.split:
        raise InputError(f"baseline '{baseline.name}' is trained: give --split COLUMN (its train and val parts)")
    fit_data = None
    if baseline.learned:
        fit_data = load_model_data(options.fit_root or root, split=options.split, use_segments=False,
                                   need_parts=("train", "val"))
    data = (fit_data if fit_data is not None and options.fit_root is None else
            load_model_data(root, perspectives=fit_data.perspectives if fit_data else None, use_segments=False,
                            need_mos=False))
    config = {"kind": "baseline", "method": baseline.name, "description": baseline.description,
              "higher_is_better": baseline.higher_is_better, "perspectives": data.perspectives,
              "mos_range": list(data.mos_range), "weights": options.weights.get("model"),
              "weights_given": dict(sorted(options.weights.items()))}  # {} = the defaults; compared on reuse
    if baseline.learned:
        scores, predicted, extra = _ridge(fit_data, data, options)
        config.update(extra)
        if options.fit_root is not None:
            config["fitted_on"] = str(options.fit_root)
    else:
        scores, sources = _score_images(data, baseline, options)
        if sources:  # what the scores were made with, next to them
            config["weights"] = sources["model"].label
            config["weights_source"] = {part: resolved.record() for part, resolved in sources.items()}
        oriented = scores if baseline.higher_is_better else -scores
        predicted = np.repeat(oriented[:, None], len(data.perspectives), axis=1)
    frame = pd.DataFrame({"image_id": data.image_ids, "score": scores})
    for j, name in enumerate(data.perspectives):
        frame[f"{name}_prediction"] = predicted[:, j]
    run = f"{RUNS_DIR}/{options.run or run_name(baseline.name)}"
    DatabaseFolder(root).write(stage="baseline", files={
        f"{run}/{PREDICTIONS_FILE}": to_csv_text(frame),
        f"{run}/{CONFIG_FILE}": json.dumps(config, indent=2) + "\n"})
    return data.root / run


def _score_images(data: ModelData, baseline: Baseline, options: BaselineOptions) -> tuple[np.ndarray, dict]:
    """Scores of every image, and the resolved weights of the scorer ({} for NIQE and BRISQUE)."""
    scorer = baseline.scorer(options.weights, _device(options.cpu))
    starts = range(0, len(data.paths), options.batch_size)
    if options.progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc=baseline.name, unit="batch", leave=False)
    scores = []
    for start in starts:
        stop = start + options.batch_size
        scores.append(scorer.score(data.paths[start:stop], data.texts[start:stop] if baseline.needs_prompt else None))
    scores = np.concatenate(scores).astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(scores))
    if len(bad):
        raise InputError(f"{baseline.name} gave no finite score (constant image?)", file=str(data.paths[bad[0]]))
    return scores, getattr(scorer, "sources", {})


def _ridge(fit_data: ModelData, data: ModelData, options: BaselineOptions):
    """Fit on ``fit_data``'s train part (alpha by val SRCC) per perspective; predict every image of ``data``."""
    from aigciqa.baselines.ridge import encoder_features, fit_ridge
    train, val = fit_data.part("train"), fit_data.part("val")
    check_targets(fit_data, train, "train")
    check_targets(fit_data, val, "val")

    def features(of):
        return encoder_features(of, options.preset, weights=options.weights.get("model"), batch_size=options.batch_size * 2,
                                progress=options.progress)

    fit_features = features(fit_data)
    target_features = fit_features if data is fit_data else features(data)
    predicted, alphas = np.zeros((len(data.image_ids), len(data.perspectives))), {}
    for j, name in enumerate(data.perspectives):
        fit = fit_ridge(fit_features, fit_data.to_mos(fit_data.targets[:, j]), train, val)
        predicted[:, j], alphas[name] = fit.predict(target_features), fit.alpha
    return predicted.mean(1), predicted, {"preset": options.preset, "split": options.split, "alpha": alphas}


def read_baseline_run(run) -> tuple[dict, pd.DataFrame]:
    """(config, predictions) of a baseline run folder, checked."""
    run = Path(run)
    config_path, predictions_path = run / CONFIG_FILE, run / PREDICTIONS_FILE
    config = read_json(config_path, what="run config")
    if not isinstance(config, dict) or config.get("kind") != "baseline":
        raise InputError("not a baseline run (config.json has no \"kind\": \"baseline\")", file=str(config_path))
    frame = read_csv_text(predictions_path)
    columns = ["image_id", *[f"{p}_prediction" for p in config["perspectives"]]]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"column '{missing[0]}' is missing", file=str(predictions_path), field=missing[0])
    values = frame[columns[1:]].apply(pd.to_numeric, errors="coerce")
    bad = np.argwhere(~np.isfinite(values.to_numpy(dtype=float)))
    if len(bad):
        row, column = bad[0]
        raise InputError("not a finite number", file=str(predictions_path), row=int(row) + 1, field=columns[1 + column])
    frame[columns[1:]] = values
    return config, frame


def evaluate_baseline(run, root, *, split: str | None = None, part: str = "test") -> dict:
    """The metrics ``aigciqa evaluate`` reports for a trained run, for a baseline run's stored scores: per
    perspective and on average, and preference accuracy on pairs.csv when present."""
    from aigciqa.model.evaluate import prediction_metrics
    config, frame = read_baseline_run(run)
    if config.get("split") and not config.get("fitted_on") and split == config["split"] and part != "test":
        raise InputError(f"ridge was fitted on the train and val parts of '{split}': evaluate it on 'test'")
    data = load_model_data(root, perspectives=config["perspectives"], split=split, use_segments=False,
                           need_mos=False, need_parts=(part,) if split else ())
    rows = data.part(part) if split else np.arange(len(data.image_ids))
    position = {image_id: k for k, image_id in enumerate(frame["image_id"])}
    missing = [data.image_ids[r] for r in rows if data.image_ids[r] not in position]
    if missing:
        raise InputError(f"no prediction for image '{missing[0]}' (rerun 'aigciqa baseline')",
                         file=str(Path(run) / PREDICTIONS_FILE), field="image_id")
    columns = [f"{p}_prediction" for p in data.perspectives]
    predicted = frame[columns].to_numpy(dtype=float)[[position[data.image_ids[r]] for r in rows]]
    result: dict = {"run": str(run), "method": config["method"], "database": data.card["name"], "split": split,
                    "part": part if split else "all", "images": int(len(rows))}
    return {**result, **prediction_metrics(data, rows, predicted, part if split else "evaluated")}
