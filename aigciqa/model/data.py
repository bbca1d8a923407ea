"""What the model reads from a database folder, checked before any model is built (no torch here).

Images come from images.csv (paths relative to the folder), targets from mos.csv (``{p}_mos``,
normalised to 0-1 by the card's ``mos_range``), preference pairs from pairs.csv, parts from one
column of splits.csv, and the text from prompts.csv: the prompt, then (switchable, Table XIII) the
LLM-refined style, content and atmosphere columns when present.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aigciqa.database import DatabaseFolder
from aigciqa.database.card import card_value
from aigciqa.database.tables import TABLES, check_references
from aigciqa.errors import InputError

SEGMENT_COLUMNS = ("style", "content", "atmosphere")


@dataclass
class ModelData:
    """Everything training and evaluation need, indexed by image row."""
    root: Path
    card: dict
    perspectives: list[str]
    image_ids: list[str]
    paths: list[Path]
    texts: list[str]
    prompt_ids: list[str]
    targets: np.ndarray | None  # [images, perspectives], 0-1; None without mos.csv
    parts: np.ndarray | None  # the split column's value per image ("" = unused); None without a split
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)  # better, worse (row indices), perspective (index or -1)

    @property
    def mos_range(self) -> tuple[float, float]:
        lo, hi = card_value(self.card, "mos_range")
        return float(lo), float(hi)

    def to_mos(self, normalised: np.ndarray) -> np.ndarray:
        lo, hi = self.mos_range
        return lo + normalised * (hi - lo)

    def part(self, name: str) -> np.ndarray:
        """Row indices of one part of the split (train/val/test)."""
        if self.parts is None:
            return np.arange(len(self.image_ids))
        return np.flatnonzero(self.parts == name)


def compose_text(prompt: str, segments: dict[str, str], use_segments: bool) -> str:
    """The prompt followed by the non-empty refined segments (style, content, atmosphere)."""
    parts = [prompt.strip()]
    if use_segments:
        parts += [f"{name}: {segments[name].strip()}" for name in SEGMENT_COLUMNS if segments.get(name, "").strip()]
    return ". ".join(part for part in parts if part)


def image_prompts(folder: DatabaseFolder, card: dict, prompt_ids) -> list[tuple[str, dict[str, str]]]:
    """Per image (by its prompt id): its prompt and segments from prompts.csv; ("", {}) without a row."""
    if not folder.has("prompts"):
        return [("", {}) for _ in prompt_ids]
    prompts = folder.read_table("prompts", card).set_index("prompt_id")
    found = []
    for prompt_id in prompt_ids:
        if prompt_id not in prompts.index:
            found.append(("", {}))
            continue
        row = prompts.loc[prompt_id]
        found.append((str(row["prompt"]), {c: str(row[c]) for c in SEGMENT_COLUMNS if c in prompts.columns}))
    return found


def load_model_data(root: str | Path, *, perspectives: list[str] | None = None, split: str | None = None,
                    use_segments: bool = True, need_mos: bool = True, need_parts=("train",),
                    check_files: bool = True) -> ModelData:
    """Read and check what the model needs; raise InputError before anything heavy runs."""
    folder = DatabaseFolder(root)
    card = folder.read_card()
    if not folder.has("images"):
        raise InputError("images.csv is missing: the model needs images", file=str(folder.root))
    images = folder.read_table("images", card)
    if images.empty:
        raise InputError("no images listed", file=str(folder.table_path("images")))
    chosen = list(card["perspectives"]) if not perspectives else list(perspectives)
    for name in chosen:
        if name not in card["perspectives"]:
            raise InputError(f"perspective '{name}' is not in the card ({', '.join(card['perspectives'])})",
                             file=str(folder.root / "dataset.json"), field="perspectives")

    texts = [compose_text(prompt, segments, use_segments)
             for prompt, segments in image_prompts(folder, card, images["prompt_id"])]

    parts = None
    if split is not None:
        if not folder.has("splits"):
            raise InputError(f"splits.csv is missing (asked for split column '{split}')", file=str(folder.root))
        splits = folder.read_table("splits", card)
        if split not in splits.columns or split == "image_id":
            columns = [c for c in splits.columns if c != "image_id"]
            raise InputError(f"no split column '{split}' (columns: {', '.join(columns)})",
                             file=str(folder.table_path("splits")), field=split)
        by_id = dict(zip(splits["image_id"], splits[split]))
        parts = np.array([by_id.get(i, "") for i in images["image_id"]], dtype=object)
        for name in need_parts:
            if not (parts == name).any():
                raise InputError(f"split column '{split}' has no '{name}' images",
                                 file=str(folder.table_path("splits")), field=split)

    # The ids of mos.csv, splits.csv and pairs.csv must be in images.csv: the check `info` makes, so a
    # bad id is named by file and record here too, not found later as an image without a MOS.
    linked = {name: folder.read_table(name, card) for name in ("mos", "pairs") if folder.has(name)}
    check_references({"images": images, **linked, **({"splits": splits} if split is not None else {})})

    targets = None
    if "mos" in linked:
        mos = linked["mos"].set_index("image_id")
        lo, hi = card_value(card, "mos_range")
        if not math.isfinite(float(hi) - float(lo)):  # the 0-1 targets would be NaN or 0
            raise InputError(f"mos_range [{lo}, {hi}] is too wide to compute with (its width overflows)",
                             file=str(folder.root / "dataset.json"), field="mos_range")
        targets = np.full((len(images), len(chosen)), np.nan)
        for j, name in enumerate(chosen):
            column = mos[f"{name}_mos"]
            targets[:, j] = [(column.get(i, np.nan) - lo) / (hi - lo) for i in images["image_id"]]
    elif need_mos:
        raise InputError("mos.csv is missing (run 'aigciqa build-mos' or train on pairs with --loss pairwise)",
                         file=str(folder.root))

    index = {image_id: i for i, image_id in enumerate(images["image_id"])}
    pairs = pd.DataFrame({"better": pd.Series(dtype=int), "worse": pd.Series(dtype=int),
                          "perspective": pd.Series(dtype=int)})
    if "pairs" in linked:
        table = linked["pairs"]
        perspective = (table["perspective"] if "perspective" in table.columns
                       else pd.Series([""] * len(table), dtype=object))
        keep = perspective.isin(["", *chosen]).to_numpy()
        pairs = pd.DataFrame({
            "better": [index[i] for i in table["better_image_id"][keep]],
            "worse": [index[i] for i in table["worse_image_id"][keep]],
            "perspective": [chosen.index(p) if p else -1 for p in perspective[keep]]})

    data = ModelData(root=folder.root, card=card, perspectives=chosen, image_ids=list(images["image_id"]),
                     paths=[folder.path(p) for p in images["path"]], texts=texts,
                     prompt_ids=list(images["prompt_id"]), targets=targets, parts=parts, pairs=pairs)
    if check_files:
        used = np.ones(len(images), bool) if parts is None else parts != ""
        for row in np.flatnonzero(used):
            if not data.paths[row].is_file():
                raise InputError(f"image file not found on disk: {data.paths[row]}",
                                 file=str(folder.table_path("images")), row=int(row) + 1, field="path")
    return data


def check_targets(data: ModelData, rows: np.ndarray, part: str) -> None:
    """Every image used for L1/CE training or evaluation needs a MOS for each chosen perspective."""
    if data.targets is None:
        raise InputError("mos.csv is missing", file=str(data.root))
    missing = np.isnan(data.targets[rows])
    if missing.any():
        r, c = np.argwhere(missing)[0]
        image_id = data.image_ids[rows[r]]
        raise InputError(f"no MOS for image '{image_id}' ({part} part), perspective '{data.perspectives[c]}'",
                         file=str(data.root / TABLES["mos"].filename), field=f"{data.perspectives[c]}_mos")


def ranking_pairs(data: ModelData, rows: np.ndarray) -> pd.DataFrame:
    """Rankings expanded to all untied pairs: within each prompt and perspective, every pair of images
    whose MOS differ (used by the pairwise loss when the folder has no pairs.csv)."""
    records = []
    by_prompt: dict[str, list[int]] = {}
    for row in rows:
        by_prompt.setdefault(data.prompt_ids[row] or data.image_ids[row], []).append(int(row))
    for members in by_prompt.values():
        for a_pos, a in enumerate(members):
            for b in members[a_pos + 1:]:
                for j in range(len(data.perspectives)):
                    ta, tb = data.targets[a, j], data.targets[b, j]
                    if np.isnan(ta) or np.isnan(tb) or ta == tb:
                        continue
                    records.append((a, b, j) if ta > tb else (b, a, j))
    return pd.DataFrame(records, columns=["better", "worse", "perspective"]).astype(int)


def load_pixels(path: Path, size: int, mean, std) -> np.ndarray:
    """One image as a normalised float32 [3, size, size] array (RGB, bicubic resize). ``path`` comes from
    :func:`load_model_data` (resolved inside the folder); the image is decoded by the database layer's
    reader: a regular file, its size checked against the pixel cap before any pixel is decoded."""
    from PIL import Image
    from aigciqa.database.images import open_image
    image = open_image(path).resize((size, size), Image.Resampling.BICUBIC)
    array = np.asarray(image, dtype=np.float32) / 255.0
    array = (array - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(array.transpose(2, 0, 1))
