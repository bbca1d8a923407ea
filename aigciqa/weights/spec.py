"""A weights spec as the user writes it: a local path, or ``ORG/NAME[@REVISION][:FILE]`` on the Hub.

- ``/models/sd15``, ``./sd15``, ``~/m.gguf``: a local folder or file (a path that exists is always local).
- ``stable-diffusion-v1-5/stable-diffusion-v1-5``: a Hub repo, revision ``main``.
- ``lllyasviel/sd-controlnet-canny@a1b2c3...``: pinned to a commit (or a branch or tag).
- ``bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf``: one file of a repo
  (GGUF models), with ``@REVISION`` before the ``:`` when pinned.

A relative path of the form ``a/b`` that does not exist is read as a repo id; write ``./a/b`` to mean a
local folder. Git revisions cannot contain ``:``, and repo ids cannot contain ``@`` or ``:``, so the
syntax is unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aigciqa.errors import InputError

DEFAULT_REVISION = "main"
# The Hub's rule for repo ids: one '/', names of letters, digits, '-', '_', '.' (no '--' or '..' at the ends).
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
LOCAL_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")


@dataclass(frozen=True)
class HubSpec:
    repo_id: str
    revision: str = DEFAULT_REVISION
    filename: str = ""          # one file of the repo (GGUF); "" = a snapshot of the repo

    def __str__(self) -> str:
        text = self.repo_id + (f"@{self.revision}" if self.revision != DEFAULT_REVISION else "")
        return text + (f":{self.filename}" if self.filename else "")

    def pinned(self, commit: str) -> str:
        """The spec at an exact commit: what a later run passes to get the same files."""
        return f"{self.repo_id}@{commit}" + (f":{self.filename}" if self.filename else "")


def parse(spec: str | Path) -> Path | HubSpec:
    """A local path (it exists, or it is written like a path) or a :class:`HubSpec`."""
    text = str(spec).strip()
    if not text:
        raise InputError("empty weights spec: give a local path or a Hub repo id ORG/NAME[@REVISION][:FILE]")
    if isinstance(spec, Path) or text.startswith(LOCAL_PREFIXES) or Path(text).expanduser().exists():
        return Path(text).expanduser()
    head, colon, filename = text.partition(":")
    repo_id, at, revision = head.partition("@")
    if not REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        return Path(text)  # not a repo id: a (missing) local path, reported by the caller
    if (at and not revision) or (colon and not filename):
        raise InputError(f"weights spec '{text}' has an empty revision or file name: write "
                         "ORG/NAME, ORG/NAME@REVISION, ORG/NAME:FILE or ORG/NAME@REVISION:FILE")
    return HubSpec(repo_id, revision or DEFAULT_REVISION, filename)
