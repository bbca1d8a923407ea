"""The tables of a database folder: their columns, types and keys, and how each is checked.

Every table is a CSV file read with all cells as text and then converted column by column, so a
bad cell is reported with its record number and column instead of silently becoming NaN.
Types: ``str`` (missing = ""), ``int`` (pandas ``Int64``, missing = <NA>), ``float`` (missing = NaN).
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from aigciqa.common.files import read_text
from aigciqa.database.card import card_value
from aigciqa.errors import InputError

SPLIT_VALUES = ("train", "val", "test")


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # "str" | "int" | "float"
    nullable: bool = False
    # A required nullable column may be left out of the file (all empty), unless it must be present:
    # mos.csv keeps a `{p}_mos` column for every perspective of the card, even when some cells are empty.
    must_be_present: bool = False


@dataclass(frozen=True)
class TableSpec:
    name: str
    filename: str
    columns: tuple[Column, ...]
    optional: tuple[Column, ...] = ()
    key: tuple[str, ...] = ()
    # Columns that depend on the card (per perspective / per question), computed from it.
    dynamic: Callable[[dict], tuple[tuple[Column, ...], tuple[Column, ...]]] | None = None
    doc: str = ""

    def all_columns(self, card: dict) -> tuple[tuple[Column, ...], tuple[Column, ...]]:
        required, optional = self.columns, self.optional
        if self.dynamic is not None:
            extra_required, extra_optional = self.dynamic(card)
            required, optional = required + extra_required, optional + extra_optional
        return required, optional


def _mos_columns(card: dict):
    required, optional = [], []
    for p in card["perspectives"]:
        # Empty where an image was not rated in that perspective (sparse designs).
        required.append(Column(f"{p}_mos", "float", True, must_be_present=True))
        optional += [Column(f"{p}_std", "float", True), Column(f"{p}_ci95", "float", True),
                     Column(f"{p}_n", "int", True), Column(f"{p}_std_raw", "float", True)]
    return tuple(required), tuple(optional)


def _label_columns(card: dict):
    optional = []
    for q in card["questions"]:
        optional.append(Column(q["name"], "int", True))
        if q.get("explanation"):
            optional.append(Column(q["explanation"], "str", True))
    return (), tuple(optional)


S, I, F = "str", "int", "float"

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in (
    TableSpec("prompts", "prompts.csv",
              (Column("prompt_id", S), Column("prompt", S), Column("category", S, True),
               Column("challenge", S, True)),
              (Column("style", S, True), Column("content", S, True), Column("atmosphere", S, True)),
              key=("prompt_id",), doc="one row per text prompt"),
    TableSpec("images", "images.csv",
              (Column("image_id", S), Column("path", S), Column("prompt_id", S, True),
               Column("generator", S, True), Column("sample", I, True), Column("seed", I, True),
               Column("width", I, True), Column("height", I, True), Column("sha256", S, True)),
              key=("image_id",), doc="one row per image; path relative to the folder"),
    TableSpec("ratings", "ratings.csv",
              (Column("subject_id", S), Column("image_id", S), Column("perspective", S),
               Column("score", F)),
              (Column("session", S, True), Column("t_start", S, True), Column("t_end", S, True)),
              key=("subject_id", "image_id", "perspective"), doc="raw opinion scores, long format"),
    TableSpec("answers", "answers.csv",
              (Column("subject_id", S), Column("image_id", S), Column("question", S),
               Column("level", I, True), Column("explanation", S, True)),
              key=("subject_id", "image_id", "question"), doc="each subject's fine-grained answers"),
    TableSpec("mos", "mos.csv", (Column("image_id", S),), key=("image_id",), dynamic=_mos_columns,
              doc="mean opinion score per image and perspective"),
    TableSpec("labels", "labels.csv", (Column("image_id", S),), key=("image_id",),
              dynamic=_label_columns, doc="one aggregated level per image and question"),
    TableSpec("splits", "splits.csv", (Column("image_id", S),), key=("image_id",),
              doc="image_id + one column per split (train/val/test)"),
    TableSpec("pairs", "pairs.csv",
              (Column("better_image_id", S), Column("worse_image_id", S)),
              (Column("prompt_id", S, True), Column("perspective", S, True)),
              key=("better_image_id", "worse_image_id", "perspective"),
              doc="preference pairs: the first image is preferred to the second"),
)}


def read_csv_text(path, *, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV with every cell as text ("" for empty). Each record must have as many cells as the
    header; a record with more or fewer, an unclosed or stray quote or undecodable bytes is an
    InputError naming the file, the record (1-based, header and blank lines not counted) and its line."""
    text = read_text(path, encoding)
    if not text.strip():
        raise InputError("file is empty", file=path)
    frame = plain_csv_frame(text)
    if frame is None:
        header, records = parse_csv_records(text, path)
        # Built from the parsed cells: pandas' own parser splits a long record into an extra phantom row
        # and pads a short one silently. Positions first, then the names, so a repeated name survives
        # to be reported by coerce_table.
        frame = pd.DataFrame(records, columns=range(len(header)), dtype=str)
        frame.columns = header
    return frame


