"""The paper's sixteen question-answer pairs per image (Fig. 5), from MOS, levels and explanations.

Per image (default card, all labels present), in the figure's order:

====  ============  =====================================================================
 #    kind          question
====  ============  =====================================================================
 1    rating        How is the quality of the image?
 2    assess        Please assess the image from quality perspective.
 3    why           Why the quality of the image is low?  ("high" at or above the middle of mos_range)
 4-6  factor        How is the clarity / outline / detail of the image?
 7-9  rating, assess, why   ... authenticity ...
 10   point_out     Could you please point out the geometry distortion in this image?
 11   factor        How is the distortion of the image?
 12   rating        How is the correspondence between the image and text?
 13   assess        Please assess the image from correspondence perspective.
 14   point_out     What is inconsistent between the image and the text?
 15   alignment     Is the generated image and the text aligned?
 16   three_scores  Give me three scores to assess the image from the following three perspectives: ...
====  ============  =====================================================================

Answers: "The quality score is 47.26, " + the perspective's level clauses joined by ", " + ".", then
the annotator's explanation. labels.csv holds each image's distinct explanations joined by
``EXPLANATION_SEPARATOR``; every pair that carries an explanation (rating, assess and why of a
perspective whose questions have explanations, and the explanation questions' own pairs) is written
once per distinct explanation, never with the joined text; with no explanation it is written once,
without one. Every pair names the fields it came from, so a missing label or MOS drops only the pairs
that need it. Scores print with two decimals, as in the paper. Cards with other perspectives or
questions get the same families with generic wording from the card's ``title`` and ``levels``.
"""

from __future__ import annotations

import math
from typing import Iterable

from aigciqa.common.questions import QUESTION_PERSPECTIVE, perspective_noun, rating_question
from aigciqa.mos.labels import EXPLANATION_SEPARATOR
from aigciqa.qa_builder.inputs import VqaInputs, level_of

# One clause per level as Fig. 5 words it ("{}" is the card's level wording).
LEVEL_SENTENCES = {
    "clarity": "the image is {}",
    "outline": "the image outline and content are {}",
    "details": "the image quality details are {}",
    "distortion": "the image is {}",
    "consistency": "the image and its prompt are {}",
}
# Level wording that already carries its verb ("cannot be distinguished").
_VERB_STARTS = ("cannot ", "can ", "do not ", "does not ", "is ", "are ")

# The pairs of each fine-grained question, in Fig. 5's order: (kind, question, answer), where the
# answer is "level" (the level sentence, + explanation when the question has one) or "explanation"
# (the explanation alone; the level sentence when there is none).
QUESTION_PAIRS = {
    "clarity": (("factor", "How is the clarity of the image?", "level"),),
    "outline": (("factor", "How is the outline of the image?", "level"),),
    "details": (("factor", "How is the detail of the image?", "level"),),
    "distortion": (("point_out", "Could you please point out the geometry distortion in this image?", "explanation"),
                   ("factor", "How is the distortion of the image?", "level")),
    "consistency": (("point_out", "What is inconsistent between the image and the text?", "explanation"),
                    ("alignment", "Is the generated image and the text aligned?", "level_only")),
}
# Perspectives that Fig. 5 asks "why ... low?" about (correspondence is asked what is inconsistent).
NO_WHY = {"correspondence"}
COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def level_sentence(question: dict, level: int) -> str:
    """One clause for a level, e.g. "the image is partially blurry" (lower-case start, no period)."""
    word = question["levels"][level - 1]
    template = LEVEL_SENTENCES.get(question["name"])
    if template is None:
        title = question.get("title", question["name"])
        return f"the {title} of the image is {word}"
    if word.startswith(_VERB_STARTS):  # "the image outline and content cannot be distinguished"
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


def explanation_sentences(cell: str) -> list[str]:
    """The distinct explanations of one labels.csv cell (build-mos joins annotators' texts), as sentences."""
    sentences = (explanation_sentence(part) for part in str(cell or "").split(EXPLANATION_SEPARATOR))
    return list(dict.fromkeys(s for s in sentences if s))


def _series(words: list[str]) -> str:
    """"a", "a and b", "a, b, and c" (the figure's serial comma)."""
    if len(words) <= 2:
        return " and ".join(words)
    return ", ".join(words[:-1]) + ", and " + words[-1]


def scores_question(perspectives: list[str]) -> str:
    count = COUNT_WORDS.get(len(perspectives), str(len(perspectives)))
    if len(perspectives) == 1:
        return f"Give me one score to assess the image from the following perspective: {perspective_noun(perspectives[0])}."
    return (f"Give me {count} scores to assess the image from the following {count} perspectives: "
            f"{_series([perspective_noun(p) for p in perspectives])}.")


