"""A transformers image-text model folder (what ``save_pretrained`` writes, or a Hub snapshot) as a preset
loads it: checked first, so a wrong folder is one clear line, then built. Used by the ``clip`` and ``blip``
presets; transformers is imported inside the functions."""

from __future__ import annotations

import json
from pathlib import Path

from aigciqa.errors import InputError


def load_image_text_model(weights, *, pretrained: bool, model_class: str, preset: str, image_size: int,
                          layout: str):
    """(model, tokenizer) of a folder holding a ``model_class`` checkpoint: its weights when ``pretrained``,
    else the same architecture from its config.json, random (a run's own weights are loaded over it)."""
    import transformers
    if weights is None:
        raise InputError(f"preset '{preset}' needs --weights: {layout}")
    folder = Path(weights)
    if not (folder / "config.json").is_file():
        raise InputError(f"config.json is missing; expected {layout}", file=str(folder))
    cls = getattr(transformers, model_class)
    expected = cls.config_class.model_type
    try:
        found = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
        if found != expected:
            raise ValueError(f"model_type is {found!r}, not {expected!r}")
        config = cls.config_class.from_pretrained(str(folder))
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise InputError(f"config.json is not a {cls.config_class.__name__} ({error}); expected {layout}",
                         file=str(folder / "config.json")) from None
    if config.vision_config.image_size != image_size:
        raise InputError(f"the checkpoint's image size is {config.vision_config.image_size} px, preset '{preset}' "
                         f"feeds {image_size} px images", file=str(folder / "config.json"), field="image_size")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError, TypeError) as error:
        raise InputError(f"cannot load the tokenizer ({error}); expected {layout}", file=str(folder)) from None
    if not pretrained:
        return cls(config), tokenizer
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("pytorch_model*.bin")):
        raise InputError(f"no model weights (*.safetensors); expected {layout}", file=str(folder))
    from transformers.utils import logging as transformers_logging
    verbosity, bars = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
    # Its table of missing keys (the error below says it in one line) and its per-load progress bars: off.
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        model, info = cls.from_pretrained(str(folder), output_loading_info=True)
    except (OSError, ValueError) as error:
        raise InputError(f"cannot load a {model_class} ({error})", file=str(folder)) from None
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()
    if info["missing_keys"]:  # transformers would start them random: never silently a partly random backbone
        missing = sorted(info["missing_keys"])
        raise InputError(f"the weights lack {len(missing)} tensors of a {model_class} (first: {missing[0]}); "
                         f"expected {layout}", file=str(folder))
    return model, tokenizer
