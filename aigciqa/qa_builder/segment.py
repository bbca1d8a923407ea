"""Prompt segmentation (paper IV-A-1): a prompt -> ``style``, ``content``, ``atmosphere``.

As the paper describes it, an LLM refines the prompt: it names the style (default "realistic"),
restates the content, and infers the atmosphere, "the mood and feeling conveyed by the scene",
which a prompt rarely spells out. The LLM's reply is constrained by a JSON Schema and checked with
one of two checks (``SEGMENT_CHECKS``):

- ``refine`` (default): the reply may infer and rephrase; it is rejected only when it is empty
  (style or content), too long, repetitive (a word or phrase over and over, one field copied into
  another) or a copy of a few-shot example; never for words the prompt does not contain.
- ``strict``: extraction only, for weak models: the refine check, and the content must be the
  prompt's own words and a style or atmosphere must be found in the prompt (or be the default).

The rule-based path (``--no-llm``, and the fallback for a reply that fails its checks) finds style
phrases ("oil painting", "in the style of ...", "photo", "comic book illustration") and mood words
("at sunset", "gloomy") in the prompt and keeps the rest as content.

Defaults: style "realistic" when the prompt names none (the paper's default). The paper names no
default atmosphere; an invented word ("neutral") would be fed to the model as if the scene conveyed
it, so the atmosphere is left empty ("" = none conveyed), and replies of "none", "neutral", "n/a"
are stored as empty too.
"""

from __future__ import annotations

import json
import re

from aigciqa.qa_builder.llm import LlmClient

DEFAULT_STYLE = "realistic"
DEFAULT_ATMOSPHERE = ""
# What a model writes for "no atmosphere": stored as DEFAULT_ATMOSPHERE (missing), not as a mood.
NO_ATMOSPHERE = {"none", "neutral", "n/a", "na", "unknown", "not specified", "no atmosphere", "no mood", "-"}

# Style phrases, longest first so "oil painting" wins over "painting".
STYLE_PHRASES = sorted({
    "oil painting", "watercolor painting", "watercolor", "acrylic painting", "painting", "ink wash", "ink drawing",
    "pencil drawing", "pencil sketch", "charcoal drawing", "sketch", "drawing", "line art", "pixel art",
    "digital art", "concept art", "cartoon", "anime", "manga", "comic book illustration", "comic book", "comic",
    "illustration", "3d render", "3d rendering", "render", "low poly", "photo", "photograph", "photorealistic",
    "dslr photo", "polaroid", "black and white photo", "portrait photo", "close-up photo", "aerial photo",
    "stained glass", "mosaic", "graffiti", "mural", "poster", "emoji", "icon", "logo", "tattoo", "origami",
    "sculpture", "statue", "cubism", "cubist", "impressionist", "impressionism", "surrealist", "surrealism",
    "pop art", "art nouveau", "art deco", "ukiyo-e", "chinese ink painting", "vector art", "claymation",
    "pointillism", "abstract", "vaporwave", "steampunk", "cyberpunk", "minimalist", "children's book illustration",
    "wide-angle view", "long exposure",
}, key=len, reverse=True)
STYLE_PATTERNS = (r"in the style of [^,.;]+", r"\bby [A-Z][\w.'-]*(?: [A-Z][\w.'-]*)*")
ATMOSPHERE_WORDS = sorted({
    "at sunset", "at sunrise", "at dusk", "at dawn", "at night", "during a storm", "in the rain", "in the fog",
    "sunset", "sunrise", "dusk", "dawn", "night", "foggy", "misty", "rainy", "stormy", "snowy", "sunny", "cloudy",
    "gloomy", "dark", "moody", "dramatic", "peaceful", "calm", "serene", "cheerful", "happy", "sad", "lonely",
    "mysterious", "eerie", "spooky", "scary", "cozy", "warm", "cold", "romantic", "melancholic", "joyful",
    "festive", "epic", "dreamy", "magical", "vibrant", "bright", "golden hour", "candlelit", "moonlit",
}, key=len, reverse=True)

SEGMENT_SCHEMA = {
    "type": "object",
    "properties": {"style": {"type": "string", "minLength": 1, "maxLength": 40},
                   "content": {"type": "string", "minLength": 1, "maxLength": 160},
                   "atmosphere": {"type": "string", "maxLength": 40}},
    "required": ["style", "content", "atmosphere"],
}
# Few-shot examples both checks accept; each check adds its own (what only it accepts).
_SHOT_OIL = ("an oil painting of a tree and a building",
             {"style": "oil painting", "content": "a tree and a building", "atmosphere": ""})
