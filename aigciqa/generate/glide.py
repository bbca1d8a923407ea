"""GLIDE (OpenAI's filtered release) through the official ``glide_text2im`` package: the 64 px base model
with classifier-free guidance, then the 256 px upsampler, as in the package's text2im notebook.

There is no maintained PyPI package and no diffusers port, so the user installs the official code
(``pip install git+https://github.com/openai/glide-text2im``) and puts its two checkpoints in one
folder: ``base.pt`` and ``upsample.pt`` (the files ``glide_text2im.download.load_checkpoint`` saves in
its cache). ``aigciqa weights download glide`` fetches them with that downloader into
``HF_HOME/aigciqa/glide``, the folder used when no weights are given. They are loaded with ``torch.load(weights_only=True)``: tensors only, no unpickled code.
"""

from __future__ import annotations

from pathlib import Path

from aigciqa.errors import InputError
from aigciqa.common.deps import import_optional
from aigciqa.generate.base import Generator, Output, folder_sha256

INSTALL = "pip install git+https://github.com/openai/glide-text2im"
CHECKPOINTS = ("base.pt", "upsample.pt")


class Glide(Generator):
    family = "glide"
    summary = "GLIDE (filtered) base 64 px + upsampler 256 px via the official glide_text2im package"
    defaults = {"steps": 100, "guidance": 3.0, "width": 256, "height": 256, "scheduler": "", "dtype": "float32",
                "upsample_steps": "fast27", "upsample_temp": 0.997}
    options = {"upsample_steps": {"type": "string"}, "upsample_temp": {"type": "number", "minimum": 0}}
    weights_help = (f"a folder with GLIDE's {' and '.join(CHECKPOINTS)}: install the code with {INSTALL}, then "
                    "'aigciqa weights download glide' fetches them with the package's own downloader")

    def check_weights(self) -> None:
        super().check_weights()
        import_optional("glide_text2im", "the GLIDE generator", INSTALL)
        for name in CHECKPOINTS:
            if not (Path(self.weights) / name).is_file():
                raise InputError(f"GLIDE checkpoint {name} is missing ({self.weights_help})",
                                 file=Path(self.weights) / name)

    def load(self, hash_cache: dict | None = None) -> None:
        import torch
        creation = import_optional("glide_text2im.model_creation", "the GLIDE generator", INSTALL)
        half = self.settings["dtype"] == "float16"
        self.models = {}
        for part, make_defaults, respacing in (("base", creation.model_and_diffusion_defaults, str(self.settings["steps"])),
                                               ("upsample", creation.model_and_diffusion_defaults_upsampler,
                                                str(self.settings["upsample_steps"]))):
            options = make_defaults()
            options.update(use_fp16=half, timestep_respacing=respacing)
            model, diffusion = creation.create_model_and_diffusion(**options)
            model.eval()
            if half:
                model.convert_to_fp16()
            state = torch.load(Path(self.weights) / f"{part}.pt", map_location="cpu", weights_only=True)
            model.load_state_dict(state)
            model.to(self.device)
            self.models[part] = (model, diffusion, options)
        self.weights_sha256 = folder_sha256(self.weights, hash_cache)

    def generate(self, prompt: str, seed: int, relpath: str) -> Output:
        import torch
        from PIL import Image
        torch.manual_seed(seed)  # the package's samplers draw from torch's global generator
        model, diffusion, options = self.models["base"]
        guidance = self.settings["guidance"]
        tokens, mask = model.tokenizer.padded_tokens_and_mask(model.tokenizer.encode(prompt), options["text_ctx"])
        empty, empty_mask = model.tokenizer.padded_tokens_and_mask([], options["text_ctx"])
        kwargs = dict(tokens=torch.tensor([tokens, empty], device=self.device),
                      mask=torch.tensor([mask, empty_mask], dtype=torch.bool, device=self.device))

        def guided(x_t, ts, **kw):  # classifier-free guidance on a [conditional, unconditional] batch
            half = x_t[: len(x_t) // 2]
            out = model(torch.cat([half, half], dim=0), ts, **kw)
            eps, rest = out[:, :3], out[:, 3:]
            cond, uncond = torch.split(eps, len(eps) // 2, dim=0)
            mixed = uncond + guidance * (cond - uncond)
            return torch.cat([torch.cat([mixed, mixed], dim=0), rest], dim=1)

        size = options["image_size"]
        with torch.no_grad():
            low = diffusion.p_sample_loop(guided, (2, 3, size, size), device=self.device, clip_denoised=True,
                                          progress=False, model_kwargs=kwargs, cond_fn=None)[:1]
            model_up, diffusion_up, options_up = self.models["upsample"]
            tokens, mask = model_up.tokenizer.padded_tokens_and_mask(model_up.tokenizer.encode(prompt),
                                                                     options_up["text_ctx"])
            up_kwargs = dict(low_res=((low + 1) * 127.5).round() / 127.5 - 1,
                             tokens=torch.tensor([tokens], device=self.device),
                             mask=torch.tensor([mask], dtype=torch.bool, device=self.device))
            shape = (1, 3, options_up["image_size"], options_up["image_size"])
            high = diffusion_up.ddim_sample_loop(
                model_up, shape, noise=torch.randn(shape, device=self.device) * self.settings["upsample_temp"],
                device=self.device, clip_denoised=True, progress=False, model_kwargs=up_kwargs, cond_fn=None)[:1]
        pixels = ((high[0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return Output(Image.fromarray(pixels, mode="RGB"))
