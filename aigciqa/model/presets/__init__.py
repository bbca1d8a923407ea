"""Backbone presets, by name: each is a :class:`~aigciqa.model.presets.base.Preset` (data with its builders),
and all of them go through the same model code.

- ``tiny``: random tiny weights built in code, for tests and the demo (:mod:`.tiny`).
- ``small``: real pretrained weights that registry packages ship, for offline CPU work (:mod:`.small`).
- ``paper``: InstructBLIP's vision tower and Q-Former from a local checkpoint folder (:mod:`.paper`).
- ``clip``, ``blip``: Table X's backbones, the image-text model itself with the regressors added directly
  (:mod:`.clip`, :mod:`.blip`; their ``build_scorer`` hook replaces the Q-Former scorer).

Adding a preset: a module defining ``PRESET`` and its name in :data:`PRESET_MODULES`. transformers is
imported inside the builders only, so this registry is cheap to read (the command line's choices)."""

from __future__ import annotations

import importlib
from functools import lru_cache

from aigciqa.model.presets.base import Preset
from aigciqa.registry import lookup

# The registry: one module of this package per preset, in the order --help lists them.
PRESET_MODULES = ("tiny", "small", "paper", "clip", "blip")


@lru_cache(maxsize=1)
def presets() -> dict[str, Preset]:
    found = (importlib.import_module(f"{__name__}.{module}").PRESET for module in PRESET_MODULES)
    return {preset.name: preset for preset in found}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is an InputError with a did-you-mean."""
    return lookup(presets(), name, "preset")


def presets_help() -> str:
    return "; ".join(f"{p.name}: {p.description}" for p in presets().values())


def build_components(preset: Preset, *, pretrained: bool = True, weights=None):
    """(image encoder, Q-Former, tokenizer) of a preset (``pretrained=False``: the architecture, random)."""
    return preset.components(pretrained=pretrained, weights=weights)


def build_qformer(preset: Preset, *, pretrained: bool = True, weights=None):
    """A Q-Former of the preset alone, initialised as the preset initialises its own (stage 2's)."""
    return preset.qformer(pretrained=pretrained, weights=weights)
