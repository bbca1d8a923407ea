"""Atomic writes: a file is either the old one or the complete new one, never half of each.

Each file is written to a temporary name in the same directory, flushed to disk, then renamed over
the target (``os.replace`` is atomic on POSIX and Windows). Several files are written as one
:class:`Transaction`: every temporary file is complete before the first rename, so an error while
preparing leaves the folder untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _fsync_dir(directory: Path) -> None:
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


class Transaction:
    """Stage several files, then put them all in place with :meth:`commit`.

    Use as a context manager: leaving the block normally commits, an exception discards every
    staged file.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def stage_bytes(self, target: str | Path, data: bytes) -> None:
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._staged.append((Path(tmp), target))

    def stage_text(self, target: str | Path, text: str) -> None:
        self.stage_bytes(target, text.encode("utf-8"))

    def commit(self) -> None:
        for tmp, target in self._staged:
            os.replace(tmp, target)
        for directory in {target.parent for _, target in self._staged}:
            _fsync_dir(directory)
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
