"""The one error type for bad input: it names the file, the record and the field."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any


class InputError(Exception):
    """Bad user input. The command line prints it on one line and exits with status 2.

    ``row`` is the 1-based data record (the header is not counted), so it matches what a
    spreadsheet shows after the header line. ``line``, where given, is the 1-based line of the file
    on which that record starts (not always row + 1: blank lines, cells that span lines); a
    malformed header has a line and no record.
    """

    def __init__(self, message: str, *, file: str | Path | None = None,
                 row: int | None = None, field: str | None = None, line: int | None = None):
        self.message = message
        self.file = None if file is None else str(file)
        self.row = row
        self.field = field
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.row is not None:
            where.append(f"record {self.row}" + (f" (line {self.line})" if self.line is not None else ""))
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        text = (", ".join(where) + ": " if where else "") + self.message
        # One line whatever a cell or a file name holds.
        return text.replace("\r", "\\r").replace("\n", "\\n")


class DataWarning(UserWarning):
    """A record that was accepted with a change (e.g. an out-of-range code imported as missing)."""


# Tables, cards and configs are read whole; a bigger "input" is a mistake (a disk image, /dev/zero).
MAX_INPUT_BYTES = 2 * 1024 ** 3


def check_regular_file(path: str | Path, *, missing: str = "file not found", what: str = "file",
                       max_bytes: int | None = MAX_INPUT_BYTES) -> int:
    """Refuse, before opening it, what is not a regular file of a sane size (a folder, a FIFO that
    would block, a device such as /dev/zero that never ends); return its size in bytes."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(missing, file=str(path)) from None
    except (NotADirectoryError, PermissionError) as error:
        raise InputError(f"cannot read the {what}: {error.strerror}", file=str(path)) from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"is a folder, not a {what}", file=str(path))
    if not stat.S_ISREG(info.st_mode):
        raise InputError("is not a regular file (a FIFO, socket or device); refused before reading it",
                         file=str(path))
    if max_bytes is not None and info.st_size > max_bytes:
        raise InputError(f"is {info.st_size} bytes, more than the {max_bytes} a {what} may have", file=str(path))
    return info.st_size


def read_input_bytes(path: str | Path, *, missing: str = "file not found", what: str = "file") -> bytes:
    """The bytes of an input file, after :func:`check_regular_file`; unreadable files are InputErrors."""
    check_regular_file(path, missing=missing, what=what)
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise InputError(f"cannot read the {what}: {error.strerror}", file=str(path)) from None


def read_json(path: str | Path, *, missing: str = "file not found", what: str = "file") -> Any:
    """A JSON file's content; a missing, undecodable or malformed file is an InputError naming it
    (``missing`` and ``what`` word the message for the caller's kind of file)."""
    path = Path(path)
    try:
        return json.loads(read_input_bytes(path, missing=missing, what=what).decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{what} is not valid UTF-8 text", file=str(path)) from None
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON in the {what}: {error.msg} (line {error.lineno})",
                         file=str(path)) from None
