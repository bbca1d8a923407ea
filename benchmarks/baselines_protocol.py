"""The benchmark protocol on real photographs: NIQE, BRISQUE, ridge on frozen DINOv2-S and MINT-IQA ``small``
over 3 seeded content-disjoint splits, one table (mean and standard deviation over splits).

The database is :mod:`aigciqa.datasets.distortions` (scikit-image's sample photographs, pristine and under
blur, noise, JPEG and contrast loss at four levels, a quality target derived from the level): synthetic
distortions of photographs, not AIGC images and not human opinion. Its prompts are the photographs, so the
prompt-disjoint splits of ``aigciqa benchmark`` are content-disjoint. Writes the ``## Baselines protocol``
section of benchmarks/RESULTS.md.

    python benchmarks/baselines_protocol.py [--repeats 3] [--epochs 12] [--lr 1e-4] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_baselines import write_section

from aigciqa.baselines.protocol import BenchmarkOptions, run_benchmark
from aigciqa.datasets.distortions import build_distortion_folder

SECTION = "## Baselines protocol"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--methods", default="niqe,brisque,ridge,mint-iqa")
    parser.add_argument("--out", help="keep the folder here (default: a temporary folder); rerun to resume")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="baselines-protocol-")) / "db"
    if not (root / "dataset.json").is_file():
        build_distortion_folder(root, 0)
    started = time.perf_counter()
    result = run_benchmark(root, BenchmarkOptions(methods=args.methods.split(","), repeats=args.repeats,
                                                  preset="small", epochs=args.epochs, lr=args.lr, cpu=True,
                                                  progress=False))
    minutes = (time.perf_counter() - started) / 60
    table = (result["out"] / "table.md").read_text("utf-8")
    print(table)
    methods = args.methods.split(",")
    command = (f"python benchmarks/baselines_protocol.py --repeats {args.repeats} --methods {args.methods}"
               + (f" --epochs {args.epochs} --lr {args.lr:g}" if "mint-iqa" in methods else ""))
    described = {"mint-iqa": f"MINT-IQA `small` ({args.epochs} epochs, lr {args.lr:g}, fix rate 0.7)",
                 "ridge": "ridge on the frozen DINOv2-S features", "niqe": "NIQE", "brisque": "BRISQUE"}
    write_section(f"{SECTION}\n\n`{command}` ({minutes:.0f} min on this machine's CPU): the content-disjoint "
                  "distorted-photograph database of `aigciqa.datasets.distortions` (synthetic distortions of "
                  "scikit-image's photographs, a target derived from the distortion level: not AIGC images, not "
                  "human opinion), `aigciqa benchmark` with prompt-disjoint splits prompt_s0.. (each photograph "
                  "in one part); methods: " + ", ".join(described.get(m, m) for m in methods)
                  + " (NIQE and BRISQUE with their published parameters).\n\n" + table,
                  SECTION)


if __name__ == "__main__":
    main()
