"""Benchmark figures go to benchmarks/RESULTS.md, written by the benchmarks themselves: each owns one
``## <topic>`` section, replaced whole on every run (other sections are kept as they are)."""

from __future__ import annotations

import platform
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nWritten by the benchmarks in this folder (each replaces its own section when run).\n"


def machine() -> str:
    """The interpreter and machine, with its load average (a shared machine slows every row alike)."""
    import os
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"{platform.machine()}, load average {load:.1f}")


def write_section(topic: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the section ``## topic`` of RESULTS.md with ``body``."""
    text = path.read_text("utf-8") if path.is_file() else HEADER
    section = f"## {topic}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(topic)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text, "utf-8")
