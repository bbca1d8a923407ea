"""Name lookups with "did you mean" errors, shared by every registry (importers, generators, presets)."""

from __future__ import annotations

import difflib
from typing import Mapping, TypeVar

from aigciqa.errors import InputError

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, kind: str) -> T:
    """Return ``registry[name]``; an unknown name raises InputError suggesting the closest names."""
    key = name.strip().lower()
    if key in registry:
        return registry[key]
    close = difflib.get_close_matches(key, list(registry), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise InputError(f"unknown {kind} '{name}'{hint} (known: {', '.join(sorted(registry))})")
