"""Any other text-to-image ``DiffusionPipeline`` folder (SDXL, PixArt, FLUX, ...), loaded as it declares.

The folder's model_index.json names its pipeline class; ``DiffusionPipeline.from_pretrained`` builds it.
The call passes prompt, steps, guidance, size and the seeded generator, which every diffusers
text-to-image pipeline accepts. There is no tiny mode: the entry is tested on a saved tiny Stable
Diffusion folder, which is also what a user's folder looks like.
"""

from __future__ import annotations

from pathlib import Path

from aigciqa.errors import InputError
from aigciqa.generate.diffusers_common import DiffusersGenerator, import_diffusers, torch_dtype


class GenericPipeline(DiffusersGenerator):
    family = "diffusion_pipeline"
    summary = "any text-to-image diffusers pipeline folder (SDXL, PixArt, FLUX...): DiffusionPipeline"
    pipeline_class = "DiffusionPipeline"
    accepted_classes = ()  # whatever model_index.json declares
    defaults = {"steps": 30, "guidance": 5.0, "width": 1024, "height": 1024, "scheduler": "", "dtype": "float32",
                "negative_prompt": ""}
    tiny_defaults = None
    weights_help = "a diffusers pipeline folder with model_index.json, e.g. a snapshot saved with save_pretrained"

    def load_folder(self, path: Path):
        diffusers = import_diffusers()
        try:
            return diffusers.DiffusionPipeline.from_pretrained(
                path, torch_dtype=torch_dtype(self.settings["dtype"]), local_files_only=True)
        except (OSError, ValueError, AttributeError) as error:
            raise InputError(f"cannot load a DiffusionPipeline from this folder: {error}", file=path) from None
