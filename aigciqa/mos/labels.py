"""Fine-grained labels: one level per image and question from every subject's answers.

The level is the most frequent answer. A tie goes to the WORSE level (the lower code): a defect that
as many subjects reported as not is kept rather than hidden. Explanations are gathered, each
distinct non-empty text once, in the order of the answers, joined by ``EXPLANATION_SEPARATOR``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EXPLANATION_SEPARATOR = " | "


def vote_columns(question: str, n_levels: int) -> list[str]:
    return [f"{question}_n{level}" for level in range(1, n_levels + 1)]


def build_labels(answers: pd.DataFrame, card: dict, images: list[str] | None = None) -> pd.DataFrame:
    """labels.csv: ``image_id``, per question its level, ``<question>_n<k>`` answer counts per level,
    and the question's explanation column (when the card names one)."""
    if images is None:
        images = list(pd.unique(answers["image_id"]))
    else:
        answered = set(answers["image_id"])
        images = [i for i in images if i in answered]
    index = pd.Index(images, name="image_id")
    columns: dict[str, object] = {"image_id": np.asarray(images, dtype=object)}
    for question in card["questions"]:
        name, n_levels = question["name"], len(question["levels"])
        part = answers[answers["question"] == name]
        given = part[part["level"].notna()]
        counts = pd.crosstab(given["image_id"], given["level"].astype(int))
        counts = counts.reindex(index=index, columns=range(1, n_levels + 1), fill_value=0)
        votes = counts.to_numpy()
        # argmax returns the first maximum = the lowest (worst) level among the tied ones.
        level = votes.argmax(axis=1) + 1
        columns[name] = pd.array(np.where(votes.sum(axis=1) > 0, level, 0), dtype="Int64")
        columns[name][votes.sum(axis=1) == 0] = pd.NA
        for column, k in zip(vote_columns(name, n_levels), range(n_levels)):
            columns[column] = votes[:, k]
        if question.get("explanation"):
            texts = part[part["explanation"].str.strip() != ""]
            gathered = (texts.drop_duplicates(["image_id", "explanation"])
                        .groupby("image_id", sort=False)["explanation"]
                        .agg(lambda values: EXPLANATION_SEPARATOR.join(v.strip() for v in values)))
            columns[question["explanation"]] = gathered.reindex(index, fill_value="").to_numpy(dtype=object)
    return pd.DataFrame(columns)


def level_distribution(labels: pd.DataFrame, card: dict, by: pd.Series | None = None) -> dict:
    """Share of images at each level per question (overall, or per group of ``by`` aligned to labels)."""
    result: dict = {}
    for question in card["questions"]:
        name, n_levels = question["name"], len(question["levels"])
        if name not in labels.columns:
            continue
        levels = labels[name]
        groups = {"all": levels} if by is None else {g: levels[by.to_numpy() == g] for g in pd.unique(by)}
        result[name] = {}
        for group, values in groups.items():
            values = values.dropna().astype(int)
            counts = np.bincount(values.to_numpy(), minlength=n_levels + 1)[1:]
            result[name][str(group)] = (counts / max(counts.sum(), 1)).tolist()
    return result
