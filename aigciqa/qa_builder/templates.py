"""The paper's question families (Fig. 5): template question-answer pairs from MOS, levels, explanations.

Per image (default card, all labels present) 16 pairs:
- per perspective p: ``rating`` ("How is the p of the image?": score + levels + explanation),
  ``assess`` ("Please assess the image from the p perspective."), ``why`` ("Why is the p of the
  image low/high?");
- per fine-grained question: ``factor`` (clarity, outline, details, distortion with "point out the
  geometry distortion", consistency with "what is inconsistent");
- ``alignment`` ("Is the image aligned with the text ...?") and ``three_scores`` ("Give me three scores").

Every pair names the fields it came from, so a missing label or explanation drops only the pairs
that need it. Scores print with two decimals, as in the paper.
"""

from __future__ import annotations

import math
from typing import Iterable

from aigciqa.common.questions import QUESTION_PERSPECTIVE, perspective_noun, rating_question
from aigciqa.qa_builder.inputs import VqaInputs, level_of

# How the paper's questions are asked and answered (level wording comes from the card).
FACTOR_QUESTIONS = {
    "clarity": "How is the clarity of the image?",
    "outline": "Can the outline and content of the image be distinguished?",
    "details": "How are the details of the image?",
    "distortion": "Is the image geometrically distorted? Point out the geometry distortion.",
    "consistency": "Is the image consistent with its prompt? What is inconsistent?",
}
LEVEL_SENTENCES = {
    "clarity": "the image is {}",
    "outline": "the outline and content of the image are {}",
    "details": "the details of the image are {}",
    "distortion": "the image is {}",
    "consistency": "the image and its prompt are {}",
}
# Level wording that already carries its verb ("cannot be distinguished").
_VERB_STARTS = ("cannot ", "can ", "do not ", "does not ", "is ", "are ")

# Five words for where a MOS lies in the card's range (equal fifths), as ACR categories.
MOS_WORDS = ("bad", "poor", "fair", "good", "excellent")


def level_sentence(question: dict, level: int) -> str:
    """One clause for a level, e.g. "the image is partially blurry" (lower-case start, no period)."""
    word = question["levels"][level - 1]
    template = LEVEL_SENTENCES.get(question["name"])
    if template is None:
        title = question.get("title", question["name"])
        return f"the {title} of the image is {word}"
    if word.startswith(_VERB_STARTS):  # "the outline ... cannot be distinguished", not "are cannot"
        return template.rsplit(" ", 2)[0] + " " + word
    return template.format(word)


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def explanation_sentence(text: str) -> str:
    """An annotator's explanation as a sentence: stripped, ending with one period."""
    text = " ".join(text.split())
    if not text:
        return ""
    return text if text.endswith((".", "!", "?")) else text + "."


def mos_word(mos: float, mos_range: tuple[float, float]) -> str:
    low, high = mos_range
    position = (mos - low) / (high - low) if high > low else 0.5
    return MOS_WORDS[min(len(MOS_WORDS) - 1, max(0, int(position * len(MOS_WORDS))))]


class _ImageFacts:
    """One image's facts with accessors that say which fields they used."""

    def __init__(self, row: dict, inputs: VqaInputs):
        self.row = row
        self.inputs = inputs
        self.questions = {q["name"]: q for q in inputs.questions}

    def mos(self, p: str) -> float | None:
        value = self.row.get(f"{p}_mos")
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)

    def level(self, name: str) -> int | None:
        return level_of(self.row.get(name)) if name in self.questions else None

    def explanation(self, name: str) -> tuple[str, str | None]:
        """(sentence, field) for the question's explanation; ("", None) when there is none."""
        column = self.questions.get(name, {}).get("explanation")
        if not column:
            return "", None
        sentence = explanation_sentence(str(self.row.get(column, "") or ""))
        return (sentence, column) if sentence else ("", None)

    def factors_of(self, perspective: str) -> list[dict]:
        return [q for q in self.inputs.questions if QUESTION_PERSPECTIVE.get(q["name"]) == perspective]


def _levels_text(facts: _ImageFacts, perspective: str) -> tuple[str, list[str]]:
    """The perspective's level clauses (and explanations) as sentences, with the fields used."""
    clauses, fields, explanations = [], [], []
    for q in facts.factors_of(perspective):
        level = facts.level(q["name"])
        if level is None:
            continue
        clauses.append(level_sentence(q, level))
        fields.append(q["name"])
        sentence, column = facts.explanation(q["name"])
        if sentence:
            explanations.append(sentence)
            fields.append(column)
    if not clauses:
        return "", fields
    text = capitalize(_join(clauses)) + "."
    if explanations:
        text += " " + " ".join(explanations)
    return text, fields


