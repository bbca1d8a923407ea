"""The answer store: one SQLite file, written one answer at a time, never rewritten.

Why SQLite in WAL mode with ``synchronous=FULL``: every answer is its own committed transaction
that survives a crash, a kill or a power cut, and a reader (``status``, ``export``) never blocks the
window. Answers are only ever appended; the latest answer for a field wins. Each subject's item
order is stored when the subject first signs in, so a restart resumes the same sequence.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from aigciqa import __version__
from aigciqa.annotate.study import Item
from aigciqa.errors import InputError

STORE_KIND = "aigciqa-annotations"
STORE_VERSION = "1"
BUSY_TIMEOUT_S = 2.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (
    subject_id TEXT PRIMARY KEY, created REAL NOT NULL, study TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    subject_id TEXT NOT NULL, position INTEGER NOT NULL, image_id TEXT NOT NULL, kind TEXT NOT NULL,
    PRIMARY KEY (subject_id, position));
CREATE TABLE IF NOT EXISTS sessions (
    session_id INTEGER PRIMARY KEY AUTOINCREMENT, subject_id TEXT NOT NULL, started REAL NOT NULL,
    host TEXT NOT NULL, tool_version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    answer_id INTEGER PRIMARY KEY AUTOINCREMENT, subject_id TEXT NOT NULL, position INTEGER NOT NULL,
    field TEXT NOT NULL, value REAL, text TEXT, session_id INTEGER NOT NULL, t REAL NOT NULL);
CREATE INDEX IF NOT EXISTS answers_by_item ON answers (subject_id, position);
CREATE TABLE IF NOT EXISTS visits (
    visit_id INTEGER PRIMARY KEY AUTOINCREMENT, subject_id TEXT NOT NULL, position INTEGER NOT NULL,
    session_id INTEGER NOT NULL, t_start REAL NOT NULL, t_end REAL NOT NULL, outcome TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS problems (
    problem_id INTEGER PRIMARY KEY AUTOINCREMENT, subject_id TEXT NOT NULL, position INTEGER,
    image_id TEXT, path TEXT, message TEXT NOT NULL, session_id INTEGER, t REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT, subject_id TEXT NOT NULL, kind TEXT NOT NULL,
    session_id INTEGER, t REAL NOT NULL);
CREATE TABLE IF NOT EXISTS claims (
    subject_id TEXT PRIMARY KEY, session_id INTEGER NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL);
"""

# Outcomes of a visit: "done" (moved on with the answers complete), "skipped" (unreadable image),
# "left" (moved back before finishing), "reopened" (a finished item whose answers became incomplete).
# An item is finished when its latest done, skipped or reopened visit is a done or skipped one.
FINISHED = ("done", "skipped")
REOPENED = "reopened"
FINISHING = (*FINISHED, REOPENED)

# A live window refreshes its claim on the subject this often; a claim not refreshed for CLAIM_STALE_S
# (a crash on another machine) or whose process is gone (a crash on this one) is taken over.
CLAIM_HEARTBEAT_S = 5.0
CLAIM_STALE_S = 60.0


class StoreBusy(InputError):
    """The store is locked by another process for longer than the busy timeout."""


class SubjectInUse(InputError):
    """Another live window is rating for this subject."""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


@dataclass(frozen=True)
class Visit:
    position: int
    session_id: int
    t_start: float
    t_end: float
    outcome: str


