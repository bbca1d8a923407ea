"""What build-vqa reads from a database folder, checked and joined into one row per image.

The stage needs, per image: its prompt text, its MOS per perspective (mos.csv), its fine-grained
levels and explanations (labels.csv). Everything is read through :class:`DatabaseFolder`, which
already rejects levels outside the card's levels; this module adds the checks that only build-vqa
cares about (MOS inside the card's ``mos_range``, every image that gets pairs has a prompt).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aigciqa.database import DatabaseFolder
from aigciqa.database.card import card_value
from aigciqa.database.tables import TABLES, check_references
from aigciqa.errors import InputError


@dataclass
class VqaInputs:
    """The card and a table ``facts`` with one row per image that has MOS or labels.

    ``facts`` columns: ``image_id, img`` (file name), ``path, prompt_id, prompt``, ``{p}_mos`` for
    each perspective with MOS, one level column per card question (``Int64``, <NA> = missing) and
    one column per explanation (text, "" = none).
    """
    card: dict
    facts: pd.DataFrame
    perspectives: list[str] = field(default_factory=list)   # perspectives that have a MOS column
    questions: list[dict] = field(default_factory=list)     # card questions present in labels.csv

    @property
    def mos_range(self) -> tuple[float, float]:
        low, high = card_value(self.card, "mos_range")
        return float(low), float(high)


def load_inputs(folder: DatabaseFolder) -> VqaInputs:
    """Read and check everything build-vqa needs; raise one InputError for the first problem."""
    card = folder.read_card()
    for name in ("images", "prompts"):
        if not folder.has(name):
            raise InputError(f"{TABLES[name].filename} is missing: build-vqa needs the image list and "
                             "their prompts (made by 'aigciqa generate' or 'aigciqa import')", file=str(folder.root))
    if not folder.has("mos") and not folder.has("labels"):
        raise InputError("neither mos.csv nor labels.csv is present: run 'aigciqa build-mos' (or import a "
                         "published database) first", file=str(folder.root))
    images = folder.read_table("images", card)
    prompts = folder.read_table("prompts", card)
    mos = folder.read_table("mos", card) if folder.has("mos") else None
    labels = folder.read_table("labels", card) if folder.has("labels") else None
    check_references({"images": images, "prompts": prompts,
                      **({"mos": mos} if mos is not None else {}),
                      **({"labels": labels} if labels is not None else {})})

    perspectives: list[str] = []
    if mos is not None:
        low, high = card_value(card, "mos_range")
        for p in card["perspectives"]:
            values = mos[f"{p}_mos"].to_numpy(dtype=float)
            outside = (values < low) | (values > high)
            if outside.any():
                row = int(np.flatnonzero(outside)[0])
                raise InputError(f"MOS {values[row]:g} is outside the card's mos_range {low:g}-{high:g}",
                                 file=str(folder.table_path("mos")), row=row + 1, field=f"{p}_mos")
            perspectives.append(p)

    questions = [q for q in card["questions"] if labels is not None and q["name"] in labels.columns]

    ids = pd.Index([])
    if mos is not None:
        ids = ids.union(pd.Index(mos["image_id"]), sort=False)
    if labels is not None:
        ids = ids.union(pd.Index(labels["image_id"]), sort=False)
    # Keep images.csv order: it is the folder's own order (generator blocks, prompts, samples).
    chosen = images[images["image_id"].isin(set(ids))].copy()
    chosen["_row"] = chosen.index + 1
    prompt_text = dict(zip(prompts["prompt_id"], prompts["prompt"]))
    for row, image_id, prompt_id in zip(chosen["_row"], chosen["image_id"], chosen["prompt_id"]):
        if prompt_id == "":
            raise InputError(f"image '{image_id}' has no prompt_id: its correspondence pairs need the prompt",
                             file=str(folder.table_path("images")), row=int(row), field="prompt_id")
        if not str(prompt_text.get(prompt_id, "")).strip():
            raise InputError(f"prompt '{prompt_id}' of image '{image_id}' is empty",
                             file=str(folder.table_path("prompts")), field="prompt")
    facts = pd.DataFrame({
        "image_id": chosen["image_id"].to_numpy(),
        "img": [posixpath.basename(p) for p in chosen["path"]],
        "path": chosen["path"].to_numpy(),
        "prompt_id": chosen["prompt_id"].to_numpy(),
        "prompt": [prompt_text[p] for p in chosen["prompt_id"]],
    })
    if mos is not None:
        facts = facts.merge(mos[["image_id", *[f"{p}_mos" for p in perspectives]]], on="image_id", how="left")
    if labels is not None:
        columns = ["image_id"]
        for q in questions:
            columns.append(q["name"])
            if q.get("explanation") and q["explanation"] in labels.columns:
                columns.append(q["explanation"])
        facts = facts.merge(labels[columns], on="image_id", how="left")
    for q in questions:  # an image with MOS but no labels row: levels missing, explanations ""
        facts[q["name"]] = facts[q["name"]].astype("Int64")
        if q.get("explanation"):
            name = q["explanation"]
            facts[name] = facts[name].fillna("").astype(object) if name in facts.columns else ""
    return VqaInputs(card=card, facts=facts.reset_index(drop=True), perspectives=perspectives,
                     questions=questions)


def level_of(value) -> int | None:
    """A level cell as an int, or None where it is missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return int(value)
