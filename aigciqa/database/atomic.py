"""Atomic writes: a file is either the old one or the complete new one, never half of each.

Each file is written to a temporary name in the same directory, flushed to disk, then renamed over
the target (``os.replace`` is atomic on POSIX and Windows). A new file gets the mode the umask
allows (as ``open`` would give it); a replaced file keeps its mode. Several files written with one
:class:`Transaction` are each complete before the first rename, but a kill between the renames can
leave some old and some new: files of a database folder are written through
``DatabaseFolder.transaction`` instead, whose journal makes many files one commit (see
:mod:`aigciqa.database.journal`). This module serves single files and files outside a folder
(per-image PNGs, ``--output`` reports).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

from aigciqa.errors import InputError

TEMP_SUFFIX = ".tmp"  # temporary files are ".<name>.<random>.tmp": `info` finds those a kill left


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry (a rename) to disk, where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not possible on every platform (e.g. Windows); the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def new_file_mode(existing: Path) -> int | None:
    """The mode a replacement of ``existing`` keeps (None: a new file, whose mode the umask sets)."""
    try:
        return stat.S_IMODE(os.stat(existing).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return None


def create_file(path: Path, data: bytes, mode: int | None) -> None:
    """Write a new file completely and flush it; ``mode`` None means 0o666 less the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        Path(path).unlink(missing_ok=True)
        raise
    os.close(fd)


def write_refusal(error: OSError, path: Path | str) -> InputError:
    """An operating-system refusal to write (read-only folder, no permission, disk full) as one line."""
    reason = {errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
              errno.EPERM: "permission denied", errno.ENOSPC: "no space left on the device",
              errno.EISDIR: "is a folder, not a file", errno.ENOTDIR: "a part of the path is not a folder",
              }.get(error.errno, error.strerror or str(error))
    return InputError(f"cannot write: {reason}", file=str(path))


class Transaction:
    """Stage several files, then put them all in place with :meth:`commit`.

    Use as a context manager: leaving the block normally commits, an exception discards every
    staged file. Problems the user can fix (a target that is a folder, a read-only file system) are
    InputErrors naming the file.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def stage_bytes(self, target: str | Path, data: bytes) -> None:
        target = Path(target)
        if target.is_dir():
            raise InputError("is a folder, not a file; give a file name", file=str(target))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
            create_file(tmp, data, new_file_mode(target))
        except OSError as error:
            raise write_refusal(error, target) from None
        self._staged.append((tmp, target))

    def stage_text(self, target: str | Path, text: str) -> None:
        self.stage_bytes(target, text.encode("utf-8"))

    def commit(self) -> None:
        for tmp, target in self._staged:
            try:
                os.replace(tmp, target)
            except OSError as error:
                self.discard()
                raise write_refusal(error, target) from None
        for directory in {target.parent for _, target in self._staged}:
            fsync_dir(directory)
        self._staged.clear()

    def discard(self) -> None:
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged.clear()

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    with Transaction() as transaction:
        transaction.stage_bytes(target, data)


def write_text_atomic(target: str | Path, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))
