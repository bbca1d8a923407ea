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
    raise InputError(f"unknown {kind} '{name}'{did_you_mean(key, registry)} (known: {', '.join(sorted(registry))})")


def did_you_mean(name: str, known) -> str:
    """``"; did you mean 'a' or 'b'?"`` with the known names closest to ``name``, or "" when none is close."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
