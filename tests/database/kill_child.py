"""Run ``aigciqa ARGS`` and SIGKILL this process at its N-th write point (fault injection).

Usage: kill_child.py N ARGS...   (N = 0: never kill). With FAULT_SIGNAL=STOP the process stops
(SIGSTOP) there instead, holding the folder lock, until the test sends SIGCONT. The write points are every ``os.replace``
(just before the rename) and every ``os.fsync`` (just after the flush): the moments at which what
is on disk changes. The number of points reached is written to $FAULT_COUNT_FILE at exit, so a
test can first count them in an uninterrupted run and then kill at each one in turn.
"""

import atexit
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's aigciqa

kill_at = int(sys.argv[1])
reached = 0
real_replace, real_fsync = os.replace, os.fsync


def point() -> None:
    global reached
    reached += 1
    if reached == kill_at:
        os.kill(os.getpid(), signal.SIGSTOP if os.environ.get("FAULT_SIGNAL") == "STOP" else signal.SIGKILL)


def replace(*args, **kwargs):
    point()
    return real_replace(*args, **kwargs)


def fsync(fd):
    real_fsync(fd)
    point()


def report() -> None:
    if os.environ.get("FAULT_COUNT_FILE"):
        Path(os.environ["FAULT_COUNT_FILE"]).write_text(str(reached))


os.replace, os.fsync = replace, fsync
atexit.register(report)

from aigciqa.cli import main  # noqa: E402 - after the hooks, so every module sees them

sys.argv = [sys.argv[0], *sys.argv[2:]]  # the command as a user would type it (recorded as provenance)
sys.exit(main(sys.argv[1:]))
