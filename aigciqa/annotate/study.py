"""The study: what subjects rate, which answers are required, training, gold items and item order.

A study is the database card (perspectives, scale, questions) narrowed and extended by an optional
JSON config. Everything here is pure: tables and dicts in, dataclasses out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from aigciqa.database.tables import check_relative_path
from aigciqa.errors import InputError, read_json

EXPLANATION_RULES = ("never", "below_best", "always")

# Wording of the paper's two free-text boxes; other questions get a generic prompt.
EXPLANATION_PROMPTS = {
    "distortion": "Where is the distortion?",
    "consistency": "What is inconsistent with the prompt?",
}

# Shown on the instructions screen unless the config says otherwise (paper section III-B).
PERSPECTIVE_DEFINITIONS = {
    "quality": "Quality: how good the image looks as a picture: sharp, clean outlines, rich details, no noise "
               "or artefacts.",
    "authenticity": "Authenticity: how real or natural it looks: could it be a photograph or a work by a person, "
                    "or does it show odd shapes, bent limbs or impossible objects?",
    "correspondence": "Correspondence: how well the image matches the prompt written under it: every object, "
                      "count, colour and relation the prompt asks for.",
}
# A word for each step of the 0-5 scale (ITU-R BT.500's five grades, with "very bad" below them).
SCALE_ANCHORS = {"0": "very bad", "1": "bad", "2": "poor", "3": "fair", "4": "good", "5": "excellent"}
# Defaults of the study's "session" settings: ITU-R BT.500 suggests sessions of at most about 30 minutes.
SESSION_DEFAULTS = {"break_every_items": None, "break_every_minutes": None, "break_seconds": 60.0,
                    "max_minutes": None, "min_viewing_seconds": 0.0}
SPEEDING_SECONDS = 3.0  # a median below this per item, over 3+ items, is flagged as speeding

SUBJECT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

_ANSWERS_SCHEMA = {"type": "object", "additionalProperties": {"type": ["integer", "number", "string"]}}

STUDY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "aigciqa annotate study config",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "perspectives": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string"}},
        "scale": {"type": "object", "required": ["min", "max"], "additionalProperties": False,
                  "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}}},
        "questions": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
        "required": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
        "explanations": {"type": "object",
                         "additionalProperties": {"enum": list(EXPLANATION_RULES)}},
        "explanation_prompts": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}},
        "training": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["answers"],
            "properties": {"image_id": {"type": "string", "minLength": 1},
                           "path": {"type": "string", "minLength": 1},
                           "prompt": {"type": "string"},
                           "note": {"type": "string"},
                           "answers": _ANSWERS_SCHEMA}}},
        "gold": {"type": "object", "additionalProperties": False, "properties": {
            "repeat": {"type": "integer", "minimum": 0},
            "known": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["image_id", "answers"],
                "properties": {"image_id": {"type": "string", "minLength": 1}, "answers": _ANSWERS_SCHEMA}}},
            "score_tolerance": {"type": "number", "minimum": 0},
            "level_tolerance": {"type": "integer", "minimum": 0},
            "min_agreement": {"type": "number", "minimum": 0, "maximum": 1},
            "speeding_seconds": {"type": "number", "minimum": 0}}},
        "instructions": {"type": "object", "additionalProperties": False, "properties": {
            "text": {"type": "string"},
            "definitions": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}},
            "anchors": {"type": "object", "propertyNames": {"pattern": "^-?[0-9]+$"},
                        "additionalProperties": {"type": "string", "minLength": 1}}}},
        "session": {"type": "object", "additionalProperties": False, "properties": {
            "break_every_items": {"type": "integer", "minimum": 1},
            "break_every_minutes": {"type": "number", "exclusiveMinimum": 0},
            "break_seconds": {"type": "number", "minimum": 0},
            "max_minutes": {"type": "number", "exclusiveMinimum": 0},
            "min_viewing_seconds": {"type": "number", "minimum": 0}}},
        "items": {"oneOf": [{"const": "all"},
                            {"type": "object", "additionalProperties": False, "required": ["per_subject"],
                             "properties": {"per_subject": {"type": "integer", "minimum": 1}}}]},
        "seed": {"type": "integer"},
    },
}


@dataclass(frozen=True)
class Question:
    name: str
    title: str
    levels: tuple[str, ...]
    explanation: str | None  # the answers.csv/labels.csv column of its free text, if any
    explanation_rule: str  # one of EXPLANATION_RULES
    explanation_prompt: str


@dataclass(frozen=True)
class TrainingItem:
    image_id: str | None  # an image of the folder, or
    path: str | None  # an image file relative to the folder (e.g. training/1.png)
    prompt: str
    answers: dict
    note: str = ""


@dataclass
class Study:
    perspectives: list[str]
    scale_min: int
    scale_max: int
    questions: list[Question]
    required: frozenset[str]
    training: list[TrainingItem] = field(default_factory=list)
    gold_repeat: int = 0
    gold_known: dict[str, dict] = field(default_factory=dict)
    score_tolerance: float = 1.0
    level_tolerance: int = 0
    min_agreement: float | None = None
    speeding_seconds: float = SPEEDING_SECONDS
    per_subject: int | None = None
    seed: int = 0
    config: dict = field(default_factory=dict)  # the config as given, stored with each subject
    instructions: str = ""
    definitions: dict[str, str] = field(default_factory=dict)  # perspective -> what it means
    anchors: dict[int, str] = field(default_factory=dict)  # score -> its word
    session: dict = field(default_factory=lambda: dict(SESSION_DEFAULTS))

    @property
    def scores(self) -> list[int]:
        return list(range(self.scale_min, self.scale_max + 1))

    def question(self, name: str) -> Question:
        return next(q for q in self.questions if q.name == name)

    def field_names(self) -> list[str]:
        """Every answer field: perspectives, questions, then explanation columns."""
        return ([*self.perspectives, *(q.name for q in self.questions)]
                + [q.explanation for q in self.questions if q.explanation])

    def explanation_needed(self, question_name: str, level) -> bool:
        question = self.question(question_name)
        if not question.explanation or question.explanation_rule == "never":
            return False
        return question.explanation_rule == "always" or (level is not None and level < len(question.levels))

    def missing(self, answers: dict) -> list[tuple[str, str]]:
        """(row name, what to do) for each answer still needed before the subject may move on."""
        missing = []
        for name in self.perspectives:
            if name in self.required and answers.get(name) is None:
                missing.append((name, f"rate {name}"))
        for q in self.questions:
            level = answers.get(q.name)
            if q.name in self.required and level is None:
                missing.append((q.name, f"answer {q.title}"))
            if self.explanation_needed(q.name, level) and not str(answers.get(q.explanation) or "").strip():
                missing.append((q.name, f"explain {q.title} ({q.explanation_prompt.rstrip('?:').lower()})"))
        return missing

    def problems(self, answers: dict) -> list[str]:
        """Why an item's answers are not complete yet (empty when the subject may move on)."""
        return [message for _, message in self.missing(answers)]


