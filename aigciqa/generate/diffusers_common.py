"""What every diffusers-based generator shares: loading a local pipeline folder (or building the tiny
one), the scheduler and dtype settings, and a CPU random generator seeded per image.

Latent noise is drawn from a CPU ``torch.Generator`` whatever the device, so an image's seed gives
the same starting noise on a CPU, one GPU or many.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, ClassVar

from aigciqa.errors import InputError
from aigciqa.generate import tiny
from aigciqa.generate.base import Generator, Output, folder_sha256

# Tiny builds seed torch's global generator: one build at a time, so threads get identical weights.
_TINY_BUILD = threading.Lock()
INSTALL = "pip install 'diffusers>=0.25,<0.43' transformers accelerate safetensors"


def import_diffusers():
    try:
        import diffusers  # noqa: F401
        import torch  # noqa: F401
    except ImportError as error:
        raise InputError(f"the diffusers generators need torch and diffusers ({error}); install them with: "
                         f"{INSTALL}") from None
    return diffusers


def pipeline_class_name(path: Path) -> str:
    """The ``_class_name`` that a diffusers folder declares (model_index.json or config.json)."""
    for name in ("model_index.json", "config.json"):
        file = path / name
        if file.is_file():
            try:
                return str(json.loads(file.read_text("utf-8")).get("_class_name", ""))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InputError("not valid JSON", file=file) from None
    raise InputError("not a diffusers folder: model_index.json is missing (save one with "
                     "pipeline.save_pretrained(PATH) or download a snapshot of the model)", file=path)


def check_folder_class(path: Path, accepted: tuple[str, ...], name: str) -> str:
    found = pipeline_class_name(path)
    if accepted and found not in accepted:
        raise InputError(f"weights folder for '{name}' holds a {found or 'pipeline of unknown type'}; "
                         f"expected {' or '.join(accepted)}", file=path / "model_index.json")
    return found


def torch_dtype(name: str):
    import torch
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def cpu_generator(seed: int):
    import torch
    return torch.Generator(device="cpu").manual_seed(seed)


def set_scheduler(pipeline, name: str, generator: str) -> None:
    """Replace the pipeline's scheduler by a diffusers scheduler class, keeping its configuration."""
    if not name:
        return
    diffusers = import_diffusers()
    cls = getattr(diffusers, name, None)
    if cls is None or not name.endswith("Scheduler"):
        known = sorted(n for n in dir(diffusers) if n.endswith("Scheduler") and n != "SchedulerMixin")
        import difflib
        close = difflib.get_close_matches(name, known, n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise InputError(f"unknown scheduler '{name}'{hint}", field=f"generators.{generator}.scheduler")
    pipeline.scheduler = cls.from_config(pipeline.scheduler.config)


class DiffusersGenerator(Generator):
    pipeline_class: ClassVar[str]              # diffusers class that runs it
    accepted_classes: ClassVar[tuple[str, ...]]  # model_index.json classes it can load

    def check_weights(self) -> None:
        super().check_weights()
        if not self.is_tiny:
            check_folder_class(Path(self.weights), self.accepted_classes, self.name)

    def build_tiny(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def load_folder(self, path: Path):
        diffusers = import_diffusers()
        cls = getattr(diffusers, self.pipeline_class)
        try:
            return cls.from_pretrained(path, torch_dtype=torch_dtype(self.settings["dtype"]), local_files_only=True)
        except (OSError, ValueError) as error:
            raise InputError(f"cannot load a {self.pipeline_class} from this folder: {error}", file=path) from None

    def load(self, hash_cache: dict | None = None) -> None:
        import_diffusers()
        if self.is_tiny:
            with _TINY_BUILD:
                pipeline = self.build_tiny()
            self.weights_sha256 = tiny.weights_digest(pipeline)
        else:
            pipeline = self.load_folder(Path(self.weights))
            self.weights_sha256 = folder_sha256(self.weights, hash_cache)
        set_scheduler(pipeline, self.settings.get("scheduler", ""), self.name)
        if self.is_tiny and self.settings["dtype"] != "float32":  # built in float32
            pipeline.to(dtype=torch_dtype(self.settings["dtype"]))
        pipeline.to(self.device)
        pipeline.set_progress_bar_config(disable=True)
        self.pipeline = pipeline

    def scheduler_name(self) -> str:
        scheduler = getattr(self.pipeline, "scheduler", None) or getattr(self.pipeline, "decoder_scheduler", None)
        return type(scheduler).__name__ if scheduler is not None else super().scheduler_name()

    def common_arguments(self, prompt: str, seed: int) -> dict[str, Any]:
        arguments = dict(prompt=prompt, num_inference_steps=self.settings["steps"],
                         guidance_scale=self.settings["guidance"], height=self.settings["height"],
                         width=self.settings["width"], generator=cpu_generator(seed))
        if self.settings.get("negative_prompt"):
            arguments["negative_prompt"] = self.settings["negative_prompt"]
        return arguments

    def generate(self, prompt: str, seed: int, relpath: str) -> Output:
        image = self.pipeline(**self.common_arguments(prompt, seed)).images[0]
        return Output(image.convert("RGB"))