class AnswerStore:
    """One annotation file. Every write is its own transaction (autocommit)."""

    def __init__(self, path: str | Path, *, create: bool = True, busy_timeout: float = BUSY_TIMEOUT_S,
                 durable: bool = True):
        self.path = Path(path)
        self.durable = durable
        if not create and not self.path.is_file():
            raise InputError("annotation store not found", file=str(self.path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None,
                                              check_same_thread=False)
            self._setup()
        except sqlite3.DatabaseError as error:
            raise self._error(error) from None

    def _setup(self) -> None:
        c = self.connection
        c.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed answer survives a power cut. Only simulated panels turn it off.
        c.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'OFF'}")
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise InputError("this SQLite file is not an aigciqa annotation store", file=str(self.path))
        if "meta" not in tables:
            # IF NOT EXISTS / OR IGNORE: two programs creating the same file at once both succeed.
            c.executescript("BEGIN IMMEDIATE;" + SCHEMA + "INSERT OR IGNORE INTO meta VALUES ('kind', '"
                            + STORE_KIND + "'), ('version', '" + STORE_VERSION + "'); COMMIT;")
        row = c.execute("SELECT value FROM meta WHERE key='kind'").fetchone()
        if not row or row[0] != STORE_KIND:
            raise InputError("this SQLite file is not an aigciqa annotation store", file=str(self.path))
        if "meta" in tables and "claims" not in tables:  # a store made before claims existed
            c.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")

    def _error(self, error: sqlite3.Error) -> InputError:
        text = str(error)
        if "locked" in text or "busy" in text:
            return StoreBusy("the annotation store is in use by another program (it stays locked); "
                             "close the other program or wait, nothing was lost", file=str(self.path))
        if isinstance(error, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
            return InputError(f"not a readable annotation store ({text})", file=str(self.path))
        return InputError(f"annotation store error: {text}", file=str(self.path))

    def _write(self, sql: str, params=()) -> int:
        try:
            return self.connection.execute(sql, params).lastrowid
        except sqlite3.Error as error:
            raise self._error(error) from None

    def _read(self, sql: str, params=()) -> list[tuple]:
        try:
            return self.connection.execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise self._error(error) from None

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction (taken at once, so no other writer slips in): all of it or nothing."""
        c = self.connection
        try:
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            raise self._error(error) from None

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "AnswerStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- subjects and their items -------------------------------------------------------------------
    def subjects(self) -> list[str]:
        return [r[0] for r in self._read("SELECT subject_id FROM subjects ORDER BY created, subject_id")]

    def has_subject(self, subject_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM subjects WHERE subject_id=?", (subject_id,)))

    def add_subject(self, subject_id: str, items: list[Item], study_config: dict) -> None:
        """Store a new subject with its item order, all in one transaction."""
        with self._transaction() as c:
            c.execute("INSERT INTO subjects VALUES (?, ?, ?)",
                      (subject_id, time.time(), json.dumps(study_config, sort_keys=True)))
            c.executemany("INSERT INTO items VALUES (?, ?, ?, ?)",
                          [(subject_id, i.position, i.image_id, i.kind) for i in items])

    def study_config(self, subject_id: str) -> dict:
        rows = self._read("SELECT study FROM subjects WHERE subject_id=?", (subject_id,))
        return json.loads(rows[0][0]) if rows else {}

    def items(self, subject_id: str) -> list[Item]:
        return [Item(*row) for row in self._read(
            "SELECT position, image_id, kind FROM items WHERE subject_id=? ORDER BY position", (subject_id,))]

    # ---- sessions, answers, visits ----------------------------------------------------------------------
    def start_session(self, subject_id: str) -> int:
        return self._write("INSERT INTO sessions (subject_id, started, host, tool_version) VALUES (?, ?, ?, ?)",
                           (subject_id, time.time(), socket.gethostname(), __version__))

    def record_answer(self, subject_id: str, position: int, field: str, value, session_id: int,
                      t: float | None = None) -> None:
        """Append one answer (a number, or text for an explanation); committed when this returns."""
        number, text = (None, value) if isinstance(value, str) else (value, None)
        self._write("INSERT INTO answers (subject_id, position, field, value, text, session_id, t) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (subject_id, position, field, number, text, session_id, time.time() if t is None else t))

    def latest_answers(self, subject_id: str) -> dict[int, dict[str, float | str | None]]:
        """position -> field -> the latest value (answer_id order = the order they were given)."""
        out: dict[int, dict] = {}
        for position, field, value, text in self._read(
                "SELECT position, field, value, text FROM answers WHERE subject_id=? ORDER BY answer_id",
                (subject_id,)):
            out.setdefault(position, {})[field] = text if text is not None else value
        return out

    def answer_history(self, subject_id: str | None = None) -> list[tuple]:
        sql = "SELECT subject_id, position, field, value, text, session_id, t FROM answers"
        params: tuple = ()
        if subject_id is not None:
            sql, params = sql + " WHERE subject_id=?", (subject_id,)
        return self._read(sql + " ORDER BY answer_id", params)

    def record_visit(self, subject_id: str, position: int, session_id: int, t_start: float, t_end: float,
                     outcome: str) -> None:
        self._write("INSERT INTO visits (subject_id, position, session_id, t_start, t_end, outcome) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (subject_id, position, session_id, t_start, t_end, outcome))

    def visits(self, subject_id: str) -> list[Visit]:
        return [Visit(*row) for row in self._read(
            "SELECT position, session_id, t_start, t_end, outcome FROM visits WHERE subject_id=? ORDER BY visit_id",
            (subject_id,))]

    def finished_positions(self, subject_id: str) -> dict[int, str]:
        """position -> "done" or "skipped" (the latest finishing outcome; a later reopening undoes it)."""
        out = {}
        for position, outcome in self._read(
                "SELECT position, outcome FROM visits WHERE subject_id=? AND outcome IN (?, ?, ?) ORDER BY visit_id",
                (subject_id, *FINISHING)):
            out[position] = outcome
        return {position: outcome for position, outcome in out.items() if outcome in FINISHED}

    def record_problem(self, subject_id: str, position: int | None, image_id: str | None, path: str | None,
                       message: str, session_id: int | None) -> None:
        self._write("INSERT INTO problems (subject_id, position, image_id, path, message, session_id, t) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", (subject_id, position, image_id, path, message, session_id,
                                                    time.time()))

    def problems(self) -> list[tuple]:
        return self._read("SELECT subject_id, position, image_id, path, message, t FROM problems ORDER BY problem_id")

    def record_event(self, subject_id: str, kind: str, session_id: int | None) -> None:
        self._write("INSERT INTO events (subject_id, kind, session_id, t) VALUES (?, ?, ?, ?)",
                    (subject_id, kind, session_id, time.time()))

    def has_event(self, subject_id: str, kind: str) -> bool:
        return bool(self._read("SELECT 1 FROM events WHERE subject_id=? AND kind=?", (subject_id, kind)))

    def events(self, subject_id: str) -> list[tuple[str, int | None, float]]:
        return self._read("SELECT kind, session_id, t FROM events WHERE subject_id=? ORDER BY event_id", (subject_id,))

    # ---- claims: one live window per subject ---------------------------------------------------------------
    def claim_holder(self, subject_id: str, now: float | None = None) -> str | None:
        """Who holds a live claim on the subject ("host pid N"), or None when nobody (or only a crashed one)."""
        rows = self._read("SELECT host, pid, heartbeat FROM claims WHERE subject_id=?", (subject_id,))
        if not rows:
            return None
        host, pid, heartbeat = rows[0]
        now = time.time() if now is None else now
        if now - heartbeat > CLAIM_STALE_S or (host == socket.gethostname() and not _process_alive(pid)):
            return None
        return f"{host} (process {pid})"

    def claim(self, subject_id: str, session_id: int) -> None:
        """Make this session the subject's only live one; SubjectInUse when another live window holds it."""
        with self._transaction() as c:  # check and take in one transaction: two windows cannot both win
            holder = self.claim_holder(subject_id)
            if holder is not None:
                raise SubjectInUse(f"subject {subject_id} is already rating in another window on {holder}; "
                                   "close that window first (or wait a minute if it crashed)",
                                   file=str(self.path), field="subject")
            c.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?)",
                      (subject_id, session_id, socket.gethostname(), os.getpid(), time.time()))

    def refresh_claim(self, subject_id: str, session_id: int) -> None:
        self._write("UPDATE claims SET heartbeat=? WHERE subject_id=? AND session_id=?",
                    (time.time(), subject_id, session_id))

    def release_claim(self, subject_id: str, session_id: int) -> None:
        self._write("DELETE FROM claims WHERE subject_id=? AND session_id=?", (subject_id, session_id))


def find_stores(root: str | Path, extra=()) -> list[Path]:
    """The folder's ``annotations*.sqlite`` files plus any others named (each once)."""
    paths = sorted(Path(root).glob("annotations*.sqlite")) + [Path(p) for p in extra]
    unique: dict[Path, Path] = {}
    for path in paths:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())