def validate_subject_id(subject_id: str) -> str:
    """Return the id, or raise an InputError that says which characters are allowed."""
    if not isinstance(subject_id, str) or not SUBJECT_ID_PATTERN.fullmatch(subject_id):
        raise InputError(f"subject id {subject_id!r} is not allowed: use 1-64 letters, digits, '_', '.' or '-', "
                         "starting with a letter or digit (for example s01)", field="subject")
    return subject_id


def load_study_config(path: str | Path) -> dict:
    return read_json(path, missing="study config not found", what="study config")


def make_study(card: dict, config: dict | None = None, image_ids=(), *, file: str = "study config") -> Study:
    """Check ``config`` against the schema and the card; return the study it describes.

    ``image_ids`` are the folder's images (gold items must be among them).
    """
    config = {} if config is None else config
    validator = jsonschema.Draft202012Validator(STUDY_SCHEMA)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        raise InputError(error.message, file=file, field="/".join(map(str, error.absolute_path)) or None)

    def fail(message, where):
        raise InputError(message, file=file, field=where)

    perspectives = list(config.get("perspectives", card["perspectives"]))
    for k, name in enumerate(perspectives):
        if name not in card["perspectives"]:
            fail(f"perspective '{name}' is not in the card ({', '.join(card['perspectives'])})", f"perspectives/{k}")
    scale = config.get("scale", card["scale"])
    lo, hi = scale["min"], scale["max"]
    if lo != int(lo) or hi != int(hi):
        fail(f"the window needs a whole-number scale, the card has {lo}-{hi}", "scale")
    lo, hi = int(lo), int(hi)
    if not card["scale"]["min"] <= lo < hi <= card["scale"]["max"]:
        fail(f"scale {lo}-{hi} must lie within the card's {card['scale']['min']}-{card['scale']['max']}", "scale")
    if hi - lo > 9:
        fail("at most 10 scale steps (one digit key each)", "scale")
    card_questions = {q["name"]: q for q in card["questions"]}
    names = list(config.get("questions", card_questions))
    rules = config.get("explanations", {})
    prompts = config.get("explanation_prompts", {})
    for where, mapping in (("explanations", rules), ("explanation_prompts", prompts)):
        for name in mapping:
            if name not in names or not card_questions[name].get("explanation"):
                fail(f"'{name}' is not a study question with an explanation", f"{where}/{name}")
    questions = []
    for k, name in enumerate(names):
        if name not in card_questions:
            fail(f"question '{name}' is not in the card ({', '.join(card_questions)})", f"questions/{k}")
        q = card_questions[name]
        if len(q["levels"]) > 9:
            fail(f"question '{name}' has more than 9 levels (one digit key each)", f"questions/{k}")
        questions.append(Question(
            name=name, title=q.get("title", name), levels=tuple(q["levels"]), explanation=q.get("explanation"),
            explanation_rule=rules.get(name, "below_best") if q.get("explanation") else "never",
            explanation_prompt=prompts.get(name, EXPLANATION_PROMPTS.get(name, f"Explain the {q.get('title', name)}:"))))
    all_names = perspectives + names + [q.explanation for q in questions if q.explanation]
    if len(set(all_names)) != len(all_names):
        fail("perspectives, questions and explanation columns must have different names", "questions")
    required = config.get("required", perspectives + names)
    for k, name in enumerate(required):
        if name not in perspectives + names:
            fail(f"'{name}' is not a perspective or question of the study", f"required/{k}")
    study = Study(perspectives=perspectives, scale_min=lo, scale_max=hi, questions=questions,
                  required=frozenset(required), seed=int(config.get("seed", 0)), config=config)

    known_ids = set(image_ids)
    for k, item in enumerate(config.get("training", [])):
        where = f"training/{k}"
        if ("image_id" in item) == ("path" in item):
            fail("give either image_id or path", where)
        _check_answers(study, item["answers"], f"{where}/answers", fail)
        if "path" in item and check_relative_path(item["path"]):
            fail(check_relative_path(item["path"]), f"{where}/path")
        study.training.append(TrainingItem(image_id=item.get("image_id"), path=item.get("path"),
                                           prompt=item.get("prompt", ""),
                                           answers=dict(item["answers"]), note=item.get("note", "")))
        if "image_id" in item and item["image_id"] not in known_ids:
            fail(f"image_id '{item['image_id']}' is not in images.csv", f"{where}/image_id")
    gold = config.get("gold", {})
    study.gold_repeat = int(gold.get("repeat", 0))
    study.score_tolerance = float(gold.get("score_tolerance", 1.0))
    study.level_tolerance = int(gold.get("level_tolerance", 0))
    study.min_agreement = gold.get("min_agreement")
    for k, item in enumerate(gold.get("known", [])):
        if item["image_id"] not in known_ids:
            fail(f"image_id '{item['image_id']}' is not in images.csv", f"gold/known/{k}/image_id")
        _check_answers(study, item["answers"], f"gold/known/{k}/answers", fail)
        study.gold_known[item["image_id"]] = dict(item["answers"])
    study.speeding_seconds = float(gold.get("speeding_seconds", SPEEDING_SECONDS))
    instructions = config.get("instructions", {})
    study.instructions = instructions.get("text", "")
    for name in instructions.get("definitions", {}):
        if name not in perspectives:
            fail(f"'{name}' is not a perspective of the study", f"instructions/definitions/{name}")
    study.definitions = {p: instructions.get("definitions", {}).get(p, PERSPECTIVE_DEFINITIONS.get(p, p.capitalize()))
                         for p in perspectives}
    anchors = instructions.get("anchors", SCALE_ANCHORS if (lo, hi) == (0, 5) else {})
    for key in anchors:
        if not lo <= int(key) <= hi:
            fail(f"anchor {key} is outside the scale {lo}-{hi}", f"instructions/anchors/{key}")
    study.anchors = {int(k): v for k, v in sorted(anchors.items(), key=lambda kv: int(kv[0]))}
    study.session = {**SESSION_DEFAULTS, **config.get("session", {})}
    items = config.get("items", "all")
    study.per_subject = None if items == "all" else int(items["per_subject"])
    return study


