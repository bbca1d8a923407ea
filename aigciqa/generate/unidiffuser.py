"""UniDiffuser (``UniDiffuserPipeline`` in text-to-image mode), e.g. thu-ml/unidiffuser-v1."""

from __future__ import annotations

from aigciqa.generate import tiny
from aigciqa.generate.diffusers_common import DiffusersGenerator


class UniDiffuser(DiffusersGenerator):
    family = "unidiffuser"
    summary = "UniDiffuser text-to-image mode (diffusers UniDiffuserPipeline, deprecated folder)"
    pipeline_class = "UniDiffuserPipeline"
    accepted_classes = ("UniDiffuserPipeline",)
    defaults = {"steps": 50, "guidance": 8.0, "width": 512, "height": 512, "scheduler": "", "dtype": "float32",
                "negative_prompt": ""}
    tiny_defaults = {"steps": 2, "guidance": 5.0, "width": 64, "height": 64}
    weights_help = "a diffusers UniDiffuserPipeline folder, e.g. a snapshot of thu-ml/unidiffuser-v1"

    def build_tiny(self):
        from diffusers import UniDiffuserPipeline
        return UniDiffuserPipeline(**tiny.unidiffuser_components(self.settings["width"]))

    def load(self, hash_cache=None) -> None:
        super().load(hash_cache)
        self.pipeline.set_text_to_image_mode()  # otherwise the mode is inferred from the inputs each call