_SHOT_CORGI = ("a corgi", {"style": "realistic", "content": "a corgi", "atmosphere": ""})
# (system prompt, few-shot examples) per check.
SEGMENT_PROMPTS = {
    "refine": (
        "Split a text-to-image prompt into JSON with three fields. style: the art style or medium "
        "('realistic' if the prompt names none). content: what the image shows, restated briefly without "
        "the style words. atmosphere: the mood or feeling the scene conveys (for example calm, eerie, "
        "festive), inferred from the prompt; an empty string if it conveys none.",
        [_SHOT_OIL,
         ("Downtown Shanghai at sunrise. detailed ink wash.",
          {"style": "ink wash", "content": "downtown Shanghai at sunrise", "atmosphere": "calm, quiet morning"}),
         _SHOT_CORGI,
         ("an abandoned hospital hallway at night",
          {"style": "realistic", "content": "an abandoned hospital hallway at night", "atmosphere": "eerie"})]),
    "strict": (
        "Split a text-to-image prompt into JSON with three fields: style (the art style or medium; "
        "'realistic' if none), content (what is shown, in the prompt's words), atmosphere (the mood or "
        "light, in the prompt's words; an empty string if none).",
        [_SHOT_OIL,
         ("Downtown Shanghai at sunrise. detailed ink wash.",
          {"style": "ink wash", "content": "Downtown Shanghai", "atmosphere": "at sunrise"}),
         _SHOT_CORGI]),
}
# Word limits of the refine check (the schema limits characters).
MAX_STYLE_WORDS, MAX_ATMOSPHERE_WORDS = 6, 8


def _clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"([,.;:])\1+", r"\1", text)
    text = re.sub(r"^(?:[\s,.;:]|(?:of|in|with|at|and)\b)+", "", text, flags=re.I)
    text = re.sub(r"(?:[\s,.;:]|\b(?:of|in|with|at|and|an?|the)\b)+$", "", text, flags=re.I)
    return text.strip()


def segment_prompt_rules(prompt: str) -> dict:
    """Rule-based segmentation: style and mood phrases found in the prompt, the rest is content."""
    rest = " " + prompt.strip() + " "
    styles, moods = [], []
    for pattern in STYLE_PATTERNS:
        for match in re.finditer(pattern, rest):
            styles.append(match.group(0).strip())
        rest = re.sub(pattern, " ", rest)
    for phrase in STYLE_PHRASES:
        pattern = rf"(?<![\w-])(?:a |an )?(?:detailed |realistic |high-quality )?{re.escape(phrase)}s?(?![\w-])(?: of)?"
        if re.search(pattern, rest, flags=re.I):
            styles.append(phrase)
            rest = re.sub(pattern, " ", rest, flags=re.I)
    for phrase in ATMOSPHERE_WORDS:
        pattern = rf"(?<![\w-]){re.escape(phrase)}(?![\w-])"
        if re.search(pattern, rest, flags=re.I):
            moods.append(phrase)
            rest = re.sub(pattern, " ", rest, flags=re.I)
    content = _clean(rest) or prompt.strip()
    return {"style": ", ".join(dict.fromkeys(styles)) or DEFAULT_STYLE, "content": content,
            "atmosphere": ", ".join(dict.fromkeys(moods)) or DEFAULT_ATMOSPHERE}


def normalized_segments(reply: dict) -> dict:
    """A reply's three fields with whitespace collapsed and a "none"-like atmosphere made empty."""
    out = {k: " ".join(str(reply[k]).split()) for k in ("style", "content", "atmosphere")}
    if out["atmosphere"].lower().strip(" .") in NO_ATMOSPHERE:
        out["atmosphere"] = DEFAULT_ATMOSPHERE
    return out


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _repeats(words: list[str]) -> bool:
    """A word (of 3+ letters) 4 times or more, or a 3-word phrase twice: what a looping model writes."""
    counts: dict[str, int] = {}
    for word in words:
        if len(word) >= 3:
            counts[word] = counts.get(word, 0) + 1
    phrases = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
    return any(c >= 4 for c in counts.values()) or len(set(phrases)) < len(phrases)


