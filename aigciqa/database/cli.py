"""``aigciqa info``: check a database folder and say what it holds."""

from __future__ import annotations

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
        files on disk; lists the stages that can run next. Output: a report on stdout (--json FILE: the
        same as JSON, '-' to print it). Exit status 2 names the file, record and field of the first
        problem.""",
        example="aigciqa info db/\naigciqa info db/ --json -")
    add_db_argument(parser)
    add_json_argument(parser, nargs="?", const=BARE_JSON)
    parser.set_defaults(func=run)


def run(args) -> int:
    from aigciqa.cli import deprecated, write_json
    from aigciqa.database import DatabaseFolder
    from aigciqa.database.info import format_report, inspect_folder
    report = inspect_folder(DatabaseFolder(args.db))
    if args.json == BARE_JSON:
        deprecated("--json without FILE", "--json -")
        args.json = "-"
    if args.json:
        write_json(args.json, asdict(report))
    if args.json != "-":
        print(format_report(report))
    return 0
