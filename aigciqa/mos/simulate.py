"""A SIMULATED rating panel, for demos and tests: never real data (cards using it say ``synthetic``).

Model (per perspective): score = round(true_score[image] + bias[subject] + noise), noise ~ N(0,
inconsistency[subject]), clipped to the card's scale and rounded to its integer steps. The true
score of an image mixes a generator effect, a prompt effect and the image's own part. A few planted
outlier subjects ignore the image and answer uniformly at random: the inattentive raters that
BT.500 screening is meant to catch. Fine-grained answers follow the image's true quality with
per-subject noise; explanations are short template texts, marked as simulated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SIMULATED_EXPLANATIONS = {
    "distortion": ["simulated: distorted hands", "simulated: warped face", "simulated: bent straight lines"],
    "consistency": ["simulated: object missing from the prompt", "simulated: wrong colour",
                    "simulated: wrong number of objects"],
}


def simulate_panel(images: pd.DataFrame, card: dict, *, n_subjects: int = 24, n_outliers: int = 3,
                   seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Simulate ``n_subjects`` subjects (the last ``n_outliers`` of them random raters) rating every image.

    Returns ``(ratings, answers, truth)``: ``ratings`` in ratings.csv's columns (subject_id, image_id,
    perspective, score), ``answers`` in answers.csv's (subject_id, image_id, question, level,
    explanation) and ``truth`` = {"true_scores": DataFrame image_id x perspective, "outliers": [ids],
    "bias": {subject: b}, "inconsistency": {subject: s}, "true_levels": DataFrame image_id x question,
    "simulated": True}.
    """
    if not 0 <= n_outliers < n_subjects:
        raise ValueError("need 0 <= n_outliers < n_subjects")
    rng = np.random.default_rng(seed)
    lo, hi = float(card["scale"]["min"]), float(card["scale"]["max"])
    span = hi - lo
    image_ids = images["image_id"].astype(str).to_numpy()
    n_images = len(image_ids)
    subjects = np.array([f"sim{k + 1:02d}" for k in range(n_subjects)], dtype=object)
    outliers = subjects[n_subjects - n_outliers:]
    bias = rng.normal(0.0, 0.08 * span, n_subjects)
    inconsistency = rng.uniform(0.05, 0.12, n_subjects) * span

    def effect(column: str, scale: float) -> np.ndarray:
        if column not in images.columns:
            return np.zeros(n_images)
        codes, uniques = pd.factorize(images[column].astype(str))
        return rng.normal(0.0, scale, len(uniques))[codes]

    latent = effect("generator", 0.5) + effect("prompt_id", 0.35) + rng.normal(0.0, 0.5, n_images)
    true_scores = {}
    rows = []
    for perspective in card["perspectives"]:
        own = latent + rng.normal(0.0, 0.35, n_images)           # perspectives agree only in part
        true = lo + span * (0.5 + 0.18 * (own - own.mean()) / max(own.std(), 1e-9))
        true = np.clip(true, lo + 0.1 * span, hi - 0.1 * span)
        true_scores[perspective] = true
        noise = rng.normal(0.0, 1.0, (n_subjects, n_images)) * inconsistency[:, None]
        scores = true[None, :] + bias[:, None] + noise
        random_raters = np.isin(subjects, outliers)
        scores[random_raters] = rng.uniform(lo, hi, (random_raters.sum(), n_images))
        scores = np.clip(np.round(scores), np.ceil(lo), np.floor(hi))
        rows.append(pd.DataFrame({"subject_id": np.repeat(subjects, n_images),
                                  "image_id": np.tile(image_ids, n_subjects),
                                  "perspective": perspective, "score": scores.ravel()}))
    ratings = pd.concat(rows, ignore_index=True)

    standard = (latent - latent.mean()) / max(latent.std(), 1e-9)
    true_levels = {}
    answer_rows = []
    for question in card["questions"]:
        n_levels = len(question["levels"])
        true_level = np.clip(np.round((n_levels + 1) / 2 + standard * n_levels / 4), 1, n_levels).astype(int)
        true_levels[question["name"]] = true_level
        noisy = true_level[None, :] + rng.normal(0.0, 0.6, (n_subjects, n_images))
        noisy[np.isin(subjects, outliers)] = rng.integers(1, n_levels + 1, (len(outliers), n_images))
        levels = np.clip(np.round(noisy), 1, n_levels).astype(int)
        texts = SIMULATED_EXPLANATIONS.get(question["name"], ["simulated: see the image"])
        explanation = np.where((levels < n_levels) & bool(question.get("explanation")),
                               np.asarray(texts, dtype=object)[rng.integers(0, len(texts), levels.shape)], "")
        answer_rows.append(pd.DataFrame({"subject_id": np.repeat(subjects, n_images),
                                         "image_id": np.tile(image_ids, n_subjects),
                                         "question": question["name"], "level": levels.ravel(),
                                         "explanation": explanation.ravel()}))
    answers = (pd.concat(answer_rows, ignore_index=True) if answer_rows else
               pd.DataFrame(columns=["subject_id", "image_id", "question", "level", "explanation"]))
    truth = {"simulated": True,
             "true_scores": pd.DataFrame({"image_id": image_ids, **true_scores}),
             "outliers": [str(s) for s in outliers],
             "bias": dict(zip(map(str, subjects), bias.tolist())),
             "inconsistency": dict(zip(map(str, subjects), inconsistency.tolist())),
             "true_levels": pd.DataFrame({"image_id": image_ids, **true_levels})}
    return ratings, answers, truth
