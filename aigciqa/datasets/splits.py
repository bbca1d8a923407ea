"""Train/val/test splits of a database, stored as columns of ``splits.csv``.

A split column holds ``train``, ``val`` or ``test`` for every image (or "" where an image takes no
part). Two kinds are made here, each seeded and repeatable:

* **by prompt** (column ``prompt_s<seed>``, the default): prompts are split and every image goes
  to its prompt's part, so no prompt is in two parts; stratified by the prompt's category when the
  prompts table has one.
* **by image** (column ``image_s<seed>``): images are split at random, as the AIGCIQA2023 authors
  did; most prompts then have images in every part (see :func:`authors_split_facts`).

A database's own split, when it has one, is stored by its importer under the column ``official``.
The column of repeat ``k`` made with base seed ``S`` is named after its own seed ``S + k`` and
depends only on (kind, seed, ratios, the set of images and prompts): not on the row order of
``images.csv``, and not on how many repeats were asked for.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from aigciqa.database.tables import SPLIT_VALUES, TABLES
from aigciqa.errors import InputError

PARTS = SPLIT_VALUES  # ("train", "val", "test")
DEFAULT_RATIOS = (0.7, 0.1, 0.2)
SPLIT_KINDS = ("prompt", "image")
OFFICIAL_COLUMN = "official"
_RATIO_TOLERANCE = 1e-6

# What the AIGCIQA2023 authors' own split is, checked against their published training files.
_MINT_IQA_COMMIT = "280cc8fa06e09a969938dc1a10d320bddf0827af"
_AUTHORS_SPLIT_FACTS = {
    "database": "AIGCIQA2023 / AIGCIQA2023+",
    "unit": "image",
    "parts": ["train", "test"],
    "test_share": "about 20% of the 2400 images (no validation part)",
    "prompt_leakage": (
        "the same prompt has images in both parts: e.g. 'a corgi' (prompt 0) has 0.png, 1.png and "
        "3.png in the training file and 2.png in the test file; prompts 1, 2 and 8 likewise"),
    "why_it_matters": (
        "with 24 images per prompt, a random 80/20 image split leaves a prompt wholly in one part "
        "with probability 0.8**24 + 0.2**24 = 0.005, so almost every test prompt (its content, its "
        "text) was seen in training: scores measure generalisation to new images of known prompts, "
        "not to new prompts"),
    "sources": [
        f"https://github.com/IntMeGroup/MINT-IQA/blob/{_MINT_IQA_COMMIT}/mytraindict_llm.json",
        f"https://github.com/IntMeGroup/MINT-IQA/blob/{_MINT_IQA_COMMIT}/mytestdict_llm.json",
    ],
    "offered_here": ["by prompt (no prompt in two parts): aigciqa split DIR --by prompt",
                     "by image (the authors' kind): aigciqa split DIR --by image --ratios 0.8,0.2"],
}


def authors_split_facts() -> dict:
    """What the AIGCIQA2023 authors' own train/test split is and why it leaks prompts (with sources)."""
    return {key: (list(value) if isinstance(value, list) else value)
            for key, value in _AUTHORS_SPLIT_FACTS.items()}


# ---- ratios and names -------------------------------------------------------------------------
def parse_ratios(text: str | Sequence[float]) -> tuple[float, float, float]:
    """``"0.7,0.1,0.2"`` -> (train, val, test); two numbers mean train and test with no val part.

    The ratios must be non-negative, sum to 1, and give train and test a share.
    """
    if isinstance(text, str):
        pieces = [piece.strip() for piece in text.split(",")]
        try:
            values = [float(piece) for piece in pieces]
        except ValueError:
            raise InputError(f"ratios '{text}' must be numbers separated by commas, e.g. 0.7,0.1,0.2",
                             field="ratios") from None
    else:
        values = [float(value) for value in text]
    if len(values) == 2:
        values = [values[0], 0.0, values[1]]
    if len(values) != 3:
        raise InputError(f"give 3 ratios (train,val,test) or 2 (train,test), not {len(values)}", field="ratios")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise InputError(f"ratios {values} must be finite and not negative", field="ratios")
    if abs(sum(values) - 1) > _RATIO_TOLERANCE:
        raise InputError(f"ratios {values} must sum to 1 (they sum to {sum(values):g})", field="ratios")
    if values[0] == 0 or values[2] == 0:
        raise InputError("train and test need a share above 0", field="ratios")
    return values[0], values[1], values[2]


def split_column_name(by: str, seed: int) -> str:
    """The column of one split: ``prompt_s3`` = by prompt with seed 3."""
    if by not in SPLIT_KINDS:
        raise InputError(f"unknown split kind '{by}' (kinds: {', '.join(SPLIT_KINDS)})", field="by")
    return f"{by}_s{seed}"


