"""Benchmark figures go to benchmarks/RESULTS.md, written by the benchmarks themselves: each owns one
``## <topic>`` section, replaced whole on every run (other sections are kept as they are)."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nWritten by the benchmarks in this folder (each replaces its own section when run).\n"


def machine() -> str:
    """The interpreter and machine, with its load average (a shared machine slows every row alike)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"{platform.machine()}, load average {load:.1f}")


def command_line(argv: list[str] | None = None) -> str:
    """The command that reproduces the run, as typed from the repository root (script path made relative)."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    try:
        argv[0] = script.relative_to(RESULTS.parent.parent).as_posix()
    except ValueError:
        argv[0] = script.name
    return "`python " + " ".join(shlex.quote(word) for word in argv) + "`"


def provenance(argv: list[str] | None = None) -> str:
    """The first line of a section: the command, the machine with its load, the date."""
    return f"{command_line(argv)} ({machine()}; {time.strftime('%Y-%m-%d')})."


def markdown_table(header: list[str], rows: list[list], align: str) -> str:
    """A Markdown table; ``align`` has one letter per column, ``l`` (text) or ``r`` (figures)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(topic: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the section ``## topic`` of RESULTS.md with ``body``."""
    text = path.read_text("utf-8") if path.is_file() else HEADER
    section = f"## {topic}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(topic)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    from aigciqa.database.atomic import write_text_atomic
    write_text_atomic(path, text)  # a killed run leaves the old file, not half of it
