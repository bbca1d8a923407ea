"""``aigciqa info``: check a database folder and say what it holds."""

from __future__ import annotations

import sys
from dataclasses import asdict

# What a bare --json (the old flag) stands for: print the JSON report.
BARE_JSON = "\0bare"


def register(subparsers) -> None:
    from aigciqa.cli import add_command, add_db_argument, add_json_argument
    parser = add_command(
        subparsers, "info",
        description="""
        Input: a database folder DB. Validates the card (dataset.json) against its JSON Schema, every
        table's columns and types, and every id that points into another table; counts rows and image
        files on disk (--verify: and their sha256, or decodes those with none recorded);
        lists the trained runs under DB/runs/ and, apart, the
        unfinished ones (epochs done of planned, the command that resumes them); lists the stages that can
        run next (an unfinished run's resume before its evaluation); reports the size
        of the derived data under DB/cache/ (the model's boundary-activation cache) per image and in
        all. A command killed mid-write is finished or undone (its commit journal) and its temporary
        files removed, unless a writer is active; the report says what was cleaned. Output: a report on
        stdout (--json FILE: the same as JSON, '-' to print it); --remove-cache deletes DB/cache/ after
        reporting (it is rebuilt when next needed). Exit status 2 names the file, record and field of
        the first problem.""",
        example="aigciqa info db/\naigciqa info db/ --verify --json -\naigciqa info db/ --remove-cache")
    add_db_argument(parser)
    add_json_argument(parser, nargs="?", const=BARE_JSON)
    parser.add_argument("--verify", action="store_true",
                        help="also check every image file against the sha256 recorded in images.csv (decode it "
                             "where none is recorded, as in imported databases)")
    parser.add_argument("--remove-cache", action="store_true",
                        help="delete DB/cache/ (derived data such as the boundary-activation cache) after reporting")
    parser.set_defaults(func=run)


def run(args) -> int:
    from aigciqa.cli import deprecated, write_json
    from aigciqa.database import DatabaseFolder
    from aigciqa.database.info import format_report, inspect_folder, remove_caches
    folder = DatabaseFolder(args.db)
    report = inspect_folder(folder, verify=args.verify)
    if args.json == BARE_JSON:
        deprecated("--json without FILE", "--json -")
        args.json = "-"
    if args.json:
        write_json(args.json, asdict(report))
    if args.json != "-":
        print(format_report(report))
    if args.remove_cache:
        freed = remove_caches(folder)
        print(f"removed {folder.root / 'cache'} ({freed / 1e6:.1f} MB)", file=sys.stderr if args.json == "-" else sys.stdout)
    return 0
