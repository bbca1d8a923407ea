"""Pretrained image(-text) scorers as baselines: CLIPScore, BLIPScore, ImageReward, the LAION aesthetic
predictor, HPS v2 and PickScore, on transformers models loaded from a local folder.

- CLIPScore, HPS v2, PickScore: a CLIP model (``CLIPModel``); the score is the cosine similarity of the
  image and prompt embeddings (PickScore multiplies it by the model's learned logit scale, as its reference
  code does). HPS v2 and PickScore are CLIP models fine-tuned on human preferences, so only the weights differ.
- BLIPScore: the cosine similarity of BLIP's projected image and text features (``BlipForImageTextRetrieval``
  without its matching head), as the paper and ImageReward's authors computed it.
- ImageReward: BLIP's text encoder attending to the image, its first token through ImageReward's MLP, then
  ImageReward's published normalisation.
- Aesthetic: the LAION predictor (v2): CLIP ViT-L/14's L2-normalised image embedding through an MLP.

A weights folder is what ``save_pretrained`` writes (config.json, *.safetensors, tokenizer and
preprocessor_config.json); ImageReward and Aesthetic also need their MLP head in the folder, either
``head.safetensors`` or the published torch file (``*.pt``/``*.pth``, loaded with ``weights_only=True``: plain
tensors, never arbitrary pickled objects). The MLP is the same for both (768 -> 1024 -> 128 -> 64 -> 16 -> 1).
torch and transformers are imported lazily.
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


def weights_folder(weights, method: str) -> Path:
    """The local transformers folder a method loads; a clear error when it is missing."""
    if not weights:
        raise InputError(f"baseline '{method}' needs its weights: --weights {method}=DIR "
                         "(a local transformers model folder; see docs/baselines.md)")
    folder = Path(weights)
    if not folder.exists():
        raise InputError(f"weights folder of baseline '{method}' not found (a local folder is needed: Hub ids are "
                         "not resolved here)", file=str(folder))
    if not (folder / "config.json").is_file():
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


def load_reward_head(folder: Path, input_size: int):
    """The MLP head of a folder: ``head.safetensors``, else its one ``*.pt``/``*.pth`` file (keys ``layers.*``,
    or ``mlp.layers.*`` as in ImageReward.pt; other keys are ignored)."""
    import torch
    head = reward_head(input_size)
    path = folder / HEAD_FILE
    if path.is_file():
        from aigciqa.model.runs import read_tensors
        tensors = read_tensors(path)
    else:
        candidates = sorted([*folder.glob("*.pt"), *folder.glob("*.pth")])
        if len(candidates) != 1:
            raise InputError(f"expected {HEAD_FILE} or exactly one *.pt/*.pth head file, found "
                             f"{len(candidates)}", file=str(folder))
        path = candidates[0]
        try:
            tensors = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several types for unreadable or unsafe files
            raise InputError(f"cannot load the head with weights_only=True: {error}", file=str(path)) from None
        if isinstance(tensors, dict) and isinstance(tensors.get("state_dict"), dict):
            tensors = tensors["state_dict"]
    if not isinstance(tensors, dict):
        raise InputError("the head file holds no tensor dictionary", file=str(path))
    state = {key[len("mlp."):] if key.startswith("mlp.") else key: value for key, value in tensors.items()}
    state = {key: value for key, value in state.items() if key.startswith("layers.")}
    own = head.state_dict()
    wrong = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise InputError(f"head does not fit the {input_size}-wide MLP: '{wrong[0]}' missing or misshapen",
                         file=str(path))
    head.load_state_dict(state)
    return head.eval()


def read_images(paths) -> list:
    """PIL RGB images, decoded as the annotators saw them; an unreadable file raises InputError naming it."""
    from aigciqa.database.images import open_image
    return [open_image(path) for path in paths]


class TransformersScorer:
    """Loads a model and its processor from a folder; ``score(paths, texts)`` gives one float per image."""

    model_class = ""
    max_text_tokens: int | None = None  # None: the tokenizer's own limit

    def __init__(self, weights, method: str, device: str = "cpu"):
        import transformers
        folder = weights_folder(weights, method)
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(str(folder))
            self.model = getattr(transformers, self.model_class).from_pretrained(str(folder)).to(device).eval()
        except (OSError, ValueError) as error:
            raise InputError(f"cannot load a {self.model_class} with its processor: {error}",
                             file=str(folder)) from None
        self.folder, self.device = folder, device

    def inputs(self, paths, texts=None) -> dict:
        kwargs = {"images": read_images(paths), "return_tensors": "pt"}
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
        self.head = load_reward_head(self.folder, self.model.config.text_config.hidden_size).to(device)

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
        self.head = load_reward_head(self.folder, self.model.config.projection_dim).to(device)

    def forward(self, paths, texts):
        inputs = self.inputs(paths)
        model = self.model
        image = model.visual_projection(model.vision_model(pixel_values=inputs["pixel_values"]).pooler_output)
        return self.head.layers(_unit(image)).squeeze(-1)
