"""``aigciqa info``: check a database folder and say what it holds."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict


def register(subparsers) -> None:
    from aigciqa.cli import add_command
    parser = add_command(
        subparsers, "info", summary="Check a database folder and report what it holds and what can run next.",
        description="""
        Input: a database folder. Validates the card (dataset.json) against its JSON Schema, every
        table's columns and types, and every id that points into another table; counts rows and image
        files on disk; lists the stages that can run next; reports the size of the derived data
        under DIR/cache/ (the model's boundary-activation cache) per image and in all. Output: a
        report on stdout (--json for a machine-readable one); --remove-cache deletes DIR/cache/ (it
        is rebuilt when next needed). Exit status 2 names the file, record and field of the first problem.""",
        example="aigciqa info db/\naigciqa info db/ --remove-cache")
    parser.add_argument("folder", help="database folder")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--remove-cache", action="store_true",
                        help="delete DIR/cache/ (derived data such as the boundary-activation cache) after reporting")
    parser.set_defaults(func=run)


def run(args) -> int:
    from aigciqa.database import DatabaseFolder
    from aigciqa.database.info import format_report, inspect_folder, remove_caches
    folder = DatabaseFolder(args.folder)
    report = inspect_folder(folder)
    print(json.dumps(asdict(report), indent=2) if args.json else format_report(report))
    if args.remove_cache:
        freed = remove_caches(folder)
        print(f"removed {folder.root / 'cache'} ({freed / 1e6:.1f} MB)", file=sys.stderr if args.json else sys.stdout)
    return 0
