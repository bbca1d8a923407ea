"""The ``paper`` preset: the InstructBLIP vision tower (EVA-CLIP ViT-g/14) and Q-Former, loaded from a local
transformers checkpoint folder (``--weights DIR``), with its BERT tokenizer. Needs the weights and, in
practice, a GPU; its stage-2 LLM (Vicuna-7B in the paper) is given with ``--llm``."""

from __future__ import annotations

from pathlib import Path

from aigciqa.errors import InputError
from aigciqa.model.presets.base import CLIP_MEAN, CLIP_STD, Preset, needs_llm_option
from aigciqa.model.presets.tiny import tiny_tokenizer

PAPER_LAYOUT = " ".join("""\
a local transformers InstructBLIP checkpoint folder (for example a download of
Salesforce/instructblip-vicuna-7b, only its config.json, *.safetensors and qformer_tokenizer/ are read):
config.json with vision_config and qformer_config, the weights as *.safetensors
(keys vision_model.*, qformer.*, query_tokens), and the Q-Former's BERT tokenizer in
qformer_tokenizer/ (vocab.txt)""".split())  # one line: errors print on one line


def build(pretrained: bool, weights):
    from transformers import InstructBlipQFormerModel, InstructBlipVisionModel
    config, tokenizer = paper_config(weights, pretrained)
    vision = InstructBlipVisionModel(config.vision_config)
    qformer = InstructBlipQFormerModel(config.qformer_config)
    if weights is not None and pretrained:
        load_weights(Path(weights), {"vision_model": vision, "qformer": qformer})
    return vision, qformer, tokenizer if tokenizer is not None else tiny_tokenizer()


def build_qformer(pretrained: bool, weights):
    """The instruction-aware Q-Former of stage 2, from the checkpoint's ``qformer.*`` when ``weights`` is given."""
    from transformers import InstructBlipQFormerModel
    config, _ = paper_config(weights, pretrained)
    qformer = InstructBlipQFormerModel(config.qformer_config)
    if weights is not None and pretrained:
        load_weights(Path(weights), {"qformer": qformer})
    return qformer


def paper_config(weights, pretrained: bool):
    """(InstructBlipConfig, Q-Former tokenizer or None) of a local checkpoint folder, checked."""
    from transformers import BertTokenizer, InstructBlipConfig
    if weights is None:
        if pretrained:
            raise InputError("preset 'paper' needs --weights DIR: " + PAPER_LAYOUT)
        # Random weights of the paper's architecture (for memory measurements): default configs are ViT-g/14.
        return InstructBlipConfig(), None
    folder = Path(weights)
    if not (folder / "config.json").is_file():
        raise InputError("config.json is missing; expected " + PAPER_LAYOUT, file=str(folder))
    config = InstructBlipConfig.from_pretrained(str(folder))
    tokenizer_dir = folder / "qformer_tokenizer"
    if not (tokenizer_dir / "vocab.txt").is_file():
        raise InputError("qformer_tokenizer/vocab.txt is missing; expected " + PAPER_LAYOUT, file=str(folder))
    return config, BertTokenizer.from_pretrained(str(tokenizer_dir))


def query_tokens(weights):
    """The pretrained ``query_tokens`` tensor of an InstructBLIP folder's safetensors, or None (as BLIP-2 and
    InstructBLIP start their queries from them)."""
    if weights is None:
        return None
    from safetensors import safe_open
    for file in sorted(Path(weights).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            if "query_tokens" in handle.keys():
                return handle.get_tensor("query_tokens")
    return None


def load_weights(folder: Path, modules: dict) -> None:
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
        missing, _unexpected = module.load_state_dict(states[name], strict=False)
        if len(missing) == len(module.state_dict()):
            raise InputError(f"no {name}.* weights found in the *.safetensors files", file=str(folder))


PRESET = Preset(
    name="paper", description="InstructBLIP ViT-g/14 + Q-Former from a local checkpoint folder (--weights DIR)",
    image_size=224, mean=CLIP_MEAN, std=CLIP_STD, max_text_tokens=128, num_queries=32,
    build=build, build_qformer=build_qformer, default_llm=needs_llm_option("paper"), initial_queries=query_tokens)