def part_sizes(n_units: int, ratios: Sequence[float], unit: str = "unit", field: str | None = None) -> dict[str, int]:
    """How many units each part gets: largest-remainder rounding, at least one per part with a share.
    ``unit`` and ``field`` (the images.csv column the units come from) name them in the error."""
    ratios = parse_ratios(ratios)
    wanted = [r > 0 for r in ratios]
    if n_units < sum(wanted):
        names = ", ".join(part for part, w in zip(PARTS, wanted) if w)
        raise InputError(f"{n_units} {unit}(s) cannot fill {names}: each part needs at least one {unit} (fewer "
                         "parts with --ratios, or a database with more)",
                         file=TABLES["images"].filename if field else None, field=field)
    exact = np.array(ratios) * n_units
    sizes = np.floor(exact).astype(int)
    # Largest remainders first; ties go to the earlier part (train, then val, then test).
    for index in sorted(range(3), key=lambda i: (-(exact[i] - sizes[i]), i))[: n_units - sizes.sum()]:
        sizes[index] += 1
    for index in range(3):  # a part with a share never ends up empty: take from the largest part
        if wanted[index] and sizes[index] == 0:
            sizes[int(np.argmax(sizes))] -= 1
            sizes[index] = 1
    return dict(zip(PARTS, (int(s) for s in sizes)))


# ---- the core: units -> parts -----------------------------------------------------------------
def assign_parts(units: Iterable[str], ratios: Sequence[float], seed: int,
                 strata: Mapping[str, str] | None = None, *, unit: str = "unit",
                 field: str | None = None) -> dict[str, str]:
    """Give each unit (a prompt id or an image id) a part; seeded and independent of input order.

    Part sizes follow the ratios exactly (see :func:`part_sizes`). With ``strata`` (unit -> group,
    e.g. a prompt's category) each group is spread evenly over the parts: the units of a group are
    shuffled and placed at evenly spaced positions (random offset) on [0, 1); all units are then
    ordered by position and cut into train, val and test. So every group keeps about the ratios
    while the totals stay exact (systematic stratified sampling).
    """
    if seed < 0:
        raise InputError(f"seed {seed} must not be negative", field="seed")
    units = sorted(set(units))
    sizes = part_sizes(len(units), ratios, unit, field)
    rng = np.random.default_rng(seed)
    groups: dict[str, list[str]] = {}
    for unit in units:
        groups.setdefault(strata.get(unit, "") if strata else "", []).append(unit)
    position: dict[str, float] = {}
    for name in sorted(groups):
        members = [groups[name][i] for i in rng.permutation(len(groups[name]))]
        offset = rng.random()
        for rank, unit in enumerate(members):
            position[unit] = (rank + offset) / len(members)
    tie_break = dict(zip(units, rng.permutation(len(units))))
    ordered = sorted(units, key=lambda unit: (position[unit], tie_break[unit]))
    parts: dict[str, str] = {}
    start = 0
    for part in PARTS:
        for unit in ordered[start: start + sizes[part]]:
            parts[unit] = part
        start += sizes[part]
    return parts


def _image_prompts(images: pd.DataFrame, file: str = "images.csv") -> pd.Series:
    """The prompt of every image; an image without one cannot be split by prompt."""
    if "prompt_id" not in images.columns:
        raise InputError("images have no prompt_id column: split them by image (--by image)",
                         file=file, field="prompt_id")
    prompt_ids = images["prompt_id"].astype(object).map(lambda v: "" if v is None or v is pd.NA else str(v))
    missing = (prompt_ids == "").to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0]) + 1
        raise InputError(f"{int(missing.sum())} image(s) have no prompt_id, so they cannot be split by "
                         "prompt: split by image (--by image)", file=file, row=row, field="prompt_id")
    return prompt_ids


def _categories(prompts: pd.DataFrame | None) -> dict[str, str] | None:
    if prompts is None or "category" not in prompts.columns:
        return None
    categories = dict(zip(prompts["prompt_id"].astype(str), prompts["category"].fillna("").astype(str)))
    return categories if any(categories.values()) else None


def split_by_prompt(images: pd.DataFrame, prompts: pd.DataFrame | None = None, *, seed: int = 0,
                    ratios: Sequence[float] = DEFAULT_RATIOS, stratify: bool = True) -> pd.Series:
    """One split column by prompt: every image of a prompt in its prompt's part.

    Ratios count prompts (equal to image ratios when every prompt has as many images). With
    ``stratify`` and a prompts table that has categories, each category is spread over the parts.
    Returns the parts aligned with ``images`` rows, named by :func:`split_column_name`.
    """
    prompt_ids = _image_prompts(images)
    strata = _categories(prompts) if stratify else None
    parts = assign_parts(prompt_ids, ratios, seed, strata, unit="prompt", field="prompt_id")
    return pd.Series(prompt_ids.map(parts).to_numpy(), index=images.index, dtype=object,
                     name=split_column_name("prompt", seed))


