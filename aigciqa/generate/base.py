"""The one interface every text-to-image generator keeps: load once, then prompt + seed -> image.

A :class:`Generator` is built from its settings (steps, guidance, size, scheduler, dtype and the
family's own options, already merged with defaults) and a weights source: ``"tiny"``, a local
folder or a Hub repo id (resolved by :mod:`aigciqa.weights` in :meth:`Generator.check_weights`). :meth:`Generator.generate` must give the same image for the same prompt and seed, so one
image of a database can be regenerated alone. Extra columns it returns go to ``images.csv``; extra
files (a ControlNet conditioning image) are written with the image in one atomic step.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from aigciqa.common.files import file_sha256
from aigciqa.errors import InputError
from aigciqa.weights.resolve import Resolved
from aigciqa.weights.resolve import resolve as resolve_weights

TINY = "tiny"

# Settings every generator understands; families add their own (see ``Generator.options``).
COMMON_OPTIONS: dict[str, dict] = {
    "family": {"type": "string"},
    "weights": {"type": "string", "minLength": 1},
    "steps": {"type": "integer", "minimum": 1},
    "guidance": {"type": "number", "minimum": 0},
    # Bounded so that a typo (width 100000) is refused before a folder is made or memory runs out.
    "width": {"type": "integer", "minimum": 8, "maximum": 4096, "multipleOf": 8},
    "height": {"type": "integer", "minimum": 8, "maximum": 4096, "multipleOf": 8},
    "scheduler": {"type": "string"},
    "dtype": {"enum": ["float32", "float16", "bfloat16"]},
    "negative_prompt": {"type": "string"},
}

# Settings recorded as images.csv columns (a rerun with other values is refused, see run.py).
RECORDED = ("steps", "guidance", "scheduler", "dtype")


@dataclass
class Output:
    image: Any                                               # PIL.Image.Image, RGB
    columns: dict[str, Any] = field(default_factory=dict)    # extra images.csv columns
    files: dict[str, bytes] = field(default_factory=dict)    # extra folder-relative files


class Generator:
    """Base class: subclasses set the class attributes and implement ``load`` and ``generate``."""

    family: ClassVar[str]
    summary: ClassVar[str]
    defaults: ClassVar[dict]                 # settings with real weights
    tiny_defaults: ClassVar[dict | None] = None   # overrides in tiny mode; None: no tiny mode
    options: ClassVar[dict] = {}             # family-specific settings: name -> JSON Schema
    weights_help: ClassVar[str] = ""         # what a weights folder must hold, and where to get it

    def __init__(self, name: str, settings: dict, weights: str, device: str = "cpu"):
        self.name = name
        self.settings = settings
        self.weights = weights       # the spec as given; the local path once check_weights resolved it
        self.device = device
        self.weights_sha256 = ""
        self.resolved: Resolved | None = None

    @property
    def is_tiny(self) -> bool:
        return self.weights == TINY

    def check_weights(self) -> None:
        """Checks before any work: the weights resolve to a local folder (a Hub repo id is found in the
        cache or downloaded) that holds the right kind of model."""
        if self.is_tiny:
            if self.tiny_defaults is None:
                raise InputError(f"generator '{self.name}' ({self.family}) has no tiny mode; give its weights "
                                 f"folder with --weights {self.name}=PATH ({self.weights_help})")
            return
        if self.resolved is None:
            self.resolved = resolve_weights(self.weights, what=f"weights folder for '{self.name}'",
                                            hint=self.weights_help)
            self.weights = str(self.resolved.path)
        if not self.resolved.path.is_dir():
            raise InputError(f"weights for '{self.name}' must be a folder ({self.weights_help})",
                             file=self.resolved.path)

    def provenance(self, hash_cache: dict | None = None) -> dict[str, Any]:
        """Where the weights came from, for the card: repo id, commit and the sha256 of every file."""
        return {} if self.resolved is None else {"weights_files": self.resolved.record(cache=hash_cache)}

    @property
    def weights_label(self) -> str:
        """images.csv's 'weights': 'tiny', the Hub repo id, or the folder's absolute path."""
        return TINY if self.is_tiny else (self.resolved.label if self.resolved else str(Path(self.weights).resolve()))

    @property
    def weights_revision(self) -> str:
        """images.csv's 'weights_revision': the Hub commit the weights were resolved to ("" for a plain folder)."""
        return self.resolved.commit if self.resolved else ""

    def load(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def generate(self, prompt: str, seed: int, relpath: str) -> Output:  # pragma: no cover - abstract
        raise NotImplementedError

    def scheduler_name(self) -> str:
        return str(self.settings.get("scheduler", ""))

    def recorded(self) -> dict[str, Any]:
        """The settings that go into every row of images.csv (after :meth:`load`)."""
        values = {key: self.settings.get(key, "") for key in RECORDED}
        values["scheduler"] = self.scheduler_name()
        return values


def png_bytes(image) -> bytes:
    """PNG encoding with no time stamp or other varying metadata: same pixels, same bytes."""
    import io
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def derive_seed(generator: str, prompt_id: str, sample: int, base_seed: int = 0) -> int:
    """A seed from (generator, prompt id, sample): the same everywhere, independent of run order."""
    text = json.dumps([int(base_seed), str(generator), str(prompt_id), int(sample)])
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF


def folder_sha256(path: str | Path, cache: dict | None = None) -> str:
    """sha256 of a weights folder: every file's relative path and content, in name order.

    ``cache`` (kept in the card) maps the folder to its last hash and a fingerprint of names, sizes
    and modification times, so a multi-gigabyte folder is read again only when it changed.
    """
    root = Path(path).resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                                                                           p.relative_to(root).parts))
    fingerprint = hashlib.sha256()
    for file in files:
        stat = file.stat()
        fingerprint.update(f"{file.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    key = str(root)
    if cache is not None and cache.get(key, {}).get("fingerprint") == fingerprint.hexdigest():
        return cache[key]["sha256"]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode() + b"\0" + file_sha256(file).encode() + b"\n")
    if cache is not None:
        cache[key] = {"fingerprint": fingerprint.hexdigest(), "sha256": digest.hexdigest()}
    return digest.hexdigest()


def writable_folder(path: Path) -> None:
    """Raise an InputError unless files can be created in ``path`` (made if absent)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise InputError(f"cannot write in the output folder: {error.strerror}", file=path) from None
