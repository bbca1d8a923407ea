"""LLM expansion (as the paper does with LLaMA): more questions for the same answers.

Two requests, both schema-constrained and checked:
- ``paraphrase``: a template question -> up to three rewordings. The input is only the question, so
  the few distinct template questions are asked once and reused for every image (cache + reuse); each
  image gets one of the valid rewordings (chosen by a hash of image and pair, so images vary).
- ``new_question``: an image's answer for one perspective -> one new question that this answer
  answers (per image and perspective; the expensive part).
A rewording must still name what the original asks about (e.g. "quality", "blur", "low"), differ from
the original and end like a question or request; otherwise it is rejected and retried (the retry is
told why), and after the retries the image keeps only its template pairs. The schema of each request
carries a pattern with the topic's words (:func:`topic_schema`), so the grammar already keeps the
model on the topic; the checks are unchanged.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

from aigciqa.qa_builder.llm import LlmClient
from aigciqa.qa_builder.templates import record_topic

# Words one of which a rewording must keep, by the pair's topic.
TOPIC_WORDS = {
    "quality": ("quality",), "authenticity": ("authentic", "real", "distort"),
    "correspondence": ("correspond", "match", "prompt", "text", "consisten", "align"),
    "clarity": ("clar", "clear", "blur", "sharp", "focus"), "outline": ("outline", "content", "distinguish", "shape"),
    "details": ("detail",), "distortion": ("distort", "deform", "geometr", "warp"),
    "consistency": ("consisten", "inconsisten", "match", "prompt", "text", "align"), "scores": ("score",),
}

PARAPHRASE_SCHEMA = {
    "type": "object",
    "properties": {"questions": {"type": "array", "minItems": 1, "maxItems": 3,
                                 "items": {"type": "string", "minLength": 10, "maxLength": 120}}},
    "required": ["questions"],
}
NEW_QUESTION_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string", "minLength": 10, "maxLength": 120}},
    "required": ["question"],
}

PARAPHRASE_SYSTEM = ("You rewrite questions about an image for a dataset. Reply in JSON with up to three "
                     "different questions that ask exactly the same thing as the given question, using other words. "
                     "Keep the question's key word (for example 'brightness') and do not add words such as 'low', "
                     "'high', 'good' or 'bad' that the question does not have.")
# One example per form of the Fig. 5 questions, on topics that build-vqa never asks about, so the
# model learns the form without an answer to copy.
PARAPHRASE_SHOTS = [
    ("How is the brightness of the image?",
     ["How would you describe the brightness of this image?", "What is the brightness of this picture like?",
      "Can you describe how bright the image is?"]),
    ("Why the contrast of the image is low?",
     ["Why is the contrast of this image low?", "What is the reason for the low contrast of this picture?"]),
    ("Please assess the image from color perspective.",
     ["Please evaluate the color of this image.", "How would you judge this image in terms of color?"]),
    ("Could you please point out the noise in this image?",
     ["Where is the noise in this image?", "Can you show where this picture has noise?"]),
]
NEW_QUESTION_SYSTEM = ("You write one question about an image for a dataset. Given an answer about the image, "
                       "reply in JSON with a question that this answer answers well. The question must use the "
                       "perspective's word (quality, authenticity or correspondence) and no other perspective's.")
NEW_QUESTION_SHOTS = [
    ("Perspective: quality. Answer: The quality score is 38.20, the image is partially blurry, the image quality "
     "details are partially missing.",
     "What is wrong with the quality of this image?"),
    ("Perspective: authenticity. Answer: The authenticity score is 52.10, the image is partially distorted. The "
     "hands are deformed.", "Which parts of this image make its authenticity questionable?"),
    ("Perspective: correspondence. Answer: The correspondence score is 41.75, the image and its prompt are "
     "partially inconsistent. No birds appeared.",
     "Does the image show everything the prompt asks for?"),
]


def topic_schema(schema: dict, topic: str) -> dict:
    """``schema`` whose question strings must name the topic (one of its TOPIC_WORDS stems) and end
    with "?": llama.cpp turns the pattern into grammar, so the model cannot leave the topic out. The
    checks stay the same (a reply must still pass all of them)."""
    import copy
    stems = TOPIC_WORDS.get(topic, (topic,))
    words = "|".join(dict.fromkeys(v for stem in stems for v in (stem, stem.capitalize())))
    free = r'[^"\\\n?]'
    # The topic word starts the question or follows a space (no "I'dquality"). The bounds make the
    # grammar close the question within the schema's 120 characters: with unbounded text SmolLM2
    # ran on to max_tokens in 106 of 301 attempts (50 real images; the bounds were added then).
    pattern = rf"^({free}{{0,50}} )?({words}){free}{{0,50}}[?]$"
    schema = copy.deepcopy(schema)
    strings = schema["properties"]["questions"]["items"] if "questions" in schema["properties"] \
        else schema["properties"]["question"]
    strings["pattern"] = pattern
    return schema


def _normal(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


# Judgement words a rewording may not add: "How is the quality?" must not become "Why is the quality low?".
LOADED_WORDS = ("low", "high", "lack", "lacks", "poor", "good", "bad", "better", "worse", "best", "worst",
                "not", "no", "compare", "compared", "other", "others", "differ", "different", "affect", "source")
# Stems of the perspectives: a question about one must not drift to another.
PERSPECTIVE_STEMS = {"quality": "quality", "authenticity": "authentic", "correspondence": "correspond"}
WHY_WORDS = ("why", "reason", "reasons", "cause", "causes", "explain")
REQUEST_VERBS = ("please", "describe", "assess", "evaluate", "rate", "point", "tell", "give", "explain", "judge")
# The few-shot outputs: a reply that copies them is not a rewording of the question asked.
SHOT_OUTPUTS = {re.sub(r"[^a-z0-9 ]", "", q.lower()).strip()
                for _, qs in PARAPHRASE_SHOTS for q in qs} | {
               re.sub(r"[^a-z0-9 ]", "", q.lower()).strip() for _, q in NEW_QUESTION_SHOTS}


def _word_set(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def question_check(original: str | None, topic: str, must_keep: Iterable[str] = ()) -> callable:
    """A check of one generated question: None when acceptable, else the reason to reject it."""
    stems = TOPIC_WORDS.get(topic, (topic,))
    original_words = _word_set(original) if original else set()

    def check_one(text: str) -> str | None:
        lowered = text.lower().strip()
        words = _word_set(lowered)
        if "?" not in lowered and not lowered.startswith(REQUEST_VERBS):
            return "not a question"
        if not any(word.startswith(stem) for word in words for stem in stems):
            return "lost the topic"
        if any(word not in words for word in must_keep):
            return "lost a key word"
        if original is not None and any(w in words and w not in original_words for w in LOADED_WORDS):
            return "added a judgement"
        if any(word.startswith(stem) for p, stem in PERSPECTIVE_STEMS.items() if p != topic
               and not any(w.startswith(stem) for w in original_words) for word in words):
            return "drifted to another perspective"
        if "why" in original_words and not (words & set(WHY_WORDS) or "what makes" in lowered):
            return "no longer asks why"
        if _normal(text) in SHOT_OUTPUTS:
            return "copied an example"
        if original is not None and _normal(text) == _normal(original):
            return "same as the original"
        if len(words) < 4:
            return "too short"
        return None
    return check_one


def paraphrase_messages(question: str) -> list[dict]:
    import json
    messages = [{"role": "system", "content": PARAPHRASE_SYSTEM}]
    for shot, answer in PARAPHRASE_SHOTS:  # a fixed prefix: llama.cpp reuses its evaluated tokens
        messages += [{"role": "user", "content": f"Question: {shot}"},
                     {"role": "assistant", "content": json.dumps({"questions": answer})}]
    return messages + [{"role": "user", "content": f"Question: {question}"}]


def new_question_messages(perspective: str, answer: str) -> list[dict]:
    import json
    messages = [{"role": "system", "content": NEW_QUESTION_SYSTEM}]
    for shot, question in NEW_QUESTION_SHOTS:
        messages += [{"role": "user", "content": shot},
                     {"role": "assistant", "content": json.dumps({"question": question})}]
    return messages + [{"role": "user", "content": f"Perspective: {perspective}. Answer: {answer}"}]


def _must_keep(question: str) -> tuple[str, ...]:
    return tuple(word for word in ("low", "high") if re.search(rf"\b{word}\b", question.lower()))


def paraphrases(client: LlmClient, question: str, topic: str) -> list[str]:
    """Valid rewordings of one question (deduplicated); [] when the model gave none."""
    check_one = question_check(question, topic, _must_keep(question))

    def check(reply: dict) -> str | None:
        reasons = [check_one(q) for q in reply["questions"]]
        return None if None in reasons else reasons[0]  # the first reason: what a retry is told
    reply = client.generate_json("paraphrase", paraphrase_messages(question), topic_schema(PARAPHRASE_SCHEMA, topic),
                                 check)
    if reply is None:
        return []
    seen, valid = set(), []
    for text in reply["questions"]:
        text = " ".join(text.split())
        if check_one(text) is None and _normal(text) not in seen:
            seen.add(_normal(text))
            valid.append(text)
    return valid


def new_question(client: LlmClient, perspective: str, answer: str, existing: set[str]) -> str | None:
    check_one = question_check(None, perspective)

    def check(reply: dict) -> str | None:
        reason = check_one(reply["question"])
        if reason is None and _normal(reply["question"]) in existing:
            return "same as a template question"
        return reason
    reply = client.generate_json("new_question", new_question_messages(perspective, answer),
                                 topic_schema(NEW_QUESTION_SCHEMA, perspective), check)
    return None if reply is None else " ".join(reply["question"].split())


def _pick(options: list[str], *keys: str) -> str:
    digest = hashlib.sha256("\x1f".join(keys).encode("utf-8")).digest()
    return options[int.from_bytes(digest[:4], "big") % len(options)]


def expand_pairs(client: LlmClient, records: list[dict], image_ids: Iterable[str], progress=None,
                 kinds: Iterable[str] | None = None) -> list[dict]:
    """LLM pairs for the given images: one rewording per template pair, one new question per perspective.

    ``records`` are the template records of every image; only those of ``image_ids`` are expanded,
    and only pairs of ``kinds`` (all when None) are reworded.
    """
    kinds = None if kinds is None else set(kinds)
    chosen = set(image_ids)
    selected = [r for r in records if r["image_id"] in chosen and r["source"] == "template"]
    reworded = [r for r in selected if kinds is None or r["kind"] in kinds]
    distinct = {(r["question"], record_topic(r)) for r in reworded}
    rewordings: dict[str, list[str]] = {}
    bar = progress(total=len(distinct) + sum(1 for r in selected if r["kind"] == "assess"),
                   desc="LLM expansion", unit="request") if progress else None
    for question, topic in sorted(distinct):
        rewordings[question] = paraphrases(client, question, topic)
        if bar:
            bar.update()
    template_questions = {_normal(q) for q in {r["question"] for r in records}}
    out: list[dict] = []
    for record in selected:
        options = rewordings.get(record["question"], [])
        if options:
            out.append({**record, "id": record["id"] + ":llm-paraphrase",
                        "question": _pick(options, record["image_id"], record["id"]),
                        "source": "llm", "model": client.name, "derived_from": record["id"]})
        if record["kind"] == "assess":  # the richest answer of a perspective: levels and explanations
            question = new_question(client, record["perspective"], record["answer"], template_questions)
            if question:
                out.append({**record, "id": record["id"].replace(":assess:", ":llm_question:", 1),
                            "kind": "llm_question", "question": question, "source": "llm",
                            "model": client.name, "derived_from": record["id"]})
            if bar:
                bar.update()
    if bar:
        bar.close()
    return out
