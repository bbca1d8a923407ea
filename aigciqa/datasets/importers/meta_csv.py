"""A classic IQA database described pyiqa-style (image name, MOS, std, split columns) -> images, mos, splits.

pyiqa ships one metadata CSV per database (``meta_info_<Name>Dataset.csv``). No-reference ones
list ``img_name, mos[, std][, split...]``; full-reference ones list ``ref_name, dist_name, mos|dmos[, std]``.
A preset names the usual columns, the MOS range and the split coding of one database; every
option can also be given (or overridden) on its own. One perspective, ``quality``; a full-reference
database keeps its reference image name in ``images.csv`` column ``ref_name``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from aigciqa.common.files import file_sha256
from aigciqa.database import SPLIT_VALUES, default_card
from aigciqa.database.tables import check_relative_path
from aigciqa.datasets.importers.base import ImportResult, Importer
from aigciqa.datasets.importers.source import (check_not_empty, check_range, check_unique, numbers, read_csv,
                                               require_file, slug)
from aigciqa.errors import InputError
from aigciqa.registry import lookup

PERSPECTIVE = "quality"
IDENTITY_SPLITS = {value: value for value in SPLIT_VALUES}


@dataclass(frozen=True)
class Preset:
    """How one database's metadata CSV is laid out. Column fields list accepted names, first found wins."""
    title: str
    name_column: tuple[str, ...]
    mos_column: tuple[str, ...]
    mos_range: tuple[float, float]
    scale: tuple[float, float] | None = None           # raw rating scale; None = the MOS range
    std_column: tuple[str, ...] = ()
    std_scale: str = "mos"                              # "mos": std in MOS units; "raw": on the raw scale
    ref_column: tuple[str, ...] = ()
    split_columns: Mapping[str, str] = field(default_factory=dict)   # source column -> splits.csv column
    split_values: Mapping[str, str] = field(default_factory=lambda: dict(IDENTITY_SPLITS))
    higher_is_better: bool = True
    notes: str = ""


# Column names as in pyiqa's meta_info CSVs (pyiqa/data/meta_info/, written by its scripts/process_*.py).
PRESETS: dict[str, Preset] = {
    "koniq10k": Preset(
        "KonIQ-10k", ("img_name", "image_name"), ("mos", "MOS_zscore"), (0, 100), scale=(1, 5),
        std_column=("std", "SD"), std_scale="raw", split_columns={"split": "official", "set": "official"},
        split_values={"training": "train", "validation": "val", "test": "test", **IDENTITY_SPLITS},
        notes="MOS rescaled to 0-100; std on the raw 1-5 ACR scale (stored as quality_std_raw); the official "
              "split (training/validation/test) becomes splits.csv column 'official'."),
    "spaq": Preset(
        "SPAQ", ("Image name", "img_name"), ("MOS", "mos"), (0, 100),
        notes="MOS on 0-100 (slider); no std or official split."),
    "ava": Preset(
        "AVA", ("img_name",), ("MOS", "mos"), (1, 10),
        split_columns={"official split": "official", "ILGnet split": "ilgnet"},
        split_values={"0": "train", "1": "val", "2": "test"},
        notes="aesthetic score: mean of 1-10 votes; split codes 0/1/2 = train/val/test."),
    "live": Preset(
        "LIVE IQA release 2", ("dist_name",), ("mos", "dmos"), (0, 100), ref_column=("ref_name",),
        higher_is_better=False,
        notes="the 'mos' column holds DMOS: lower is better; reference images (DMOS 0) are not listed."),
    "csiq": Preset(
        "CSIQ", ("dist_name",), ("dmos", "mos"), (0, 1), ref_column=("ref_name",), higher_is_better=False,
        notes="DMOS on 0-1: lower is better."),
    "tid2013": Preset(
        "TID2013", ("dist_name",), ("mos",), (0, 9), std_column=("std",), ref_column=("ref_name",),
        notes="MOS on 0-9 from pairwise comparisons; std of the MOS."),
    "kadid10k": Preset(
        "KADID-10k", ("dist_name",), ("dmos", "mos"), (1, 5), std_column=("std",), ref_column=("ref_name",),
        notes="the 'dmos' column is a 1-5 degradation MOS: higher is better; pyiqa's 'std' column carries "
              "KADID-10k's own 'var' column."),
    "clive": Preset(
        "LIVE In the Wild Image Quality Challenge (CLIVE)", ("img_name",), ("mos",), (0, 100),
        std_column=("std",), notes="MOS on 0-100 (slider); std in MOS units."),
}

# Without a preset: the usual names, std and reference columns used when present.
GENERIC = Preset("metadata CSV", ("img_name", "name", "image_name", "dist_name"), ("mos", "MOS", "dmos"),
                 (0, 100), std_column=("std",), ref_column=("ref_name",))

OPTIONS = ("preset", "name_column", "mos_column", "std_column", "std_scale", "ref_column", "split_columns",
           "split_values", "mos_range", "scale", "higher_is_better", "name")


def _pick(frame: pd.DataFrame, candidates: Sequence[str], path: Path, what: str, required: bool) -> str | None:
    for candidate in candidates:
        if candidate in frame.columns:
            return candidate
    if required and candidates:
        raise InputError(f"{what} column is missing (looked for {', '.join(repr(c) for c in candidates)}; "
                         f"columns are: {', '.join(map(str, frame.columns))})", file=path, field=candidates[0])
    return None