_LONE_CARRIAGE_RETURN = re.compile(r"\r(?!\n)")


def plain_csv_frame(text: str) -> pd.DataFrame | None:
    """The table of a CSV text through pandas' C parser (several times faster than the csv module on the
    large tables: ratings), or None where its result could differ from :func:`parse_csv_records`' and that
    strict reader must decide: any quote, a carriage return not ending a line, a record with more or fewer
    cells than the header, a whitespace-only line."""
    if '"' in text or _LONE_CARRIAGE_RETURN.search(text):
        return None
    # Without quotes a line's cells are its commas + 1: every non-blank line must have the header's.
    # (pandas pads a short record with empty cells; a whitespace-only line is a record to the csv module.)
    lines = [line for line in text.split("\n") if line not in ("", "\r")]
    if not lines or len({line.count(",") for line in lines}) > 1 or any(not line.strip() for line in lines):
        return None
    try:
        cells = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False,
                            skip_blank_lines=True)
    except (pd.errors.ParserError, ValueError):
        return None
    if len(cells) != len(lines):  # a line pandas reads otherwise (its own blank-line rules): the strict reader
        return None
    frame = cells.iloc[1:].reset_index(drop=True)
    frame.columns = list(cells.iloc[0])  # positions, then names: a repeated name reaches coerce_table
    return frame


CELL_CHARACTERS = 2**31 - 1  # the csv module's default limit (131,072) would refuse a long explanation cell


def _csv_reader(text: str):
    if csv.field_size_limit() < CELL_CHARACTERS:
        csv.field_size_limit(CELL_CHARACTERS)
    # newline="\n": lines end in "\n" or "\r\n", as an editor counts them; a lone "\r" is not a line
    # break (universal newlines and pandas make one, which turned "403,...\r,extra" into two records).
    return csv.reader(io.StringIO(text, newline="\n"), strict=True)


def parse_csv_records(text: str, path) -> tuple[list[str], list[list[str]]]:
    """The header's cells and each record's cells (blank lines are not records), every record as
    long as the header; otherwise an InputError naming the first bad record and its line."""
    try:
        rows = [cells for cells in _csv_reader(text) if cells]
    except csv.Error:
        rows = []
    if not rows or len(set(map(len, rows))) > 1:
        _raise_first_bad_record(text, path)
    return rows[0], rows[1:]


