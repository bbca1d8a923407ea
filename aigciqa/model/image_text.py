"""Table X's backbones as torch modules: the parts of CLIP and BLIP that the ``clip`` and ``blip`` presets
(:mod:`.presets.clip`, :mod:`.presets.blip`) hand to :class:`.network.ImageTextScorer`.

Each image-text model keeps its own way of joining image and prompt; the per-perspective regressors are
added directly on what it produces, in place of its similarity or matching output:

- CLIP: the projected image embedding (the class token after the final norm, ``visual_projection``) and the
  projected prompt embedding (the end-of-text token, ``text_projection``), each L2-normalised as CLIPScore
  compares them and scaled to norm sqrt(d) (unit mean square per component), concatenated with their
  element-wise product, whose sum is d x CLIPScore's cosine: [image, prompt, image * prompt], 3 x d features.
- BLIP: the image-grounded text encoder (BERT with cross-attention to the image tokens) on the prompt, its
  first token: what BLIP's image-text matching head classifies (and what ImageReward regresses), text width.

Imports torch; only the training and scoring paths import this module.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from aigciqa.model.network import run_vision_steps


class ClipImageTower(nn.Module):
    """CLIP's vision transformer in the steps :func:`.network.vision_steps` runs: ``embeddings`` (patch and
    position embedding, then CLIP's pre-norm), the blocks (``encoder.layers``), ``post_layernorm`` on every
    token. CLIP applies its final norm to the class token only; a layer norm acts on each token alone, so
    token 0 here is CLIP's pooled output, and the fix rate and the boundary cache treat it like any encoder."""

    def __init__(self, clip_vision: nn.Module):
        super().__init__()
        self.embeddings = nn.Sequential(clip_vision.embeddings, clip_vision.pre_layrnorm)
        self.encoder = clip_vision.encoder
        self.post_layernorm = clip_vision.post_layernorm
        self.config = clip_vision.config

    def forward(self, pixel_values: torch.Tensor) -> BaseModelOutput:
        return BaseModelOutput(last_hidden_state=run_vision_steps(self, pixel_values, 0))


def unit(x: torch.Tensor) -> torch.Tensor:
    """x scaled to unit L2 norm along the last axis."""
    return x / x.norm(dim=-1, keepdim=True)


class ClipJointEmbedding(nn.Module):
    """CLIP's image and prompt embeddings joined as the scorer's features (see the module docstring)."""

    def __init__(self, visual_projection: nn.Module, text_model: nn.Module, text_projection: nn.Module):
        super().__init__()
        self.visual_projection = visual_projection
        self.text_model = text_model
        self.text_projection = text_projection
        self.width = 3 * text_projection.out_features

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                image_embeds: torch.Tensor) -> torch.Tensor:
        scale = self.text_projection.out_features ** 0.5
        image = unit(self.visual_projection(image_embeds[:, 0])) * scale
        text = self.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        text = unit(self.text_projection(text)) * scale
        return torch.cat([image, text, image * text], dim=-1)


class BlipGroundedText(nn.Module):
    """BLIP's image-grounded text encoder: the prompt attends to the image tokens; its first token."""

    def __init__(self, text_encoder: nn.Module):
        super().__init__()
        self.text_encoder = text_encoder
        self.width = text_encoder.config.hidden_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                image_embeds: torch.Tensor) -> torch.Tensor:
        image_mask = torch.ones(image_embeds.shape[:2], dtype=torch.long, device=image_embeds.device)
        out = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=image_embeds,
                                encoder_attention_mask=image_mask)
        return out.last_hidden_state[:, 0]
