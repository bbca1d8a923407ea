"""Benchmark of reading a database table's CSV text (``aigciqa.database.tables.read_csv_text``).

The reader checks every record's cell count (pandas' parser splits a long record into a phantom row and
pads a short one): a table without quotes (ratings.csv) goes through pandas' C parser after a count of each
line's commas; a table with quotes (answers.csv: free text) through Python's csv module. Reference, in
the same run: ``pandas.read_csv(dtype=str)``, the reader used before. Tables are seeded and shaped like
a full AIGCIQA2023+ panel: ratings.csv (2400 images x 28 subjects x 3 perspectives) and answers.csv
with quoted free-text explanations. Also the whole ``DatabaseFolder.read_table`` (parse + type checks).
Best of N each.

Writes the "CSV table reading" section of benchmarks/RESULTS.md.

    python benchmarks/bench_tables.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder's helpers
from bench_build_vqa import timed  # noqa: E402
from results import markdown_table, provenance, write_section  # noqa: E402

from aigciqa.database import DatabaseFolder, default_card  # noqa: E402
from aigciqa.database.tables import read_csv_text  # noqa: E402


def panel_tables(seed: int = 0) -> tuple[dict[str, pd.DataFrame], dict]:
    rng = np.random.default_rng(seed)
    card = default_card("bench", synthetic=True)
    image_ids = [str(i) for i in range(2400)]
    images = pd.DataFrame({"image_id": image_ids, "path": [f"images/{i}.png" for i in image_ids]})
    ids = np.repeat(image_ids, 28 * 3)
    ratings = pd.DataFrame({"subject_id": np.tile(np.repeat([f"s{s}" for s in range(28)], 3), 2400),
                            "image_id": ids, "perspective": np.tile(card["perspectives"], 2400 * 28),
                            "score": rng.integers(card["scale"]["min"], card["scale"]["max"] + 1, len(ids))})
    question = card["questions"][0]["name"]
    words = np.array(["blurred", "outline", "distorted, partly", "colour", "the \"sky\"", "edges"])
    answers = pd.DataFrame({"subject_id": np.tile([f"s{s}" for s in range(28)], 2400),
                            "image_id": np.repeat(image_ids, 28), "question": question,
                            "level": 1, "explanation": [" ".join(rng.choice(words, 4)) for _ in range(2400 * 28)]})
    return {"images": images, "ratings": ratings, "answers": answers}, card


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs of each (default 3)")
    args = parser.parse_args()
    tables, card = panel_tables()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = DatabaseFolder(Path(tmp) / "db")
        folder.write(tables, card=card, stage="bench")
        for name in tables:
            if name == "images":
                continue
            path = folder.table_path(name)
            assert read_csv_text(path).equals(pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False))
            reference, _ = timed(lambda: pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False),
                                 args.repeats)
            parse, _ = timed(lambda: read_csv_text(path), args.repeats)
            whole, _ = timed(lambda: folder.read_table(name, card), args.repeats)
            rows.append([f"{path.name}", f"{len(tables[name])} x {len(tables[name].columns)}",
                         f"{reference:.3f}", f"{parse:.3f}", f"{parse / reference:.1f}x", f"{whole:.3f}"])
    body = "\n".join([
        provenance() + f" Best of {args.repeats} each, in one run; seeded tables shaped like a full "
        "AIGCIQA2023+ panel.",
        "",
        markdown_table(["table", "records x columns", "pandas.read_csv s (reference)", "read_csv_text s",
                        "/ reference", "read_table s (parse + type checks)"], rows, "lrrrrr"),
        "",
        "`read_csv_text` checks every record's cell count (pandas' parser splits a record with too many cells "
        "into a phantom row and pads one with too few). A table without quotes (ratings.csv) is parsed by "
        "pandas' C parser after each line's commas are counted; one with quotes (answers.csv) by Python's csv "
        "module, whose per-cell Python strings are its cost. A malformed record is named with its line either "
        "way (the csv module reads the file again for the message).",
    ])
    write_section("CSV table reading", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
