"""Read what ``build-mos`` aggregates: a database folder, a long ratings CSV, a wide matrix CSV or a
sureal dataset JSON, all turned into the folder's long ratings table, checked by the folder module.

Non-folder sources are converted to long rows that remember where each came from (record, field),
so an error found by the shared table checks still names the record and field of the source file.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aigciqa.common.files import decode_text
from aigciqa.database import DatabaseFolder, TABLES, default_card
from aigciqa.database.tables import check_references, coerce_table, read_csv_text
from aigciqa.errors import InputError, check_regular_file, read_json

DEFAULT_SCALE = (0.0, 5.0)
DEFAULT_PERSPECTIVE = "quality"
LONG_COLUMNS = ("subject_id", "image_id", "perspective", "score")
STIMULUS_HEADERS = {"image_id", "asset_id", "stimulus", "stimulus_id", ""}
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class RatingsSource:
    """Checked ratings (and, for a folder, answers and images) plus the card that describes them."""

    path: Path
    kind: str                                  # "folder", "long", "wide" or "sureal"
    card: dict
    ratings: pd.DataFrame
    answers: pd.DataFrame | None = None
    images: pd.DataFrame | None = None
    folder: DatabaseFolder | None = None
    # For non-folder sources: per long row, the source record (1-based) and field.
    records: np.ndarray | None = None
    fields: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def file(self) -> str:
        if self.folder is not None:
            return str(self.folder.table_path("ratings"))
        return str(self.path)

    @property
    def scale(self) -> tuple[float, float]:
        return float(self.card["scale"]["min"]), float(self.card["scale"]["max"])

    def locate(self, error: InputError) -> InputError:
        """Re-point an error about long row ``error.row`` at the source's own file, record and field."""
        if self.records is None or error.row is None:
            return InputError(error.message, file=error.file or self.file, row=error.row, field=error.field)
        index = error.row - 1
        field_name = error.field
        if field_name in ("score", "subject_id", "image_id") or field_name is None:
            field_name = str(self.fields[index])
        return InputError(error.message, file=str(self.path), row=int(self.records[index]), field=field_name)

    def image_order(self) -> list[str]:
        """mos.csv row order: images.csv order for a folder, else first appearance in the ratings."""
        rated = pd.unique(self.ratings["image_id"])
        if self.images is not None:
            rated_set = set(rated)
            return [i for i in self.images["image_id"] if i in rated_set]
        return list(rated)


def read_source(src: str | Path, *, scale: tuple[float, float] | None = None,
                perspective: str | None = None) -> RatingsSource:
    """Read and check SRC; the kind is told by what it is (folder, .json, CSV with or without the
    long-format header)."""
    path = Path(src)
    if path.is_dir():
        return read_folder(path, scale=scale)
    check_regular_file(path)  # a FIFO or device would block or never end
    if path.suffix.lower() == ".json":
        return read_sureal_json(path, scale=scale, perspective=perspective)
    with open(path, encoding="utf-8-sig", errors="replace") as handle:  # the real read reports bad bytes
        header = [cell.strip() for cell in next(csv.reader([handle.readline()]), [])]
    if set(LONG_COLUMNS) <= set(header):
        return read_long_csv(path, scale=scale)
    return read_wide_csv(path, scale=scale, perspective=perspective)


def read_folder(path: Path, *, scale: tuple[float, float] | None = None) -> RatingsSource:
    folder = DatabaseFolder(path)
    card = folder.read_card()
    if scale is not None and (float(card["scale"]["min"]), float(card["scale"]["max"])) != tuple(scale):
        raise InputError(f"--scale {scale[0]:g}-{scale[1]:g} differs from the card's scale "
                         f"{card['scale']['min']}-{card['scale']['max']} (the card decides for a folder)",
                         file=str(folder.root / "dataset.json"), field="scale")
    if not folder.has("ratings"):
        raise InputError("no ratings.csv: nothing to aggregate (export the annotations first)",
                         file=str(folder.root))
    names = [n for n in ("ratings", "answers", "images", "prompts") if folder.has(n)]
    tables = folder.read_tables(names, card=card)
    check_references({n: tables[n] for n in names if n != "prompts"})
    return RatingsSource(path, "folder", card, tables["ratings"], tables.get("answers"), tables.get("images"),
                         folder)


