"""Runs on disk: a model built from its JSON config, its weights in safetensors (never pickle).

A run folder (``runs/<name>/`` in the database folder) holds
- ``config.json``: preset and architecture (what is needed to rebuild the model) and training options;
- ``model.safetensors``: the best model by validation SRCC;
- ``last/model.safetensors``, ``last/state.safetensors`` (optimizer tensors, RNG state) and
  ``last/state.json`` (epoch, scheduler, history): everything an exact resume needs;
- ``metrics.json``: per-epoch history, the chosen epoch and test metrics.
"""

from __future__ import annotations

from pathlib import Path

from aigciqa.errors import InputError, read_json

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
LAST_DIR = "last"
STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
METRICS_FILE = "metrics.json"

# Config keys that fix the architecture: a checkpoint only loads into a model built with the same values.
ARCHITECTURE_KEYS = ("preset", "perspectives", "bins", "lora_rank", "num_queries")


def build_model(config: dict, *, pretrained: bool, seed: int = 0):
    """The model a config describes (random heads seeded), with its fix rate and LoRA applied.

    Returns (model, tokenizer, preset, frozen_blocks).
    """
    import torch
    from aigciqa.model.network import MintIQA, apply_fix_rate
    from aigciqa.model.presets import build_components, get_preset
    preset = get_preset(config["preset"])
    torch.manual_seed(seed)
    vision, qformer, tokenizer = build_components(preset, pretrained=pretrained, weights=config.get("weights"))
    model = MintIQA(vision, qformer, num_queries=config["num_queries"], perspectives=config["perspectives"],
                    bins=config["bins"])
    if preset.name == "paper" and pretrained and config.get("weights"):
        load_paper_queries(model, config["weights"])
    frozen = apply_fix_rate(model, config["fix_rate"])
    if config.get("lora_rank"):
        model = add_lora(model, config["lora_rank"])
    return model, tokenizer, preset, frozen


def load_paper_queries(model, weights) -> None:
    """Start a model's queries from InstructBLIP's learned ``query_tokens`` (as BLIP-2 and InstructBLIP
    start from them) when the folder has them in the model's shape."""
    import torch
    from aigciqa.model.presets import paper_query_tokens
    queries = paper_query_tokens(weights)
    if queries is not None and queries.shape == model.query_tokens.shape:
        with torch.no_grad():
            model.query_tokens.copy_(queries)


def add_lora(model, rank: int):
    """LoRA (peft) on the image encoder's attention projections; the rest of the encoder stays as the fix
    rate left it, the Q-Former, queries and regressors train fully."""
    model.vision = inject_lora(model.vision, rank, {"q_proj", "k_proj", "v_proj", "qkv", "query", "key", "value"})
    return model


def inject_lora(module, rank: int, candidates: set[str]):
    """LoRA adapters (peft, alpha = 2 x rank, no dropout) on the submodules named like one of ``candidates``."""
    from peft import LoraConfig, inject_adapter_in_model
    targets = sorted({name.rsplit(".", 1)[-1] for name, _ in module.named_modules()} & candidates)
    if not targets:
        raise InputError(f"LoRA: no {'/'.join(sorted(candidates))} projections to adapt")
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, lora_dropout=0.0)
    return inject_adapter_in_model(config, module)


def state_bytes(tensors: dict) -> bytes:
    from safetensors.torch import save
    return save({key: value.detach().cpu().contiguous() for key, value in tensors.items()})


def read_tensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    if not path.is_file():
        raise InputError("checkpoint file not found", file=str(path))
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(f"corrupt checkpoint: {error}", file=str(path)) from None


def read_config(run: Path) -> dict:
    path = Path(run) / CONFIG_FILE
    if not path.is_file():
        raise InputError("not a model run: config.json is missing (train one with 'aigciqa train')",
                         file=str(run))
    config = read_json(path, what="run config")
    missing = [key for key in (*ARCHITECTURE_KEYS, "fix_rate", "mos_range") if key not in config]
    if missing:
        raise InputError(f"config lacks {', '.join(missing)}", file=str(path))
    return config


def load_weights(model, path: Path) -> None:
    """Load safetensors weights; a checkpoint of another architecture is refused with a clear message."""
    tensors = read_tensors(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = [k for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        detail = (missing or unexpected or wrong)[0]
        raise InputError(f"checkpoint does not fit this model (another preset or option?): "
                         f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} misshapen "
                         f"tensors, e.g. '{detail}'", file=str(path))
    model.load_state_dict(tensors)


def load_run(run: str | Path, *, device: str = "cpu"):
    """(model in eval mode, tokenizer, preset, config) of a trained run."""
    run = Path(run)
    config = read_config(run)
    if config.get("stage", 1) != 1:  # stage 2 scores as stage 1; stage 3 with its feedback regressors
        from aigciqa.model.stage2 import load_scoring_run
        return load_scoring_run(run, config, device)
    model, tokenizer, preset, _ = build_model(config, pretrained=False)
    load_weights(model, run / MODEL_FILE)
    model.to(device).eval()
    return model, tokenizer, preset, config
