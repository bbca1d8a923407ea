"""The ``clip`` preset (Table X): CLIP itself as the backbone, with MINT-IQA's per-perspective regressors added
directly on its joint image-prompt embedding (:class:`aigciqa.model.image_text.ClipJointEmbedding`), no
Q-Former. The fix rate and LoRA act on CLIP's vision transformer as on MINT-IQA's encoder; the text encoder
and projections train fully, as the Q-Former does. Stages 2 and 3 need a Q-Former and refuse it.

``--weights``: a transformers ``CLIPModel`` folder or Hub spec, default ``openai/clip-vit-large-patch14``
(ViT-L/14 at 224 px, the CLIP that ImageReward, whose code MINT-IQA builds on, compares against; the paper
does not name its checkpoint)."""

from __future__ import annotations

from aigciqa.model.presets.base import CLIP_MEAN, CLIP_STD, Preset, fused_scorer
from aigciqa.weights.defaults import DEFAULTS

IMAGE_SIZE = 224
CLIP_LAYOUT = " ".join(f"""\
a transformers CLIPModel checkpoint for {IMAGE_SIZE} px images (a local folder or a Hub repo id such as
{DEFAULTS['clip'].spec}, the default): config.json (model_type clip), the weights as *.safetensors (keys
text_model.*, vision_model.*, visual_projection.*, text_projection.*) and the CLIP tokenizer files""".split())


def build(pretrained: bool, weights):
    """(CLIP's vision transformer as encoder steps, the joint embedding, CLIP's tokenizer)."""
    from aigciqa.model.image_text import ClipImageTower, ClipJointEmbedding
    from aigciqa.model.presets.pretrained import load_image_text_model
    clip, tokenizer = load_image_text_model(weights, pretrained=pretrained, model_class="CLIPModel", preset="clip",
                                            image_size=IMAGE_SIZE, layout=CLIP_LAYOUT)
    return (ClipImageTower(clip.vision_model),
            ClipJointEmbedding(clip.visual_projection, clip.text_model, clip.text_projection), tokenizer)


PRESET = Preset(
    name="clip", description="Table X: CLIP (ViT + text encoder) with the regressors on its joint embedding, "
                             f"no Q-Former: --weights DIR or Hub id (default {DEFAULTS['clip'].spec})",
    image_size=IMAGE_SIZE, mean=CLIP_MEAN, std=CLIP_STD, max_text_tokens=77,
    num_queries=1,  # no queries: the joint embedding is one feature vector
    build=build, build_scorer=fused_scorer, default_weights=DEFAULTS["clip"].spec, weights_layout=CLIP_LAYOUT)
