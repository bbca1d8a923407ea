"""Reading files the same way in every stage: sha256, text decoding, JSONL.

A decoding error names the byte and the line; a JSONL error names the line (blank lines count, so the
number is what an editor shows)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from aigciqa.errors import InputError, read_input_bytes


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's content, read in chunks (model weights can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def decode_text(raw: bytes, path: str | Path, encoding: str = "utf-8", *, hint: str = "") -> str:
    """``raw`` as text without a leading byte-order mark; undecodable bytes are an InputError naming the
    byte and line (``hint`` is appended, e.g. which encoding option to try)."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise InputError(f"not valid {encoding} text (byte {error.start}, line {line}){hint}", file=str(path)) from None
    except LookupError:
        raise InputError(f"unknown text encoding '{encoding}'", file=str(path)) from None
    return text.removeprefix("\ufeff")


def read_text(path: str | Path, encoding: str = "utf-8", *, hint: str = "", what: str = "file") -> str:
    """A whole text file (see :func:`decode_text`); a missing file, a folder or a special file is an InputError
    (:func:`aigciqa.errors.read_input_bytes`)."""
    return decode_text(read_input_bytes(path, what=what), path, encoding, hint=hint)


def read_jsonl_lines(path: str | Path) -> list[tuple[int, object]]:
    """(line number, record) of each non-blank line of a JSONL file; a malformed line is an InputError
    whose record number is its line number (the numbering every JSONL reader and check uses)."""
    records = []
    for number, line in enumerate(read_text(path, what="JSONL file").splitlines(), start=1):
        if line.strip():
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise InputError(f"malformed JSON: {error.msg}", file=str(path), row=number) from None
    return records


def read_jsonl(path: str | Path) -> list:
    """The records of a JSONL file, blank lines skipped (see :func:`read_jsonl_lines`)."""
    return [record for _, record in read_jsonl_lines(path)]
