"""Pretrained image(-text) scorers as baselines: CLIPScore, BLIPScore, ImageReward, the LAION aesthetic
predictor, HPS v2 and PickScore, on transformers models given by local path or Hub id.

- CLIPScore, HPS v2, PickScore: a CLIP model (``CLIPModel``); the score is the cosine similarity of the
  image and prompt embeddings (PickScore multiplies it by the model's learned logit scale, as its reference
  code does). HPS v2 and PickScore are CLIP models fine-tuned on human preferences, so only the weights differ.
- BLIPScore: the cosine similarity of BLIP's projected image and text features (``BlipForImageTextRetrieval``
  without its matching head), as the paper and ImageReward's authors computed it.
- ImageReward: BLIP's text encoder attending to the image, its first token through ImageReward's MLP, then
  ImageReward's published normalisation.
- Aesthetic: the LAION predictor (v2): CLIP ViT-L/14's L2-normalised image embedding through an MLP.

Weights: each method has a ``model`` part and at most one more (``aesthetic-head``, ``imagereward-base``,
``pickscore-processor``). A part is a local path or a Hub spec ``ORG/NAME[@REVISION][:FILE]`` resolved by
:mod:`aigciqa.weights` (Hugging Face cache, HF_HUB_OFFLINE); without ``--weights`` the default Hub id of
:mod:`aigciqa.weights.defaults` is used. A model folder is what ``save_pretrained`` writes (config.json,
weights, tokenizer and preprocessor_config.json); ImageReward and Aesthetic also need their MLP head, either in
that folder (``head.safetensors`` or the published torch file) or, for ImageReward, the published
``ImageReward.pt`` itself (converted by :mod:`aigciqa.baselines.imagereward_checkpoint`). Torch files are loaded
with ``weights_only=True``: plain tensors, never arbitrary pickled objects. The MLP is the same for both
(768 -> 1024 -> 128 -> 64 -> 16 -> 1). torch and transformers are imported lazily.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aigciqa.errors import InputError

# ImageReward's published reward normalisation (ImageReward/ImageReward.py: mean, std of its training rewards).
IMAGEREWARD_MEAN, IMAGEREWARD_STD = 0.16717362830052426, 1.0333394966054072
HEAD_FILE = "head.safetensors"
BLIP_TEXT_TOKENS = 35  # ImageReward's BLIP and BLIPScore truncate prompts to 35 tokens
HEAD_LAYERS = ((1024, 0.2), (128, 0.2), (64, 0.1), (16, 0.0))  # width, dropout after it (dropout unused in eval)


def weight_specs(weights) -> dict[str, str]:
    """``--weights`` of one method as {part: spec}: a bare spec is the ``model`` part."""
    if isinstance(weights, dict):
        return {part: str(spec) for part, spec in weights.items() if spec}
    return {"model": str(weights)} if weights else {}


def part_name(method: str, part: str) -> str:
    """The name of a method's weights part on the command line and in the defaults table."""
    return method if part == "model" else f"{method}-{part}"


def resolve_part(method: str, part: str, spec: str | None, hint: str):
    """A method's weights part (given, else its default Hub id) through :mod:`aigciqa.weights` (local path or
    ORG/NAME[@REV][:FILE], the Hugging Face cache, HF_HUB_OFFLINE): an InputError names what to download."""
    from aigciqa.weights.defaults import DEFAULTS
    from aigciqa.weights.resolve import resolve
    name = part_name(method, part)
    if not spec:
        entry = DEFAULTS.get(name)
        if entry is None or not entry.on_hub:
            raise InputError(f"baseline '{method}' needs --weights {name}=SPEC ({hint})")
        spec = entry.spec
    return resolve(spec, what=f"--weights {name}", hint=hint)


def transformers_folder(folder: Path, method: str) -> Path:
    if not (folder.is_dir() and (folder / "config.json").is_file()):
        raise InputError(f"not a transformers model folder (config.json is missing) for baseline '{method}'",
                         file=str(folder))
    return folder


