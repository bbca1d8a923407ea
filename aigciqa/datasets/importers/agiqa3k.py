"""AGIQA-3K (``data.csv``) -> prompts, images, mos for quality and correspondence.

AGIQA-3K's "alignment" MOS rates how well the image matches its prompt, i.e. text-image
correspondence; it is imported as the perspective ``correspondence``. The generator is the
file-name prefix (``sd1.5_lowstep_271.jpg`` -> generator ``sd1.5``, variant ``lowstep``); prompts are
deduplicated by their exact text and numbered in order of first appearance.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from aigciqa.common.files import file_sha256
from aigciqa.database import default_card
from aigciqa.datasets.importers.base import ImportResult, Importer
from aigciqa.datasets.importers.source import (check_not_empty, check_range, check_unique, numbers, read_csv,
                                               slug, source_file)
from aigciqa.errors import InputError

DATA_FILE = "data.csv"
MOS_RANGE = (0.0, 5.0)
# published MOS column -> perspective, published std column
PERSPECTIVE_COLUMNS = {"quality": ("mos_quality", "std_quality"), "correspondence": ("mos_align", "std_align")}
PROMPT_COLUMNS = ("adj1", "adj2", "style")  # the prompt's parts, the same on every image of a prompt
NAME_PATTERN = re.compile(r"(?P<generator>[^_]+)_(?P<variant>[^_]+)_(?P<number>\d+)\.(?P<ext>[A-Za-z]+)")


def read(src: Path) -> ImportResult:
    path = source_file(src, DATA_FILE)
    mos_columns = [c for pair in PERSPECTIVE_COLUMNS.values() for c in pair]
    frame = read_csv(path, ("name", "prompt", *PROMPT_COLUMNS, *mos_columns))
    check_not_empty(frame["name"], path, "name")
    check_unique(frame["name"], path, "name", "image name")
    check_not_empty(frame["prompt"], path, "prompt")

    parts = []
    for row, name in enumerate(frame["name"], start=1):
        match = NAME_PATTERN.fullmatch(name)
        if not match:
            raise InputError(f"image name '{name}' is not GENERATOR_VARIANT_NUMBER.ext", file=path, row=row,
                             field="name")
        parts.append(match)

    prompt_ids: dict[str, str] = {}
    prompt_rows: list[dict] = []
    first_record: dict[str, int] = {}
    for row, record in enumerate(frame[["prompt", *PROMPT_COLUMNS]].itertuples(index=False), start=1):
        text = record[0]
        if text not in prompt_ids:
            prompt_ids[text] = str(len(prompt_ids))
            first_record[text] = row
            prompt_rows.append({"prompt_id": prompt_ids[text], "prompt": text, "category": "", "challenge": "",
                                **dict(zip(PROMPT_COLUMNS, record[1:]))})
        else:
            known = prompt_rows[int(prompt_ids[text])]
            for column, value in zip(PROMPT_COLUMNS, record[1:]):
                if value != known[column]:
                    raise InputError(f"'{value}' disagrees with '{known[column]}' given for the same prompt in "
                                     f"record {first_record[text]}", file=path, row=row, field=column)
    prompts = pd.DataFrame(prompt_rows)

    published_generators = list(dict.fromkeys(m["generator"] for m in parts))
    slugs = {name: slug(name) for name in published_generators}
    images = pd.DataFrame({
        "image_id": [name.rsplit(".", 1)[0] for name in frame["name"]],
        "path": [f"images/{name}" for name in frame["name"]],
        "prompt_id": [prompt_ids[text] for text in frame["prompt"]],
        "generator": [slugs[m["generator"]] for m in parts],
        "variant": [m["variant"] for m in parts],
    })
    check_unique(images["image_id"], path, "name", "image name without its extension")

    mos = pd.DataFrame({"image_id": images["image_id"]})
    for perspective, (mos_column, std_column) in PERSPECTIVE_COLUMNS.items():
        values = numbers(frame[mos_column], path, mos_column)
        check_range(values, *MOS_RANGE, path, mos_column, "MOS")
        mos[f"{perspective}_mos"] = values
    for perspective, (mos_column, std_column) in PERSPECTIVE_COLUMNS.items():
        values = numbers(frame[std_column], path, std_column, allow_missing=True)
        check_range(values, 0, MOS_RANGE[1], path, std_column, "standard deviation")
        mos[f"{perspective}_std"] = values

    card = default_card(
        "agiqa3k",
        description=f"AGIQA-3K: {len(images)} images of {len(prompts)} prompts from {len(slugs)} generators, "
                    "MOS for perceptual quality and text-image correspondence (published as 'alignment').",
        perspectives=list(PERSPECTIVE_COLUMNS), questions=[], mos_range=list(MOS_RANGE),
        scale={"min": MOS_RANGE[0], "max": MOS_RANGE[1]},
        generators=[slugs[name] for name in published_generators],
        source={
            "kind": "agiqa3k",
            "files": {path.name: {"sha256": file_sha256(path)}},
            "generator_names": {slugs[name]: name for name in published_generators},
            "perspectives": {"quality": "mos_quality / std_quality",
                             "correspondence": "mos_align / std_align: AGIQA-3K's 'alignment' is text-image "
                                               "correspondence"},
            "mos": "published MOS on 0-5 (the raw per-subject ratings are not published; scale = MOS range)",
            "variant": "the file-name part after the generator (normal, lowstep, highcorr, lowcorr): "
                       "images.csv column 'variant'",
            "prompts": "deduplicated by exact text, numbered in order of first appearance; adj1, adj2 kept, "
                       "style kept as prompts.csv 'style'",
        })
    return ImportResult(tables={"prompts": prompts, "images": images, "mos": mos}, card=card)


IMPORTER = Importer(
    name="agiqa3k",
    summary="AGIQA-3K data.csv -> prompts, images (generator and variant from the name), quality and "
            "correspondence MOS (0-5).",
    source=f"{DATA_FILE} or the folder holding it",
    read=read)
