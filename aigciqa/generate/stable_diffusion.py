"""Stable Diffusion (``StableDiffusionPipeline``), e.g. a local snapshot of stable-diffusion-v1-5."""

from __future__ import annotations

from aigciqa.generate import tiny
from aigciqa.generate.diffusers_common import DiffusersGenerator


class StableDiffusion(DiffusersGenerator):
    family = "stable_diffusion"
    summary = "Stable Diffusion 1.x/2.x text-to-image (diffusers StableDiffusionPipeline)"
    pipeline_class = "StableDiffusionPipeline"
    accepted_classes = ("StableDiffusionPipeline",)
    defaults = {"steps": 50, "guidance": 7.5, "width": 512, "height": 512, "scheduler": "", "dtype": "float32",
                "negative_prompt": ""}
    tiny_defaults = {"steps": 2, "guidance": 5.0, "width": 64, "height": 64}
    weights_help = ("a diffusers folder with model_index.json, e.g. a snapshot of "
                    "stable-diffusion-v1-5/stable-diffusion-v1-5 saved with save_pretrained")

    def build_tiny(self):
        from diffusers import StableDiffusionPipeline
        return StableDiffusionPipeline(**tiny.stable_diffusion_components(self.settings["width"]))