def _check_answers(study: Study, answers: dict, where: str, fail) -> None:
    levels = {q.name: len(q.levels) for q in study.questions}
    explanations = {q.explanation for q in study.questions if q.explanation}
    for name, value in answers.items():
        if name in study.perspectives:
            if isinstance(value, str) or not study.scale_min <= value <= study.scale_max:
                fail(f"score {value!r} is outside the scale {study.scale_min}-{study.scale_max}", f"{where}/{name}")
        elif name in levels:
            if not isinstance(value, int) or not 1 <= value <= levels[name]:
                fail(f"level {value!r} is outside 1-{levels[name]}", f"{where}/{name}")
        elif name in explanations:
            if not isinstance(value, str):
                fail("an explanation is text", f"{where}/{name}")
        else:
            fail(f"'{name}' is not a perspective, question or explanation of the study", f"{where}/{name}")


@dataclass(frozen=True)
class Item:
    position: int
    image_id: str
    kind: str  # "main" or "repeat" (a gold repetition of an earlier item)


def subject_seed(study_seed: int, subject_id: str) -> list[int]:
    """A seed that is the same on every machine and Python run (``hash()`` is salted per process)."""
    digest = hashlib.sha256(subject_id.encode("utf-8")).digest()
    return [study_seed, int.from_bytes(digest[:8], "little")]