def reward_head(input_size: int):
    """ImageReward's and LAION's MLP, with their parameter names (layers.0, .2, .4, .6, .7)."""
    import torch
    layers, width = [], input_size
    for out, dropout in HEAD_LAYERS:
        layers.append(torch.nn.Linear(width, out))
        if dropout:
            layers.append(torch.nn.Dropout(dropout))
        width = out
    layers.append(torch.nn.Linear(width, 1))
    head = torch.nn.Module()
    head.layers = torch.nn.Sequential(*layers)
    return head


def load_reward_head(path: Path, input_size: int):
    """The MLP head in a file, or in a folder: ``head.safetensors``, else its one ``*.pt``/``*.pth`` file (keys
    ``layers.*``, or ``mlp.layers.*`` as in ImageReward.pt; other keys are ignored). Torch files are loaded with
    ``weights_only=True``."""
    path = Path(path)
    if path.is_dir():
        if (path / HEAD_FILE).is_file():
            path = path / HEAD_FILE
        else:
            candidates = sorted([*path.glob("*.pt"), *path.glob("*.pth")])
            if len(candidates) != 1:
                raise InputError(f"expected {HEAD_FILE} or exactly one *.pt/*.pth head file, found "
                                 f"{len(candidates)}", file=str(path))
            path = candidates[0]
    if path.suffix == ".safetensors":
        from aigciqa.model.runs import read_tensors
        tensors = read_tensors(path)
    else:
        from aigciqa.baselines.imagereward_checkpoint import read_checkpoint
        tensors = read_checkpoint(path)
    state = {key[len("mlp."):] if key.startswith("mlp.") else key: value for key, value in tensors.items()}
    return head_with(state, input_size, str(path))


def head_with(state: dict, input_size: int, source: str):
    """The MLP with the ``layers.*`` tensors of ``state``; a clear error when they do not fit."""
    head = reward_head(input_size)
    state = {key: value for key, value in state.items() if key.startswith("layers.")}
    own = head.state_dict()
    wrong = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise InputError(f"head does not fit the {input_size}-wide MLP: '{wrong[0]}' missing or misshapen",
                         file=source)
    head.load_state_dict(state)
    return head.eval()


def read_images(paths) -> list:
    """PIL RGB images, decoded as the annotators saw them; an unreadable file raises InputError naming it."""
    from aigciqa.database.images import open_image
    return [open_image(path) for path in paths]


