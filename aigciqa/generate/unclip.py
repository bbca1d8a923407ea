"""DALL-E through its open reproduction: unCLIP / Karlo (``UnCLIPPipeline``, kakaobrain/karlo-v1-alpha).

The output size is fixed by the weights (Karlo: 64 px decoder, 256 px super-resolution), so width and
height are not settings with real weights; in tiny mode ``width`` sets the built model's size.
"""

from __future__ import annotations

from aigciqa.generate import tiny
from aigciqa.generate.base import Output
from aigciqa.generate.diffusers_common import DiffusersGenerator, cpu_generator


class UnCLIP(DiffusersGenerator):
    family = "dalle"
    summary = "DALL-E 2 style unCLIP via the open Karlo weights (diffusers UnCLIPPipeline, deprecated folder)"
    pipeline_class = "UnCLIPPipeline"
    accepted_classes = ("UnCLIPPipeline",)
    defaults = {"steps": 25, "guidance": 8.0, "width": 256, "height": 256, "scheduler": "", "dtype": "float32",
                "prior_steps": 25, "prior_guidance": 4.0, "super_res_steps": 7}
    tiny_defaults = {"steps": 2, "prior_steps": 2, "super_res_steps": 2, "width": 64, "height": 64}
    options = {"prior_steps": {"type": "integer", "minimum": 1},
               "prior_guidance": {"type": "number", "minimum": 0},
               "super_res_steps": {"type": "integer", "minimum": 1}}
    weights_help = "a diffusers UnCLIPPipeline folder, e.g. a snapshot of kakaobrain/karlo-v1-alpha"

    def build_tiny(self):
        from diffusers import UnCLIPPipeline
        return UnCLIPPipeline(**tiny.unclip_components(self.settings["width"]))

    def generate(self, prompt: str, seed: int, relpath: str) -> Output:
        s = self.settings
        image = self.pipeline(prompt=prompt, prior_num_inference_steps=s["prior_steps"],
                              decoder_num_inference_steps=s["steps"], super_res_num_inference_steps=s["super_res_steps"],
                              prior_guidance_scale=s["prior_guidance"], decoder_guidance_scale=s["guidance"],
                              generator=cpu_generator(seed)).images[0]
        return Output(image.convert("RGB"))
