"""Benchmark: how fast commands start, as whole processes, against a bare interpreter and sureal, in one run.

Measured as wall time of a fresh process (best of N, all in this run, so machine load hits every
command alike):
- ``python -c "import sys"``: the bare interpreter, the floor;
- ``aigciqa --help``: builds the parser from the command table, importing no stage;
- building every stage's parser (what ``aigciqa --help`` did before it became lazy), for reference;
- ``aigciqa build-mos ratings.csv -o OUT --no-figures`` on the full-size study of
  benchmarks/bench_build_mos.py (28 subjects x 3 perspectives x 2400 images = 201,600 ratings);
- sureal 0.9.0's ``ZscoringSubjrejMosModel`` on the same ratings as one process (its dataset JSON
  per perspective, read and modelled; it writes nothing, which favours it).

Prints the table and writes the "Start-up" section of benchmarks/RESULTS.md.

    python benchmarks/bench_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder's helpers

from bench_build_mos import make_study  # noqa: E402
from results import machine, write_section  # noqa: E402

SUREAL = """\
import sys, warnings
from sureal.dataset_reader import RawDatasetReader
from sureal.subjective_model import ZscoringSubjrejMosModel
from sureal.tools.misc import import_json_file
warnings.simplefilter("ignore")
for path in sys.argv[1:]:
    ZscoringSubjrejMosModel(RawDatasetReader(import_json_file(path))).run_modeling()
"""


def best_wall(command: list[str], repeats: int) -> float:
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - started)
    return min(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="best of N runs of each command (default 5)")
    args = parser.parse_args()
    from aigciqa.mos.sources import read_source
    from aigciqa.mos.sureal_io import dumps_sureal, to_sureal_dataset
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ratings_csv = make_study(root)
        n_ratings = sum(1 for _ in open(ratings_csv)) - 1
        ratings = read_source(ratings_csv).ratings
        jsons = []
        for perspective in ("quality", "authenticity", "correspondence"):
            jsons.append(root / f"{perspective}.json")
            jsons[-1].write_text(dumps_sureal(to_sureal_dataset(ratings, perspective)))
        counter = iter(range(10_000))
        commands = {
            "bare": [python, "-c", "import sys"],
            "help": [python, "-m", "aigciqa", "--help"],
            "every parser": [python, "-c", "from aigciqa.cli import build_parser; build_parser()"],
            "build-mos": None,  # a new output folder each time, below
            "sureal": [python, "-c", SUREAL, *map(str, jsons)],
        }
        figures = {}
        for name, command in commands.items():
            if name == "build-mos":
                walls = [best_wall([python, "-m", "aigciqa", "build-mos", str(ratings_csv), "-o",
                                    str(root / f"out{next(counter)}"), "--no-figures"], 1)
                         for _ in range(args.repeats)]
                figures[name] = min(walls)
            else:
                figures[name] = best_wall(command, args.repeats)
    bare = figures["bare"]
    rows = [
        ("`python -c \"import sys\"` (bare interpreter)", figures["bare"], ""),
        ("`aigciqa --help`", figures["help"], f"{figures['help'] - bare:+.3f} s vs bare ({figures['help'] / bare:.2f}x)"),
        ("every stage's parser built (the old `--help`)", figures["every parser"],
         f"{figures['every parser'] - bare:+.3f} s vs bare ({figures['every parser'] / bare:.2f}x)"),
        (f"`aigciqa build-mos` ({n_ratings:,} ratings, --no-figures)", figures["build-mos"],
         f"{figures['build-mos'] / bare:.2f}x bare"),
        ("sureal 0.9.0 ZscoringSubjrejMosModel, same ratings", figures["sureal"],
         f"{figures['sureal'] / figures['build-mos']:.2f}x aigciqa build-mos"),
    ]
    table = ["| process | wall s (best of {}) | compared |".format(args.repeats), "|---|---:|---|"]
    table += [f"| {name} | {wall:.3f} | {note} |" for name, wall, note in rows]
    text = "\n".join(table)
    print(text)
    write_section("Start-up", f"""\
`python benchmarks/bench_startup.py --repeats {args.repeats}` ({machine()}; {time.strftime('%Y-%m-%d')}).
Whole processes, best of {args.repeats}, all in one run, so machine load affects every row alike; the
ratios are what to compare across machines.

{text}
""")


if __name__ == "__main__":
    main()
