"""What an importer is and what it returns (the registry of importers is the package's ``__init__``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd


@dataclass
class ImportResult:
    """What an importer read: tables by name (see ``aigciqa.database.tables.TABLES``) and the card."""
    tables: dict[str, pd.DataFrame]
    card: dict


@dataclass(frozen=True)
class Importer:
    name: str
    summary: str                       # one line for --help
    source: str                        # what SRC is
    read: Callable[..., ImportResult]  # read(src: Path, **options) -> ImportResult
    options: tuple[str, ...] = ()      # keyword options read() accepts
