"""LAFITE (CVPR 2022, a StyleGAN2 conditioned on CLIP text features) through its official code.

The official repository (github.com/drboog/Lafite) is not a package: the user clones it and names
the clone and a generator checkpoint in the config (``code`` and the weights folder). The adapter
follows the repository's generate.ipynb: CLIP ViT-B/32 text features (unit norm) and a seeded latent
z go into ``G_ema``. The checkpoint is a Python pickle (StyleGAN's format, read by the repository's
``legacy.load_network_pkl``), which can run code when loaded: the adapter refuses it unless the
config sets ``trust_pickle = true`` for this generator, which the user should do only for a
checkpoint from a source they trust.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aigciqa.errors import InputError
from aigciqa.common.deps import import_optional
from aigciqa.generate.base import Generator, Output, file_sha256

INSTALL = ("git clone https://github.com/drboog/Lafite and pip install "
           "git+https://github.com/openai/CLIP (plus stylegan2-ada-pytorch's requirements: click, requests, ninja)")


class Lafite(Generator):
    family = "lafite"
    summary = "LAFITE text-to-image GAN via its official repository (CLIP ViT-B/32 text features -> G_ema)"
    defaults = {"steps": 1, "guidance": 0.0, "width": 256, "height": 256, "scheduler": "", "dtype": "float32",
                "code": "", "checkpoint": "", "clip_model": "ViT-B/32", "trust_pickle": False}
    options = {"code": {"type": "string"}, "checkpoint": {"type": "string"}, "clip_model": {"type": "string"},
               "trust_pickle": {"type": "boolean"}}
    weights_help = ("a folder with a LAFITE generator checkpoint (.pkl; set 'checkpoint' to its file name when "
                    "there are several) and the CLIP ViT-B-32.pt file; set 'code' to a clone of "
                    "github.com/drboog/Lafite")

    def checkpoint(self) -> Path:
        folder = Path(self.weights)
        if self.settings.get("checkpoint"):
            return folder / self.settings["checkpoint"]
        found = sorted(folder.glob("*.pkl"))
        if len(found) != 1:
            raise InputError(f"expected one LAFITE .pkl checkpoint, found {len(found)}: set 'checkpoint' in the "
                             f"config ({self.weights_help})", file=folder)
        return found[0]

    def check_weights(self) -> None:
        super().check_weights()
        field = f"generators.{self.name}"
        code = self.settings.get("code", "")
        if not code or not (Path(code) / "legacy.py").is_file():
            raise InputError(f"LAFITE needs its official code: {INSTALL}; then set 'code' to the clone's folder "
                             "(the one holding legacy.py)", field=f"{field}.code")
        import_optional("clip", "the LAFITE generator", "pip install git+https://github.com/openai/CLIP")
        if not self.checkpoint().is_file():
            raise InputError("LAFITE checkpoint not found", file=self.checkpoint())
        if not self.settings.get("trust_pickle"):
            raise InputError("the LAFITE checkpoint is a pickle, which runs code when loaded; set "
                             "trust_pickle = true for this generator only if you trust its source",
                             field=f"{field}.trust_pickle")

    def load(self, hash_cache: dict | None = None) -> None:
        if self.settings["code"] not in sys.path:
            sys.path.insert(0, self.settings["code"])
        import clip
        import legacy  # from the LAFITE clone
        with open(self.checkpoint(), "rb") as handle:
            self.model = legacy.load_network_pkl(handle)["G_ema"].to(self.device).eval()
        clip_name = self.settings["clip_model"]
        local = Path(self.weights) / (clip_name.replace("/", "-") + ".pt")  # clip.load accepts a file path
        self.clip, _ = clip.load(str(local) if local.is_file() else clip_name, device=self.device)
        self.clip.eval()
        self.clip_module = clip
        self.weights_sha256 = file_sha256(self.checkpoint())

    def generate(self, prompt: str, seed: int, relpath: str) -> Output:
        import torch
        from PIL import Image
        with torch.no_grad():
            text = self.clip.encode_text(self.clip_module.tokenize([prompt]).to(self.device)).float()
            text = text / text.norm(dim=-1, keepdim=True)
            z = torch.randn((1, self.model.z_dim), generator=torch.Generator().manual_seed(seed)).to(self.device)
            c = torch.zeros((1, max(1, self.model.c_dim)), device=self.device)  # labels are unused by LAFITE
            out = self.model(z, c, fts=text, noise_mode="const")
            image = out[0] if isinstance(out, tuple) else out
        pixels = ((image[0] + 1) * 127.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return Output(Image.fromarray(pixels, mode="RGB"))
