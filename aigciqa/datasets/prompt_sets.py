"""Prompt sets shipped with the package (the AIGCIQA2023 100-prompt list) and how to load them."""

from __future__ import annotations

import io
from importlib import resources

import pandas as pd

# name -> (file in aigciqa/datasets/data, description)
EMBEDDED_PROMPT_SETS = {
    "aigciqa2023": ("aigciqa2023_prompts.csv",
                    "the 100 prompts of AIGCIQA2023 (PartiPrompts; 10 categories x 10 challenges, "
                    "with the database's own deviations)"),
}


def load_prompt_set(name: str = "aigciqa2023") -> pd.DataFrame:
    """An embedded prompt set as a prompts table: prompt_id, prompt, category, challenge (all text).

    Prompts are kept verbatim (two AIGCIQA2023 prompts end in a space).
    """
    from aigciqa.registry import lookup
    filename, _ = lookup(EMBEDDED_PROMPT_SETS, name, "prompt set")
    text = resources.files("aigciqa.datasets").joinpath("data", filename).read_text("utf-8")
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    return frame[["prompt_id", "prompt", "category", "challenge"]]
