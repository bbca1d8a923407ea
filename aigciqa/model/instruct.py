"""MINT-IQA's explanation side (paper section IV-B, Fig. 9 part 3) and feedback (stage 3, Fig. 10).

image -> the stage-1 scorer (frozen): image tokens and quality-aware query outputs
instruction + learnable queries (+ zero connection of the quality-aware outputs) -> a second
InstructBLIP Q-Former (queries and instruction share self-attention; queries cross-attend to the image
tokens) -> instruction-aware query outputs -> linear projection -> soft prompt in front of the
instruction and answer tokens of a frozen causal LLM.

The zero connection is the paper's "zero convolution": a linear map initialised to zero, so at the start
the instruct Q-Former computes exactly what it computes without it; training then lets the quality-aware
outputs in. ``zero_connection=False`` leaves it out (the ablation of Table XV).

:class:`FeedbackIQA` is stage 3: per perspective, the instruction-aware representation for that
perspective's rating question is concatenated with the quality-aware one and fed to that perspective's
regressor. Its regressors start as the stage-1 ones (the new input columns zero), so it starts exactly
at the stage-1 scores.
"""

from __future__ import annotations

import torch
from torch import nn

from aigciqa.model.network import MintIQA, frozen_step_count, qformer_queries


class InstructIQA(nn.Module):
    """Stage-1 scorer (frozen) + instruction-aware Q-Former + projection (+ the frozen LLM when attached)."""

    def __init__(self, scorer: MintIQA, qformer: nn.Module, *, llm_hidden: int, zero_connection: bool = True):
        super().__init__()
        self.scorer = scorer
        # The stage-1 fix-rate boundary (before freezing hides it): stages 2 and 3 share its boundary cache.
        self.boundary_steps = frozen_step_count(scorer.vision)
        for parameter in scorer.parameters():
            parameter.requires_grad_(False)
        hidden = qformer.config.hidden_size
        self.qformer = qformer
        self.query_tokens = nn.Parameter(torch.randn(1, scorer.query_tokens.shape[1], hidden) * 0.02)
        self.connection = None
        if zero_connection:
            self.connection = nn.Linear(scorer.qformer.config.hidden_size, hidden)
            nn.init.zeros_(self.connection.weight)
            nn.init.zeros_(self.connection.bias)
        self.projection = nn.Linear(hidden, llm_hidden)
        self.llm = None
        self.llm_random = False  # a random (built in code) LLM is part of the run's weights

    def attach_llm(self, llm: nn.Module, *, random: bool) -> None:
        self.llm, self.llm_random = llm, random

    def train(self, mode: bool = True):
        super().train(mode)
        # The frozen parts never train: no dropout in the features stage 2 learns from.
        self.scorer.eval()
        if self.llm is not None:
            self.llm.eval()
        return self

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.scorer.encode_image(pixel_values)

    def quality_queries(self, input_ids, attention_mask, image_embeds) -> torch.Tensor:
        """The frozen stage-1 query outputs [batch, queries, scorer hidden] for the image and its prompt."""
        with torch.no_grad():
            return self.scorer.query_outputs(input_ids, attention_mask, image_embeds)

    def instruct_queries(self, quality: torch.Tensor | None, instruction_ids, instruction_mask,
                         image_embeds) -> torch.Tensor:
        """Instruction-aware query outputs [batch, queries, hidden]."""
        queries = self.query_tokens.expand(image_embeds.shape[0], -1, -1)
        if self.connection is not None:
            queries = queries + self.connection(quality)
        return qformer_queries(self.qformer, queries, instruction_ids, instruction_mask, image_embeds)

    def soft_prompt(self, prompt_ids, prompt_mask, instruction_ids, instruction_mask, image_embeds):
        """The projected instruction-aware queries [batch, queries, LLM hidden]: the LLM's visual prefix."""
        quality = self.quality_queries(prompt_ids, prompt_mask, image_embeds)
        return self.projection(self.instruct_queries(quality, instruction_ids, instruction_mask, image_embeds))

    def forward(self, prompt_ids, prompt_mask, instruction_ids, instruction_mask, image_embeds, token_ids,
                token_mask, labels) -> torch.Tensor:
        """Stage 2's loss: the LM loss of the answers after the visual prefix (the training entry point,
        so a distributed wrapper sees the whole step)."""
        prefix = self.soft_prompt(prompt_ids, prompt_mask, instruction_ids, instruction_mask, image_embeds)
        return self.lm_loss(prefix, token_ids, token_mask, labels)

    def lm_loss(self, prefix: torch.Tensor, token_ids: torch.Tensor, token_mask: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        """Language-modelling loss over the answer tokens (labels -100 elsewhere) after the visual prefix."""
        tokens = self.llm.get_input_embeddings()(token_ids)
        embeds = torch.cat([prefix.to(tokens.dtype), tokens], dim=1)  # the LLM's dtype (bfloat16 when loaded so)
        mask = torch.cat([torch.ones(prefix.shape[:2], dtype=token_mask.dtype, device=token_mask.device),
                          token_mask], dim=1)
        ignore = torch.full(prefix.shape[:2], -100, dtype=labels.dtype, device=labels.device)
        return self.llm(inputs_embeds=embeds, attention_mask=mask, labels=torch.cat([ignore, labels], dim=1)).loss

    def run_state(self) -> dict:
        """What a stage-2 run stores: everything trained (and a random LLM); not the frozen scorer, which
        its stage-1 run holds, nor a file-backed LLM (only LoRA adapters on it)."""
        state = {}
        for name, value in self.state_dict().items():
            if name.startswith("scorer."):
                continue
            if name.startswith("llm.") and not (self.llm_random or "lora_" in name):
                continue
            state[name] = value
        return state


def prefixed_inputs(prefix: torch.Tensor, sequences: list[list[int]], embed, pad_id: int):
    """Left-padded [pad..., prefix, tokens] embeddings and mask for generation (one prefix per sequence)."""
    longest = max(len(s) for s in sequences)
    rows, masks = [], []
    for soft, ids in zip(prefix, sequences):
        pad = longest - len(ids)
        tokens = torch.tensor([pad_id] * pad + ids, device=prefix.device)
        embedded = embed(tokens)
        rows.append(torch.cat([embedded[:pad], soft.to(embedded.dtype), embedded[pad:]], dim=0))
        masks.append(torch.tensor([0] * pad + [1] * (soft.shape[0] + len(ids)), device=prefix.device))
    return torch.stack(rows), torch.stack(masks)


def answer_batch(prompts: list[list[int]], answers: list[list[int]], pad_id: int):
    """Right-padded instruction + answer tokens with labels on the answer tokens only, for training."""
    longest = max(len(p) + len(a) for p, a in zip(prompts, answers))
    ids, mask, labels = [], [], []
    for prompt, answer in zip(prompts, answers):
        pad = longest - len(prompt) - len(answer)
        ids.append(prompt + answer + [pad_id] * pad)
        mask.append([1] * (len(prompt) + len(answer)) + [0] * pad)
        labels.append([-100] * len(prompt) + answer + [-100] * pad)
    return torch.tensor(ids), torch.tensor(mask), torch.tensor(labels)


class FeedbackIQA(nn.Module):
    """Stage 3: per perspective, [quality-aware ; instruction-aware for that perspective's question] ->
    that perspective's regressor. Same interface as :class:`MintIQA` (forward, scores, encode_image), so
    evaluation and scoring treat it as a scorer."""

    def __init__(self, explainer: InstructIQA, instruction_ids: torch.Tensor, instruction_mask: torch.Tensor):
        super().__init__()
        self.explainer = explainer
        for parameter in explainer.parameters():
            parameter.requires_grad_(False)
        scorer = explainer.scorer
        self.perspectives, self.bins = scorer.perspectives, scorer.bins
        # One tokenised rating question per perspective ([P, tokens]); not weights, rebuilt from the config.
        self.register_buffer("instruction_ids", instruction_ids, persistent=False)
        self.register_buffer("instruction_mask", instruction_mask, persistent=False)
        quality_hidden = scorer.qformer.config.hidden_size
        instruct_hidden = explainer.qformer.config.hidden_size
        self.heads = nn.ModuleList()
        for old in scorer.heads:
            first, activation, last = old
            head = nn.Sequential(nn.Linear(quality_hidden + instruct_hidden, first.out_features), activation.__class__(),
                                 nn.Linear(last.in_features, last.out_features))
            with torch.no_grad():  # start at stage 1: its weights on the quality part, zero on the new part
                head[0].weight.zero_()
                head[0].weight[:, :quality_hidden].copy_(first.weight)
                head[0].bias.copy_(first.bias)
                head[2].load_state_dict(last.state_dict())
            self.heads.append(head)

    def train(self, mode: bool = True):
        super().train(mode)
        self.explainer.eval()  # frozen
        return self

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.explainer.encode_image(pixel_values)

    def features(self, input_ids, attention_mask, image_embeds) -> torch.Tensor:
        """The frozen inputs of the regressors, [batch, perspectives, quality + instruct hidden]."""
        with torch.no_grad():
            quality = self.explainer.quality_queries(input_ids, attention_mask, image_embeds)
            batch = image_embeds.shape[0]
            per_perspective = []
            for ids, mask in zip(self.instruction_ids, self.instruction_mask):
                instruct = self.explainer.instruct_queries(quality, ids.expand(batch, -1), mask.expand(batch, -1),
                                                           image_embeds)
                per_perspective.append(torch.cat([quality.mean(dim=1), instruct.mean(dim=1)], dim=-1))
            return torch.stack(per_perspective, dim=1)

    def regress(self, features: torch.Tensor) -> torch.Tensor:
        outputs = torch.stack([head(features[:, j]) for j, head in enumerate(self.heads)], dim=1)
        return outputs.squeeze(-1) if self.bins == 1 else outputs

    def forward(self, input_ids=None, attention_mask=None, pixel_values=None, image_embeds=None,
                features=None) -> torch.Tensor:
        """Like MintIQA's forward; ``features`` (from :meth:`features`) skips the frozen part."""
        if features is None:
            if image_embeds is None:
                image_embeds = self.encode_image(pixel_values)
            features = self.features(input_ids, attention_mask, image_embeds)
        return self.regress(features)

    def scores(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.explainer.scorer.scores(outputs)