def read(src: Path, *, preset: str | None = None, name_column: str | None = None, mos_column: str | None = None,
         std_column: str | None = None, std_scale: str | None = None, ref_column: str | None = None,
         split_columns: Mapping[str, str] | None = None, split_values: Mapping[str, str] | None = None,
         mos_range: Sequence[float] | None = None, scale: Sequence[float] | None = None,
         higher_is_better: bool | None = None, name: str | None = None) -> ImportResult:
    layout = lookup(PRESETS, preset, "meta-csv preset") if preset else GENERIC
    overrides = {key: value for key, value in {
        "name_column": (name_column,) if name_column else None,
        "mos_column": (mos_column,) if mos_column else None,
        "std_column": (std_column,) if std_column else None,
        "ref_column": (ref_column,) if ref_column else None,
        "std_scale": std_scale, "split_columns": split_columns, "split_values": split_values,
        "mos_range": tuple(mos_range) if mos_range is not None else None,
        "scale": tuple(scale) if scale is not None else None, "higher_is_better": higher_is_better,
    }.items() if value is not None}
    layout = replace(layout, **overrides)
    if layout.std_scale not in ("mos", "raw"):
        raise InputError(f"std scale '{layout.std_scale}' must be 'mos' or 'raw'", field="std_scale")
    low, high = (float(v) for v in layout.mos_range)
    if not low < high:
        raise InputError(f"MOS range {low:g}-{high:g} is empty", field="mos_range")
    bad_values = {raw: part for raw, part in layout.split_values.items() if part not in SPLIT_VALUES}
    if bad_values:
        raw, part = next(iter(bad_values.items()))
        raise InputError(f"split value '{raw}' maps to '{part}', not one of {', '.join(SPLIT_VALUES)}",
                         field="split_values")

    path = require_file(src, "metadata CSV")
    frame = read_csv(path)
    name_col = _pick(frame, layout.name_column, path, "image name", required=True)
    mos_col = _pick(frame, layout.mos_column, path, "MOS", required=True)
    # A column a preset or the user names must be there; the generic layout uses std/ref_name when present.
    std_col = _pick(frame, layout.std_column, path, "std", required=bool(std_column or preset))
    ref_col = _pick(frame, layout.ref_column, path, "reference image", required=bool(ref_column or preset))

    names = frame[name_col]
    check_not_empty(names, path, name_col)
    check_unique(names, path, name_col, "image name")
    for row, value in enumerate(names, start=1):
        problem = check_relative_path(value)
        if problem:
            raise InputError(problem, file=path, row=row, field=name_col)
    images = pd.DataFrame({"image_id": names, "path": [f"images/{n}" for n in names]})
    if ref_col:
        check_not_empty(frame[ref_col], path, ref_col)
        images["ref_name"] = frame[ref_col]

    values = numbers(frame[mos_col], path, mos_col)
    check_range(values, low, high, path, mos_col, "MOS")
    mos = pd.DataFrame({"image_id": names, f"{PERSPECTIVE}_mos": values})
    if std_col:
        std = numbers(frame[std_col], path, std_col, allow_missing=True)
        negative = ~np.isnan(std) & (std < 0)
        if negative.any():
            row = int(np.flatnonzero(negative)[0]) + 1
            raise InputError(f"standard deviation {std[row - 1]:g} is negative", file=path, row=row, field=std_col)
        mos[f"{PERSPECTIVE}_std" if layout.std_scale == "mos" else f"{PERSPECTIVE}_std_raw"] = std

    tables = {"images": images, "mos": mos}
    present_splits = {source: target for source, target in layout.split_columns.items() if source in frame.columns}
    if split_columns and len(present_splits) < len(split_columns):
        missing = next(c for c in split_columns if c not in frame.columns)
        raise InputError(f"split column is missing (columns are: {', '.join(map(str, frame.columns))})",
                         file=path, field=missing)
    if present_splits:
        splits = pd.DataFrame({"image_id": names})
        for source, target in present_splits.items():
            if not slug(target) == target:
                raise InputError(f"split name '{target}' must be lower-case letters, digits and '_'",
                                 field="split_columns")
            raw = frame[source].astype(str).str.strip()
            mapped = raw.map(lambda v: "" if v == "" else layout.split_values.get(v))
            unknown = mapped.isna().to_numpy()
            if unknown.any():
                row = int(np.flatnonzero(unknown)[0]) + 1
                raise InputError(f"split value '{raw.iloc[row - 1]}' is not mapped (mapping: "
                                 f"{', '.join(f'{k}={v}' for k, v in layout.split_values.items())})",
                                 file=path, row=row, field=source)
            if target in splits.columns:
                raise InputError(f"two split columns map to '{target}'", field="split_columns")
            splits[target] = mapped.astype(object)
        tables["splits"] = splits

    scale = tuple(float(v) for v in (layout.scale or (low, high)))
    card_name = name or (slug(preset) if preset else slug(path.stem)) or "meta_csv"
    card = default_card(
        card_name, description=f"{layout.title} imported from metadata CSV {path.name}.",
        perspectives=[PERSPECTIVE], questions=[], mos_range=[low, high],
        scale={"min": scale[0], "max": scale[1]},
        source={
            "kind": "meta-csv", "preset": preset or None,
            "files": {path.name: {"sha256": file_sha256(path)}},
            "columns": {"name": name_col, "mos": mos_col, "std": std_col, "reference": ref_col},
            "std_scale": layout.std_scale if std_col else None,
            "splits": {source: target for source, target in present_splits.items()},
            "split_values": dict(layout.split_values) if present_splits else {},
            "higher_is_better": layout.higher_is_better,
            "notes": layout.notes,
        })
    return ImportResult(tables=tables, card=card)


IMPORTER = Importer(
    name="meta-csv",
    summary="A classic IQA metadata CSV (pyiqa-style: name, mos, std, split columns) -> images, mos, splits; "
            f"layouts (--layout): {', '.join(PRESETS)}.",
    source="the metadata CSV file",
    read=read, options=OPTIONS)
