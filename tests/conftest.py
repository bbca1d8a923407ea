import hashlib
import os
import shutil
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


@pytest.fixture(autouse=True)
def private_hash_cache(tmp_path, monkeypatch):
    """Every test (and its subprocesses) remembers file hashes in its own folder, never in ~/.cache."""
    monkeypatch.setenv("AIGCIQA_HASH_CACHE", str(tmp_path / "file-sha256.sqlite"))


@pytest.fixture
def offline_environment():
    """Environment for a subprocess that must not reach the network (same guard, and Hub offline mode)."""
    def make(**extra: str) -> dict:
        env = dict(os.environ, HF_HUB_OFFLINE="1", **extra)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NO_NETWORK_DIR), env.get("PYTHONPATH")]))
        return env
    return make


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face Hub cache at HF_HOME=tmp/hf/, in offline mode for this process (subprocesses
    get HF_HOME from the environment and offline mode from :func:`offline_environment`)."""
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants as constants
    home = tmp_path / "hf"
    (home / "hub").mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return home


HUB_SMALL_FILE = 10_000   # below: a plain git blob (named by git sha1); above: a Git LFS file (named by sha256)


def hub_blob_name(file: Path) -> str:
    data = file.read_bytes()
    if len(data) < HUB_SMALL_FILE:
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def put_in_hub_cache(hub_cache):
    """put(repo_id, folder_or_file, ref="main") -> commit: lays the files out as huggingface_hub does,
    ``models--ORG--NAME/blobs/<hash>``, ``snapshots/<commit>/<path>`` linking to the blobs, ``refs/<ref>``."""
    def put(repo_id: str, source: Path, ref: str = "main") -> str:
        source = Path(source)
        files = ({p.relative_to(source).as_posix(): p for p in sorted(source.rglob("*")) if p.is_file()}
                 if source.is_dir() else {source.name: source})
        commit = hashlib.sha1(repr(sorted((n, hub_blob_name(p)) for n, p in files.items())).encode()).hexdigest()
        repo = hub_cache / "hub" / ("models--" + repo_id.replace("/", "--"))
        for name, file in files.items():
            blob = repo / "blobs" / hub_blob_name(file)
            blob.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, blob)
            link = repo / "snapshots" / commit / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
        return commit
    return put
