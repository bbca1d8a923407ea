"""The ``tiny`` preset: random tiny Dinov2 + Q-Former built in code, for tests and the demo.

It is the example of how a preset is added: this module and one line in ``presets/__init__.py``."""

from __future__ import annotations

import string

from aigciqa.model.presets.base import IMAGENET_MEAN, IMAGENET_STD, Preset

TINY_LLM = "tiny"  # the --llm spec of the random 2-layer Llama (see aigciqa.model.llm)


def tiny_vocab() -> dict[str, int]:
    """A WordPiece vocabulary of single characters: every lower-case word splits into known pieces."""
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    characters = string.ascii_lowercase + string.digits
    pieces += list(characters) + ["##" + c for c in characters] + list(string.punctuation)
    return {piece: index for index, piece in enumerate(pieces)}


def tiny_tokenizer():
    from transformers import BertTokenizer
    return BertTokenizer(vocab=tiny_vocab())


def build_qformer(pretrained: bool, weights):
    from transformers import InstructBlipQFormerConfig, InstructBlipQFormerModel
    return InstructBlipQFormerModel(InstructBlipQFormerConfig(
        vocab_size=len(tiny_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, encoder_hidden_size=32, cross_attention_frequency=1,
        max_position_embeddings=64, pad_token_id=0))


def build(pretrained: bool, weights):
    from transformers import Dinov2Config, Dinov2Model
    vision = Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                                      intermediate_size=64, image_size=32, patch_size=8))
    return vision, build_qformer(pretrained, weights), tiny_tokenizer()


PRESET = Preset(
    name="tiny", description="random tiny Dinov2 + Q-Former built in code (tests, demo)",
    image_size=32, mean=IMAGENET_MEAN, std=IMAGENET_STD, max_text_tokens=32, num_queries=4,
    build=build, build_qformer=build_qformer, default_llm=lambda: TINY_LLM)
