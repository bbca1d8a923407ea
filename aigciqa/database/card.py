"""The database card, ``dataset.json``: what a folder rates, on which scale, and how it was made."""

from __future__ import annotations

import copy
import datetime as _dt
import json
import math
import shlex
import sys
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

from aigciqa import __version__
from aigciqa.errors import InputError

SCHEMA_VERSION = 1
CARD_FILE = "dataset.json"

DEFAULT_PERSPECTIVES = ("quality", "authenticity", "correspondence")

# The paper's fine-grained questions, with the database authors' own level wording, worst to best.
# A level is stored as its 1-based position in this list.
DEFAULT_QUESTIONS: tuple[dict[str, Any], ...] = (
    {"name": "clarity", "title": "clarity",
     "levels": ["very blurry", "partially blurry", "essentially clear", "very clear"]},
    {"name": "outline", "title": "outline and content",
     "levels": ["cannot be distinguished", "vaguely distinguishable",
                "essentially distinguishable", "clearly distinguishable"]},
    {"name": "details", "title": "details",
     "levels": ["severely lacking", "partially missing", "essentially sufficient", "very rich"]},
    {"name": "distortion", "title": "geometry distortion",
     "levels": ["highly distorted", "partially distorted", "essentially distortion-free"],
     "explanation": "distortion_explanation"},
    {"name": "consistency", "title": "text-image consistency",
     "levels": ["highly inconsistent", "partially inconsistent", "essentially consistent"],
     "explanation": "inconsistency_explanation"},
)


# The card's optional fields and the value every stage assumes when a card leaves one out.
CARD_DEFAULTS: dict[str, Any] = {
    "description": "",
    "mos_range": [0, 100],
    "repeated_ratings": False,
    "generators": [],
    "synthetic": False,
    "source": {},
    "provenance": {},
}


def card_value(card: dict, key: str) -> Any:
    """A card field, or its default (:data:`CARD_DEFAULTS`) when the card leaves it out: the one way every
    stage reads an optional field. A required field that is missing is an InputError naming it."""
    if key in card:
        return card[key]
    if key in CARD_DEFAULTS:
        return copy.deepcopy(CARD_DEFAULTS[key])
    raise InputError(f"the card lacks the required field '{key}'", file=CARD_FILE, field=key)


@lru_cache(maxsize=1)
def card_schema() -> dict:
    text = resources.files("aigciqa.database").joinpath("schema/dataset.schema.json").read_text("utf-8")
    return json.loads(text)


def default_card(name: str, **overrides: Any) -> dict:
    """A card with the paper's perspectives, 0-5 scale, 0-100 MOS and fine-grained questions."""
    card: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "perspectives": list(DEFAULT_PERSPECTIVES),
        "scale": {"min": 0, "max": 5},
        "mos_range": list(CARD_DEFAULTS["mos_range"]),
        "questions": copy.deepcopy(list(DEFAULT_QUESTIONS)),
        "generators": [],
    }
    card.update(overrides)
    return card


def validate_card(card: Any, file: str = CARD_FILE) -> dict:
    """Check a card against the shipped JSON Schema and its own consistency; return it."""
    validator = jsonschema.Draft202012Validator(card_schema())
    errors = sorted(validator.iter_errors(card), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        field = "/".join(str(part) for part in error.absolute_path) or None
        raise InputError(error.message, file=file, field=field)
    for name, value in card["scale"].items():
        if not math.isfinite(value):  # NaN would make every range check pass
            raise InputError(f"must be a finite number, not {value}", file=file, field=f"scale/{name}")
    if card["scale"]["min"] >= card["scale"]["max"]:
        raise InputError("scale min must be below max", file=file, field="scale")
    if "mos_range" in card:
        low, high = card["mos_range"]
        if not (math.isfinite(low) and math.isfinite(high)):
            raise InputError(f"must be finite numbers, not {low}, {high}", file=file, field="mos_range")
        if not low < high:
            raise InputError(f"[{low}, {high}]: the low end must be below the high end", file=file,
                             field="mos_range")
    names = [q["name"] for q in card["questions"]]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise InputError(f"question names repeat: {sorted(duplicated)}", file=file, field="questions")
    return card


def question_levels(card: dict) -> dict[str, list[str]]:
    return {q["name"]: list(q["levels"]) for q in card["questions"]}


def explanation_columns(card: dict) -> list[str]:
    return [q["explanation"] for q in card["questions"] if q.get("explanation")]


def stamp_provenance(card: dict, stage: str, command: str | None = None) -> dict:
    """Return a copy of the card that records which tool version and command last ran ``stage``."""
    stamped = copy.deepcopy(card)
    stamped.setdefault("provenance", {})[stage] = {
        "tool_version": __version__,
        "command": command if command is not None else shlex.join(["aigciqa", *sys.argv[1:]]),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return stamped
