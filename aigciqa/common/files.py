"""Reading files the same way in every stage: sha256, text decoding, JSONL.

A decoding error names the byte and the line; a JSONL error names the line (blank lines count, so the
number is what an editor shows)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

from aigciqa.errors import InputError, read_input_bytes


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's content, read in chunks (model weights can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


HASH_CACHE_ENV = "AIGCIQA_HASH_CACHE"


def hash_cache_path() -> Path:
    """The per-user file of remembered hashes: $AIGCIQA_HASH_CACHE, else the XDG cache folder."""
    if os.environ.get(HASH_CACHE_ENV):
        return Path(os.environ[HASH_CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "aigciqa" / "file-sha256.sqlite"


def remembered_sha256(path: str | Path) -> str:
    """sha256 of a file, remembered per user by real path, size, modification and change time and inode,
    so a multi-gigabyte checkpoint is read again only when it changed (every training start records the
    hashes of its weights). For provenance only: verification reads the bytes (:func:`file_sha256`).
    A cache that cannot be opened or written is skipped, never an error."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    fingerprint = f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_ino}"
    try:
        database = hash_cache_path()
        database.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(database, timeout=30)
    except (OSError, sqlite3.Error):
        return file_sha256(real)
    try:
        with connection:
            connection.execute("CREATE TABLE IF NOT EXISTS file_sha256 "
                               "(path TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, sha256 TEXT NOT NULL)")
            row = connection.execute("SELECT sha256 FROM file_sha256 WHERE path = ? AND fingerprint = ?",
                                     (real, fingerprint)).fetchone()
        if row:
            return row[0]
        digest = file_sha256(real)
        with connection:
            connection.execute("INSERT OR REPLACE INTO file_sha256 VALUES (?, ?, ?)", (real, fingerprint, digest))
        return digest
    except sqlite3.Error:
        return file_sha256(real)
    finally:
        connection.close()


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
