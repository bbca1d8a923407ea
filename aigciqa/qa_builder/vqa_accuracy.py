"""VQA accuracy (paper section V-D, eq. 6-10): free-text answers scored against the fine-grained labels.

Keywords are distilled from an answer and matched to the options of the five single-choice questions
(clarity, outline, details: 4 levels; distortion, consistency: 3 levels). A question's accuracy is the
share of images whose matched option equals the label (no match counts as wrong); a perspective's
accuracy averages its questions per image, then over images:

    acc_p = 1/N * sum_i 1/|Q_p| * sum_{q in Q_p} [match(answer_i, q) == label_iq]

with Q_quality = {clarity, outline, details}, Q_authenticity = {distortion}, Q_correspondence =
{consistency}. Guessing uniformly gives 1/4 (quality) and 1/3 (authenticity, correspondence).

Matching. An answer is split into clauses; in each, cue words are found longest first (so
"distortion-free" is one cue, not "distortion"). A cue has a polarity (good/bad) for its question;
a negation in the three words before it ("not", "no", "without", "n't", ...) flips the polarity
("not blurry" is a good-clarity cue). The level follows from polarity and the modifier in front:
strong ("very", "highly", "severely") -> the extreme level, hedged ("essentially", "mostly") -> the
inner good level, weakening ("partially", "slightly", "vaguely") -> the inner bad level; a bare cue
takes the cue's own default ("sharp" -> very clear, "blurry" -> partially blurry); a negated cue
takes the inner level of the flipped polarity ("not blurry" -> essentially clear, "not very clear"
-> partially blurry). Ambiguous cue words ("clear", "missing", "rich") count for a question only
when the clause names it ("details", "outline"). When several cues match one question, one with a
modifier beats a bare one, then the first wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from aigciqa.errors import InputError
from aigciqa.common.questions import QUESTION_PERSPECTIVE

GOOD, BAD = 1, -1


@dataclass(frozen=True)
class Cue:
    phrase: tuple[str, ...]
    question: str
    polarity: int
    default: str = "inner"      # "inner" or "extreme": the level of a bare (unmodified) cue
    needs_topic: bool = False   # counts only when the clause names the question's topic


def _cues(question, polarity, phrases, default="inner", needs_topic=False):
    return [Cue(tuple(p.split()), question, polarity, default, needs_topic) for p in phrases]


CUES: list[Cue] = [
    *_cues("clarity", BAD, ["blurry", "blurred", "blur", "blurriness", "fuzzy", "unclear", "out of focus", "hazy",
                            "unsharp", "pixelated", "grainy", "noisy"]),
    *_cues("clarity", GOOD, ["clear", "clarity is good", "in focus", "well focused"]),
    *_cues("clarity", GOOD, ["sharp", "crisp", "crystal clear", "high resolution", "high-resolution"], "extreme"),
    *_cues("outline", GOOD, ["distinguishable", "recognizable", "recognisable", "identifiable", "discernible",
                             "distinct", "well defined", "well-defined"]),
    *_cues("outline", GOOD, ["clear", "visible", "defined"], needs_topic=True),
    *_cues("outline", BAD, ["cannot be distinguished", "can't be distinguished", "indistinguishable",
                            "unrecognizable", "unrecognisable", "cannot be recognized", "cannot be identified"],
           "extreme"),
    *_cues("outline", BAD, ["vague", "unclear", "blurry", "blurred", "messy", "hard to distinguish",
                            "difficult to distinguish", "hard to recognize"], needs_topic=True),
    *_cues("details", GOOD, ["detailed"]),
    *_cues("details", GOOD, ["sufficient", "adequate", "enough", "present", "fine", "good"], needs_topic=True),
    *_cues("details", GOOD, ["rich", "abundant", "plentiful", "intricate", "exquisite", "rich in detail"],
           "extreme", needs_topic=True),
    *_cues("details", BAD, ["missing", "lost", "insufficient", "poor", "few", "simple", "lacks", "lack"],
           needs_topic=True),
    *_cues("details", BAD, ["lacking", "severely lacking", "no details", "no detail", "absent"], "extreme",
           needs_topic=True),
    *_cues("distortion", BAD, ["distorted", "distortion", "distortions", "deformed", "deformation", "warped",
                               "twisted", "malformed", "misshapen", "disfigured", "aberration", "artifacts", "unnatural"]),
    *_cues("distortion", GOOD, ["distortion-free", "distortion free", "undistorted", "free of distortion",
                                "free from distortion", "no distortion", "without distortion", "not distorted",
                                "natural", "geometrically correct"]),
    *_cues("consistency", BAD, ["inconsistent", "inconsistency", "mismatch", "mismatched", "misaligned",
                                "does not match", "doesn't match", "do not match", "not aligned",
                                "does not correspond", "not consistent", "irrelevant", "unrelated"]),
    *_cues("consistency", GOOD, ["consistent", "matches", "match", "aligned", "aligns", "corresponds",
                                 "faithful", "faithfully"]),
]
# Cues that already contain their negation: not flipped again by a "not" before them.
_SELF_NEGATED = {c.phrase for c in CUES if c.phrase[0] in ("no", "not", "without", "cannot", "can't", "does",
                                                            "doesn't", "do", "free")}
TOPIC_WORDS = {"clarity": {"clarity", "quality", "sharpness", "focus", "resolution"},
               "outline": {"outline", "outlines", "content", "contents", "shape", "shapes", "contour", "contours",
                           "objects", "object", "subject"},
               "details": {"detail", "details", "texture", "textures"},
               "distortion": {"geometry", "distortion", "shape"},
               "consistency": {"prompt", "text", "description", "consistency"}}
NEGATIONS = {"not", "no", "never", "without", "hardly", "barely", "isn't", "aren't", "wasn't", "doesn't", "don't",
             "didn't", "cannot", "can't", "nor", "neither", "lacks", "free"}
STRONG = {"very", "highly", "extremely", "severely", "seriously", "completely", "totally", "heavily", "badly",
          "strongly", "significantly", "clearly", "perfectly", "fully", "entirely", "exceptionally", "remarkably",
          "incredibly", "really", "super", "crystal", "quite", "utterly", "absolutely", "greatly", "most"}
HEDGED = {"essentially", "basically", "mostly", "largely", "generally", "fairly", "reasonably", "relatively",
          "overall", "acceptably", "adequately", "sufficiently", "moderately", "pretty"}
WEAKENING = {"partially", "partly", "slightly", "somewhat", "vaguely", "mildly", "locally", "little", "bit",
             "some", "minor", "partial"}
_CLAUSE_SPLIT = re.compile(r"[.,;:!?\n]+|\b(?:but|while|whereas|although|though)\b")
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def _levels(n_levels: int) -> dict[tuple[int, str], int]:
    """(polarity, position) -> level for a question with n levels (worst = 1)."""
    inner_bad = 2 if n_levels >= 3 else 1
    inner_good = n_levels - 1 if n_levels >= 4 else n_levels
    return {(BAD, "extreme"): 1, (BAD, "inner"): inner_bad, (GOOD, "inner"): inner_good,
            (GOOD, "extreme"): n_levels}


@dataclass
class Match:
    question: str
    level: int
    position: int
    modified: bool


def _clause_matches(tokens: list[str], n_levels: dict[str, int], offset: int) -> list[Match]:
    used = [False] * len(tokens)
    found = []
    cues = sorted(CUES, key=lambda c: -len(c.phrase))
    words = set(tokens)
    for cue in cues:
        if cue.question not in n_levels:
            continue
        if cue.needs_topic and not (TOPIC_WORDS[cue.question] & words):
            continue
        size = len(cue.phrase)
        for start in range(len(tokens) - size + 1):
            if any(used[start:start + size]) or tuple(tokens[start:start + size]) != cue.phrase:
                continue
            # An ambiguous bare cue (no topic needed) yields to a question whose topic the clause names.
            if not cue.needs_topic and any(c.needs_topic and c.phrase == cue.phrase and c.question != cue.question
                                           and TOPIC_WORDS[c.question] & words
                                           and not (TOPIC_WORDS[cue.question] & words) for c in CUES):
                continue
            for i in range(start, start + size):
                used[i] = True
            before = tokens[max(0, start - 3):start]
            negated = cue.phrase not in _SELF_NEGATED and any(w in NEGATIONS or w.endswith("n't") for w in before)
            polarity = -cue.polarity if negated else cue.polarity
            modifier = next((w for w in reversed(before) if w in STRONG | HEDGED | WEAKENING), None)
            if negated:
                position, modified = "inner", True
            elif modifier in STRONG:
                position, modified = "extreme", True
            elif modifier in HEDGED:  # "essentially clear" -> inner good; "mostly distorted" -> inner bad
                position, modified = "inner", True
            elif modifier in WEAKENING:
                # "partially blurry" -> inner bad; "vaguely distinguishable" -> inner bad as well
                polarity, position, modified = BAD, "inner", True
            else:
                position, modified = cue.default, False
            level = _levels(n_levels[cue.question])[(polarity, position)]
            found.append(Match(cue.question, level, offset + start, modified))
    return found


def match_answer(answer: str, n_levels: dict[str, int]) -> dict[str, int]:
    """The level each question's option matched in a free-text answer (questions without a match left out)."""
    matches: list[Match] = []
    offset = 0
    for clause in _CLAUSE_SPLIT.split(answer.lower()):
        tokens = _TOKEN.findall(clause or "")
        matches += _clause_matches(tokens, n_levels, offset)
        offset += len(tokens) + 1
    chosen: dict[str, Match] = {}
    for m in sorted(matches, key=lambda m: (not m.modified, m.position)):
        chosen.setdefault(m.question, m)
    return {q: m.level for q, m in chosen.items()}


