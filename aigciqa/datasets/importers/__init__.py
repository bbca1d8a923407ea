"""Importers of published databases into a database folder (``aigciqa import KIND SRC DEST``).

Each importer is a pure function ``read(src, **options) -> ImportResult``: it reads the published
files, checks them record by record, and returns the tables and the card. Bad input raises an
:class:`~aigciqa.errors.InputError` naming file, record and field; a record accepted with a change
(an out-of-range code imported as missing) is reported with ``warnings.warn(..., DataWarning)``.
:func:`import_database` runs one and writes its result with :meth:`DatabaseFolder.write`, which
checks everything again and writes all files or none.
"""

from __future__ import annotations

import textwrap
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from aigciqa.database import TABLES, DatabaseFolder
from aigciqa.errors import DataWarning, InputError
from aigciqa.datasets.importers.base import ImportResult, Importer
from aigciqa.registry import lookup


@dataclass
class ImportSummary:
    kind: str
    dest: str
    name: str
    rows: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)   # tables already in DEST that this import did not write
    images_listed: int = 0
    images_on_disk: int = 0


def _registry() -> dict[str, Importer]:
    from aigciqa.datasets.importers import agiqa3k, aigciqa2023, imagereward, meta_csv
    return {importer.name: importer for importer in
            (aigciqa2023.IMPORTER, agiqa3k.IMPORTER, imagereward.IMPORTER, meta_csv.IMPORTER)}


IMPORTERS: dict[str, Importer] = _registry()


def read_database(kind: str, src: str | Path, **options: Any) -> ImportResult:
    """Run importer ``kind`` on SRC without writing anything (warnings are emitted, not collected)."""
    importer = lookup(IMPORTERS, kind, "importer")
    unknown = sorted(set(options) - set(importer.options))
    if unknown:
        accepted = ", ".join(importer.options) or "none"
        raise InputError(f"option '{unknown[0]}' does not apply to importer '{importer.name}' "
                         f"(its options: {accepted})")
    return importer.read(Path(src), **options)


def import_database(kind: str, src: str | Path, dest: str | Path, *, overwrite: bool = False,
                    command: str | None = None, **options: Any) -> ImportSummary:
    """Import the published database ``kind`` from SRC into the database folder DEST.

    DEST must not hold a database already (``dataset.json``) unless ``overwrite``; then the
    imported tables and the card replace theirs and other tables stay (they must still agree with
    the new tables, or nothing is written). DataWarnings are re-emitted and listed in the summary.
    """
    folder = DatabaseFolder(dest)
    if folder.root.exists() and not folder.root.is_dir():
        raise InputError("destination exists and is not a folder", file=folder.root)
    _check_destination(folder, overwrite)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        result = read_database(kind, src, **options)
    data_warnings = [w for w in caught if issubclass(w.category, DataWarning)]
    with folder.transaction(command) as transaction:
        _check_destination(folder, overwrite)  # again under the lock: another import may have run
        kept = [name for name in folder.tables_present() if name not in result.tables] if folder.exists() else []
        try:
            transaction.write(result.tables, card=result.card, stage="import", command=command)
        except InputError as error:
            kept_files = {TABLES[name].filename for name in kept}
            if error.file is None or Path(error.file).name not in kept_files:
                raise
            raise InputError(f"{error.message} ({Path(error.file).name} is kept from the database that was "
                             "here: --overwrite replaces only the tables this import writes; remove that file, or "
                             "import into an empty folder)", file=error.file, row=error.row,
                             field=error.field) from None
    for caught_warning in caught:  # hand every warning on to the caller's filters
        warnings.warn_explicit(caught_warning.message, caught_warning.category,
                               caught_warning.filename, caught_warning.lineno)
    summary = ImportSummary(kind=lookup(IMPORTERS, kind, "importer").name, dest=str(folder.root),
                            name=result.card["name"],
                            rows={name: len(frame) for name, frame in result.tables.items()},
                            warnings=[str(w.message) for w in data_warnings], kept=kept)
    if "images" in result.tables:
        paths = result.tables["images"]["path"]
        summary.images_listed = len(paths)
        summary.images_on_disk = sum((folder.root / p).is_file() for p in paths)
    return summary


def _check_destination(folder: DatabaseFolder, overwrite: bool) -> None:
    if folder.exists() and not overwrite:
        raise InputError("already holds a database (dataset.json); choose an empty folder or pass "
                         "--overwrite to replace its imported tables", file=folder.root)


def format_summary(summary: ImportSummary) -> str:
    lines = [f"imported {summary.kind} into {summary.dest} (database '{summary.name}')"]
    lines += [f"  {name + '.csv':<12} {rows:>6} rows" for name, rows in summary.rows.items()]
    lines.append("  dataset.json (card)")
    if summary.images_listed:
        lines.append(f"  image files present: {summary.images_on_disk} of {summary.images_listed} listed"
                     + ("" if summary.images_on_disk == summary.images_listed
                        else f" (put the published images under {summary.dest}/ at the listed paths)"))
    if summary.kept:
        lines.append(f"  kept from before: {', '.join(name + '.csv' for name in summary.kept)}")
    lines.append(f"  {len(summary.warnings)} warning(s)")
    return "\n".join(lines)


def importer_help(registry: Mapping[str, Importer] | None = None, width: int = 96) -> str:
    """One wrapped paragraph per importer, for --help."""
    registry = registry or IMPORTERS
    return "\n".join(textwrap.fill(f"{imp.name}: {imp.summary} SRC: {imp.source}.", width=width,
                                   initial_indent="  ", subsequent_indent="      ")
                     for imp in registry.values())
