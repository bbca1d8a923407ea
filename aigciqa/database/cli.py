"""``aigciqa info``: check a database folder and say what it holds."""

from __future__ import annotations

import json
from dataclasses import asdict


def register(subparsers) -> None:
    from aigciqa.cli import add_command
    parser = add_command(
        subparsers, "info", summary="Check a database folder and report what it holds and what can run next.",
        description="""
        Input: a database folder. Validates the card (dataset.json) against its JSON Schema, every
        table's columns and types, and every id that points into another table; counts rows and image
        files on disk (--verify: and their sha256); lists the stages that can run next. A command
        killed mid-write is finished or undone (its commit journal) and its temporary files removed,
        unless a writer is active; the report says what was cleaned. Output: a report on stdout
        (--json for a machine-readable one). Exit status 2 names the file, record and field of the
        first problem.""",
        example="aigciqa info db/ --verify")
    parser.add_argument("folder", help="database folder")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--verify", action="store_true",
                        help="also check every image file against the sha256 recorded in images.csv")
    parser.set_defaults(func=run)


def run(args) -> int:
    from aigciqa.database import DatabaseFolder
    from aigciqa.database.info import format_report, inspect_folder
    report = inspect_folder(DatabaseFolder(args.folder), verify=args.verify)
    print(json.dumps(asdict(report), indent=2) if args.json else format_report(report))
    return 0
