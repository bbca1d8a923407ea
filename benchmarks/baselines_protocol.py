"""The benchmark protocol on real photographs: NIQE, BRISQUE, ridge on frozen DINOv2-S and MINT-IQA ``small``
over 3 seeded content-disjoint splits, one table (mean and standard deviation over splits).

The database is :mod:`aigciqa.datasets.distortions` (scikit-image's sample photographs, pristine and under
blur, noise, JPEG and contrast loss at four levels, a quality target derived from the level): synthetic
distortions of photographs, not AIGC images and not human opinion. Its prompts are the photographs, so the
prompt-disjoint splits of ``aigciqa benchmark`` are content-disjoint. Writes the ``## Baselines protocol``
section of benchmarks/RESULTS.md.

    python benchmarks/baselines_protocol.py [--repeats 3] [--epochs 12] [--lr 1e-4] [--out DIR] [--partial]

``--partial`` (with the ``--out`` of a run that was stopped) writes the section from the results it finished,
labelled as partial, without running more.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_baselines import write_section

from aigciqa.baselines.protocol import BenchmarkOptions, markdown_table, run_benchmark, summarise
from aigciqa.datasets.distortions import build_distortion_folder

SECTION = "## Baselines protocol"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--methods", default="niqe,brisque,ridge,mint-iqa")
    parser.add_argument("--out", help="keep the folder here (default: a temporary folder); rerun to resume")
    parser.add_argument("--partial", action="store_true",
                        help="only summarise the finished results of the run in --out (stopped before the end)")
    args = parser.parse_args()
    if args.partial and not args.out:
        parser.error("--partial needs the --out folder of the stopped run")
    root = Path(args.out or tempfile.mkdtemp(prefix="baselines-protocol-")) / "db"
    if not (root / "dataset.json").is_file():
        build_distortion_folder(root, 0)
    methods = args.methods.split(",")
    result = run_benchmark(root, BenchmarkOptions(methods=methods, repeats=args.repeats, preset="small",
                                                  epochs=args.epochs, lr=args.lr, cpu=True, progress=False,
                                                  stop_after=0 if args.partial else None))
    # wall time from building the folder to the last result (one run, or a run and its resumption)
    minutes = ((result["out"] / "results.json").stat().st_mtime - (root / "images.csv").stat().st_mtime) / 60
    if result["complete"]:
        table, status = (result["out"] / "table.md").read_text("utf-8"), ""
    else:  # stopped: the finished method-split results only, said so
        done = result["results"]
        table = markdown_table(summarise(done, methods))
        counts = ", ".join(f"{m} {sum(r['method'] == m for r in done)}" for m in methods)
        status = (f"**Partial**: stopped before the end; {len(done)} of {args.repeats * len(methods)} method-split "
                  f"results finished (splits per method: {counts}). ")
    print(table)
    command = (f"python benchmarks/baselines_protocol.py --repeats {args.repeats} --methods {args.methods}"
               + (f" --epochs {args.epochs} --lr {args.lr:g}" if "mint-iqa" in methods else ""))
    described = {"mint-iqa": f"MINT-IQA `small` trained per split ({args.epochs} epochs, lr {args.lr:g}, fix rate "
                             "0.7, batch 8, the boundary cache of frozen encoder blocks on: train's defaults)",
                 "ridge": "ridge on the frozen DINOv2-S features", "niqe": "NIQE", "brisque": "BRISQUE"}
    write_section(f"{SECTION}\n\n{status}`{command}` ({minutes:.0f} min from building the folder to the last result "
                  "on this machine's CPU, 2 cores shared with other work): the content-disjoint "
                  "distorted-photograph database of `aigciqa.datasets.distortions` (synthetic distortions of "
                  "scikit-image's photographs, a target derived from the distortion level: not AIGC images, not "
                  "human opinion), `aigciqa benchmark` with prompt-disjoint splits prompt_s0.. (each photograph "
                  "in one part); methods: " + ", ".join(described.get(m, m) for m in methods)
                  + " (NIQE and BRISQUE with their published parameters).\n\n" + table,
                  SECTION)


if __name__ == "__main__":
    main()