def subject_items(study: Study, image_ids: list[str], subject_id: str) -> list[Item]:
    """The subject's items: a seeded random subset (or all) in a seeded random order, plus gold repeats.

    Known-answer gold images are always in the subset. Each repeat comes at least two other items
    after its first showing (when the list is long enough) so it is not recognised at once.
    """
    rng = np.random.default_rng(subject_seed(study.seed, subject_id))
    ids = list(dict.fromkeys(image_ids))
    if study.per_subject is not None and study.per_subject < len(ids):
        forced = [i for i in ids if i in study.gold_known]
        others = [i for i in ids if i not in study.gold_known]
        n_more = max(study.per_subject - len(forced), 0)
        chosen = set(forced) | {others[k] for k in rng.choice(len(others), size=n_more, replace=False)}
        ids = [i for i in ids if i in chosen]
    order = [ids[k] for k in rng.permutation(len(ids))]
    kinds = ["main"] * len(order)
    n_repeat = min(study.gold_repeat, len(order))
    for first in sorted(rng.choice(len(ids), size=n_repeat, replace=False).tolist()):
        image_id = ids[first]
        at = order.index(image_id)
        start = min(at + 3, len(order))
        insert = int(rng.integers(start, len(order) + 1))
        order.insert(insert, image_id)
        kinds.insert(insert, "repeat")
    return [Item(position, image_id, kind) for position, (image_id, kind) in enumerate(zip(order, kinds))]
