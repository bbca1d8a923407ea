"""The MINT-IQA scorer (paper section IV-A, Fig. 9 parts 1-2) as a torch module.

image -> image encoder (partly frozen by the fix rate) -> image tokens
learnable queries + prompt tokens -> InstructBLIP Q-Former (queries and text share self-attention;
queries cross-attend to the image tokens) -> mean of the query outputs -> one regressor per perspective.

Table X's backbones (:class:`ImageTextScorer`) replace the queries and Q-Former by the image-text model's
own fusion; everything else (encoder steps, fix rate, regressors) is shared through :class:`MultiHeadScorer`.

Imports torch; only the training/scoring paths import this module.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MultiHeadScorer(nn.Module):
    """An image encoder, a fusion of its image tokens with the prompt into one feature vector of ``width``, and
    one small MLP regressor per perspective (as many as the card declares) on it. ``forward`` returns
    [batch, perspectives] scores on the normalised 0-1 scale, or [batch, perspectives, bins] logits when
    ``bins > 1`` (the cross-entropy ablation). Subclasses define :meth:`features`; ``parts`` are their modules
    and parameters, registered before the heads (so a seed draws the same initial weights as it always did)."""

    def __init__(self, vision: nn.Module, *, width: int, perspectives: list[str], bins: int = 1, **parts):
        super().__init__()
        self.vision = vision
        for name, part in parts.items():
            setattr(self, name, part)
        self.perspectives = list(perspectives)
        self.bins = bins
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, bins))
            for _ in self.perspectives)

    def encode_image(self, pixel_values: torch.Tensor | None = None, *,
                     boundary: tuple[int, torch.Tensor] | None = None) -> torch.Tensor:
        """Image tokens from pixels, or from ``boundary`` = (steps, activations after those steps of
        :func:`vision_steps`) as the boundary cache gives them: then only the steps above run."""
        if boundary is not None:
            return run_vision_steps(self.vision, boundary[1], boundary[0])
        return self.vision(pixel_values=pixel_values).last_hidden_state

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                pixel_values: torch.Tensor | None = None, image_embeds: torch.Tensor | None = None,
                boundary: tuple[int, torch.Tensor] | None = None) -> torch.Tensor:
        if image_embeds is None:
            image_embeds = self.encode_image(pixel_values, boundary=boundary)
        return self.regress(self.features(input_ids, attention_mask, image_embeds))

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 image_embeds: torch.Tensor) -> torch.Tensor:
        """[batch, width]: what the regressors see."""
        raise NotImplementedError

    def regress(self, pooled: torch.Tensor) -> torch.Tensor:
        outputs = torch.stack([head(pooled) for head in self.heads], dim=1)  # [B, P, bins]
        return outputs.squeeze(-1) if self.bins == 1 else outputs

    def scores(self, outputs: torch.Tensor) -> torch.Tensor:
        """Normalised 0-1 scores from ``forward``'s output (expected bin centre for the CE head)."""
        if self.bins == 1:
            return outputs
        centres = (torch.arange(self.bins, device=outputs.device, dtype=outputs.dtype) + 0.5) / self.bins
        return (outputs.softmax(dim=-1) * centres).sum(dim=-1)


class MintIQA(MultiHeadScorer):
    """MINT-IQA's scorer: learnable queries and the prompt through the Q-Former, the mean of the query outputs
    to the regressors."""

    def __init__(self, vision: nn.Module, qformer: nn.Module, *, num_queries: int, perspectives: list[str],
                 bins: int = 1):
        hidden = qformer.config.hidden_size
        super().__init__(vision, width=hidden, perspectives=perspectives, bins=bins, qformer=qformer,
                         query_tokens=nn.Parameter(torch.randn(1, num_queries, hidden) * 0.02))

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 image_embeds: torch.Tensor) -> torch.Tensor:
        return self.query_outputs(input_ids, attention_mask, image_embeds).mean(dim=1)

    def query_outputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      image_embeds: torch.Tensor) -> torch.Tensor:
        """The quality-aware query outputs [batch, queries, hidden] (stage 2 feeds them onward)."""
        queries = self.query_tokens.expand(image_embeds.shape[0], -1, -1)
        return qformer_queries(self.qformer, queries, input_ids, attention_mask, image_embeds)


class ImageTextScorer(MultiHeadScorer):
    """Table X's backbones: the regressors added directly to an image-text model (CLIP, BLIP), whose own
    fusion of image tokens and prompt (a module with ``width`` and ``forward(input_ids, attention_mask,
    image_embeds) -> [batch, width]``, see :mod:`.image_text`) gives the features. No queries."""

    def __init__(self, vision: nn.Module, fusion: nn.Module, *, perspectives: list[str], bins: int = 1):
        super().__init__(vision, width=fusion.width, perspectives=perspectives, bins=bins, fusion=fusion)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 image_embeds: torch.Tensor) -> torch.Tensor:
        return self.fusion(input_ids, attention_mask, image_embeds)


