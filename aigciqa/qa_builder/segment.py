"""Prompt segmentation (paper IV-A-1): a prompt -> ``style``, ``content``, ``atmosphere``.

The LLM path asks for the three fields under a JSON Schema and checks the reply against the prompt
(the content must come from the prompt's own words; a style or atmosphere must be found in the prompt
or be the default). The rule-based path (``--no-llm``, and the fallback for a reply that fails its
checks) finds style phrases ("oil painting", "in the style of ...", "photo", "comic book
illustration") and mood words ("at sunset", "gloomy") in the prompt and keeps the rest as content.
Style is "realistic" when the prompt names none; atmosphere is "neutral" when it names none.
"""

from __future__ import annotations

import json
import re

from aigciqa.qa_builder.llm import LlmClient

DEFAULT_STYLE = "realistic"
DEFAULT_ATMOSPHERE = "neutral"

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
                   "atmosphere": {"type": "string", "minLength": 1, "maxLength": 40}},
    "required": ["style", "content", "atmosphere"],
}
SEGMENT_SYSTEM = ("Split a text-to-image prompt into JSON with three fields: style (the art style or medium; "
                  "'realistic' if none), content (what is shown, in the prompt's words), atmosphere (the mood "
                  "or light; 'neutral' if none).")
SEGMENT_SHOTS = [
    ("an oil painting of a tree and a building",
     {"style": "oil painting", "content": "a tree and a building", "atmosphere": "neutral"}),
    ("Downtown Shanghai at sunrise. detailed ink wash.",
     {"style": "ink wash", "content": "Downtown Shanghai", "atmosphere": "at sunrise"}),
    ("a corgi", {"style": "realistic", "content": "a corgi", "atmosphere": "neutral"}),
]


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


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def segmentation_check(prompt: str):
    prompt_words = set(_words(prompt))
    by_rules = segment_prompt_rules(prompt)

    def check(reply: dict) -> str | None:
        content = _words(reply["content"])
        if not content or sum(w in prompt_words for w in content) < 0.8 * len(content):
            return "content not from the prompt"
        if by_rules["style"] != DEFAULT_STYLE and reply["style"].strip().lower() == DEFAULT_STYLE:
            return "missed the style the prompt names"
        if by_rules["style"] != DEFAULT_STYLE and len(content) >= len(_words(prompt)):
            return "content keeps the style words"
        for name, default, vocabulary in (("style", DEFAULT_STYLE, STYLE_PHRASES),
                                          ("atmosphere", DEFAULT_ATMOSPHERE, ATMOSPHERE_WORDS)):
            words = _words(reply[name])
            if reply[name].strip().lower() == default:
                continue
            if not words or not all(w in prompt_words for w in words):
                return f"{name} not in the prompt"
        return None
    return check


def segment_messages(prompt: str) -> list[dict]:
    messages = [{"role": "system", "content": SEGMENT_SYSTEM}]
    for shot, reply in SEGMENT_SHOTS:
        messages += [{"role": "user", "content": shot}, {"role": "assistant", "content": json.dumps(reply)}]
    return messages + [{"role": "user", "content": prompt.strip()}]


def segment_prompts(prompts: list[str], client: LlmClient | None = None, progress=None) -> tuple[list[dict], dict]:
    """Segment every prompt; returns the segments and counts by source (llm / rules / llm-fallback)."""
    counts = {"llm": 0, "rules": 0, "rules_after_llm_failed": 0}
    out = []
    iterator = progress(prompts, desc="prompt segmentation", unit="prompt") if progress and client else prompts
    for prompt in iterator:
        reply = None
        if client is not None:
            reply = client.generate_json("segment", segment_messages(prompt), SEGMENT_SCHEMA,
                                         segmentation_check(prompt), temperature=0.2)
        if reply is not None:
            counts["llm"] += 1
            out.append({k: " ".join(reply[k].split()) for k in ("style", "content", "atmosphere")})
        else:
            counts["rules_after_llm_failed" if client is not None else "rules"] += 1
            out.append(segment_prompt_rules(prompt))
    return out, counts