def _join(clauses: list[str]) -> str:
    if len(clauses) == 1:
        return clauses[0]
    return ", ".join(clauses[:-1]) + " and " + clauses[-1]


def image_pairs(row: dict, inputs: VqaInputs) -> list[dict]:
    """The template pairs of one image (see the module docstring), without ids."""
    facts = _ImageFacts(row, inputs)
    low, high = inputs.mos_range
    pairs: list[dict] = []

    def add(perspective, kind, question, answer, fields, topic=None):
        pairs.append({"perspective": perspective, "kind": kind, "topic": topic or perspective or kind,
                      "question": question, "answer": answer, "fields": fields})

    for p in inputs.card["perspectives"]:
        noun = perspective_noun(p)
        mos = facts.mos(p) if p in inputs.perspectives else None
        levels_text, level_fields = _levels_text(facts, p)
        if mos is not None:
            answer = (f"The {noun} score of the image is {mos:.2f} on a scale of {low:g} to {high:g}, "
                      f"which is {mos_word(mos, (low, high))}.")
            add(p, "rating", rating_question(p),
                answer + (" " + levels_text if levels_text else ""), [f"{p}_mos", *level_fields])
        if levels_text:
            lead = (f"From the {noun} perspective, the image is {mos_word(mos, (low, high))}. "
                    if mos is not None else "")
            add(p, "assess", f"Please assess the image from the {noun} perspective.",
                lead + levels_text, ([f"{p}_mos"] if mos is not None else []) + level_fields)
        if mos is not None and levels_text:
            direction = "low" if mos < (low + high) / 2 else "high"
            add(p, "why", f"Why is the {noun} of the image {direction}?",
                f"The {noun} of the image is {direction} because {levels_text[0].lower()}{levels_text[1:]}",
                [f"{p}_mos", *level_fields])

    for q in inputs.questions:
        level = facts.level(q["name"])
        if level is None:
            continue
        perspective = QUESTION_PERSPECTIVE.get(q["name"], "")
        question = FACTOR_QUESTIONS.get(q["name"], f"How is the {q.get('title', q['name'])} of the image?")
        answer = capitalize(level_sentence(q, level)) + "."
        fields = [q["name"]]
        sentence, column = facts.explanation(q["name"])
        if sentence:
            answer += " " + sentence
            fields.append(column)
        elif q["name"] == "distortion" and level < len(q["levels"]):
            answer += " The annotators did not point out where."
        add(perspective, "factor", question, answer, fields, topic=q["name"])

    consistency = facts.level("consistency")
    if consistency is not None:
        q = facts.questions["consistency"]
        verdict = {len(q["levels"]): "Yes", 1: "No"}.get(consistency, "Partly")
        answer = f"{verdict}, {level_sentence(q, consistency)}."
        fields = ["consistency", "prompt"]
        sentence, column = facts.explanation("consistency")
        if sentence:
            answer += " " + sentence
            fields.append(column)
        add("correspondence", "alignment", f"Is the image aligned with the text \"{row['prompt'].strip()}\"?",
            answer, fields, topic="consistency")

    scored = [p for p in inputs.card["perspectives"] if facts.mos(p) is not None] if inputs.perspectives else []
    if scored:
        parts = ", ".join(f"{perspective_noun(p)} {facts.mos(p):.2f}" for p in scored)
        names = _join([perspective_noun(p) for p in scored])
        count = {1: "one score", 2: "two scores", 3: "three scores"}.get(len(scored), f"{len(scored)} scores")
        add("", "three_scores", f"Give me {count} for the image: {names}.",
            f"On a scale of {low:g} to {high:g}: {parts}.", [f"{p}_mos" for p in scored], topic="scores")
    return pairs


def template_pairs(inputs: VqaInputs) -> list[dict]:
    """Every image's template pairs as contract records (``vqa.jsonl``), in image order."""
    records = []
    for row in inputs.facts.to_dict("records"):
        for pair in image_pairs(row, inputs):
            records.append(pair_record(row["image_id"], pair))
    return records


def pair_record(image_id: str, pair: dict, *, source: str = "template", model: str | None = None,
                suffix: str = "") -> dict:
    """A contract record: ``{id, image_id, perspective, kind, question, answer, source, model}`` + fields."""
    return {"id": f"{image_id}:{pair['kind']}:{pair['topic']}{suffix}", "image_id": image_id,
            "perspective": pair["perspective"], "kind": pair["kind"], "question": pair["question"],
            "answer": pair["answer"], "source": source, "model": model, "fields": list(pair["fields"])}


def count_by(records: Iterable[dict], key: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        counts[record[key]] = counts.get(record[key], 0) + 1
    return dict(sorted(counts.items()))
