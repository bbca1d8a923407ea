"""LoRA adapters (peft) on named projections: the image encoder's (stage 1) and the LLM's (stage 2)."""

from __future__ import annotations

from aigciqa.errors import InputError

ENCODER_PROJECTIONS = {"q_proj", "k_proj", "v_proj", "qkv", "query", "key", "value"}
LLM_PROJECTIONS = {"q_proj", "v_proj"}


def inject_lora(module, rank: int, candidates: set[str], within: list[str] | None = None):
    """LoRA adapters (alpha = 2 x rank, no dropout) on the submodules named like one of ``candidates``
    (inside the submodules named ``within`` only, when given). peft freezes every other parameter of
    ``module``: only the adapters train."""
    from peft import LoraConfig, inject_adapter_in_model
    if within is None:
        targets = sorted({name.rsplit(".", 1)[-1] for name, _ in module.named_modules()} & candidates)
    else:  # full names: peft matches a target by its whole name or its last parts
        targets = [name for name, _ in module.named_modules() if name.rsplit(".", 1)[-1] in candidates
                   and any(name.startswith(prefix + ".") for prefix in within)]
    if not targets:
        raise InputError(f"LoRA: no {'/'.join(sorted(candidates))} projections to adapt")
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, lora_dropout=0.0)
    return inject_adapter_in_model(config, module)
