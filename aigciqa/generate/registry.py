"""Generator families by name, and the per-generator settings: defaults < config file.

A run names generators; each name is a family (``stable_diffusion``) or a name the config defines
with ``family = ...`` (e.g. ``sdxl`` with family ``diffusion_pipeline``). Config file (JSON or TOML)::

    seed = 0                      # base of every derived seed
    [generators.stable_diffusion]
    weights = "/models/sd15"      # or a Hub repo id ORG/NAME[@REVISION], or "tiny"
    steps = 50
    guidance = 7.5
    [generators.sdxl]
    family = "diffusion_pipeline"
    weights = "/models/sdxl"
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jsonschema

from aigciqa.errors import InputError, read_input_bytes
from aigciqa.generate.base import COMMON_OPTIONS, TINY, Generator
from aigciqa.generate.controlnet import ControlNet
from aigciqa.generate.generic import GenericPipeline
from aigciqa.generate.glide import Glide
from aigciqa.generate.lafite import Lafite
from aigciqa.generate.stable_diffusion import StableDiffusion
from aigciqa.generate.unclip import UnCLIP
from aigciqa.generate.unidiffuser import UniDiffuser
from aigciqa.registry import lookup
from aigciqa.weights.defaults import DEFAULTS
from aigciqa.weights.resolve import official_folder

FAMILIES: dict[str, type[Generator]] = {cls.family: cls for cls in (
    Glide, Lafite, UnCLIP, StableDiffusion, UniDiffuser, ControlNet, GenericPipeline)}

# The paper's six models, in its order (DALL-E through the open unCLIP/Karlo reproduction).
PAPER_GENERATORS = ("glide", "lafite", "dalle", "stable_diffusion", "unidiffuser", "controlnet")
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"


def config_schema() -> dict:
    options = dict(COMMON_OPTIONS)
    for cls in FAMILIES.values():
        options.update(cls.options)
    return {"type": "object", "additionalProperties": False,
            "properties": {"seed": {"type": "integer", "minimum": 0},
                           "device": {"type": "string"},
                           "flush_every": {"type": "integer", "minimum": 1},
                           "generators": {"type": "object",
                                          "propertyNames": {"pattern": NAME_PATTERN},
                                          "additionalProperties": {"type": "object", "properties": options,
                                                                   "additionalProperties": False}}}}


def load_config(path: str | Path | None) -> dict:
    """Read and check a JSON or TOML config file (None: the empty config)."""
    if path is None:
        return {}
    path = Path(path)
    try:
        text = read_input_bytes(path, missing="config file not found", what="config file").decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("config file is not UTF-8 text", file=path) from None
    try:
        config = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON: {error.msg} (line {error.lineno})", file=path) from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"malformed TOML: {error}", file=path) from None
    errors = sorted(jsonschema.Draft202012Validator(config_schema()).iter_errors(config),
                    key=lambda e: list(e.absolute_path))
    if errors:
        field = ".".join(str(p) for p in errors[0].absolute_path) or None
        raise InputError(errors[0].message, file=path, field=field)
    return config


def family_of(name: str, config: dict) -> type[Generator]:
    entry = config.get("generators", {}).get(name, {})
    if "family" in entry:
        return lookup(FAMILIES, entry["family"], "generator family")
    if not re.match(NAME_PATTERN, name):
        raise InputError(f"generator name '{name}' must be lower-case letters, digits and '_' "
                         "(a new name needs a config entry with its family)")
    return lookup(FAMILIES, name, "generator")


def resolve(name: str, config: dict, weights: dict[str, str], device: str) -> Generator:
    """Build (not load) the generator ``name``: family, merged settings, weights source.

    ``weights`` maps generator names to a folder, a Hub repo id or "tiny"; key "*" applies to every
    generator. Command-line weights win over the config's, which win over the family's default Hub
    repo (:mod:`aigciqa.weights.defaults`, the paper's models).
    """
    cls = family_of(name, config)
    entry = dict(config.get("generators", {}).get(name, {}))
    default = DEFAULTS.get(cls.family)
    source = (weights.get(name) or weights.get("*") or entry.pop("weights", None)
              or (default.spec if default is not None and default.on_hub else None)
              or (str(official_folder(cls.family)) if default is not None and default.extra.get("official")
                  else None))
    entry.pop("weights", None)
    entry.pop("family", None)
    if not source:
        obtain = f"; {default.source}" if default is not None else ""
        raise InputError(f"no weights for generator '{name}': give --weights {name}=PATH ({cls.weights_help}"
                         f"{obtain}), or --weights tiny for small random-weight test models")
    if cls.family == "controlnet" and not entry.get("base_weights"):
        # ControlNet's base is the run's Stable Diffusion when one is given (e.g. both from a --to folder).
        base = weights.get("stable_diffusion") or config.get("generators", {}).get("stable_diffusion", {}).get("weights")
        if base and base != TINY:
            entry["base_weights"] = base
    unknown = set(entry) - set(cls.defaults)
    if unknown:
        raise InputError(f"setting '{sorted(unknown)[0]}' does not apply to the {cls.family} family "
                         f"(its settings: {', '.join(sorted(cls.defaults))})",
                         field=f"generators.{name}.{sorted(unknown)[0]}")
    settings = dict(cls.defaults)
    if source == TINY and cls.tiny_defaults is not None:
        settings.update(cls.tiny_defaults)
    settings.update(entry)
    return cls(name, settings, source, device)
