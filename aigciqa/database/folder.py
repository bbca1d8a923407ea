"""The database folder: the one place that knows its layout and reads, checks and writes it.

Stages never open the folder's files themselves; they call :class:`DatabaseFolder`. Every write
checks the card, each table, and the references between the new tables and those already on disk
*before* any file is replaced, then replaces all files together (see :mod:`.atomic`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from aigciqa.database.atomic import Transaction
from aigciqa.database.card import CARD_FILE, stamp_provenance, validate_card
from aigciqa.database.tables import (TABLES, check_references, check_relative_path, coerce_table,
                                     read_csv_text, to_csv_text)
from aigciqa.errors import InputError, read_json

IMAGES_DIR = "images"
FIGURES_DIR = "figures"
RUNS_DIR = "runs"
CACHE_DIR = "cache"  # derived data a stage can rebuild (the model's boundary cache); safe to delete
ANNOTATIONS_FILE = "annotations.sqlite"
SCREENING_FILE = "screening.json"
VQA_FILE = "vqa.jsonl"


class DatabaseFolder:
    """A database folder on disk (see the README's "The database folder")."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"DatabaseFolder({str(self.root)!r})"

    # ---- layout -------------------------------------------------------------------------------
    def path(self, relative: str) -> Path:
        """Absolute path of a file named relative to the folder; refuses names that leave it."""
        problem = check_relative_path(relative)
        if problem:
            raise InputError(problem, file=str(self.root))
        return self.root / relative

    def table_path(self, name: str) -> Path:
        return self.root / _spec(name).filename

    @staticmethod
    def image_relpath(generator: str, prompt_id: str, sample: int, suffix: str = ".png") -> str:
        return f"{IMAGES_DIR}/{generator}/{prompt_id}-{sample}{suffix}"

    def exists(self) -> bool:
        return (self.root / CARD_FILE).is_file()

    def has(self, name: str) -> bool:
        return self.table_path(name).is_file()

    def tables_present(self) -> list[str]:
        return [name for name in TABLES if self.has(name)]

    # ---- reading ------------------------------------------------------------------------------
    def read_card(self) -> dict:
        path = self.root / CARD_FILE
        if not path.is_file():
            raise InputError(f"not a database folder: {CARD_FILE} is missing "
                             "(create one with 'aigciqa import' or 'aigciqa generate')", file=str(self.root))
        return validate_card(read_json(path, what="card"), file=str(path))

    def read_table(self, name: str, card: dict | None = None) -> pd.DataFrame:
        """Read and type-check one table (not its references: see :meth:`validate`)."""
        spec = _spec(name)
        card = card if card is not None else self.read_card()
        path = self.table_path(name)
        return coerce_table(spec, read_csv_text(path), card, file=str(path))

    def read_tables(self, names: Iterable[str] | None = None, card: dict | None = None) -> dict[str, pd.DataFrame]:
        card = card if card is not None else self.read_card()
        names = self.tables_present() if names is None else list(names)
        return {name: self.read_table(name, card) for name in names}

    def read_json(self, relative: str) -> Any:
        return read_json(self.path(relative))

    def read_jsonl(self, relative: str) -> list[dict]:
        path = self.path(relative)
        records = []
        try:
            lines = path.read_text("utf-8").splitlines()
        except FileNotFoundError:
            raise InputError("file not found", file=str(path)) from None
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise InputError(f"malformed JSON: {error.msg}", file=str(path), row=number) from None
        return records

    def validate(self) -> dict[str, pd.DataFrame]:
        """Check the whole folder: card, every table present, and every reference. Returns the tables."""
        card = self.read_card()
        tables = self.read_tables(card=card)
        check_references(tables)
        return tables

    # ---- writing ------------------------------------------------------------------------------
    def write(self, tables: Mapping[str, pd.DataFrame] | None = None, *, card: dict | None = None,
              stage: str | None = None, command: str | None = None,
              files: Mapping[str, bytes | str] | None = None) -> None:
        """Check, then write tables, the card and other files as one all-or-nothing change.

        ``card`` replaces the card (a new folder needs one); ``stage`` records provenance in it.
        ``files`` maps folder-relative names to contents (JSON reports, JSONL, figures).
        """
        tables = dict(tables or {})
        if card is None:
            card = self.read_card()
        card = validate_card(card, file=str(self.root / CARD_FILE))
        if stage is not None:
            card = stamp_provenance(card, stage, command)
        checked = {name: coerce_table(_spec(name), frame, card, file=str(self.table_path(name)))
                   for name, frame in tables.items()}
        on_disk = {name: self.read_table(name, card) for name in self.tables_present() if name not in checked}
        check_references({**on_disk, **checked})
        with Transaction() as transaction:
            for name, frame in checked.items():
                transaction.stage_text(self.table_path(name), to_csv_text(frame))
            for relative, content in (files or {}).items():
                data = content.encode("utf-8") if isinstance(content, str) else content
                transaction.stage_bytes(self.path(relative), data)
            transaction.stage_text(self.root / CARD_FILE, json.dumps(card, indent=2, ensure_ascii=False) + "\n")


def _spec(name: str):
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown table '{name}' (tables: {', '.join(TABLES)})") from None


def dumps_jsonl(records: Iterable[Mapping]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
