"""ImageReward's published checkpoint (``ImageReward.pt`` in THUDM/ImageReward) as transformers' BLIP.

The file is the ``state_dict`` of ImageReward's own module: ``blip`` (their trimmed ``BLIP_Pretrain``: the BLIP
ViT ``visual_encoder``, the med.py BERT ``text_encoder`` with cross-attention, ``vision_proj``, ``text_proj``)
and ``mlp`` (the reward head). transformers' ``BlipForImageTextRetrieval`` holds the same tensors under other
names; this module renames them (a pure mapping of names, no tensor is changed):

================================================  =====================================================
ImageReward.pt (BLIP vit.py / med.py names)       transformers BlipForImageTextRetrieval
================================================  =====================================================
blip.visual_encoder.cls_token                     vision_model.embeddings.class_embedding
blip.visual_encoder.pos_embed                     vision_model.embeddings.position_embedding
blip.visual_encoder.patch_embed.proj.*            vision_model.embeddings.patch_embedding.*
blip.visual_encoder.blocks.N.norm1/norm2.*        vision_model.encoder.layers.N.layer_norm1/layer_norm2.*
blip.visual_encoder.blocks.N.attn.qkv.*           vision_model.encoder.layers.N.self_attn.qkv.* (both fuse q, k, v
                                                  in one Linear, in the same q|k|v order: nothing to split)
blip.visual_encoder.blocks.N.attn.proj.*          vision_model.encoder.layers.N.self_attn.projection.*
blip.visual_encoder.blocks.N.mlp.fc1/fc2.*        vision_model.encoder.layers.N.mlp.fc1/fc2.*
blip.visual_encoder.norm.*                        vision_model.post_layernorm.*
blip.text_encoder.<rest>                          text_encoder.<rest> (transformers' BLIP text model is a port
                                                  of med.py: embeddings, attention.self.query/key/value,
                                                  crossattention.*, intermediate, output keep their names)
blip.vision_proj.*, blip.text_proj.*              vision_proj.*, text_proj.*
mlp.layers.K.*                                    the reward head's layers.K.*
================================================  =====================================================

``*.position_ids`` buffers are dropped (transformers rebuilds them). Any other key, a tensor whose shape does
not fit the model, or a tensor the model needs that the file lacks is an error naming the keys. The model's
``itm_head`` is not in ImageReward (it is not used for the reward) and keeps its initial values.
"""

from __future__ import annotations

import re
from pathlib import Path

from aigciqa.errors import InputError

VISION_RULES = (  # (pattern after "blip.visual_encoder.", replacement after "vision_model.")
    (r"cls_token", r"embeddings.class_embedding"),
    (r"pos_embed", r"embeddings.position_embedding"),
    (r"patch_embed\.proj\.(weight|bias)", r"embeddings.patch_embedding.\1"),
    (r"blocks\.(\d+)\.norm([12])\.(weight|bias)", r"encoder.layers.\1.layer_norm\2.\3"),
    (r"blocks\.(\d+)\.attn\.qkv\.(weight|bias)", r"encoder.layers.\1.self_attn.qkv.\2"),
    (r"blocks\.(\d+)\.attn\.proj\.(weight|bias)", r"encoder.layers.\1.self_attn.projection.\2"),
    (r"blocks\.(\d+)\.mlp\.(fc[12])\.(weight|bias)", r"encoder.layers.\1.mlp.\2.\3"),
    (r"norm\.(weight|bias)", r"post_layernorm.\1"),
)
# Tensors of the transformers model that ImageReward does not have: left as they are (unused by the reward).
NOT_IN_IMAGEREWARD = ("itm_head.",)
LISTED = 5  # keys named in an error message
VIT_LAYER_NORM_EPS = 1e-6  # BLIP's vit.py: LayerNorm(eps=1e-6) (transformers' BLIP config defaults to 1e-5)


def transformers_name(key: str) -> tuple[str, str] | None:
    """(``"blip"`` or ``"head"``, the transformers name) of an ImageReward.pt key; ``("", "")`` for buffers
    that are dropped; None for a key this mapping does not know."""
    if key.endswith("position_ids"):
        return "", ""
    if key.startswith("blip.visual_encoder."):
        rest = key[len("blip.visual_encoder."):]
        for pattern, replacement in VISION_RULES:
            if re.fullmatch(pattern, rest):
                return "blip", "vision_model." + re.sub(pattern, replacement, rest)
        return None
    if key.startswith("blip.text_encoder."):
        return "blip", "text_encoder." + key[len("blip.text_encoder."):]
    for prefix in ("blip.vision_proj.", "blip.text_proj."):
        if key.startswith(prefix) and key.rsplit(".", 1)[-1] in ("weight", "bias"):
            return "blip", key[len("blip."):]
    if re.fullmatch(r"mlp\.layers\.\d+\.(weight|bias)", key):
        return "head", key[len("mlp."):]
    return None


def convert_state(state: dict, blip_shapes: dict, head_shapes: dict, source: str = "") -> tuple[dict, dict]:
    """ImageReward.pt's tensors -> (BLIP state for ``load_state_dict``, head state); ``*_shapes`` are the target
    models' ``{name: shape}``. InputError names unmapped, misshapen and missing keys."""
    blip, head, unmapped, misshapen = {}, {}, [], []
    for key, tensor in state.items():
        mapped = transformers_name(key)
        if mapped is None:
            unmapped.append(key)
            continue
        part, name = mapped
        if not part:
            continue
        shapes, target = (blip_shapes, blip) if part == "blip" else (head_shapes, head)
        if name not in shapes:
            unmapped.append(key)
        elif tuple(tensor.shape) != tuple(shapes[name]):
            misshapen.append(f"{key} {tuple(tensor.shape)} (the model's {name} is {tuple(shapes[name])})")
        else:
            target[name] = tensor
    missing = [name for name in blip_shapes if name not in blip and not name.startswith(NOT_IN_IMAGEREWARD)]
    missing += [f"mlp.{name}" for name in head_shapes if name not in head]
    problems = []
    for label, keys in (("unmapped keys", unmapped), ("misshapen tensors", misshapen),
                        ("missing tensors", missing)):
        if keys:
            more = f" and {len(keys) - LISTED} more" if len(keys) > LISTED else ""
            problems.append(f"{len(keys)} {label}: " + ", ".join(keys[:LISTED]) + more)
    if problems:
        raise InputError("not an ImageReward checkpoint that fits the BLIP model: " + "; ".join(problems),
                         file=source or None)
    return blip, head


def read_checkpoint(path: Path) -> dict:
    """The tensors of ImageReward.pt, unpickled with ``weights_only=True`` (tensors and plain containers only)."""
    import torch
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable or unsafe files
        raise InputError(f"cannot load the checkpoint with weights_only=True: {error}", file=str(path)) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise InputError("the checkpoint holds no dictionary of named tensors", file=str(path))
    return state


def image_size(state: dict, patch_size: int, source: str = "") -> int:
    """The input size the checkpoint's ViT was trained at, from its position embedding (1 + (size/patch)^2)."""
    positions = state.get("blip.visual_encoder.pos_embed")
    if positions is None or positions.dim() != 3:
        raise InputError("the checkpoint has no blip.visual_encoder.pos_embed of shape (1, tokens, width)",
                         file=source or None)
    side = round((positions.shape[1] - 1) ** 0.5)
    if side * side != positions.shape[1] - 1:
        raise InputError(f"blip.visual_encoder.pos_embed has {positions.shape[1]} tokens: not 1 + a square grid",
                         file=source or None)
    return side * patch_size