def random_baseline(card: dict, perspectives=None) -> dict[str, float]:
    """Expected accuracy of uniform guessing per perspective (1/levels averaged over its questions)."""
    out: dict[str, list[float]] = {}
    for q in card["questions"]:
        p = QUESTION_PERSPECTIVE.get(q["name"])
        if p and (perspectives is None or p in perspectives):
            out.setdefault(p, []).append(1 / len(q["levels"]))
    return {p: float(np.mean(v)) for p, v in out.items()}


def evaluate_answers(answers: list[dict], labels: dict[str, dict[str, int | None]], card: dict,
                     file: str = "answers.jsonl", numbers: list[int] | None = None) -> dict:
    """VQA accuracy of answer records ``{image_id, answer[, perspective]}`` against labels by image.

    Several records for one image (e.g. one per perspective question) are joined; a record with a
    ``perspective`` only answers that perspective's questions. ``numbers`` are the records' numbers in
    errors (a JSONL file's line numbers; default 1, 2, ...).
    """
    n_levels = {q["name"]: len(q["levels"]) for q in card["questions"] if q["name"] in QUESTION_PERSPECTIVE}
    texts: dict[str, dict[str, list[str]]] = {}
    for row, record in zip(numbers or range(1, len(answers) + 1), answers):
        if not isinstance(record, dict):
            raise InputError("a record must be a JSON object", file=file, row=row)
        image_id, answer = record.get("image_id"), record.get("answer")
        if not isinstance(image_id, str) or not image_id:
            raise InputError("image_id is missing or not a string", file=file, row=row, field="image_id")
        if not isinstance(answer, str):
            raise InputError("answer is missing or not a string", file=file, row=row, field="answer")
        if image_id not in labels:
            raise InputError(f"image_id '{image_id}' has no labels in labels.csv", file=file, row=row, field="image_id")
        perspective = record.get("perspective") or "*"
        if perspective != "*" and perspective not in set(QUESTION_PERSPECTIVE.values()):
            raise InputError(f"unknown perspective '{perspective}'", file=file, row=row, field="perspective")
        texts.setdefault(image_id, {}).setdefault(perspective, []).append(answer)

    per_question: dict[str, list[int]] = {q: [] for q in n_levels}
    per_perspective: dict[str, list[float]] = {}
    unmatched: dict[str, int] = {q: 0 for q in n_levels}
    for image_id, by_perspective in texts.items():
        matched: dict[str, int] = {}
        for perspective, parts in by_perspective.items():
            found = match_answer(" ".join(parts), n_levels)
            for q, level in found.items():
                if perspective == "*" or QUESTION_PERSPECTIVE[q] == perspective:
                    matched.setdefault(q, level)
        image_scores: dict[str, list[int]] = {}
        for q in n_levels:
            label = labels[image_id].get(q)
            if label is None:
                continue
            if q not in matched:
                unmatched[q] += 1
            correct = int(matched.get(q) == label)
            per_question[q].append(correct)
            image_scores.setdefault(QUESTION_PERSPECTIVE[q], []).append(correct)
        for p, scores in image_scores.items():
            per_perspective.setdefault(p, []).append(float(np.mean(scores)))
    baseline = random_baseline(card)
    return {
        "images": len(texts),
        "accuracy": {p: float(np.mean(v)) for p, v in per_perspective.items()},
        "random_baseline": {p: baseline[p] for p in per_perspective},
        "per_question": {q: {"accuracy": float(np.mean(v)), "n": len(v), "no_match": unmatched[q]}
                         for q, v in per_question.items() if v},
    }


def format_report(report: dict) -> str:
    lines = [f"VQA accuracy over {report['images']} images (random baseline in brackets):"]
    for p, value in report["accuracy"].items():
        lines.append(f"  {p:<15} {100 * value:6.2f}%  ({100 * report['random_baseline'][p]:.2f}%)")
    return "\n".join(lines + per_question_lines(report["per_question"]))


def per_question_lines(per_question: dict) -> list[str]:
    """The per-question part of a VQA accuracy report's table (accuracy, count, answers matching no option)."""
    return ["per question:", *(f"  {q:<15} {100 * item['accuracy']:6.2f}%  n={item['n']}  no option matched: "
                               f"{item['no_match']}" for q, item in per_question.items())]