def _card_for(name: str, perspectives: list[str], scale, repeated: bool) -> dict:
    lo, hi = scale if scale is not None else DEFAULT_SCALE
    card = default_card(name or "ratings", perspectives=perspectives,
                        scale={"min": _number(lo), "max": _number(hi)})
    if repeated:
        card["repeated_ratings"] = True
    return card


def _number(value: float):
    return int(value) if float(value).is_integer() else float(value)


def _card_name(path: Path) -> str:
    name = re.sub(r"[^a-z0-9_]+", "_", path.stem.lower()).strip("_")
    return name or "ratings"


def _check_perspectives(perspectives: pd.Series, file: str) -> list[str]:
    names = list(pd.unique(perspectives))
    for name in names:
        if str(name).strip() == "":
            row = int(np.flatnonzero((perspectives == name).to_numpy())[0]) + 1
            raise InputError("value is missing", file=file, row=row, field="perspective")
        if not _IDENTIFIER.match(str(name)):
            row = int(np.flatnonzero((perspectives == name).to_numpy())[0]) + 1
            raise InputError(f"perspective '{name}' must be lower-case letters, digits and '_', starting "
                             "with a letter", file=file, row=row, field="perspective")
    return names


def read_long_csv(path: Path, *, scale=None) -> RatingsSource:
    file = str(path)
    frame = read_csv_text(path)
    missing = [c for c in LONG_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError("required column is missing", file=file, field=missing[0])
    perspectives = _check_perspectives(frame["perspective"], file)
    # A bare CSV declares no repetitions, so a repeated subject/image/perspective is an error.
    card = _card_for(_card_name(path), perspectives or [DEFAULT_PERSPECTIVE], scale, repeated=False)
    ratings = coerce_table(TABLES["ratings"], frame, card, file=file)
    return RatingsSource(path, "long", card, ratings)


def _read_cells(path: Path) -> list[list[str]]:
    decoded = decode_text(path.read_bytes(), path)
    if not decoded.strip():
        raise InputError("file is empty", file=str(path))
    return [row for row in csv.reader(io.StringIO(decoded)) if row]


def _is_number_or_missing(cell: str) -> bool:
    cell = cell.strip()
    if cell.lower() in ("", "nan", "na", "null", "none"):
        return True
    try:
        float(cell)
        return True
    except ValueError:
        return False


def read_wide_csv(path: Path, cells: list[list[str]] | None = None, *, scale=None,
                  perspective: str | None = None) -> RatingsSource:
    """Rows = stimuli, columns = subjects. An optional header names the subjects; when its first cell
    is ``image_id``/``asset_id``/``stimulus`` (or empty) the first column names the stimuli.
    Without names, subjects and stimuli are numbered from 0 (as sureal numbers them)."""
    file = str(path)
    cells = cells if cells is not None else _read_cells(path)
    has_header = not all(_is_number_or_missing(c) for c in cells[0])
    header = [c.strip() for c in cells[0]] if has_header else None
    body = cells[1:] if has_header else cells
    id_column = bool(has_header and header[0].lower() in STIMULUS_HEADERS)
    width = len(cells[0])
    for number, row in enumerate(body, start=1):
        if len(row) != width:
            raise InputError(f"has {len(row)} cells, the first line has {width}", file=file, row=number)
    if not body:
        raise InputError("no data records", file=file)
    first = 1 if id_column else 0
    subjects = header[first:] if header else [str(k) for k in range(width)]
    if len(set(subjects)) != len(subjects):
        raise InputError("a subject column appears twice", file=file, field=subjects[0])
    matrix = np.array([row[first:] for row in body], dtype=object)
    stimuli = [row[0].strip() for row in body] if id_column else [str(k) for k in range(len(body))]
    present = np.vectorize(lambda c: c.strip().lower() not in ("", "nan", "na", "null", "none"))(matrix)
    rows, cols = np.nonzero(present)
    name = perspective or DEFAULT_PERSPECTIVE
    long = pd.DataFrame({"subject_id": np.asarray(subjects, dtype=object)[cols],
                         "image_id": np.asarray(stimuli, dtype=object)[rows],
                         "perspective": name, "score": matrix[rows, cols]})
    records = rows + 1
    fields = np.asarray(subjects if header else [f"column {k + 1}" for k in range(len(subjects))],
                        dtype=object)[cols]
    return _checked(path, "wide", long, records, fields, scale, name, repeated=False)


def read_sureal_json(path: Path, *, scale=None, perspective: str | None = None) -> RatingsSource:
    """sureal's dataset: ``dis_videos`` with ``asset_id`` and ``os``, a list (index = subject) or a
    dict (subject -> score) of scores, each a number, a list of repetitions, or null (not rated)."""
    file = str(path)
    data = read_json(path, what="sureal dataset")
    videos = data.get("dis_videos") if isinstance(data, dict) else None
    if not isinstance(videos, list) or not videos:
        raise InputError("a sureal dataset needs a non-empty 'dis_videos' list", file=file, field="dis_videos")
    subjects, stimuli, scores, records, fields = [], [], [], [], []
    n_list = None
    repeated = False
    seen_assets = set()
    for number, video in enumerate(videos, start=1):
        if not isinstance(video, dict) or "os" not in video:
            raise InputError("entry has no 'os' (opinion scores)", file=file, row=number, field="os")
        asset = video.get("asset_id", number - 1)
        asset = str(asset)
        if asset in seen_assets:
            raise InputError(f"asset_id {asset} appears twice", file=file, row=number, field="asset_id")
        seen_assets.add(asset)
        opinion = video["os"]
        if isinstance(opinion, list):
            if n_list is None:
                n_list = len(opinion)
            elif len(opinion) != n_list:
                raise InputError(f"'os' has {len(opinion)} scores, the first entry has {n_list}",
                                 file=file, row=number, field="os")
            items = [(str(k), v) for k, v in enumerate(opinion)]
        elif isinstance(opinion, dict):
            items = [(str(k), v) for k, v in opinion.items()]
        else:
            raise InputError("'os' must be a list or an object", file=file, row=number, field="os")
        for subject, value in items:
            values = value if isinstance(value, list) else [value]
            repeated |= isinstance(value, list) and len(values) > 1
            for v in values:
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    continue
                subjects.append(subject)
                stimuli.append(asset)
                scores.append(v if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v))
                records.append(number)
                fields.append(f"os/{subject}")
    name = perspective or DEFAULT_PERSPECTIVE
    long = pd.DataFrame({"subject_id": subjects, "image_id": stimuli, "perspective": name,
                         "score": pd.Series(scores, dtype=object)})
    return _checked(path, "sureal", long, np.asarray(records), np.asarray(fields, dtype=object), scale, name,
                    repeated)


def _checked(path: Path, kind: str, long: pd.DataFrame, records, fields, scale, perspective: str,
             repeated: bool) -> RatingsSource:
    if not _IDENTIFIER.match(perspective):
        raise InputError(f"perspective '{perspective}' must be lower-case letters, digits and '_'",
                         field="--perspective")
    if long.empty:
        raise InputError("no scores at all", file=str(path))
    card = _card_for(_card_name(path), [perspective], scale, repeated)
    source = RatingsSource(path, kind, card, long, records=records, fields=fields)
    try:
        source.ratings = coerce_table(TABLES["ratings"], long, card, file=str(path))
    except InputError as error:
        raise source.locate(error) from None
    return source
