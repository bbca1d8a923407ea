"""Export styles: the database authors' released pairs (``mint-iqa``) and LLaVA ``conversations``.

``mint-iqa`` reproduces the released AIGIQA2023 instruction file: four questions per image, records
``{id, img, prompt, moz1, moz2, moz3, q1, a1}`` with MOS divided by the top of the MOS range, answers
built from the authors' own sentences (including their quirks: "the image quality details are
essentially sufficient", "the image outline and content cannot be distinguished"), explanations
verbatim followed by ". " (so an explanation that ends with a period gives ".. ", as released).

A missing level (e.g. an out-of-range code that the importer turned into missing) drops that
level's sentence and keeps the explanation; the authors' own script wrote the best level for such
codes (record 749, geometry 0 -> "essentially distortion-free"), which would state a label no
annotator gave, so we do not. A question with neither level nor explanation drops its pair.
"""

from __future__ import annotations

import json
from decimal import Decimal

from aigciqa.errors import InputError
from aigciqa.qa_builder.inputs import VqaInputs, level_of

MINT_IQA_QUESTIONS = {
    "quality": "What is the quality of the image?",
    "authenticity": "What is the authenticity of the image?",
    "correspondence": "What is the correspondence of the image?",
    "all": "Assess the image from three perspectives: quality, authenticity, and correspondence",
}
# The authors' sentence for each question; "{}" is the card's level wording.
MINT_IQA_SENTENCES = {
    "clarity": "The image quality is {}",
    "outline": "the image outline and content are {}",
    "details": "the image details are {}",
    "distortion": "The image is {}",
    "consistency": "The image and its prompt are {}",
}
# Where the released file words a level differently from the generic sentence.
MINT_IQA_QUIRKS = {
    ("outline", "cannot be distinguished"): "the image outline and content cannot be distinguished",
    ("details", "essentially sufficient"): "the image quality details are essentially sufficient",
}
MINT_IQA_NEEDS = ("clarity", "outline", "details", "distortion", "consistency")
MINT_IQA_PERSPECTIVES = ("quality", "authenticity", "correspondence")


def _sentence(question: dict, level: int) -> str:
    word = question["levels"][level - 1]
    return MINT_IQA_QUIRKS.get((question["name"], word), MINT_IQA_SENTENCES[question["name"]].format(word))


def mint_iqa_records(inputs: VqaInputs) -> list[dict]:
    """The authors' four pairs per image (fewer only where a question has nothing to say)."""
    questions = {q["name"]: q for q in inputs.questions}
    missing = [name for name in MINT_IQA_NEEDS if name not in questions]
    if missing:
        raise InputError(f"the mint-iqa format needs the paper's five fine-grained questions in labels.csv; "
                         f"missing: {', '.join(missing)}", file="labels.csv", field=missing[0])
    absent = [p for p in MINT_IQA_PERSPECTIVES if p not in inputs.perspectives]
    if absent:
        raise InputError("the mint-iqa format needs MOS for quality, authenticity and correspondence",
                         file="mos.csv", field=f"{absent[0]}_mos")
    top = inputs.mos_range[1]
    records = []
    for row in inputs.facts.to_dict("records"):
        if any(row.get(f"{p}_mos") is None or row[f"{p}_mos"] != row[f"{p}_mos"] for p in MINT_IQA_PERSPECTIVES):
            continue  # an image without MOS cannot carry moz1-3

        def text(name: str, with_explanation: bool = True) -> str:
            level = level_of(row.get(name))
            out = _sentence(questions[name], level) + ". " if level is not None else ""
            column = questions[name].get("explanation")
            if with_explanation and column:
                explanation = str(row.get(column, "") or "")
                if explanation.strip():
                    out += explanation + ". "  # verbatim: line breaks and a final period kept
            return out

        levels = [level_of(row.get(n)) for n in ("clarity", "outline", "details")]
        quality = ""
        if all(level is not None for level in levels):
            quality = ", ".join(_sentence(questions[n], level)
                                for n, level in zip(("clarity", "outline", "details"), levels)) + ". "
        answers = {"quality": quality, "authenticity": text("distortion"), "correspondence": text("consistency")}
        answers["all"] = answers["quality"] + answers["authenticity"] + answers["correspondence"]
        base = {"id": str(row["image_id"]), "img": row["img"], "prompt": row["prompt"],
                **{f"moz{i}": _scaled(row[f"{p}_mos"], top) for i, p in enumerate(MINT_IQA_PERSPECTIVES, 1)}}
        for key in ("quality", "authenticity", "correspondence", "all"):
            if answers[key]:
                records.append({**base, "q1": MINT_IQA_QUESTIONS[key], "a1": answers[key]})
    return records


def _scaled(mos: float, top: float) -> float:
    """MOS / top in decimal arithmetic: 62.75529697 / 100 -> 0.6275529697, not 0.6275529697000001."""
    return float(Decimal(repr(float(mos))) / Decimal(repr(float(top))))


def dumps_mint_iqa(records: list[dict]) -> str:
    """One JSON array, laid out as the released file is (``json.dumps`` defaults)."""
    return json.dumps(records)


def llava_records(pairs: list[dict], inputs: VqaInputs) -> list[dict]:
    """LLaVA-style training records: one per image, its pairs as alternating human/gpt turns."""
    paths = dict(zip(inputs.facts["image_id"], inputs.facts["path"]))
    by_image: dict[str, list[dict]] = {}
    for pair in pairs:
        by_image.setdefault(pair["image_id"], []).append(pair)
    records = []
    for image_id, items in by_image.items():
        turns = []
        for index, pair in enumerate(items):
            question = ("<image>\n" if index == 0 else "") + pair["question"]
            turns += [{"from": "human", "value": question}, {"from": "gpt", "value": pair["answer"]}]
        records.append({"id": image_id, "image": paths.get(image_id, ""), "conversations": turns})
    return records


def dumps_llava(records: list[dict]) -> str:
    return json.dumps(records, ensure_ascii=False, indent=1) + "\n"
