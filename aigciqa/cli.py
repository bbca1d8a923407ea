"""The ``aigciqa`` command: one subcommand per stage, all sharing a database folder.

Each stage keeps its command-line layer in its own ``cli`` module with a ``register(subparsers)``
function; this file only gathers them, prints errors and sets the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap

from aigciqa import __version__
from aigciqa.errors import InputError

# Order = order in `aigciqa --help`. Each module defines register(subparsers).
STAGE_CLIS = (
    "aigciqa.datasets.cli",       # import, split, prompts
    "aigciqa.database.cli",       # info
    "aigciqa.generate.cli",       # generate
    "aigciqa.annotate.cli",       # annotate (window, export, status)
    "aigciqa.mos.cli",            # build-mos, sureal-export
    "aigciqa.qa_builder.cli",     # build-vqa
    "aigciqa.model.cli",          # train, evaluate, score
    "aigciqa.weights.cli",        # weights (list, download, verify)
    "aigciqa.baselines.cli",      # baseline
    "aigciqa.demo",               # demo
)

DESCRIPTION = """\
Build and model quality databases of AI-generated images (the AIGCIQA2023+ database and the
MINT-IQA model). Every command reads and writes one database folder: dataset.json (the card),
prompts.csv, images.csv, ratings.csv, mos.csv, labels.csv, splits.csv, ...
"""

EPILOG = """\
example:
  aigciqa demo demo-out                     # every stage on a small embedded example
  aigciqa import aigciqa2023 SRC db/        # the published AIGCIQA2023 annotations
  aigciqa info db/                          # what the folder holds and what can run next
"""


def add_command(subparsers, name: str, *, summary: str, description: str, example: str, **kwargs):
    """Add a subcommand whose help has a one-line summary, a description and an example."""
    return subparsers.add_parser(
        name, help=summary, description=summary + "\n\n" + textwrap.dedent(description).strip(),
        epilog="example:\n" + textwrap.indent(textwrap.dedent(example).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


class _RangeAction(argparse.Action):
    """Two numbers LOW HIGH with LOW < HIGH (argparse has already made them floats)."""

    def __call__(self, parser, namespace, values, option_string=None):
        low, high = values
        if not low < high:
            parser.error(f"{option_string} {low:g} {high:g}: LOW must be below HIGH, e.g. {option_string} 0 5")
        setattr(namespace, self.dest, (low, high))


def add_range_argument(parser, flag: str, help: str) -> None:
    """A numeric range option, written the same way by every command: ``--scale 0 5``."""
    parser.add_argument(flag, nargs=2, type=float, metavar=("LOW", "HIGH"), action=_RangeAction, help=help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aigciqa", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"aigciqa {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in STAGE_CLIS:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except InputError as error:
        print(f"aigciqa {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"aigciqa {args.command}: interrupted; finished outputs are kept, a rerun resumes",
              file=sys.stderr)
        return 130
    return int(result or 0)
