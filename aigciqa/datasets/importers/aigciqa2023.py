"""The published AIGCIQA2023 / AIGCIQA2023+ annotations -> prompts, images, mos, labels.

SRC is a folder holding the three published files under their published names. Image ``N.png``
belongs to generator block ``m``, prompt ``p`` and sample ``k`` with N = m*400 + p*4 + (k-1); every
record of every file is checked against that formula and against the prompt list.

The fine-grained label file ``AIGIQA2023+.csv`` has no header, is GBK-encoded and has CRLF records
with bare LF line breaks inside quoted cells, so it is decoded whole and parsed with the csv
module (a line-by-line reader would split 29 of its cells).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd

from aigciqa.common.files import file_sha256
from aigciqa.database import DEFAULT_QUESTIONS, default_card
from aigciqa.datasets.importers.base import ImportResult, Importer
from aigciqa.datasets.importers.source import (check_range, check_unique, decode, numbers, read_csv,
                                               require_file, warn_data)
from aigciqa.errors import InputError

PROMPTS_FILE = "AIGCIQA2023_prompts.csv"
MOS_FILE = "AIGCIQA2023.csv"
LABELS_FILE = "AIGIQA2023+.csv"

# (slug used in the folder, published name), in the order of the image-number blocks.
GENERATORS: tuple[tuple[str, str], ...] = (
    ("controlnet", "Controlnet"), ("dalle", "DALLE"), ("glide", "Glide"), ("lafite", "Lafite"),
    ("stable_diffusion", "stable-diffusion"), ("unidiffuser", "Unidiffuser"),
)
N_PROMPTS = 100
SAMPLES = 4
N_IMAGES = len(GENERATORS) * N_PROMPTS * SAMPLES  # 2400
PERSPECTIVES = ("quality", "authenticity", "correspondence")

# Columns of the header-less label file, named as in the folder (zh = the Chinese original).
LABEL_FIELDS = ("index", "file", "generator", "clarity", "outline", "details", "distortion", "consistency",
                "distortion_explanation_zh", "inconsistency_explanation_zh",
                "distortion_explanation", "inconsistency_explanation")
QUESTIONS = tuple(q["name"] for q in DEFAULT_QUESTIONS)  # clarity, outline, details, distortion, consistency
EXPLANATIONS = LABEL_FIELDS[8:]


def image_position(number: int) -> tuple[int, int, int]:
    """Image number N -> (generator block m, prompt id p, sample k 1..4)."""
    block, rest = divmod(number, N_PROMPTS * SAMPLES)
    prompt, sample = divmod(rest, SAMPLES)
    return block, prompt, sample + 1


def image_number(block: int, prompt: int, sample: int) -> int:
    return block * N_PROMPTS * SAMPLES + prompt * SAMPLES + (sample - 1)


def read(src: Path, *, labels_encoding: str = "gbk") -> ImportResult:
    if not src.is_dir():
        raise InputError(f"SRC must be the folder holding {PROMPTS_FILE}, {MOS_FILE} and {LABELS_FILE}",
                         file=src)
    paths = {name: require_file(src / name, f"{name} (a published AIGCIQA2023 file)")
             for name in (PROMPTS_FILE, MOS_FILE, LABELS_FILE)}
    prompts = _read_prompts(paths[PROMPTS_FILE])
    images, mos = _read_mos(paths[MOS_FILE], prompts)
    labels = _read_labels(paths[LABELS_FILE], labels_encoding)
    card = default_card(
        "aigciqa2023",
        description="AIGCIQA2023 / AIGCIQA2023+: 2400 images from 6 generators x 100 prompts x 4 samples, "
                    "MOS for quality, authenticity and correspondence (0-100), and fine-grained labels.",
        generators=[slug for slug, _ in GENERATORS],
        source={
            "kind": "aigciqa2023",
            "files": {name: {"sha256": file_sha256(path)} for name, path in paths.items()},
            "generator_names": {slug: published for slug, published in GENERATORS},
            "image_number": "N = m*400 + p*4 + (k-1); m = generator block, p = prompt id, k = sample 1..4",
            "std": "the published std columns are on the raw 0-5 rating scale: stored as <perspective>_std_raw",
            "labels": "levels 1..n worst to best; *_explanation = English, *_explanation_zh = Chinese "
                      "(verbatim); out-of-range codes imported as missing",
        })
    return ImportResult(tables={"prompts": prompts, "images": images, "mos": mos, "labels": labels}, card=card)


def _read_prompts(path: Path) -> pd.DataFrame:
    frame = read_csv(path, ("prompt_id", "challenge", "category", "prompt"))
    ids = numbers(frame["prompt_id"], path, "prompt_id")
    for row, value in enumerate(ids, start=1):
        if value != int(value) or not 0 <= value < N_PROMPTS:
            raise InputError(f"prompt id '{frame['prompt_id'].iloc[row - 1]}' is not a whole number "
                             f"0-{N_PROMPTS - 1}", file=path, row=row, field="prompt_id")
    prompt_ids = pd.Series([str(int(v)) for v in ids])
    check_unique(prompt_ids, path, "prompt_id", "prompt id")
    if len(frame) != N_PROMPTS:
        raise InputError(f"expected {N_PROMPTS} prompts, found {len(frame)}", file=path)
    out = pd.DataFrame({"prompt_id": prompt_ids, "prompt": frame["prompt"],  # verbatim, trailing spaces kept
                        "category": frame["category"], "challenge": frame["challenge"]})
    return out.sort_values("prompt_id", key=lambda s: s.astype(int), kind="stable").reset_index(drop=True)


def _read_mos(path: Path, prompts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    mos_columns = [f"{p}_mos" for p in PERSPECTIVES]
    std_columns = [f"{p}_std" for p in PERSPECTIVES]
    frame = read_csv(path, ("name", "prompt", "style", "class", *mos_columns, *std_columns))
    by_id = prompts.set_index("prompt_id")
    numbers_seen = []
    for row, name in enumerate(frame["name"], start=1):
        match = re.fullmatch(r"(\d+)\.png", name)
        if not match or not int(match.group(1)) < N_IMAGES:
            raise InputError(f"image name '{name}' is not N.png with N 0-{N_IMAGES - 1}",
                             file=path, row=row, field="name")
        number = int(match.group(1))
        _, prompt, _ = image_position(number)
        expected = by_id.loc[str(prompt)]
        for field, column in (("prompt", "prompt"), ("style", "challenge"), ("class", "category")):
            if frame[field].iloc[row - 1] != expected[column]:
                raise InputError(f"'{frame[field].iloc[row - 1]}' disagrees with {PROMPTS_FILE} prompt {prompt} "
                                 f"({column} '{expected[column]}'), which image {number} has by its number",
                                 file=path, row=row, field=field)
        numbers_seen.append(number)
    image_numbers = pd.Series(numbers_seen, dtype="int64")
    check_unique(image_numbers.astype(str), path, "name", "image")
    if len(frame) != N_IMAGES:
        raise InputError(f"expected {N_IMAGES} records, found {len(frame)}", file=path)
    mos = pd.DataFrame({"image_id": image_numbers.astype(str)})
    for perspective in PERSPECTIVES:
        values = numbers(frame[f"{perspective}_mos"], path, f"{perspective}_mos")
        check_range(values, 0, 100, path, f"{perspective}_mos", "MOS")
        mos[f"{perspective}_mos"] = values
    for perspective in PERSPECTIVES:
        values = numbers(frame[f"{perspective}_std"], path, f"{perspective}_std")
        check_range(values, 0, 5, path, f"{perspective}_std", "standard deviation on the 0-5 scale")
        mos[f"{perspective}_std_raw"] = values
    positions = [image_position(n) for n in image_numbers]
    images = pd.DataFrame({
        "image_id": image_numbers.astype(str),
        "path": [f"images/{n}.png" for n in image_numbers],  # the published name: downloads drop in place
        "prompt_id": [str(p) for _, p, _ in positions],
        "generator": [GENERATORS[m][0] for m, _, _ in positions],
        "sample": pd.array([k for _, _, k in positions], dtype="Int64"),
    })
    order = image_numbers.argsort(kind="stable").to_numpy()
    return images.iloc[order].reset_index(drop=True), mos.iloc[order].reset_index(drop=True)


def _parse_label_records(path: Path, encoding: str) -> list[list[str]]:
    raw = path.read_bytes()
    if encoding.replace("-", "").lower() in ("gbk", "gb2312", "gb18030", "cp936") and not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:  # GBK-encoded Chinese is practically never valid UTF-8: this file was re-encoded
            raise InputError(f"the file is UTF-8, not {encoding.upper()} as published; "
                             "pass --labels-encoding utf-8 to read it", file=path)
    text = decode(path, encoding, hint=" (the published file is GBK; pass --labels-encoding if yours "
                                       "was converted)")
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as error:
        raise InputError(f"malformed CSV: {error}", file=path) from None
    while records and not any(records[-1]):  # a trailing blank line is not a record
        records.pop()
    return records


def _read_labels(path: Path, encoding: str) -> pd.DataFrame:
    records = _parse_label_records(path, encoding)
    if len(records) != N_IMAGES:
        raise InputError(f"expected {N_IMAGES} records, found {len(records)} (cells with line breaks must be "
                         "quoted)", file=path)
    levels = {q["name"]: len(q["levels"]) for q in DEFAULT_QUESTIONS}
    rows, seen = [], {}
    for row, record in enumerate(records, start=1):
        if len(record) != len(LABEL_FIELDS):
            raise InputError(f"has {len(record)} fields, expected {len(LABEL_FIELDS)}", file=path, row=row)
        cells = dict(zip(LABEL_FIELDS, record))
        if not re.fullmatch(r"\d+", cells["index"]) or not int(cells["index"]) < N_IMAGES:
            raise InputError(f"index '{cells['index']}' is not an image number 0-{N_IMAGES - 1}",
                             file=path, row=row, field="index")
        number = int(cells["index"])
        if number in seen:
            raise InputError(f"duplicate index {number} (first in record {seen[number]})",
                             file=path, row=row, field="index")
        seen[number] = row
        block, prompt, sample = image_position(number)
        expected_file = f"{prompt:03d}-{sample}.png"
        if cells["file"] != expected_file:
            raise InputError(f"'{cells['file']}' disagrees with image {number}, which is prompt {prompt} sample "
                             f"{sample} ('{expected_file}')", file=path, row=row, field="file")
        if cells["generator"] != GENERATORS[block][1]:
            raise InputError(f"generator '{cells['generator']}' disagrees with image {number}, which is in the "
                             f"'{GENERATORS[block][1]}' block", file=path, row=row, field="generator")
        out = {"image_id": str(number)}
        for question in QUESTIONS:
            code = cells[question].strip()
            if not re.fullmatch(r"-?\d+", code):
                raise InputError(f"'{cells[question]}' is not a whole-number level", file=path, row=row,
                                 field=question)
            level = int(code)
            if 1 <= level <= levels[question]:
                out[question] = level
            else:  # a published typo: keep the record, never as a valid level
                out[question] = pd.NA
                warn_data(f"code {level} is outside 1-{levels[question]} (image {number}.png, index {number}); "
                          "imported as missing", file=path, row=row, field=question)
        for column in EXPLANATIONS:
            out[column] = cells[column]  # verbatim, line breaks and spaces kept
        rows.append(out)
    labels = pd.DataFrame(rows)
    for question in QUESTIONS:
        labels[question] = labels[question].astype("Int64")
    order = labels["image_id"].astype(int).argsort(kind="stable").to_numpy()
    return labels.iloc[order].reset_index(drop=True)


IMPORTER = Importer(
    name="aigciqa2023",
    summary="AIGCIQA2023(+) annotations -> prompts, images (N.png), MOS (3 perspectives), fine-grained labels.",
    source=f"folder with {PROMPTS_FILE}, {MOS_FILE}, {LABELS_FILE}",
    read=read, options=("labels_encoding",))
