"""The database folder: the one place that knows its layout and reads, checks and writes it.

Stages never open the folder's files themselves; they call :class:`DatabaseFolder`. Every write
checks the card, each table, and the references between the new tables and those already on disk
*before* any file is replaced, then commits all files together through the folder's journal (see
:mod:`.journal`): after a kill at any point the next command finds the folder all old or all new.

A command that reads, computes and writes holds the writer lock the whole time::

    with folder.transaction("build-mos") as tx:   # lock; recover a killed commit
        card = folder.read_card()
        tx.write({"mos": table}, card=card, stage="build-mos", files={"screening.json": text})
    # committed here, all files at once; an exception inside the block writes nothing

``folder.write(...)`` outside a transaction is a transaction of its own; inside one it joins it.
``folder.lock(command)`` holds the lock over several commits (a training run's checkpoints).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import pandas as pd

from aigciqa.common.files import read_jsonl
from aigciqa.database.atomic import TEMP_SUFFIX
from aigciqa.database.card import CARD_FILE, stamp_provenance, validate_card
from aigciqa.database.journal import (INTERNAL_DIR, FolderLock, commit_files, current_command, has_journal,
                                      recover, target_path, wait_for_renames)
from aigciqa.database.tables import TABLES, check_references, coerce_table, read_csv_text, to_csv_text
from aigciqa.errors import InputError, check_regular_file, read_json

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
    def path(self, relative: str, *, for_writing: bool = False) -> Path:
        """Path of a file named relative to the folder; refuses (InputError) a name that leaves it,
        also through a symbolic link, the folder's private ``.aigciqa/``, and for writing a folder."""
        return target_path(self.root, relative, for_writing=for_writing)

    def is_empty(self) -> bool:
        """No file but the lock and journal of a command that stopped before its first commit."""
        return not any(p.name != INTERNAL_DIR for p in self.root.iterdir())

    # ---- writer lock and transactions -----------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, command: str | None = None) -> Iterator[FolderLock]:
        """Hold the writer lock (``with folder.lock():``); InputError naming the holder when taken.

        Re-entrant within a process; a commit left by a killed command is finished first. A folder
        that this creates and that is still empty at the end is removed again."""
        created = not self.root.exists()
        held = FolderLock.acquire(self.root, command)
        try:
            recover(self.root)
            yield held
        finally:
            held.release()
            if created and held.depth == 0:
                try:
                    self.root.rmdir()
                except OSError:  # holds files: the command wrote something
                    pass

    def transaction(self, command: str | None = None) -> "FolderTransaction":
        """Lock, collect writes, commit them as one on leaving the block (nothing on an exception).
        A transaction opened while one is active on the same folder joins it."""
        return FolderTransaction(self, command)

    def recover(self) -> str | None:
        """Finish or undo a commit a kill interrupted, when no other writer is active; say what was done."""
        if not has_journal(self.root):
            return None
        held = FolderLock.try_acquire(self.root)
        if held is None:  # a live writer, or a read-only folder: leave the journal alone
            wait_for_renames(self.root)
            return None
        try:
            return recover(self.root)
        finally:
            held.release()

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
        """The tables the folder holds; a table name taken by a folder, FIFO or device is an error."""
        present = []
        for name in TABLES:
            path = self.table_path(name)
            if path.is_file():
                present.append(name)
            elif path.exists() or path.is_symlink():
                check_regular_file(self.path(path.name))  # names what it is instead
        return present

    def leftover_files(self) -> list[Path]:
        """Temporary files of killed atomic writes (``.<name>.<random>.tmp``), outside ``.aigciqa/``."""
        internal = self.root / INTERNAL_DIR
        return sorted(p for p in self.root.rglob(f".*{TEMP_SUFFIX}") if internal not in p.parents and p.is_file())

    # ---- reading ------------------------------------------------------------------------------
    def read_card(self) -> dict:
        self.recover()
        path = self.root / CARD_FILE
        if path.exists() or path.is_symlink():
            path = self.path(CARD_FILE)  # a link may not lead out of the folder; a folder is named below
        else:
            raise InputError(f"not a database folder: {CARD_FILE} is missing "
                             "(create one with 'aigciqa import' or 'aigciqa generate')", file=str(self.root))
        return validate_card(read_json(path, what="card"), file=str(path))

    def read_table(self, name: str, card: dict | None = None) -> pd.DataFrame:
        """Read and type-check one table (not its references: see :meth:`validate`)."""
        spec = _spec(name)
        card = card if card is not None else self.read_card()
        path = self.path(spec.filename)  # a link may not lead out of the folder
        return coerce_table(spec, read_csv_text(path), card, file=str(path))

    def read_tables(self, names: Iterable[str] | None = None, card: dict | None = None) -> dict[str, pd.DataFrame]:
        card = card if card is not None else self.read_card()
        names = self.tables_present() if names is None else list(names)
        return {name: self.read_table(name, card) for name in names}

    def open_image(self, relative: str, mode: str = "RGB"):
        """The listed image ``relative`` decoded (PIL), after the checks of :func:`.images.open_image`
        and that it stays inside the folder."""
        from aigciqa.database.images import open_image
        return open_image(self.path(relative), mode=mode, file=str(self.root / relative))

    def read_json(self, relative: str) -> Any:
        return read_json(self.path(relative))

    def read_jsonl(self, relative: str) -> list[dict]:
        return read_jsonl(self.path(relative))

    def validate(self) -> dict[str, pd.DataFrame]:
        """Check the whole folder: card, every table present, and every reference. Returns the tables."""
        card = self.read_card()
        tables = self.read_tables(card=card)
        check_references(tables)
        return tables

    # ---- writing ------------------------------------------------------------------------------
    def write(self, tables: Mapping[str, pd.DataFrame] | None = None, *, card: dict | None = None,
              stage: str | None = None, command: str | None = None,
              files: Mapping[str, bytes | str | None] | None = None) -> None:
        """Check, then write tables, the card and other files as one all-or-nothing change.

        ``card`` replaces the card (a new folder needs one); ``stage`` records provenance in it.
        ``files`` maps folder-relative names to contents (JSON reports, JSONL, figures; None
        deletes). Inside an active transaction of this folder the change joins it.
        """
        with self.transaction(command) as transaction:
            transaction.write(tables, card=card, stage=stage, command=command, files=files)


