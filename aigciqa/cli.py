"""The ``aigciqa`` command: one subcommand per stage, all sharing a database folder.

Each stage keeps its command-line layer in its own ``cli`` module with a ``register(subparsers)``
function; this file only knows the commands' names and summaries (:data:`COMMANDS`), builds the
parser, prints errors and sets the exit status. It imports a stage's ``cli`` module only when that
stage's command runs, and the ``cli`` modules import the stage's code only inside their run
functions: ``aigciqa --help`` and a single command start fast (see benchmarks/bench_startup.py).

The conventions every command follows are written down in docs/cli.md; old spellings keep working for
one release and print a deprecation line naming the new one (:func:`deprecated`).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import textwrap
from dataclasses import dataclass

from aigciqa import __version__
from aigciqa.errors import InputError

# The release in which the old spellings (see docs/cli.md) stop working.
REMOVAL_VERSION = "0.3"


@dataclass(frozen=True)
class Command:
    module: str   # the stage's cli module; its register(subparsers) adds this command
    summary: str  # one line for `aigciqa --help`


# Order = order in `aigciqa --help`.
COMMANDS: dict[str, Command] = {
    "import": Command("aigciqa.datasets.cli", "Import a published quality database into a database folder."),
    "split": Command("aigciqa.datasets.cli", "Make seeded train/val/test splits of a database folder (splits.csv)."),
    "prompts": Command("aigciqa.datasets.cli", "Show an embedded prompt set or draw a new category x challenge grid."),
    "info": Command("aigciqa.database.cli", "Check a database folder and report what it holds and what can run next."),
    "generate": Command("aigciqa.generate.cli",
                        "Generate the database's images: every prompt x generator x sample, resumable."),
    "annotate": Command("aigciqa.annotate.cli", "Rate the folder's images in a window; export or show the ratings."),
    "build-mos": Command("aigciqa.mos.cli",
                         "Screen subjects (ITU-R BT.500) and compute z-score MOS per image and perspective."),
    "sureal-export": Command("aigciqa.mos.cli", "Write one perspective of a ratings table as a sureal dataset JSON."),
    "build-vqa": Command("aigciqa.qa_builder.cli",
                         "Build visual question answering pairs from MOS, labels and explanations."),
    "train": Command("aigciqa.model.cli", "Train MINT-IQA: the scorer, instruction tuning or feedback."),
    "evaluate": Command("aigciqa.model.cli", "Evaluate a trained run: SRCC, KRCC, PLCC (raw and logistic), RMSE."),
    "score": Command("aigciqa.model.cli", "Score image files with a trained run, per perspective."),
    "baseline": Command("aigciqa.baselines.cli", "Score every image of a database folder with baseline methods."),
    "benchmark": Command("aigciqa.baselines.cli",
                         "The paper's protocol: methods trained and scored on repeated splits, one table."),
    "weights": Command("aigciqa.weights.cli",
                       "List, prefetch and verify model weights (Hugging Face Hub ids, the paper's defaults)."),
    "demo": Command("aigciqa.demo", "Run every stage end to end on a small embedded example."),
}

DESCRIPTION = """\
Build and model quality databases of AI-generated images (the AIGCIQA2023+ database and the
MINT-IQA model). Every command reads and writes one database folder DB: dataset.json (the card),
prompts.csv, images.csv, ratings.csv, mos.csv, labels.csv, splits.csv, ...
"""

EPILOG = """\
example:
  aigciqa demo -o demo-out                  # every stage on a small embedded example
  aigciqa import aigciqa2023 SRC db/        # the published AIGCIQA2023 annotations
  aigciqa info db/                          # what the folder holds and what can run next
