"""Remembered file hashes: a checkpoint is read once per change, never trusted after one."""

import hashlib
import os

from aigciqa.common import files
from aigciqa.common.files import file_sha256, hash_cache_path, remembered_sha256


def count_reads(monkeypatch):
    reads = []
    real = files.file_sha256

    def counting(path, *args, **kwargs):
        reads.append(str(path))
        return real(path, *args, **kwargs)
    monkeypatch.setattr(files, "file_sha256", counting)
    return reads


def test_a_file_is_read_once_until_it_changes(tmp_path, monkeypatch):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * 5000)
    reads = count_reads(monkeypatch)
    first = remembered_sha256(weights)
    assert first == hashlib.sha256(b"a" * 5000).hexdigest()
    assert remembered_sha256(weights) == first and len(reads) == 1
    assert hash_cache_path().is_file()

    # Same size, modification time put back: the change time and the new content still show.
    stat = weights.stat()
    weights.write_bytes(b"b" * 5000)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert remembered_sha256(weights) == hashlib.sha256(b"b" * 5000).hexdigest()
    assert len(reads) == 2


def test_a_link_and_its_target_share_one_entry(tmp_path, monkeypatch):
    target = tmp_path / "blob"
    target.write_bytes(b"weights")
    link = tmp_path / "snapshot-file"
    link.symlink_to(target)
    reads = count_reads(monkeypatch)
    assert remembered_sha256(link) == remembered_sha256(target) == file_sha256(target)
    assert len(reads) == 1


def test_an_unwritable_cache_falls_back_to_reading(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("AIGCIQA_HASH_CACHE", str(blocker / "cache.sqlite"))
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"x")
    assert remembered_sha256(weights) == hashlib.sha256(b"x").hexdigest()
