"""ImageReward's test set (``test.json``) -> prompts, images and every untied preference pair.

Each record ranks 4-9 generations of one prompt (rank 1 = best; equal ranks are ties). Every two
generations of a record with different ranks make one pair (better, worse); tied generations make
none. On the published test file that is 6399 pairs, the comparisons of ImageReward's Table IV.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd

from aigciqa.common.files import file_sha256
from aigciqa.database import default_card
from aigciqa.database.tables import check_relative_path
from aigciqa.datasets.importers.base import ImportResult, Importer
from aigciqa.datasets.importers.source import decode, source_file
from aigciqa.errors import InputError

DATA_FILE = "test.json"
PERSPECTIVE = "preference"


def _field(record: dict, name: str, kind, path: Path, row: int):
    if name not in record:
        raise InputError("required field is missing", file=path, row=row, field=name)
    value = record[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError(f"must be a {getattr(kind, '__name__', 'value')}, not {type(value).__name__}",
                         file=path, row=row, field=name)
    return value


def untied_pairs(ranking: list[int]) -> list[tuple[int, int]]:
    """Positions (better, worse) of every two generations with different ranks (lower rank = better)."""
    return [(i, j) if ranking[i] < ranking[j] else (j, i)
            for i, j in itertools.combinations(range(len(ranking)), 2) if ranking[i] != ranking[j]]


def read(src: Path) -> ImportResult:
    path = source_file(src, DATA_FILE)
    try:
        data = json.loads(decode(path, "utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON: {error.msg} (line {error.lineno}, column {error.colno})",
                         file=path) from None
    if not isinstance(data, list):
        raise InputError("expected a JSON list of records {id, prompt, generations, ranking}", file=path)

    prompts, images, pairs = [], [], []
    first_id: dict[str, int] = {}
    first_path: dict[str, int] = {}
    for row, record in enumerate(data, start=1):
        if not isinstance(record, dict):
            raise InputError("record is not a JSON object", file=path, row=row)
        prompt_id = _field(record, "id", str, path, row)
        prompt = _field(record, "prompt", str, path, row)
        generations = _field(record, "generations", list, path, row)
        ranking = _field(record, "ranking", list, path, row)
        if not prompt_id:
            raise InputError("value is missing", file=path, row=row, field="id")
        if prompt_id in first_id:
            raise InputError(f"duplicate id '{prompt_id}' (first in record {first_id[prompt_id]})",
                             file=path, row=row, field="id")
        first_id[prompt_id] = row
        if len(generations) != len(ranking):
            raise InputError(f"{len(ranking)} ranks for {len(generations)} generations", file=path, row=row,
                             field="ranking")
        for position, (generation, rank) in enumerate(zip(generations, ranking), start=1):
            if not isinstance(generation, str) or check_relative_path(generation):
                problem = check_relative_path(generation) if isinstance(generation, str) else "not a path"
                raise InputError(f"generation {position}: {problem}", file=path, row=row, field="generations")
            if generation in first_path:
                raise InputError(f"generation '{generation}' is already listed in record {first_path[generation]}",
                                 file=path, row=row, field="generations")
            first_path[generation] = row
            if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
                raise InputError(f"rank {position} ({rank!r}) is not a whole number >= 1", file=path, row=row,
                                 field="ranking")
            images.append({"image_id": f"{prompt_id}-{position}", "path": f"images/{generation}",
                           "prompt_id": prompt_id, "sample": position, "rank": rank})
        prompts.append({"prompt_id": prompt_id, "prompt": prompt, "category": "", "challenge": ""})
        pairs += [{"better_image_id": f"{prompt_id}-{better + 1}", "worse_image_id": f"{prompt_id}-{worse + 1}",
                   "prompt_id": prompt_id, "perspective": PERSPECTIVE}
                  for better, worse in untied_pairs(ranking)]
    if not prompts:
        raise InputError("the file holds no records", file=path)

    images_table = pd.DataFrame(images)
    images_table["sample"] = images_table["sample"].astype("Int64")
    images_table["rank"] = images_table["rank"].astype(str)  # an extra column: kept as text by the folder
    max_rank = max(int(r) for r in images_table["rank"])
    card = default_card(
        "imagereward-test",
        description=f"ImageReward test set: {len(prompts)} prompts, {len(images)} generations ranked per "
                    f"prompt, {len(pairs)} untied preference pairs.",
        perspectives=[PERSPECTIVE], questions=[], scale={"min": 1, "max": max(max_rank, 2)},
        source={
            "kind": "imagereward",
            "files": {path.name: {"sha256": file_sha256(path)}},
            "scale": "ranks within a prompt, 1 = best (no opinion scores are published)",
            "images": "image_id = <record id>-<position in 'generations'>; path = images/<published path>; "
                      "images.csv column 'rank' = the published rank",
            "pairs": "every two generations of a prompt with different ranks; ties make no pair",
        })
    card.pop("mos_range", None)  # there is no MOS
    return ImportResult(tables={"prompts": pd.DataFrame(prompts), "images": images_table,
                                "pairs": pd.DataFrame(pairs)}, card=card)


IMPORTER = Importer(
    name="imagereward",
    summary="ImageReward test.json -> prompts, images (with rank) and all untied preference pairs.",
    source=f"{DATA_FILE} or the folder holding it",
    read=read)
