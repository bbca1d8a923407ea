"""ControlNet (``StableDiffusionControlNetPipeline``) for text-only prompts.

ControlNet needs a conditioning image and a prompt table has only text. The conditioning image is
made from the prompt itself: the base Stable Diffusion model inside the ControlNet pipeline draws the
prompt with the same seed, and its Canny edge map (thresholds ``canny_low``/``canny_high``, OpenCV's
defaults in the diffusers ControlNet example) conditions the ControlNet image. The edge map is saved
as ``conditioning/<generator>/<prompt_id>-<sample>.png`` and named in images.csv (``conditioning``,
``conditioning_sha256``, ``conditioning_method``) so the image can be traced and regenerated. It suits
an edge ControlNet (e.g. lllyasviel/sd-controlnet-canny); other ControlNets still run but get edges.

Weights: a saved ``StableDiffusionControlNetPipeline`` folder, or a ``ControlNetModel`` folder or Hub repo
plus its base Stable Diffusion (setting ``base_weights``, a folder or Hub repo id; default: the
``stable_diffusion`` entry of :mod:`aigciqa.weights.defaults`, the model the Canny ControlNet was trained on).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aigciqa.errors import InputError
from aigciqa.generate import tiny
from aigciqa.generate.base import Output, folder_sha256, png_bytes
from aigciqa.generate.diffusers_common import (DiffusersGenerator, check_folder_class, cpu_generator,
                                               import_diffusers, torch_dtype)
from aigciqa.generate.edges import canny_image
from aigciqa.weights.defaults import DEFAULTS
from aigciqa.weights.resolve import Resolved
from aigciqa.weights.resolve import resolve as resolve_weights

CONDITIONING_DIR = "conditioning"


class ControlNet(DiffusersGenerator):
    family = "controlnet"
    summary = "SD + ControlNet on the Canny edges of SD's image of the prompt (same seed)"
    pipeline_class = "StableDiffusionControlNetPipeline"
    accepted_classes = ("StableDiffusionControlNetPipeline", "ControlNetModel")
    defaults = {"steps": 50, "guidance": 7.5, "width": 512, "height": 512, "scheduler": "", "dtype": "float32",
                "negative_prompt": "", "canny_low": 100, "canny_high": 200, "base_weights": ""}
    tiny_defaults = {"steps": 2, "guidance": 5.0, "width": 64, "height": 64}
    options = {"canny_low": {"type": "number", "minimum": 0}, "canny_high": {"type": "number", "minimum": 0},
               "base_weights": {"type": "string"}}
    weights_help = ("a StableDiffusionControlNetPipeline folder, or a ControlNetModel folder or repo (e.g. "
                    "lllyasviel/sd-controlnet-canny) with setting base_weights = a Stable Diffusion folder or repo")
    base_resolved: Resolved | None = None

    def base_spec(self) -> str:
        return self.settings.get("base_weights") or DEFAULTS["stable_diffusion"].spec

    def check_weights(self) -> None:
        super().check_weights()
        if not self.is_tiny and check_folder_class(Path(self.weights), self.accepted_classes,
                                                   self.name) == "ControlNetModel":
            self.base_resolved = resolve_weights(self.base_spec(), what=f"base Stable Diffusion of '{self.name}'",
                                                 hint="a Stable Diffusion folder with model_index.json")
            if not self.base_resolved.path.is_dir():
                raise InputError("base Stable Diffusion weights must be a folder", file=self.base_resolved.path)
            check_folder_class(self.base_resolved.path, ("StableDiffusionPipeline",), self.name)

    def provenance(self, hash_cache=None) -> dict:
        record = super().provenance(hash_cache)
        if self.base_resolved is not None:
            record["base_weights_files"] = self.base_resolved.record(cache=hash_cache)
        return record

    def build_tiny(self):
        from diffusers import StableDiffusionControlNetPipeline
        return StableDiffusionControlNetPipeline(**tiny.stable_diffusion_components(self.settings["width"]),
                                                 controlnet=tiny.controlnet_model())

    def load_folder(self, path: Path):
        diffusers = import_diffusers()
        dtype = torch_dtype(self.settings["dtype"])
        if check_folder_class(path, self.accepted_classes, self.name) == "StableDiffusionControlNetPipeline":
            return super().load_folder(path)
        try:
            controlnet = diffusers.ControlNetModel.from_pretrained(path, torch_dtype=dtype, local_files_only=True)
            return diffusers.StableDiffusionControlNetPipeline.from_pretrained(
                self.base_resolved.path, controlnet=controlnet, torch_dtype=dtype, local_files_only=True)
        except (OSError, ValueError) as error:
            raise InputError(f"cannot load the ControlNet pipeline: {error}", file=path) from None

    def load(self, hash_cache=None) -> None:
        super().load(hash_cache)
        if self.base_resolved is not None:
            # Both folders make the images: the recorded hash covers the pair.
            base = folder_sha256(self.base_resolved.path, hash_cache)
            self.weights_sha256 = hashlib.sha256((self.weights_sha256 + base).encode()).hexdigest()
        from diffusers import StableDiffusionPipeline
        parts = {k: v for k, v in self.pipeline.components.items() if k != "controlnet"}
        self.base = StableDiffusionPipeline(**{**parts, "requires_safety_checker": False})
        self.base.set_progress_bar_config(disable=True)

    def generate(self, prompt: str, seed: int, relpath: str) -> Output:
        arguments = self.common_arguments(prompt, seed)
        source = self.base(**arguments).images[0]
        conditioning = canny_image(source, self.settings["canny_low"], self.settings["canny_high"])
        arguments["generator"] = cpu_generator(seed)
        image = self.pipeline(image=conditioning, **arguments).images[0]
        data = png_bytes(conditioning)
        name = relpath.split("/", 1)[1]  # images/<generator>/<file> -> <generator>/<file>
        conditioning_path = f"{CONDITIONING_DIR}/{name}"
        method = (f"canny(low={self.settings['canny_low']}, high={self.settings['canny_high']}) of the base "
                  "Stable Diffusion image of the same prompt and seed")
        return Output(image.convert("RGB"), columns={"conditioning": conditioning_path,
                                                     "conditioning_sha256": hashlib.sha256(data).hexdigest(),
                                                     "conditioning_method": method},
                      files={conditioning_path: data})