def shorter_side_centre_square(image, size: int):
    """torchvision's ``Resize(size)`` then ``CenterCrop(size)`` on a PIL image: the shorter side to ``size``
    (the longer one to int(size x long / short)), bicubic, then the centred size x size square."""
    from PIL import Image
    width, height = image.size
    if width <= height:
        resized = (size, int(size * height / width))
    else:
        resized = (int(size * width / height), size)
    if resized != image.size:
        image = image.resize(resized, Image.Resampling.BICUBIC)
    left, top = int(round((resized[0] - size) / 2.0)), int(round((resized[1] - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


class TransformersScorer:
    """Loads a model and its processor (weights by local path or Hub id); ``score(paths, texts)`` gives one
    float per image; ``sources`` holds the resolved weights of each part (repo, commit, files) for the run."""

    model_class = ""
    max_text_tokens: int | None = None  # None: the tokenizer's own limit
    MODEL_HINT = "a transformers model folder with config.json, or a Hub repo id ORG/NAME[@REVISION]"

    def __init__(self, weights, method: str, device: str = "cpu"):
        self.method, self.device, self.specs, self.sources = method, device, weight_specs(weights), {}
        self.load(self.resolve("model", self.MODEL_HINT).path)
        self.model = self.model.to(device).eval()

    def resolve(self, part: str, hint: str):
        resolved = resolve_part(self.method, part, self.specs.get(part), hint)
        self.sources[part] = resolved
        return resolved

    def load(self, path: Path) -> None:
        import transformers
        folder = transformers_folder(path, self.method)
        self.model = self.from_pretrained(getattr(transformers, self.model_class), folder)
        self.processor = self.from_pretrained(transformers.AutoProcessor, self.processor_folder(folder))
        self.folder = folder

    def processor_folder(self, folder: Path) -> Path:
        return folder

    def from_pretrained(self, cls, folder: Path):
        try:
            return cls.from_pretrained(str(folder))
        except (OSError, ValueError) as error:
            raise InputError(f"cannot load a {cls.__name__}: {str(error).splitlines()[0]}", file=str(folder)) from None

    def weights_record(self) -> dict:
        """{part: repo id, revision, resolved commit, path and sha256 of every file}."""
        return {part: resolved.record() for part, resolved in self.sources.items()}

    def images(self, paths) -> list:
        """The images the processor gets (as decoded; a method may prepare them the way its own code does)."""
        return read_images(paths)

    def inputs(self, paths, texts=None) -> dict:
        kwargs = {"images": self.images(paths), "return_tensors": "pt"}
        if texts is not None:
            kwargs.update(text=list(texts), padding=True, truncation=True)
            if self.max_text_tokens:
                kwargs["max_length"] = self.max_text_tokens
        return {k: v.to(self.device) for k, v in self.processor(**kwargs).items()}

    def score(self, paths, texts) -> np.ndarray:
        import torch
        with torch.no_grad():
            return self.forward(paths, texts).float().cpu().numpy()

    def forward(self, paths, texts):
        raise NotImplementedError


def _unit(x):
    return x / x.norm(dim=-1, keepdim=True)


class ClipSimilarity(TransformersScorer):
    """Cosine similarity of CLIP's projected image and prompt embeddings, times the learned logit scale when
    ``scaled`` (PickScore)."""

    model_class = "CLIPModel"
    scaled = False

    def forward(self, paths, texts):
        inputs = self.inputs(paths, texts)
        model = self.model
        image = model.visual_projection(model.vision_model(pixel_values=inputs["pixel_values"]).pooler_output)
        text = model.text_projection(model.text_model(input_ids=inputs["input_ids"],
                                                      attention_mask=inputs.get("attention_mask")).pooler_output)
        cosine = (_unit(image) * _unit(text)).sum(-1)
        return cosine * model.logit_scale.exp() if self.scaled else cosine


class PickScore(ClipSimilarity):
    scaled = True

    def processor_folder(self, folder: Path) -> Path:
        """The model folder's processor, else the ``processor`` part (PickScore's reference code loads the base
        CLIP-H's processor)."""
        if (folder / "preprocessor_config.json").is_file() and not self.specs.get("processor"):
            return folder
        return self.resolve("processor", "a folder with a CLIP tokenizer and preprocessor_config.json").path


class BlipSimilarity(TransformersScorer):
    """Cosine similarity of BLIP's projected image and (unimodal) text features."""

    model_class = "BlipForImageTextRetrieval"
    max_text_tokens = BLIP_TEXT_TOKENS

    def forward(self, paths, texts):
        inputs = self.inputs(paths, texts)
        model = self.model
        image = model.vision_model(pixel_values=inputs["pixel_values"]).last_hidden_state
        text = model.text_encoder(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask")
                                  ).last_hidden_state
        return (_unit(model.vision_proj(image[:, 0])) * _unit(model.text_proj(text[:, 0]))).sum(-1)


class ImageReward(TransformersScorer):
    """BLIP's image-grounded text encoder, its first token through ImageReward's MLP, normalised."""

    model_class = "BlipForImageTextRetrieval"
    max_text_tokens = BLIP_TEXT_TOKENS

    def __init__(self, weights, method: str, device: str = "cpu"):
        super().__init__(weights, method, device)
        self.head = self.head.to(device)

    def load(self, path: Path) -> None:
        """A transformers BLIP folder with the head file in it, or ImageReward's own checkpoint (a file):
        converted onto the ``base`` part's BLIP config, tokenizer and image processor. A folder without
        config.json but with one ``*.pt`` (a snapshot of THUDM/ImageReward) means that checkpoint."""
        checkpoints = sorted(path.glob("*.pt")) if path.is_dir() and not (path / "config.json").exists() else []
        if len(checkpoints) == 1:
            path = checkpoints[0]
        if path.is_dir():
            super().load(path)
            self.head = load_reward_head(path, self.model.config.text_config.hidden_size)
            return
        import transformers
        from aigciqa.baselines import imagereward_checkpoint as checkpoint
        base = transformers_folder(self.resolve("base", "a transformers BLIP folder (config, tokenizer, image "
                                                        "processor) for the ImageReward checkpoint").path, self.method)
        state = checkpoint.read_checkpoint(path)
        config = self.from_pretrained(transformers.BlipConfig, base)
        size = checkpoint.image_size(state, config.vision_config.patch_size, str(path))
        config.vision_config.image_size = size
        config.vision_config.layer_norm_eps = checkpoint.VIT_LAYER_NORM_EPS
        model = transformers.BlipForImageTextRetrieval(config)
        head = reward_head(config.text_config.hidden_size)
        blip, head_state = checkpoint.convert_state(state, {k: v.shape for k, v in model.state_dict().items()},
                                                    {k: v.shape for k, v in head.state_dict().items()}, str(path))
        model.load_state_dict(blip, strict=False)  # convert_state checked that only the unused itm_head is left
        self.model, self.head = model, head_with(head_state, config.text_config.hidden_size, str(path))
        self.processor = self.from_pretrained(transformers.AutoProcessor, base)
        self.processor.image_processor.size = {"height": size, "width": size}  # the checkpoint's input size
        self.folder = base

    def images(self, paths) -> list:
        """ImageReward's own preprocessing (ImageReward.py ``_transform``): the shorter side resized to the input
        size (bicubic), then the centre square; BLIP's processor alone would squash the whole image to a square."""
        size = self.processor.image_processor.size["height"]
        return [shorter_side_centre_square(image, size) for image in read_images(paths)]

    def forward(self, paths, texts):
        import torch
        inputs = self.inputs(paths, texts)
        model = self.model
        image = model.vision_model(pixel_values=inputs["pixel_values"]).last_hidden_state
        grounded = model.text_encoder(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                                      encoder_hidden_states=image,
                                      encoder_attention_mask=torch.ones(image.shape[:2], dtype=torch.long,
                                                                        device=image.device)).last_hidden_state
        return (self.head.layers(grounded[:, 0]).squeeze(-1) - IMAGEREWARD_MEAN) / IMAGEREWARD_STD


class Aesthetic(TransformersScorer):
    """The LAION aesthetic predictor: CLIP's L2-normalised image embedding through the MLP (no prompt)."""

    model_class = "CLIPModel"

    def __init__(self, weights, method: str, device: str = "cpu"):
        super().__init__(weights, method, device)
        # the head: --weights aesthetic-head=SPEC, else a head file in the CLIP folder, else the default's
        has_head = (self.folder / HEAD_FILE).is_file() or any(self.folder.glob("*.pt")) or any(
            self.folder.glob("*.pth"))
        where = self.folder if has_head and not self.specs.get("head") else self.resolve(
            "head", "the MLP head file (.pth/.pt/.safetensors), or a folder holding it").path
        self.head = load_reward_head(where, self.model.config.projection_dim).to(device)

    def forward(self, paths, texts):
        inputs = self.inputs(paths)
        model = self.model
        image = model.visual_projection(model.vision_model(pixel_values=inputs["pixel_values"]).pooler_output)
        return self.head.layers(_unit(image)).squeeze(-1)