def qformer_queries(qformer: nn.Module, queries: torch.Tensor, input_ids: torch.Tensor,
                    attention_mask: torch.Tensor, image_embeds: torch.Tensor) -> torch.Tensor:
    """Query outputs of a Q-Former whose queries share self-attention with a text and cross-attend to
    image tokens. The mask covers queries then text (as InstructBLIP builds it); queries are never masked."""
    image_mask = torch.ones(image_embeds.shape[:2], dtype=torch.long, device=image_embeds.device)
    query_mask = torch.ones(queries.shape[:2], dtype=attention_mask.dtype, device=attention_mask.device)
    out = qformer(input_ids=input_ids, attention_mask=torch.cat([query_mask, attention_mask], dim=1),
                  query_embeds=queries, encoder_hidden_states=image_embeds, encoder_attention_mask=image_mask)
    return out.last_hidden_state[:, : queries.shape[1]]


def vision_layers(vision: nn.Module) -> nn.ModuleList:
    """The transformer blocks of an image encoder (Dinov2: encoder.layer; BLIP-2 ViT: encoder.layers)."""
    encoder = vision.encoder
    return encoder.layer if hasattr(encoder, "layer") else encoder.layers


def vision_steps(vision: nn.Module) -> list[nn.Module]:
    """The image encoder as the sequence it runs: patch embedding, each block, final norm (Dinov2:
    layernorm; BLIP-2/InstructBLIP ViT: post_layernorm). ``vision(pixels).last_hidden_state`` equals
    :func:`run_vision_steps` over all of them."""
    norm = vision.layernorm if hasattr(vision, "layernorm") else vision.post_layernorm
    return [vision.embeddings, *vision_layers(vision), norm]


def run_vision_steps(vision: nn.Module, states: torch.Tensor, start: int, stop: int | None = None) -> torch.Tensor:
    """Run steps ``start:stop`` of :func:`vision_steps` on ``states`` (pixels when ``start`` is 0)."""
    steps = vision_steps(vision)
    stop = len(steps) if stop is None else stop
    for index in range(start, stop):
        step = steps[index]
        if 0 < index < len(steps) - 1 and "attention_mask" in _parameters(step):
            states = step(states, attention_mask=None)  # BLIP's blocks take a mask (None: every token)
        else:
            states = step(states)
        states = states[0] if isinstance(states, tuple) else states  # blocks of older transformers return tuples
    return states


def _parameters(module: nn.Module) -> tuple[str, ...]:
    import inspect
    return tuple(inspect.signature(module.forward).parameters)


def frozen_step_count(vision: nn.Module) -> int:
    """How many leading steps of :func:`vision_steps` have no trainable parameter (LoRA adapters count as
    trainable): the boundary below which activations are the same in every epoch."""
    count = 0
    for step in vision_steps(vision):
        if any(p.requires_grad for p in step.parameters()):
            break
        count += 1
    return count


def frozen_layer_count(fix_rate: float, n_layers: int) -> int:
    """How many of the lowest blocks a fix rate freezes: floor(rate * layers), so 0.7 of 12 freezes 8."""
    return min(n_layers, int(math.floor(fix_rate * n_layers + 1e-9)))


def apply_fix_rate(model: MultiHeadScorer, fix_rate: float) -> int:
    """Freeze the patch embedding and the lowest blocks of the image encoder; returns frozen blocks.

    A fix rate of 1 freezes the whole encoder, final norm included (then its outputs can be cached).
    """
    if not 0.0 <= fix_rate <= 1.0:
        raise ValueError("fix rate must be within 0-1")
    layers = vision_layers(model.vision)
    n_frozen = frozen_layer_count(fix_rate, len(layers))
    for parameter in model.vision.parameters():
        parameter.requires_grad_(True)
    if fix_rate > 0:
        for parameter in model.vision.embeddings.parameters():
            parameter.requires_grad_(False)
    for layer in layers[:n_frozen]:
        for parameter in layer.parameters():
            parameter.requires_grad_(False)
    if n_frozen == len(layers):
        for parameter in model.vision.parameters():
            parameter.requires_grad_(False)
    return n_frozen


def encoder_fully_frozen(model: MultiHeadScorer) -> bool:
    return not any(p.requires_grad for p in model.vision.parameters())
