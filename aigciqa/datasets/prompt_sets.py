"""Prompt sets shipped with the package (the AIGCIQA2023 100-prompt list) and how to load them,
and a selector that draws a new category x challenge grid from a PartiPrompts TSV."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from aigciqa.common.files import read_text
from aigciqa.errors import InputError

# name -> (file in aigciqa/datasets/data, description)
EMBEDDED_PROMPT_SETS = {
    "aigciqa2023": ("aigciqa2023_prompts.csv",
                    "the 100 prompts of AIGCIQA2023 (PartiPrompts; 10 categories x 10 challenges, "
                    "with the database's own deviations)"),
}


def load_prompt_set(name: str = "aigciqa2023") -> pd.DataFrame:
    """An embedded prompt set as a prompts table: prompt_id, prompt, category, challenge (all text).

    Prompts are kept verbatim (two AIGCIQA2023 prompts end in a space).
    """
    from aigciqa.registry import lookup
    filename, _ = lookup(EMBEDDED_PROMPT_SETS, name, "prompt set")
    text = resources.files("aigciqa.datasets").joinpath("data", filename).read_text("utf-8")
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    return frame[["prompt_id", "prompt", "category", "challenge"]]


# ---- drawing a new grid from PartiPrompts ------------------------------------------------------
# The AIGCIQA2023 grid, in the order its prompt ids follow (ids 0-9 are the Basic row, one per
# category in this order). One AIGCIQA2023 prompt (id 57) is labelled Arts: PartiPrompts has no
# Indoor Scenes x Style & Format prompt, so that cell of this grid is empty (reported as missing).
AIGCIQA2023_CATEGORIES = ("Animals", "People", "Vehicles", "Artifacts", "Produce & Plants",
                          "Food & Beverage", "Illustrations", "Indoor Scenes", "Outdoor Scenes",
                          "World Knowledge")
AIGCIQA2023_CHALLENGES = ("Basic", "Simple Detail", "Complex", "Fine-grained Detail", "Imagination",
                          "Style & Format", "Writing & Symbols", "Quantity", "Perspective",
                          "Linguistic Structures")
PARTI_COLUMNS = ("Prompt", "Category", "Challenge")  # required; "Note" is optional


def read_parti_tsv(path: str | Path) -> pd.DataFrame:
    """A PartiPrompts TSV (header ``Prompt Category Challenge Note``) as text, prompts verbatim.

    Fields are split on tabs only (quotes are part of a prompt, trailing spaces are kept). A
    missing column, an empty file, a record with the wrong number of fields or an empty prompt,
    category or challenge raises InputError naming the file, record and field.
    """
    path = str(path)
    text = read_text(path, what="TSV file")
    if not text.strip():
        raise InputError("file is empty", file=path)
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
    header = [name.strip() for name in records[0]]
    for column in PARTI_COLUMNS:
        if column not in header:
            raise InputError(f"required column is missing (columns are: {', '.join(header)}; a PartiPrompts "
                             "TSV has Prompt, Category, Challenge, Note separated by tabs)", file=path, field=column)
    rows = []
    for number, record in enumerate(records[1:], start=1):
        if not record:  # a blank line (e.g. at the end)
            continue
        if len(record) != len(header):
            raise InputError(f"{len(record)} tab-separated fields, the header has {len(header)}",
                             file=path, row=number)
        row = dict(zip(header, record))
        for column in PARTI_COLUMNS:
            if not row[column].strip():
                raise InputError("value is missing", file=path, row=number, field=column)
        row["record"] = number
        rows.append(row)
    if not rows:
        raise InputError("no prompts: the file has a header only", file=path)
    return pd.DataFrame(rows)


@dataclass
class GridSelection:
    """A drawn grid: a prompts table (one row per filled cell) and the cells that had no prompt."""
    prompts: pd.DataFrame
    missing: list[tuple[str, str]] = field(default_factory=list)  # (category, challenge)
    candidates: dict[tuple[str, str], int] = field(default_factory=dict)  # cell -> prompts to choose from


def _cell_rng(seed: int, category: str, challenge: str) -> np.random.Generator:
    # Each cell has its own stream, so a cell's draw does not change when other cells are added.
    digest = hashlib.sha256(f"{category}\t{challenge}".encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _resolve(names: Sequence[str] | None, default: Sequence[str], available: pd.Series, kind: str,
             file: str | None) -> list[str]:
    """Names as the TSV spells them (case-insensitive match); an unknown name gets "did you mean"."""
    from aigciqa.registry import lookup
    known = {name.lower(): name for name in available.unique()}
    resolved = []
    for name in (default if names is None else names):
        try:
            resolved.append(lookup(known, name, kind))
        except InputError as error:
            raise InputError(error.message, file=file, field=kind.title()) from None
    duplicated = {n for n in resolved if resolved.count(n) > 1}
    if duplicated:
        raise InputError(f"{kind} named twice: {sorted(duplicated)}", field=kind.title())
    if not resolved:
        raise InputError(f"no {kind} chosen", field=kind.title())
    return resolved


def select_prompt_grid(parti: pd.DataFrame, *, categories: Sequence[str] | None = None,
                       challenges: Sequence[str] | None = None, seed: int = 0,
                       file: str | None = None) -> GridSelection:
    """Draw one prompt per category x challenge cell, seeded; report the cells that have none.

    ``parti`` is :func:`read_parti_tsv`'s table. By default the grid is AIGCIQA2023's 10 categories
    x 10 challenges. Prompt ids are 0.. in challenge-major order, as in AIGCIQA2023 (ids 0-9 are the
    first challenge). The draw in a cell depends only on the seed, the cell and the prompts in it
    (sorted, so the TSV's row order does not matter).
    """
    if seed < 0:
        raise InputError(f"seed {seed} must not be negative", field="seed")
    categories = _resolve(categories, AIGCIQA2023_CATEGORIES, parti["Category"], "category", file)
    challenges = _resolve(challenges, AIGCIQA2023_CHALLENGES, parti["Challenge"], "challenge", file)
    cells = {key: sorted(group["Prompt"]) for key, group in parti.groupby(["Category", "Challenge"])}
    rows, missing, candidates = [], [], {}
    for challenge in challenges:
        for category in categories:
            choices = cells.get((category, challenge), [])
            candidates[(category, challenge)] = len(choices)
            if not choices:
                missing.append((category, challenge))
                continue
            prompt = choices[int(_cell_rng(seed, category, challenge).integers(len(choices)))]
            rows.append({"prompt_id": str(len(rows)), "prompt": prompt, "category": category,
                         "challenge": challenge})
    prompts = pd.DataFrame(rows, columns=["prompt_id", "prompt", "category", "challenge"])
    return GridSelection(prompts=prompts, missing=missing, candidates=candidates)
