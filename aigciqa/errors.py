"""The one error type for bad input: it names the file, the record and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class InputError(Exception):
    """Bad user input. The command line prints it on one line and exits with status 2.

    ``row`` is the 1-based data record (the header is not counted), so it matches what a
    spreadsheet shows after the header line.
    """

    def __init__(self, message: str, *, file: str | Path | None = None,
                 row: int | None = None, field: str | None = None):
        self.message = message
        self.file = None if file is None else str(file)
        self.row = row
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.row is not None:
            where.append(f"record {self.row}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return (", ".join(where) + ": " if where else "") + self.message


class DataWarning(UserWarning):
    """A record that was accepted with a change (e.g. an out-of-range code imported as missing)."""


def read_json(path: str | Path, *, missing: str = "file not found", what: str = "file") -> Any:
    """A JSON file's content; a missing, undecodable or malformed file is an InputError naming it
    (``missing`` and ``what`` word the message for the caller's kind of file)."""
    path = Path(path)
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(missing, file=str(path)) from None
    except UnicodeDecodeError:
        raise InputError(f"{what} is not valid UTF-8 text", file=str(path)) from None
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON in the {what}: {error.msg} (line {error.lineno})",
                         file=str(path)) from None