def refine_check(prompt: str):
    """The paper's refinement: inferred style and atmosphere and rephrased content are fine; empty,
    overlong, repetitive or copied replies are not."""
    prompt_words = _words(prompt)
    shots = {json.dumps(reply, sort_keys=True) for shot, reply in SEGMENT_PROMPTS["refine"][1]
             if shot.strip().lower() != prompt.strip().lower()}

    def check(reply: dict) -> str | None:
        reply = normalized_segments(reply)
        fields = {name: _words(reply[name]) for name in ("style", "content", "atmosphere")}
        for name in ("style", "content"):
            if not fields[name]:
                return f"empty {name}"
        if len(fields["style"]) > MAX_STYLE_WORDS:
            return "style too long"
        if len(fields["atmosphere"]) > MAX_ATMOSPHERE_WORDS:
            return "atmosphere too long"
        if len(fields["content"]) > 2 * len(prompt_words) + 6:
            return "content too long"
        if any(_repeats(words) for words in fields.values()):
            return "repetitive"
        if fields["style"] == fields["content"] or fields["atmosphere"] == fields["content"]:
            return "one field copied into another"
        if json.dumps(reply, sort_keys=True) in shots:
            return "copied an example"
        return None
    return check


def strict_check(prompt: str):
    """Extraction only: the refine check, then content from the prompt's words and style and
    atmosphere found in it (or the defaults), as build-vqa checked before the refine check existed."""
    prompt_words = set(_words(prompt))
    by_rules = segment_prompt_rules(prompt)
    refined = refine_check(prompt)

    def check(reply: dict) -> str | None:
        reason = refined(reply)
        if reason:
            return reason
        reply = normalized_segments(reply)
        content = _words(reply["content"])
        if not content or sum(w in prompt_words for w in content) < 0.8 * len(content):
            return "content not from the prompt"
        if by_rules["style"] != DEFAULT_STYLE and reply["style"].lower() == DEFAULT_STYLE:
            return "missed the style the prompt names"
        if by_rules["style"] != DEFAULT_STYLE and len(content) >= len(_words(prompt)):
            return "content keeps the style words"
        for name, default in (("style", DEFAULT_STYLE), ("atmosphere", DEFAULT_ATMOSPHERE)):
            words = _words(reply[name])
            if reply[name].lower() == default:
                continue
            if not words or not all(w in prompt_words for w in words):
                return f"{name} not in the prompt"
        return None
    return check


SEGMENT_CHECKS = {"refine": refine_check, "strict": strict_check}


def segmentation_check(prompt: str, mode: str = "refine"):
    """The check of ``mode`` for one prompt: a function reply -> None (accepted) or the reason."""
    from aigciqa.registry import lookup
    return lookup(SEGMENT_CHECKS, mode, "segmentation check")(prompt)


def segment_messages(prompt: str, mode: str = "refine") -> list[dict]:
    system, shots = SEGMENT_PROMPTS[mode]
    messages = [{"role": "system", "content": system}]
    for shot, reply in shots:
        messages += [{"role": "user", "content": shot}, {"role": "assistant", "content": json.dumps(reply)}]
    return messages + [{"role": "user", "content": prompt.strip()}]


def segment_prompts(prompts: list[str], client: LlmClient | None = None, progress=None,
                    mode: str = "refine") -> tuple[list[dict], dict]:
    """Segment every prompt. Returns per prompt ``{style, content, atmosphere, segmented_by,
    segment_model}`` (``segmented_by``: llm, rules, or rules-after-llm-failed; ``segment_model``: the
    LLM's file name when it made the segments, else "") and the counts by ``segmented_by``."""
    segmentation_check(prompts[0] if prompts else "", mode)  # an unknown mode fails before any work
    counts = {"llm": 0, "rules": 0, "rules-after-llm-failed": 0}
    out = []
    iterator = progress(prompts, desc="prompt segmentation", unit="prompt") if progress and client else prompts
    for prompt in iterator:
        reply = None
        if client is not None:
            reply = client.generate_json("segment", segment_messages(prompt, mode), SEGMENT_SCHEMA,
                                         segmentation_check(prompt, mode), temperature=0.2)
        if reply is not None:
            segments = {**normalized_segments(reply), "segmented_by": "llm", "segment_model": client.name}
        else:
            segments = {**segment_prompt_rules(prompt), "segment_model": "",
                        "segmented_by": "rules-after-llm-failed" if client is not None else "rules"}
        counts[segments["segmented_by"]] += 1
        out.append(segments)
    return out, counts
