"""Benchmark of ``aigciqa import`` on the published files in ../shared/data (each kind whose files are there).

For each kind, in one run: reading and checking the published files in this process (``read_database``,
nothing written; imports warmed up), and the whole ``aigciqa import KIND SRC DB`` command as a process
(interpreter start, imports, reading, checks and the all-or-nothing write), against a bare interpreter
(``python -c "import sys"``) timed in the same run. Best of N each.

Writes the "import" section of benchmarks/RESULTS.md.

    python benchmarks/bench_import.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder's helpers
from bench_startup import best_wall  # noqa: E402
from results import markdown_table, provenance, write_section  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = {"aigciqa2023": DATA / "aigciqa2023", "agiqa3k": DATA / "agiqa3k" / "data.csv",
           "imagereward": DATA / "imagereward" / "test.json"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs of each (default 3)")
    args = parser.parse_args()
    from aigciqa.datasets.importers import read_database
    from aigciqa.errors import DataWarning
    present = {kind: src for kind, src in SOURCES.items() if src.exists()}
    if not present:
        print(f"none of the published files is in {DATA}", file=sys.stderr)
        return 1
    python = sys.executable
    bare = best_wall([python, "-c", "import sys"], args.repeats)
    rows = [["bare interpreter `python -c \"import sys\"` (reference)", "", "", f"{bare:.3f}", "1.00x"]]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        for kind, src in present.items():
            read_database(kind, src)  # warm-up: imports and the file cache
            reads, result = [], None
            for _ in range(args.repeats):
                started = time.perf_counter()
                result = read_database(kind, src)
                reads.append(time.perf_counter() - started)
            counter = iter(range(args.repeats))
            whole = min(best_wall([python, "-m", "aigciqa", "import", kind, str(src),
                                   str(Path(tmp) / f"{kind}{next(counter)}")], 1) for _ in range(args.repeats))
            records = ", ".join(f"{len(frame)} {name}" for name, frame in result.tables.items())
            rows.append([f"`aigciqa import {kind}`", records, f"{min(reads):.3f}", f"{whole:.3f}",
                         f"{whole / bare:.2f}x"])
    table = markdown_table(["run", "records", "read + checks in-process s", "whole process s", "/ bare interpreter"],
                           rows, "llrrr")
    print(table)
    write_section("import", f"""\
{provenance()}
Best of {args.repeats} each, in one run. In-process: `read_database` (reading and checking the published
files, nothing written; imports warmed up). Whole process: the command from interpreter start to the written
folder.

{table}""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
