"""All-or-nothing commits of many files, and the writer lock of a database folder.

A commit works like SQLite's rollback journal turned around (a redo journal):

1. every new file is written in full under ``.aigciqa/journal/`` and flushed to disk;
2. the commit record ``.aigciqa/journal/commit.json`` (which staged file goes where) is written to a
   temporary name, flushed and renamed into place: **this rename is the commit point**;
3. each staged file is renamed over its target, the directories are flushed, the journal removed.

A kill before step 2 leaves a journal without a record: the next command that opens the folder
deletes it (roll back: the folder is all old). A kill after step 2 leaves a record: the next
command renames the staged files that are still there (roll forward: all new). Renames within one
file system are atomic, and replaying them is idempotent, so a kill during recovery is recovered
the same way.

Writers hold an advisory ``fcntl.flock`` on ``.aigciqa/lock`` for the whole command (read, compute,
commit), so two writers cannot interleave; the operating system drops it when the process dies, so
a crash never leaves the folder locked. A second writer exits with status 2 naming the holder.
Readers take no lock.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Iterable

from aigciqa.database.atomic import create_file, fsync_dir, new_file_mode, write_refusal
from aigciqa.database.tables import check_relative_path
from aigciqa.errors import InputError

INTERNAL_DIR = ".aigciqa"    # lock and journal; never listed as a table or file of the folder
LOCK_FILE = "lock"
JOURNAL_DIR = "journal"
COMMIT_RECORD = "commit.json"


def current_command() -> str:
    return shlex.join(["aigciqa", *sys.argv[1:]])


# ---- the writer lock ----------------------------------------------------------------------------
class FolderLock:
    """The exclusive writer lock of one folder, held by this process (re-entrant within it)."""

    _held: dict[str, "FolderLock"] = {}  # resolved root -> lock held by this process

    def __init__(self, root: Path, command: str):
        self.root = root
        self.command = command
        self.depth = 0
        self._fd: int | None = None

    @classmethod
    def held(cls, root: Path) -> "FolderLock | None":
        return cls._held.get(str(root.resolve()))

    @classmethod
    def acquire(cls, root: Path, command: str | None = None) -> "FolderLock":
        """Take the lock or raise InputError naming the process that holds it."""
        existing = cls.held(root)
        if existing is not None:
            existing.depth += 1
            return existing
        lock = cls(root, command or current_command())
        lock._take(wait=False)
        lock.depth = 1
        cls._held[str(root.resolve())] = lock
        return lock

    @classmethod
    def try_acquire(cls, root: Path) -> "FolderLock | None":
        """The lock if it is free (None when another process holds it or the folder is read-only)."""
        if cls.held(root) is not None:
            return cls.acquire(root)
        try:
            return cls.acquire(root, current_command())
        except InputError:
            return None

    def _take(self, wait: bool) -> None:
        internal = self.root / INTERNAL_DIR
        path = internal / LOCK_FILE
        while True:
            try:
                internal.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as error:
                raise write_refusal(error, self.root) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise InputError(f"another command is writing this folder ({holder}); run this one when it "
                                 "has finished (readers such as 'aigciqa info' are not blocked)",
                                 file=str(self.root)) from None
            try:  # the file locked must still be the lock file (a holder removes it when it lets go)
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        self._fd = fd
        record = {"pid": os.getpid(), "command": self.command,
                  "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)

    def release(self) -> None:
        """Let go at the outermost level. The lock file goes too, so the folder keeps no trace of a
        finished command (``_take`` checks that the file it locked is still the lock file)."""
        self.depth -= 1
        if self.depth > 0:
            return
        FolderLock._held.pop(str(self.root.resolve()), None)
        if self._fd is not None:
            internal = self.root / INTERNAL_DIR
            (internal / LOCK_FILE).unlink(missing_ok=True)
            try:
                internal.rmdir()
            except OSError:  # holds a journal, or another process made a lock file meanwhile
                pass
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def holder_of(root: Path) -> str | None:
    """Who holds the folder's writer lock (pid, command, since when), as :func:`_read_holder` says."""
    try:
        fd = os.open(root / INTERNAL_DIR / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f"pid {record['pid']}, '{record['command']}', since {record['since']}"
    except (ValueError, KeyError, TypeError, OSError):  # the holder has not written its name yet
        return "a process that has just started"


# ---- commit and recovery ------------------------------------------------------------------------
def journal_dir(root: Path) -> Path:
    return root / INTERNAL_DIR / JOURNAL_DIR


def has_journal(root: Path) -> bool:
    return journal_dir(root).exists()


def commit_files(root: Path, changes: Iterable[tuple[str, bytes | None]], command: str) -> None:
    """Replace (bytes) or delete (None) the folder-relative files of ``changes`` as one commit.

    The caller holds the writer lock and has checked every name with :func:`target_path`.
    """
    changes = list(changes)
    journal = journal_dir(root)
    recover(root)  # a journal left by a kill is finished before a new one starts
    entries = []
    try:
        journal.mkdir(parents=True)
        device = os.stat(journal).st_dev
        for relative, _ in changes:
            if _device_of((root / relative).parent) != device:  # a rename cannot cross a mount point
                raise InputError("is on another file system than the folder's journal (a mount point "
                                 "inside the folder); a commit must be able to rename it", file=str(root / relative))
        for number, (relative, data) in enumerate(changes):
            if data is None:
                entries.append({"target": relative, "staged": None})
                continue
            staged = journal / str(number)
            create_file(staged, data, new_file_mode(root / relative))
            entries.append({"target": relative, "staged": staged.name})
        fsync_dir(journal)
        record = journal / (COMMIT_RECORD + ".tmp")
        create_file(record, (json.dumps({"command": command, "changes": entries}, ensure_ascii=False)
                             + "\n").encode("utf-8"), None)
        os.replace(record, journal / COMMIT_RECORD)  # the commit point
        fsync_dir(journal)
    except (OSError, InputError) as error:
        shutil.rmtree(journal, ignore_errors=True)  # nothing was committed: the folder is unchanged
        if isinstance(error, InputError):
            raise
        raise write_refusal(error, getattr(error, "filename", None) or root) from None
    _apply(root)


def wait_for_renames(root: Path, timeout_s: float = 5.0) -> None:
    """Let a live writer finish renaming committed files (milliseconds) before a reader reads, so
    that the reader sees all of the new files rather than some. Staging (before the commit point)
    may take long and leaves the old files in place, so it is not waited for."""
    record = journal_dir(root) / COMMIT_RECORD
    deadline = time.monotonic() + timeout_s
    while record.exists() and time.monotonic() < deadline:
        time.sleep(0.005)


def _device_of(directory: Path) -> int:
    """The file system of ``directory``, or of its nearest existing parent (made at commit time)."""
    while not directory.exists():
        directory = directory.parent
    return os.stat(directory).st_dev


def recover(root: Path) -> str | None:
    """Finish (roll forward) or undo (roll back) a commit that a kill interrupted; say which."""
    journal = journal_dir(root)
    if not journal.exists():
        return None
    record_path = journal / COMMIT_RECORD
    if not record_path.is_file():
        shutil.rmtree(journal)
        fsync_dir(journal.parent)
        return "rolled back an unfinished commit (the folder is as before it)"
    command = _apply(root)
    return f"rolled forward the commit of '{command}'"


def _apply(root: Path) -> str:
    journal = journal_dir(root)
    record = json.loads((journal / COMMIT_RECORD).read_text("utf-8"))
    directories = set()
    for entry in record["changes"]:
        relative = entry["target"]
        if check_relative_path(relative):  # a record never names anything else; refuse a forged one
            raise InputError(f"the commit record names '{relative}'", file=str(journal / COMMIT_RECORD))
        target = root / relative
        if entry["staged"] is None:
            target.unlink(missing_ok=True)
        else:
            staged = journal / entry["staged"]
            if staged.exists():  # else: renamed before the kill
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, target)
        directories.add(target.parent)
    for directory in sorted(directories):
        fsync_dir(directory)
    (journal / COMMIT_RECORD).unlink()
    shutil.rmtree(journal)
    fsync_dir(journal.parent)
    return record["command"]


def target_path(root: Path, relative: str, *, for_writing: bool) -> Path:
    """``root/relative`` after checking that it, with every symbolic link resolved, stays inside root."""
    problem = check_relative_path(relative)
    if problem:
        raise InputError(problem, file=str(root))
    path = root / relative
    if relative.split("/")[0] == INTERNAL_DIR:
        raise InputError(f"'{relative}' is inside the folder's private {INTERNAL_DIR}/", file=str(root))
    inside = root.resolve()
    resolved = path.resolve()
    if resolved != inside and inside not in resolved.parents:
        raise InputError(f"resolves to {resolved}, outside the database folder (a symbolic link?); "
                         "refused", file=str(path))
    if for_writing and path.is_dir():
        raise InputError("is a folder, not a file; remove or rename it", file=str(path))
    return path
