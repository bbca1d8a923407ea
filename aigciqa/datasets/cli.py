"""Command-line layer of the datasets subpackage: ``aigciqa import``, ``split``, ``prompts``."""

from __future__ import annotations


def register(subparsers) -> None:
    """Importers, splits and prompt-set commands register here as they are added."""
