"""The training stages by number, and loading any run for scoring whatever stage made it.

Each stage is one module exporting ``STAGE`` (its number), its options dataclass, ``RESUME_KEYS``, its
train function and ``load(run, config, device) -> (model, tokenizer, preset, config)`` (what the run
scores with). A new stage is one module and one line in :data:`STAGE_MODULES`."""

from __future__ import annotations

import importlib
from pathlib import Path

from aigciqa.errors import InputError
from aigciqa.model import runs

# The registry: stage number -> module (1: the scorer, 2: instruction tuning, 3: feedback).
STAGE_MODULES = {1: "aigciqa.model.scorer", 2: "aigciqa.model.instruction", 3: "aigciqa.model.feedback"}


def stage_module(number: int):
    if number not in STAGE_MODULES:
        raise InputError(f"unknown training stage {number} (known: {', '.join(map(str, STAGE_MODULES))})")
    return importlib.import_module(STAGE_MODULES[number])


def load_run(run: str | Path, *, device: str = "cpu"):
    """(model in eval mode, tokenizer, preset, config) of a trained run of any stage: stages 1 and 3 score
    with their regressors, stage 2 with its stage-1 run's."""
    run = Path(run)
    config = runs.read_config(run)
    return stage_module(runs.stage_of(config)).load(run, config, device)
