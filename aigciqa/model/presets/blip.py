"""The ``blip`` preset (Table X): BLIP itself as the backbone, with MINT-IQA's per-perspective regressors added
directly on its image-grounded text encoder's first token (the input of BLIP's image-text matching head;
:class:`aigciqa.model.image_text.BlipGroundedText`), in place of that head. BLIP's vision transformer is the
image encoder (fix rate, LoRA and the boundary cache as for MINT-IQA); the grounded text encoder, BERT with
cross-attention to the image tokens, takes the Q-Former's place and trains fully. Stages 2 and 3 need a
Q-Former and refuse it.

``--weights``: a transformers ``BlipForImageTextRetrieval`` folder or Hub spec, default
``Salesforce/blip-itm-large-coco`` (BLIP ViT-L, 384 px, BERT-base text encoder; ImageReward, whose code
MINT-IQA builds on, starts from BLIP ViT-L; the paper does not name its checkpoint)."""

from __future__ import annotations

from aigciqa.model.presets.base import CLIP_MEAN, CLIP_STD, Preset, fused_scorer
from aigciqa.weights.defaults import DEFAULTS

IMAGE_SIZE = 384
BLIP_LAYOUT = " ".join(f"""\
a transformers BlipForImageTextRetrieval checkpoint for {IMAGE_SIZE} px images (a local folder or a Hub repo
id such as {DEFAULTS['blip'].spec}, the default): config.json (model_type blip), the weights as *.safetensors
(keys vision_model.*, text_encoder.*) and the BERT tokenizer files (vocab.txt)""".split())


def build(pretrained: bool, weights):
    """(BLIP's vision transformer, its image-grounded text encoder, its BERT tokenizer)."""
    from aigciqa.model.image_text import BlipGroundedText
    from aigciqa.model.presets.pretrained import load_image_text_model
    blip, tokenizer = load_image_text_model(weights, pretrained=pretrained, model_class="BlipForImageTextRetrieval",
                                            preset="blip", image_size=IMAGE_SIZE, layout=BLIP_LAYOUT)
    return blip.vision_model, BlipGroundedText(blip.text_encoder), tokenizer


PRESET = Preset(
    name="blip", description="Table X: BLIP (ViT + image-grounded text encoder) with the regressors on its matching "
                             f"token, no Q-Former: --weights DIR or Hub id (default {DEFAULTS['blip'].spec})",
    image_size=IMAGE_SIZE, mean=CLIP_MEAN, std=CLIP_STD, max_text_tokens=128,
    num_queries=1,  # no queries: the grounded first token is one feature vector
    build=build, build_scorer=fused_scorer, default_weights=DEFAULTS["blip"].spec, weights_layout=BLIP_LAYOUT)
