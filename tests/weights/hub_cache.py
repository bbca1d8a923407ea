"""A Hugging Face Hub cache laid out by a test, the way huggingface_hub lays it out.

``<hub>/models--ORG--NAME/blobs/<hash>`` holds each file once, named as the Hub names it (git blob sha1
for small files, sha256 for large ones, which Git LFS stores); ``snapshots/<commit>/<path>`` links to
the blob; ``refs/main`` holds the commit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

SMALL = 10_000   # below this a file is a plain git blob in this fake repo; above, a Git LFS file


def blob_name(file: Path) -> str:
    data = file.read_bytes()
    if len(data) < SMALL:
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return hashlib.sha256(data).hexdigest()


def put_in_cache(hub: Path, repo_id: str, source: Path, ref: str = "main") -> str:
    """Lay ``source`` (a folder, or one file) out as ``repo_id`` at ``ref``; returns the commit hash."""
    files = ({p.relative_to(source).as_posix(): p for p in sorted(source.rglob("*")) if p.is_file()}
             if source.is_dir() else {source.name: source})
    commit = hashlib.sha1(repr(sorted((n, blob_name(p)) for n, p in files.items())).encode()).hexdigest()
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    for name, file in files.items():
        blob = repo / "blobs" / blob_name(file)
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, blob)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    return commit
