"""Interop with Netflix's sureal: a ratings table as a sureal dataset (JSON), to run sureal's models.

sureal reads such a file with ``sureal.tools.misc.import_json_file`` and ``RawDatasetReader``. Scores
are written in the sparse dict form ``os = {subject_id: score}`` (a list when a subject repeated the
image), so sparse designs and repetitions survive. There is no reference video: every image is a
distorted stimulus of one pseudo content (content_id 0). ``asset_id`` keeps the image id.
"""

from __future__ import annotations

import json

import pandas as pd

from aigciqa.errors import InputError

NO_REFERENCE_PATH = "[no reference]"


def to_sureal_dataset(ratings: pd.DataFrame, perspective: str, *, name: str = "aigciqa",
                      scale: tuple[float, float] | None = None) -> dict:
    """The sureal dataset of one perspective of a long ratings table."""
    part = ratings[ratings["perspective"] == perspective]
    if part.empty:
        known = ", ".join(pd.unique(ratings["perspective"]))
        raise InputError(f"no ratings of perspective '{perspective}' (present: {known})", field="perspective")
    videos = []
    for image, group in part.groupby("image_id", sort=False):
        scores: dict[str, object] = {}
        for subject, values in group.groupby("subject_id", sort=False)["score"]:
            numbers = [float(v) for v in values]
            scores[str(subject)] = numbers[0] if len(numbers) == 1 else numbers
        videos.append({"asset_id": str(image), "content_id": 0, "path": str(image), "os": scores})
    dataset = {"dataset_name": name, "perspective": perspective,
               "ref_videos": [{"content_id": 0, "content_name": "none", "path": NO_REFERENCE_PATH}],
               "dis_videos": videos}
    if scale is not None:
        dataset["ref_score"] = float(scale[1])
    return dataset


def dumps_sureal(dataset: dict) -> str:
    return json.dumps(dataset, indent=1, ensure_ascii=False) + "\n"
