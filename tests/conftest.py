import os
import socket
import sys
from pathlib import Path

import pytest

NO_NETWORK_DIR = Path(__file__).resolve().parent / "no_network"
sys.path.insert(0, str(NO_NETWORK_DIR))
import network_guard  # noqa: E402  (tests/no_network: shared with the subprocesses' sitecustomize)

# ../shared/data next to the checkout, or wherever AIGCIQA_SHARED_DATA points (a clone kept elsewhere).
SHARED_DATA = Path(os.environ.get("AIGCIQA_SHARED_DATA")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data")


@pytest.fixture
def shared_data() -> Path:
    """The real published data in ../shared/data (see its README); skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set AIGCIQA_SHARED_DATA to its path)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every test: a socket connect other than a local Unix socket raises NetworkBlockedError."""
    monkeypatch.setattr(socket.socket, "connect", network_guard.guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", network_guard.guarded_connect_ex)


@pytest.fixture
def offline_environment():
    """Environment for a subprocess that must not reach the network (same guard, and Hub offline mode)."""
    def make(**extra: str) -> dict:
        env = dict(os.environ, HF_HUB_OFFLINE="1", **extra)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NO_NETWORK_DIR), env.get("PYTHONPATH")]))
        return env
    return make
