"""Benchmark: build-mos end to end against sureal 0.9.0 on a full-size study, in one run.

The study: 28 simulated subjects x 3 perspectives x 2400 images = 201,600 ratings, written as a long
ratings CSV. aigciqa: ``run_build_mos`` (CSV in; mos.csv, screening.json and, in the full run,
figures/ out; z-scores + BT.500 screening). sureal: ``ZscoringSubjrejMosModel`` on the same
matrix, one sureal dataset JSON per perspective (read from disk, modelled; nothing written, which
favours sureal). Both agree on the rejected subjects and the MOS (checked here). Prints seconds
(wall and CPU), the ratios, and the peak memory of the aigciqa run (tracemalloc, in a second pass
since tracing slows the code down).

    python benchmarks/bench_build_mos.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder's helpers
from results import machine, write_section  # noqa: E402


def make_study(root: Path, n_subjects=28, n_images=2400) -> Path:
    from aigciqa.database import default_card
    from aigciqa.mos.simulate import simulate_panel
    images = pd.DataFrame({"image_id": [f"img{k}" for k in range(n_images)],
                           "generator": [f"gen{k // 400}" for k in range(n_images)],
                           "prompt_id": [str((k % 400) // 4) for k in range(n_images)]})
    card = default_card("bench", questions=[])
    ratings, _, _ = simulate_panel(images, card, n_subjects=n_subjects, n_outliers=3, seed=0)
    path = root / "ratings.csv"
    ratings.to_csv(path, index=False)
    return path


def timed(function, repeats):
    walls, cpus, value = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        value = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs (default 3)")
    args = parser.parse_args()
    from aigciqa.mos.aggregate import MosOptions, build_mos
    from aigciqa.mos.build import run_build_mos
    from aigciqa.mos.sources import read_source
    from aigciqa.mos.sureal_io import dumps_sureal, to_sureal_dataset
    from sureal.dataset_reader import RawDatasetReader
    from sureal.subjective_model import ZscoringSubjrejMosModel
    from sureal.tools.misc import import_json_file

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv_path = make_study(root)
        n_ratings = sum(1 for _ in open(csv_path)) - 1
        counter = iter(range(10_000))

        def ours(figures):
            return run_build_mos(csv_path, root / f"out{next(counter)}", options=MosOptions(), figures=figures,
                                 command="benchmark")

        ours(True)  # warm-up: imports (matplotlib, scipy) are not part of the work
        wall_nofig, cpu_nofig, _ = timed(lambda: ours(False), args.repeats)
        wall_full, cpu_full, outcome = timed(lambda: ours(True), args.repeats)

        ratings = read_source(csv_path).ratings
        json_paths = {}
        for perspective in ("quality", "authenticity", "correspondence"):
            json_paths[perspective] = root / f"{perspective}.json"
            json_paths[perspective].write_text(dumps_sureal(to_sureal_dataset(ratings, perspective)))

        def reference():
            results = {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for perspective, path in json_paths.items():
                    reader = RawDatasetReader(import_json_file(str(path)))
                    results[perspective] = (ZscoringSubjrejMosModel(reader).run_modeling(),
                                            [str(o) for o in reader._get_list_observers()])
            return results

        wall_ref, cpu_ref, results = timed(reference, 1)

        # The algorithms alone: our core on the parsed table vs sureal's modelling on loaded readers.
        readers = {p: RawDatasetReader(import_json_file(str(path))) for p, path in json_paths.items()}
        perspectives = list(json_paths)
        wall_core, cpu_core, _ = timed(lambda: build_mos(ratings, perspectives, (0, 5), MosOptions()), args.repeats)

        def reference_core():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for reader in readers.values():
                    ZscoringSubjrejMosModel(reader).run_modeling()

        wall_ref_core, cpu_ref_core, _ = timed(reference_core, 1)
        for perspective, (result, observers) in results.items():
            ref_rejected = sorted(o for o, r in zip(observers, result["observer_rejected"]) if r)
            assert ref_rejected == sorted(outcome.result.rejected_subjects(perspective)), perspective
            mos = outcome.result.table[f"{perspective}_mos"].to_numpy() * 6 / 100 - 3
            assert np.abs(mos - np.asarray(result["quality_scores"])).max() < 1e-9, perspective

        tracemalloc.start()
        ours(False)
        peak_nofig = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        tracemalloc.start()
        ours(True)
        peak_full = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

    lines = [
        f"study: 28 subjects x 3 perspectives x 2400 images = {n_ratings:,} ratings (long CSV), best of {args.repeats}",
        "",
        "| run (in one process) | wall s | CPU s | peak traced memory |",
        "|---|---:|---:|---:|",
        f"| aigciqa build-mos, no figures | {wall_nofig:.3f} | {cpu_nofig:.3f} | {peak_nofig / 2**20:.0f} MiB |",
        f"| aigciqa build-mos, with the 2 figures | {wall_full:.3f} | {cpu_full:.3f} | {peak_full / 2**20:.0f} MiB |",
        f"| sureal ZscoringSubjrejMosModel (3 JSON datasets) | {wall_ref:.3f} | {cpu_ref:.3f} | |",
        f"| core only: `build_mos` on the parsed table | {wall_core:.3f} | {cpu_core:.3f} | |",
        f"| core only: sureal modelling on loaded readers | {wall_ref_core:.3f} | {cpu_ref_core:.3f} | |",
        "",
        f"Ratio sureal / aigciqa end to end: {wall_ref / wall_nofig:.1f}x (no figures), {wall_ref / wall_full:.1f}x "
        f"(with figures); the algorithms alone {wall_ref_core / wall_core:.0f}x. Same rejected subjects and MOS "
        f"(to 1e-9). Process peak resident memory "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB.",
    ]
    print("\n".join(lines))
    write_section("build-mos against sureal", f"`python benchmarks/bench_build_mos.py --repeats {args.repeats}` "
                  f"({machine()}; {time.strftime('%Y-%m-%d')}; imports are warmed up, see the Start-up section for "
                  "whole processes).\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