class _ImageFacts:
    """One image's facts with accessors that say which fields they used."""

    def __init__(self, row: dict, inputs: VqaInputs):
        self.row = row
        self.inputs = inputs
        self.questions = {q["name"]: q for q in inputs.questions}

    def mos(self, p: str) -> float | None:
        if p not in self.inputs.perspectives:
            return None
        value = self.row.get(f"{p}_mos")
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)

    def level(self, name: str) -> int | None:
        return level_of(self.row.get(name)) if name in self.questions else None

    def explanations(self, name: str) -> tuple[list[str], str | None]:
        """(distinct explanation sentences, column) of a question; ([], None) when there is none."""
        column = self.questions.get(name, {}).get("explanation")
        sentences = explanation_sentences(self.row.get(column, "")) if column else []
        return (sentences, column) if sentences else ([], None)

    def factors_of(self, perspective: str) -> list[dict]:
        return [q for q in self.inputs.questions if QUESTION_PERSPECTIVE.get(q["name"], q["name"]) == perspective]


def _with_explanations(text: str, fields: list[str], explanations: list[tuple[str, str]]) -> list[tuple[str, list]]:
    """One (answer, fields) per explanation, the explanation after ``text``; (text, fields) when none."""
    if not explanations:
        return [(text, fields)]
    return [((text + " " + sentence).strip(), fields + [column]) for sentence, column in explanations]


def image_pairs(row: dict, inputs: VqaInputs) -> list[dict]:
    """The Fig. 5 pairs of one image (see the module docstring), without ids."""
    facts = _ImageFacts(row, inputs)
    low, high = inputs.mos_range
    pairs: list[dict] = []

    def add(perspective, kind, topic, question, answers):
        for index, (answer, fields) in enumerate(answers, 1):
            pairs.append({"perspective": perspective, "kind": kind, "topic": topic, "index": index,
                          "question": question, "answer": answer, "fields": fields})

    for p in inputs.card["perspectives"]:
        noun = perspective_noun(p)
        mos = facts.mos(p)
        clauses, level_fields, explanations = [], [], []
        for q in facts.factors_of(p):
            level = facts.level(q["name"])
            if level is not None:
                clauses.append(level_sentence(q, level))
                level_fields.append(q["name"])
            sentences, column = facts.explanations(q["name"])
            explanations += [(s, column) for s in sentences]
        levels_text = ", ".join(clauses)
        if mos is not None:
            scored = f"The {noun} score is {mos:.2f}" + (f", {levels_text}." if levels_text else ".")
            answers = _with_explanations(scored, [f"{p}_mos", *level_fields], explanations)
            add(p, "rating", p, rating_question(p), answers)
            add(p, "assess", p, f"Please assess the image from {noun} perspective.", answers)
            if p not in NO_WHY and levels_text:
                direction = "low" if mos < (low + high) / 2 else "high"
                add(p, "why", p, f"Why the {noun} of the image is {direction}?",
                    _with_explanations(capitalize(levels_text) + ".", [f"{p}_mos", *level_fields], explanations))
        for q in facts.factors_of(p):
            level = facts.level(q["name"])
            sentences, column = facts.explanations(q["name"])
            said = [(s, column) for s in sentences]
            level_text = capitalize(level_sentence(q, level)) + "." if level is not None else ""
            level_fields = [q["name"]] if level is not None else []
            generic = (("factor", f"How is the {q.get('title', q['name'])} of the image?", "level"),)
            for kind, question, answer in QUESTION_PAIRS.get(q["name"], generic):
                if answer == "explanation" and said:
                    answers = [(s, [column]) for s, _ in said]
                elif answer == "level_only" or not said:
                    answers = [(level_text, level_fields)] if level_text else []
                else:
                    answers = _with_explanations(level_text, level_fields, said)
                add(p, kind, q["name"], question, answers)

    scored = [p for p in inputs.card["perspectives"] if facts.mos(p) is not None]
    if scored:
        add("", "three_scores", "scores", scores_question(scored),
            [(" ".join(f"The {perspective_noun(p)} score is {facts.mos(p):.2f}." for p in scored), [f"{p}_mos" for p in scored])])
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
    """A contract record: ``{id, image_id, perspective, kind, question, answer, source, model}`` + fields.

    The id is ``image:kind:topic``, with ``.N`` after the topic for an image's N-th explanation (N >= 2).
    """
    index = pair.get("index", 1)
    topic = pair["topic"] + (f".{index}" if index > 1 else "")
    return {"id": f"{image_id}:{pair['kind']}:{topic}{suffix}", "image_id": image_id,
            "perspective": pair["perspective"], "kind": pair["kind"], "question": pair["question"],
            "answer": pair["answer"], "source": source, "model": model, "fields": list(pair["fields"])}


def record_topic(record: dict) -> str:
    """The topic of a template record (perspective, question name or "scores"), from its id."""
    return record["id"].split(":")[-1].split(".")[0]


def count_by(records: Iterable[dict], key: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        counts[record[key]] = counts.get(record[key], 0) + 1
    return dict(sorted(counts.items()))
