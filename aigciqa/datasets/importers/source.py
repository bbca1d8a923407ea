"""Reading published source files for the importers, with errors that name file, record and field.

Every importer reads its sources through these helpers so that a missing file, a missing column, an
undecodable byte, a duplicate id or a bad number is reported the same way (an :class:`InputError`
with the 1-based data record), and an accepted-with-change record is a :class:`DataWarning` worded
the same way.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from aigciqa.common.files import decode_text
from aigciqa.database.tables import read_csv_text
from aigciqa.errors import DataWarning, InputError, check_regular_file


def where(file=None, row: int | None = None, field: str | None = None, message: str = "") -> str:
    """The one-line "file, record N, field 'x': message" wording that InputError uses."""
    return str(InputError(message, file=file, row=row, field=field))


def warn_data(message: str, *, file=None, row: int | None = None, field: str | None = None) -> None:
    """Report a record that was accepted with a change (e.g. an out-of-range code made missing)."""
    warnings.warn(where(file, row, field, message), DataWarning, stacklevel=3)


def require_file(path: Path, what: str = "file") -> Path:
    check_regular_file(path, missing=f"{what} not found", what=what)
    return path


def source_file(src: Path, filename: str) -> Path:
    """SRC may be the file itself or a folder holding it under its published name."""
    if src.is_dir():
        return require_file(src / filename, f"{filename} (the published file)")
    return require_file(src, "source (give the published file or the folder holding it)")


def decode(path: Path, encoding: str, *, hint: str = "") -> str:
    """The whole file as text; undecodable bytes are an InputError naming the byte and line."""
    return decode_text(require_file(path).read_bytes(), path, encoding, hint=hint)


def read_csv(path: Path, columns: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV with a header, every cell as text; the listed columns must be present."""
    frame = read_csv_text(require_file(path))
    require_columns(frame, columns, path)
    return frame


def require_columns(frame: pd.DataFrame, columns: Iterable[str], file) -> None:
    for column in columns:
        if column not in frame.columns:
            raise InputError(f"required column is missing (columns are: {', '.join(map(str, frame.columns))})",
                             file=file, field=column)


def _first(mask) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def numbers(values: pd.Series, file, field: str, *, allow_missing: bool = False) -> np.ndarray:
    """Text cells as float64; a cell that is not a finite number raises, naming its record."""
    text = values.astype(str).str.strip()
    missing = text == ""
    parsed = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype="float64")
    bad = np.isnan(parsed) & ~missing.to_numpy()
    bad |= np.isinf(parsed)
    if bad.any():
        row = _first(bad)
        raise InputError(f"'{text.iloc[row]}' is not a finite number", file=file, row=row + 1, field=field)
    if not allow_missing and missing.any():
        raise InputError("value is missing", file=file, row=_first(missing) + 1, field=field)
    return parsed


def check_range(values: np.ndarray, low: float, high: float, file, field: str, what: str = "value") -> None:
    outside = ~np.isnan(values) & ((values < low) | (values > high))
    if outside.any():
        row = _first(outside)
        raise InputError(f"{what} {values[row]:g} is outside {low:g}-{high:g}", file=file, row=row + 1, field=field)


def check_unique(values: pd.Series, file, field: str, what: str = "id") -> None:
    duplicated = values.duplicated(keep="first").to_numpy()
    if duplicated.any():
        row = _first(duplicated)
        first = _first((values == values.iloc[row]).to_numpy())
        raise InputError(f"duplicate {what} '{values.iloc[row]}' (first in record {first + 1})",
                         file=file, row=row + 1, field=field)


def check_not_empty(values: pd.Series, file, field: str) -> None:
    empty = (values.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        raise InputError("value is missing", file=file, row=_first(empty) + 1, field=field)


def slug(name: str) -> str:
    """A lower-case identifier for a published name: 'stable-diffusion' -> 'stable_diffusion'."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