def split_by_image(images: pd.DataFrame, *, seed: int = 0,
                   ratios: Sequence[float] = DEFAULT_RATIOS) -> pd.Series:
    """One split column at random by image (prompts end up in several parts)."""
    image_ids = images["image_id"].astype(str)
    parts = assign_parts(image_ids, ratios, seed, unit="image", field="image_id")
    return pd.Series(image_ids.map(parts).to_numpy(), index=images.index, dtype=object,
                     name=split_column_name("image", seed))


def make_splits(images: pd.DataFrame, prompts: pd.DataFrame | None = None, *, by: str = "prompt",
                repeats: int = 1, seed: int = 0, ratios: Sequence[float] = DEFAULT_RATIOS) -> pd.DataFrame:
    """``image_id`` + one column per repeat, seeds ``seed .. seed + repeats - 1``, in images' row order."""
    split_column_name(by, seed)  # checks the kind
    if repeats < 1:
        raise InputError(f"repeats {repeats} must be at least 1", field="repeats")
    ratios = parse_ratios(ratios)
    columns = {"image_id": images["image_id"].astype(str).to_numpy()}
    for repeat_seed in range(seed, seed + repeats):
        column = (split_by_prompt(images, prompts, seed=repeat_seed, ratios=ratios) if by == "prompt"
                  else split_by_image(images, seed=repeat_seed, ratios=ratios))
        columns[column.name] = column.to_numpy()
    return pd.DataFrame(columns)


def merge_split_columns(existing: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Add ``new``'s columns to an existing splits table; a column of the same name is replaced.

    Rows follow ``new`` (every image); the other columns keep their values ("" for images they did
    not cover). Rows of ``existing`` whose image is not in ``new`` are kept at the end, so writing
    the table reports them (their image_id is not in images.csv) instead of dropping them silently.
    """
    if existing is None or existing.empty:
        return new.reset_index(drop=True)
    old = existing.set_index(existing["image_id"].astype(str))
    merged = new.reset_index(drop=True).copy()
    kept = [c for c in existing.columns if c != "image_id" and c not in new.columns]
    for column in kept:
        merged[column] = merged["image_id"].map(old[column]).fillna("").astype(object)
    orphans = existing[~existing["image_id"].astype(str).isin(set(merged["image_id"]))]
    if len(orphans):
        merged = pd.concat([merged, orphans.reindex(columns=merged.columns, fill_value="")], ignore_index=True)
    # Existing columns keep their place (a replaced one too); new ones follow.
    order = [c for c in existing.columns if c != "image_id"]
    order += [c for c in new.columns if c != "image_id" and c not in order]
    return merged[["image_id", *order]]


# ---- what a split holds -----------------------------------------------------------------------
def prompts_in_several_parts(images: pd.DataFrame, column: pd.Series) -> list[str]:
    """Prompt ids whose images lie in more than one part of a split column (aligned with images)."""
    frame = pd.DataFrame({"prompt_id": images["prompt_id"].astype(object).to_numpy(),
                          "part": column.astype(object).to_numpy()})
    frame = frame[(frame["part"] != "") & frame["prompt_id"].notna() & (frame["prompt_id"] != "")]
    counts = frame.groupby("prompt_id")["part"].nunique()
    return sorted(counts.index[counts > 1].astype(str))


def summarize_splits(images: pd.DataFrame, splits: pd.DataFrame,
                     columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Per split column: images and prompts in each part, and prompts found in several parts."""
    has_prompts = "prompt_id" in images.columns and bool(
        images["prompt_id"].astype(object).map(lambda v: isinstance(v, str) and v != "").any())
    aligned = images[["image_id"] + (["prompt_id"] if has_prompts else [])].astype(object).merge(
        splits.astype(object), on="image_id", how="left").fillna("")
    rows = []
    for column in columns or [c for c in splits.columns if c != "image_id"]:
        row: dict = {"column": column}
        for part in PARTS:
            in_part = aligned[column] == part
            row[f"{part}_images"] = int(in_part.sum())
            if has_prompts:
                prompt_ids = aligned.loc[in_part, "prompt_id"]
                row[f"{part}_prompts"] = int(prompt_ids[prompt_ids != ""].nunique())
        row["prompts_in_several_parts"] = (len(prompts_in_several_parts(aligned, aligned[column]))
                                           if has_prompts else None)
        rows.append(row)
    return pd.DataFrame(rows)


def format_summary(summary: pd.DataFrame) -> str:
    lines = []
    for row in summary.to_dict("records"):
        parts = []
        for part in PARTS:
            text = f"{part} {row[f'{part}_images']} images"
            if f"{part}_prompts" in row:
                text += f" / {row[f'{part}_prompts']} prompts"
            parts.append(text)
        leak = row["prompts_in_several_parts"]
        leak_text = "" if leak is None else f"; prompts in several parts: {leak}"
        lines.append(f"{row['column']}: " + ", ".join(parts) + leak_text)
    return "\n".join(lines)


# ---- demo -------------------------------------------------------------------------------------
