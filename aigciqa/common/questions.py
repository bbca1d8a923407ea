"""The wording of the questions that build-vqa writes into vqa.jsonl and the model asks back (stage 3's
instructions, explanations, VQA accuracy): one place, so training and asking use the same sentence."""

from __future__ import annotations

# Which perspective each of the paper's fine-grained questions describes.
QUESTION_PERSPECTIVE = {"clarity": "quality", "outline": "quality", "details": "quality",
                        "distortion": "authenticity", "consistency": "correspondence"}

PERSPECTIVE_NOUN = {"quality": "quality", "authenticity": "authenticity", "correspondence": "correspondence"}


def perspective_noun(perspective: str) -> str:
    """How a perspective is named in a sentence (a card's own perspective: its name, '_' as spaces)."""
    return PERSPECTIVE_NOUN.get(perspective, perspective.replace("_", " "))


# Rating questions that Fig. 5 words otherwise than "How is the <perspective> of the image?".
RATING_QUESTIONS = {"correspondence": "How is the correspondence between the image and text?"}


def rating_question(perspective: str) -> str:
    """The rating question of a perspective, as Fig. 5 words it: "How is the quality of the image?",
    "How is the correspondence between the image and text?"."""
    return RATING_QUESTIONS.get(perspective, f"How is the {perspective_noun(perspective)} of the image?")


def explained_perspectives() -> set[str]:
    """The perspectives that the paper's fine-grained questions describe (what VQA accuracy can score)."""
    return set(QUESTION_PERSPECTIVE.values())