def _raise_first_bad_record(text: str, path) -> None:
    """Read again, now tracking where each record starts (only for the message: it costs time)."""
    reader = _csv_reader(text)
    header: list[str] | None = None
    record, start = 0, 1  # record 0 is the header; start: the line the record being read begins on
    try:
        for cells in reader:
            if cells:
                if header is None:
                    header = cells
                elif len(cells) != len(header):
                    raise InputError(f"has {_cells(len(cells))} where the header has {len(header)}",
                                     file=path, row=record, line=start)
                record += 1
            start = reader.line_num + 1
    except csv.Error as error:
        problem = str(error)
        if "end of data" in problem or "field limit" in problem:
            problem = "a quoted cell that starts in this record is never closed (a missing '\"')"
        elif "new-line character" in problem:
            problem = "a carriage return (\\r) inside the record, not at the end of a line"
            # Typically a cell appended after the "\r" of a CRLF line: say what the line holds then.
            line = text.split("\n")[reader.line_num - 1].removesuffix("\r").replace("\r", "")
            try:
                count = len(next(csv.reader([line]), []))
            except csv.Error:  # a cell over the csv module's size limit: the first sentence says enough
                count = None
            if header is not None and count not in (None, len(header)):
                problem += f"; without it the line has {_cells(count)} where the header has {len(header)}"
        raise InputError(f"malformed CSV: {problem}", file=path, row=record or None, line=start) from None
    raise AssertionError("a record was refused but none is malformed")  # unreachable: the checks agree


def _cells(count: int) -> str:
    return f"{count} cell" + ("" if count == 1 else "s")


_MISSING_TEXT = {"", "nan", "NaN", "NA", "<NA>", "None", "null"}


def _as_text(values: pd.Series) -> pd.Series:
    """Cells as Python strings, "" where missing (None, NaN, <NA>)."""
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        # Fast path (every cell a str or missing), same result as the general one below.
        return values.astype(object).where(values.notna(), "")
    return values.map(lambda v: "" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
                      else str(v)).astype(object)


def _convert(values: pd.Series, column: Column, file: str) -> pd.Series:
    if column.dtype == S:
        converted = _as_text(values)
        missing = converted == ""
    else:
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numbers = values.astype("float64")
            missing = numbers.isna()
            cell = lambda row: str(values.iloc[row])  # noqa: E731 - only for an error message, so built lazily
        else:
            text = _as_text(values).str.strip()
            missing = text.isin(_MISSING_TEXT)
            numbers = pd.to_numeric(text.where(~missing), errors="coerce").astype("float64")
            cell = text.iloc.__getitem__
            bad = numbers.isna() & ~missing
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(f"'{cell(row)}' is not a number", file=file, row=row + 1, field=column.name)
        infinite = np.isinf(numbers.to_numpy())
        if infinite.any():
            row = int(np.flatnonzero(infinite)[0])
            raise InputError("value is infinite", file=file, row=row + 1, field=column.name)
        if column.dtype == I:
            fractional = numbers.notna() & (numbers != np.floor(numbers.fillna(0)))
            if fractional.any():
                row = int(np.flatnonzero(fractional.to_numpy())[0])
                raise InputError(f"'{cell(row)}' is not a whole number", file=file, row=row + 1,
                                 field=column.name)
            converted = _exact_integers(values, text if "text" in locals() else None, missing, file, column)
        else:
            converted = numbers
    if not column.nullable and missing.any():
        row = int(np.flatnonzero(missing.to_numpy())[0])
        raise InputError("value is missing", file=file, row=row + 1, field=column.name)
    return converted


INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1
_DIGITS = re.compile(r"[+-]?\d+")


def _exact_integers(values: pd.Series, text: pd.Series | None, missing: pd.Series, file: str,
                    column: Column) -> pd.Series:
    """Whole numbers as Int64 without a trip through float64, which rounds above 2**53 (a seed
    9007199254740993 must stay itself); values beyond 64 bits are refused, not wrapped."""
    if text is None and pd.api.types.is_integer_dtype(values) and str(values.dtype) not in ("uint64", "UInt64"):
        return values.astype("Int64")
    if text is None:
        text = _as_text(values)
    exact = []
    for row, (cell, absent) in enumerate(zip(text, missing)):
        if absent:
            exact.append(pd.NA)
            continue
        number = int(cell) if _DIGITS.fullmatch(cell) else int(float(cell))
        if not INT64_MIN <= number <= INT64_MAX:
            raise InputError(f"'{cell}' is too large for a whole-number column (at most {INT64_MAX})",
                             file=file, row=row + 1, field=column.name)
        exact.append(number)
    return pd.Series(pd.array(exact, dtype="Int64"), index=values.index)