class FolderTransaction:
    """The writes of one command, committed together; see :meth:`DatabaseFolder.transaction`."""

    _active: dict[str, "FolderTransaction"] = {}  # resolved root -> the transaction being collected

    def __init__(self, folder: DatabaseFolder, command: str | None):
        self.folder = folder
        self.command = command or current_command()
        self.card: dict | None = None
        self.tables: dict[str, pd.DataFrame] = {}
        self.files: dict[str, bytes | None] = {}
        self._outer: FolderTransaction | None = None
        self._lock: contextlib.AbstractContextManager | None = None

    def __enter__(self) -> "FolderTransaction":
        key = str(self.folder.root.resolve())
        outer = FolderTransaction._active.get(key)
        if outer is not None:
            self._outer = outer
            return outer
        self._lock = self.folder.lock(self.command)
        self._lock.__enter__()
        FolderTransaction._active[key] = self
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._outer is not None:
            return
        FolderTransaction._active.pop(str(self.folder.root.resolve()), None)
        try:
            if exc_type is None:
                self.commit()
        finally:
            self._lock.__exit__(None, None, None)

    def write(self, tables: Mapping[str, pd.DataFrame] | None = None, *, card: dict | None = None,
              stage: str | None = None, command: str | None = None,
              files: Mapping[str, bytes | str | None] | None = None) -> None:
        """Check and collect a change (see :meth:`DatabaseFolder.write`); later changes of a file win."""
        folder = self.folder
        tables = dict(tables or {})
        if card is None:
            card = self.card if self.card is not None else folder.read_card()
        card = validate_card(card, file=str(folder.root / CARD_FILE))
        if stage is not None:
            card = stamp_provenance(card, stage, command if command is not None else self.command)
        checked = {name: coerce_table(_spec(name), frame, card, file=str(folder.table_path(name)))
                   for name, frame in tables.items()}
        pending = {**self.tables, **checked}
        on_disk = {name: folder.read_table(name, card) for name in folder.tables_present() if name not in pending}
        check_references({**on_disk, **pending})
        staged = {relative: (content.encode("utf-8") if isinstance(content, str) else content)
                  for relative, content in (files or {}).items()}
        for relative in staged:
            folder.path(relative, for_writing=True)
        for name in checked:
            folder.path(_spec(name).filename, for_writing=True)
        folder.path(CARD_FILE, for_writing=True)
        self.tables.update(checked)
        self.files.update(staged)
        self.card = card

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        self.write({name: frame})

    def write_file(self, relative: str, content: bytes | str) -> None:
        self.write(files={relative: content})

    def write_json(self, relative: str, value: Any) -> None:
        self.write_file(relative, json.dumps(value, indent=2, ensure_ascii=False) + "\n")

    def delete(self, relative: str) -> None:
        self.write(files={relative: None})

    def commit(self) -> bool:
        """Put every collected change in place as one commit (the folder keeps the lock); False
        when there was nothing to commit."""
        if self.card is None:
            return False
        changes = [(_spec(name).filename, to_csv_text(frame).encode("utf-8")) for name, frame in self.tables.items()]
        changes += list(self.files.items())
        changes.append((CARD_FILE, (json.dumps(self.card, indent=2, ensure_ascii=False) + "\n").encode("utf-8")))
        commit_files(self.folder.root, changes, self.command)
        self.card, self.tables, self.files = None, {}, {}
        return True


def _spec(name: str):
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown table '{name}' (tables: {', '.join(TABLES)})") from None


def dumps_jsonl(records: Iterable[Mapping]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