"""


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr, ``aigciqa COMMAND: error: ...`` with
    where to read the usage, and exit status 2 (argparse prints its whole usage block first). Subparsers
    inherit the class (``add_subparsers`` makes parsers of the parent's type), so every command and
    subcommand answers this way."""

    def error(self, message: str):
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if choice:  # argparse lists the choices; the registries' "did you mean" names the close ones first
            from aigciqa.registry import did_you_mean
            hint = did_you_mean(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)))
            at = message.index(" (choose from ", choice.start())
            message = message[:at] + hint + message[at:]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_args(self, args=None, namespace=None):
        # argparse reports unknown arguments from the top parser; name the (sub)command they were given to.
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            self.chosen_parser(parsed).error(f"unrecognized arguments: {' '.join(unknown)}")
        return parsed

    def chosen_parser(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        """The innermost subcommand's parser that ``parsed`` went through (self if none)."""
        for action in self._actions:
            if isinstance(action.choices, dict):  # a subparsers action: command word -> its parser
                chosen = action.choices.get(getattr(parsed, action.dest, None))
                if chosen is not None:
                    return chosen.chosen_parser(parsed) if isinstance(chosen, OneLineErrorParser) else chosen
        return self


def add_command(subparsers, name: str, *, description: str, example: str, summary: str | None = None, **kwargs):
    """Add a subcommand whose help has a one-line summary (default: its line in :data:`COMMANDS`), a
    description and an example."""
    summary = summary or COMMANDS[name].summary
    parser = subparsers.add_parser(
        name, help=summary, description=summary + "\n\n" + textwrap.dedent(description).strip(),
        epilog="example:\n" + textwrap.indent(textwrap.dedent(example).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
    parser.set_defaults(prog=parser.prog)  # the innermost (sub)command's: error lines name it, as usage errors do
    return parser


def add_db_argument(parser, help: str = "database folder") -> None:
    """The database folder: the first positional of every command that works on one, called DB."""
    parser.add_argument("db", metavar="DB", help=help)


def add_json_argument(parser, help: str = "write the result as JSON to FILE ('-': print it instead of the table)",
                      **kwargs) -> None:
    """``--json FILE``: the one machine-readable output switch."""
    parser.add_argument("--json", metavar="FILE", help=help, **kwargs)


def write_json(path: str, data) -> None:
    """``--json FILE``'s output: printed for '-', else written atomically (nothing half-written)."""
    import json
    text = json.dumps(data, indent=2, default=float) + "\n"
    if path == "-":
        print(text, end="")
        return
    from aigciqa.database.atomic import write_bytes_atomic
    write_bytes_atomic(path, text.encode("utf-8"))


def deprecated(old: str, new: str) -> None:
    """One line on stderr: ``old`` still works this release; ``new`` is how to say it (as diffusers'
    ``deprecate`` does)."""
    print(f"aigciqa: deprecated: {old} will be removed in version {REMOVAL_VERSION}; use {new}", file=sys.stderr)


def old_spelling_folder(word: str, actions) -> bool:
    """Whether ``word``, where a subcommand is expected, is the folder of an old spelling (``train DB``)
    rather than a mistyped subcommand (``train scorr DB``), which then gets the parser's did-you-mean."""
    import os
    from aigciqa.registry import did_you_mean
    return os.path.exists(word) or not did_you_mean(word, actions)


class DeprecatedOption(argparse.Action):
    """An old option spelling: stores into the new option's destination and prints a deprecation line."""

    def __init__(self, option_strings, dest, new: str, append: bool = False, const_value=None, **kwargs):
        self.new, self.append, self.const_value = new, append, const_value
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        deprecated(option_string, self.new)
        if self.nargs == 0:
            values = self.const_value
        if self.append:
            values = [*(getattr(namespace, self.dest, None) or []), values]
        setattr(namespace, self.dest, values)


def add_deprecated_option(parser, old: str, *, dest: str, new: str, **kwargs) -> None:
    """Accept ``old`` for one more release as a hidden alias of the option ``new`` (same ``dest``); a flag
    (``nargs=0``) stores ``const_value``."""
    parser.add_argument(old, dest=dest, action=DeprecatedOption, new=new, help=argparse.SUPPRESS,
                        default=argparse.SUPPRESS, **kwargs)


def add_out_argument(parser, metavar: str, help: str, *, required: bool = False) -> None:
    """``-o/--out``: every output file or folder (``required``: the usage line shows it without brackets)."""
    parser.add_argument("-o", "--out", metavar=metavar, help=help, required=required)


def upgrade_positional_out(argv: list[str], *, position: int, old: str, new: str) -> list[str]:
    """An old spelling that named the output as a positional after the inputs (``demo OUT``,
    ``sureal-export DB OUT``): the ``position``-th positional word (0-based, after the command word) becomes
    ``-o WORD``, with a deprecation line, so the parser itself can require ``-o`` and its usage says so."""
    command = next(action.choices[argv[0]] for action in build_parser([argv[0]])._actions
                   if isinstance(action.choices, dict))
    # How many words each option takes (a flag none, --scale LOW HIGH two): those words are not positionals.
    taken = {option: action.nargs if isinstance(action.nargs, int) else 1
             for action in command._actions for option in action.option_strings}
    positionals, k = [], 1
    while k < len(argv) and argv[k] != "--":
        if argv[k].startswith("-") and argv[k] != "-":
            k += taken.get(argv[k], 0)
        else:
            positionals.append(k)
        k += 1
    if len(positionals) <= position or any(word in ("-o", "--out") or word.startswith("--out=") for word in argv):
        return argv  # no old positional, or -o given too: the parser names the extra word
    at = positionals[position]
    deprecated(old, new)
    return [*argv[:at], "-o", argv[at], *argv[at + 1:]]


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


def whole_number(minimum: int):
    """An argparse type: a whole number of at least ``minimum`` (``--batch-size 0`` is refused at parse
    time, exit status 2, instead of failing later or doing nothing)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the least allowed, {minimum}")
        return value
    parse.__name__ = "whole number"
    return parse


def non_negative_number(text: str) -> float:
    """An argparse type: a finite number of at least 0 (``--lr nan``, ``--lr -1`` refused at parse time;
    ``--lr 0`` keeps the weights, as Fig. 11's "without fine-tuning" variant needs)."""
    import math
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number, 0 or more")
    return value


def fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1 (``--fix-rate 1.5`` or ``nan`` refused at parse time)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0.0 <= value <= 1.0:  # also false for nan
        raise argparse.ArgumentTypeError(f"{text} is outside 0-1")
    return value


# A run's name is one folder under DB/runs: no separator, no '..', nothing hidden, nothing a shell quotes.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def run_name(text: str) -> str:
    """An argparse type: ``--run NAME``, one folder name under DB/runs (``--run a/b`` would write
    DB/runs/a/b, which ``info`` does not list; ``--run ../x`` would leave DB/runs)."""
    if not RUN_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a run name: one folder name under DB/runs, up to 100 letters, digits, '_', '.' "
            "and '-', starting with a letter or digit (e.g. --run scorer-small)")
    return text


def build_parser(commands=None) -> argparse.ArgumentParser:
    """The parser; ``commands`` (default: all) get their full subparser, the others only their name and
    summary, so building it imports just the stage modules it needs."""
    parser = OneLineErrorParser(prog="aigciqa", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"aigciqa {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = set(COMMANDS) if commands is None else set(commands) & set(COMMANDS)
    modules = list(dict.fromkeys(COMMANDS[name].module for name in wanted))
    registered = set()
    for name, command in COMMANDS.items():
        if name in registered:
            continue
        if command.module in modules:
            before = set(subparsers.choices)
            importlib.import_module(command.module).register(subparsers)
            registered |= set(subparsers.choices) - before
        else:
            subparsers.add_parser(name, help=command.summary)
    return parser


def rerun_resumes(args) -> str:
    """What an interrupted command leaves, for commands whose plain rerun continues where it stopped. A command
    for which that is untrue sets its own ``interrupted`` default: a function of its parsed arguments
    (``args.argv`` holds the arguments it was given) returning the line."""
    return "interrupted; finished outputs are kept, a rerun resumes"


def command_word(argv: list[str]) -> str | None:
    """The subcommand an argument list runs (its first word), or None (``--help``, ``--version``)."""
    return argv[0] if argv and not argv[0].startswith("-") else None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    word = command_word(argv)
    if word in COMMANDS:  # a stage's old spellings (docs/cli.md), rewritten with a deprecation line
        upgrade = getattr(importlib.import_module(COMMANDS[word].module), "upgrade_argv", None)
        argv = upgrade(argv) if upgrade else argv
    parser = build_parser([word] if word else [])
    args = parser.parse_args(argv)
    args.argv = argv  # what the command was given (after the old spellings' rewriting), e.g. to say how to rerun it
    from aigciqa.common.progress import library_bars  # after parsing: `--help` imports no more than it needs
    try:
        with library_bars(not getattr(args, "quiet", False)):
            result = args.func(args)
    except InputError as error:
        print(f"{getattr(args, 'prog', 'aigciqa ' + args.command)}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"{getattr(args, 'prog', 'aigciqa ' + args.command)}: {getattr(args, 'interrupted', rerun_resumes)(args)}",
              file=sys.stderr)
        return 130
    return int(result or 0)