def coerce_table(spec: TableSpec, frame: pd.DataFrame, card: dict, file: str | None = None) -> pd.DataFrame:
    """Check columns, convert types and check the key; return a new frame in the spec's column order.

    Unknown extra columns are kept as text after the known ones (stages may add their own).
    """
    file = file or spec.filename
    required, optional = spec.all_columns(card)
    # A column that may be empty may also be left out; it is written back as an empty column.
    missing = [c.name for c in required
               if c.name not in frame.columns and (c.must_be_present or not c.nullable)]
    if missing:
        raise InputError(f"required column is missing (columns are: {', '.join(map(str, frame.columns))})",
                         file=file, row=None, field=missing[0])
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        raise InputError("column appears twice", file=file, field=str(duplicated[0]))
    frame = frame.reset_index(drop=True)
    out = {}
    for column in required:
        values = frame[column.name] if column.name in frame.columns else pd.Series([""] * len(frame), dtype=object)
        out[column.name] = _convert(values, column, file)
    for column in optional:
        if column.name in frame.columns:
            out[column.name] = _convert(frame[column.name], column, file)
    known = set(out)
    for name in frame.columns:
        if name not in known:
            out[name] = _convert(frame[name], Column(name, S, True), file)
    result = pd.DataFrame(out, index=frame.index)
    key = [k for k in spec.key if k in result.columns]
    if key and not (spec.name == "ratings" and card_value(card, "repeated_ratings")):
        dup = result.duplicated(subset=key, keep="first")
        if dup.any():
            row = int(np.flatnonzero(dup.to_numpy())[0])
            first = result[key].iloc[row].to_dict()
            raise InputError(f"duplicate {'/'.join(key)} {first}", file=file, row=row + 1, field=key[-1])
    _CHECKS.get(spec.name, lambda *_: None)(result, card, file)
    return result


def _first(mask: pd.Series | np.ndarray) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0]) + 1


def check_relative_path(path: str) -> str | None:
    """Return why ``path`` may not name a file inside the folder, or None when it is fine."""
    if not path:
        return "path is empty"
    if "\\" in path or re.match(r"^[A-Za-z]:", path):
        return f"'{path}' must use '/' separators and no drive letter"
    if path.startswith("/"):
        return f"'{path}' is absolute; paths are relative to the database folder"
    normal = posixpath.normpath(path)
    if normal == ".." or normal.startswith("../"):
        return f"'{path}' leads outside the database folder"
    return None


def _check_images(frame, card, file):
    for row, path in enumerate(frame["path"], start=1):
        problem = check_relative_path(path)
        if problem:
            raise InputError(problem, file=file, row=row, field="path")
    sha = frame["sha256"]
    bad = (sha != "") & ~sha.str.fullmatch(r"[0-9a-f]{64}")
    if bad.any():
        raise InputError("sha256 must be 64 lower-case hex digits", file=file, row=_first(bad), field="sha256")
    for name in ("width", "height"):
        bad = frame[name].fillna(1) <= 0
        if bad.any():
            raise InputError("must be positive", file=file, row=_first(bad), field=name)


def _check_ratings(frame, card, file):
    unknown = ~frame["perspective"].isin(card["perspectives"])
    if unknown.any():
        row = _first(unknown)
        raise InputError(f"perspective '{frame['perspective'].iloc[row - 1]}' is not in the card "
                         f"({', '.join(card['perspectives'])})", file=file, row=row, field="perspective")
    lo, hi = card["scale"]["min"], card["scale"]["max"]
    outside = (frame["score"] < lo) | (frame["score"] > hi)
    if outside.any():
        row = _first(outside)
        raise InputError(f"score {frame['score'].iloc[row - 1]} is outside the scale {lo}-{hi}",
                         file=file, row=row, field="score")


def _check_levels(values: pd.Series, n_levels: int, file, field, rows_offset=None):
    outside = values.notna() & ((values < 1) | (values > n_levels))
    if outside.any():
        row = _first(outside.fillna(False))
        raise InputError(f"level {values.iloc[row - 1]} is outside 1-{n_levels}", file=file, row=row, field=field)


def _check_answers(frame, card, file):
    levels = {q["name"]: len(q["levels"]) for q in card["questions"]}
    unknown = ~frame["question"].isin(list(levels))
    if unknown.any():
        row = _first(unknown)
        raise InputError(f"question '{frame['question'].iloc[row - 1]}' is not in the card",
                         file=file, row=row, field="question")
    n = frame["question"].map(levels).astype("Int64")
    outside = frame["level"].notna() & ((frame["level"] < 1) | (frame["level"] > n))
    if outside.fillna(False).any():
        row = _first(outside.fillna(False))
        raise InputError(f"level {frame['level'].iloc[row - 1]} is outside 1-{n.iloc[row - 1]}",
                         file=file, row=row, field="level")


def _check_labels(frame, card, file):
    for q in card["questions"]:
        if q["name"] in frame.columns:
            _check_levels(frame[q["name"]], len(q["levels"]), file, q["name"])


def _check_splits(frame, card, file):
    columns = [c for c in frame.columns if c != "image_id"]
    if not columns:
        raise InputError("no split column", file=file, field="image_id")
    for name in columns:
        bad = ~frame[name].isin((*SPLIT_VALUES, ""))
        if bad.any():
            row = _first(bad)
            raise InputError(f"'{frame[name].iloc[row - 1]}' is not one of {', '.join(SPLIT_VALUES)}",
                             file=file, row=row, field=name)


def _check_pairs(frame, card, file):
    same = frame["better_image_id"] == frame["worse_image_id"]
    if same.any():
        raise InputError("an image is paired with itself", file=file, row=_first(same), field="worse_image_id")
    if "perspective" in frame.columns:
        bad = (frame["perspective"] != "") & ~frame["perspective"].isin(card["perspectives"])
        if bad.any():
            raise InputError("perspective is not in the card", file=file, row=_first(bad), field="perspective")


def _check_mos(frame, card, file):
    low, high = card_value(card, "mos_range")  # absent: the default every other stage assumes too
    for p in card["perspectives"]:
        values = frame[f"{p}_mos"]
        outside = values.notna() & ((values < low) | (values > high))
        if outside.any():
            row = _first(outside)
            raise InputError(f"MOS {values.iloc[row - 1]} is outside the card's mos_range {low}-{high}",
                             file=file, row=row, field=f"{p}_mos")


_CHECKS = {"images": _check_images, "mos": _check_mos, "ratings": _check_ratings, "answers": _check_answers,
           "labels": _check_labels, "splits": _check_splits, "pairs": _check_pairs}

# (table, column) -> (table, column) it must resolve to; empty cells are allowed where nullable.
REFERENCES: tuple[tuple[str, str, str, str], ...] = (
    ("images", "prompt_id", "prompts", "prompt_id"),
    ("ratings", "image_id", "images", "image_id"),
    ("answers", "image_id", "images", "image_id"),
    ("mos", "image_id", "images", "image_id"),
    ("labels", "image_id", "images", "image_id"),
    ("splits", "image_id", "images", "image_id"),
    ("pairs", "better_image_id", "images", "image_id"),
    ("pairs", "worse_image_id", "images", "image_id"),
    ("pairs", "prompt_id", "prompts", "prompt_id"),
)


def check_references(tables: dict[str, pd.DataFrame]) -> None:
    """Every id that points into another table must be found there (when that table exists)."""
    for table, column, target, target_column in REFERENCES:
        if table not in tables or target not in tables or column not in tables[table].columns:
            continue
        values = tables[table][column]
        unknown = (values != "") & ~values.isin(set(tables[target][target_column]))
        if unknown.any():
            row = _first(unknown)
            raise InputError(f"{column} '{values.iloc[row - 1]}' is not in {TABLES[target].filename}",
                             file=TABLES[table].filename, row=row, field=column)


def to_csv_text(frame: pd.DataFrame) -> str:
    """CSV text of a table: missing values as empty cells, floats round-trip exactly."""
    return frame.to_csv(index=False, lineterminator="\n")
