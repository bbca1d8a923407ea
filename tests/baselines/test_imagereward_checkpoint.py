"""ImageReward.pt (BLIP vit.py / med.py key names + the reward MLP) converted onto transformers' BLIP.

The original layout is written out here from the original modules (THUDM/ImageReward's ImageReward.py and
BLIP_Pretrain, salesforce/BLIP's vit.py and med.py), independently of the converter: a tiny random
transformers BLIP is saved in that layout, converted back, and must score exactly like the model it came from.
"""

import shutil

import numpy as np
import pytest

pytest.importorskip("transformers")
import torch  # noqa: E402

from aigciqa.baselines.methods import get_baseline  # noqa: E402
from aigciqa.baselines.text_image import HEAD_FILE, reward_head  # noqa: E402
from aigciqa.errors import InputError  # noqa: E402

PROMPTS = ["a red bicycle", "two cats on a sofa", "an old lighthouse at dusk"]
VISION, TEXT, WIDTH, TEXT_WIDTH, PATCH, SIZE = 2, 2, 48, 32, 8, 32

# vit.py's VisionTransformer (timm PatchEmbed, Block with norm1/attn/norm2/mlp, final norm) -> transformers
VIT_TOP = {"cls_token": "embeddings.class_embedding", "pos_embed": "embeddings.position_embedding",
           "patch_embed.proj.weight": "embeddings.patch_embedding.weight",
           "patch_embed.proj.bias": "embeddings.patch_embedding.bias",
           "norm.weight": "post_layernorm.weight", "norm.bias": "post_layernorm.bias"}
VIT_BLOCK = {"norm1": "layer_norm1", "attn.qkv": "self_attn.qkv", "attn.proj": "self_attn.projection",
             "norm2": "layer_norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
# med.py's BertModel(add_pooling_layer=False): BertEmbeddings (no token types) and BertLayer with crossattention
MED_EMBEDDINGS = ("word_embeddings", "position_embeddings", "LayerNorm")
MED_LAYER = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
             "attention.output.LayerNorm", "crossattention.self.query", "crossattention.self.key",
             "crossattention.self.value", "crossattention.output.dense", "crossattention.output.LayerNorm",
             "intermediate.dense", "output.dense", "output.LayerNorm")
MLP_LINEARS = (0, 2, 4, 6, 7)  # ImageReward's MLP: Linear, Dropout, Linear, Dropout, Linear, Dropout, Linear, Linear


def original_names() -> dict[str, str]:
    """ImageReward.pt key -> the tiny transformers model's (``blip``) or head's (``mlp``) tensor name."""
    names = {f"blip.visual_encoder.{k}": f"vision_model.{v}" for k, v in VIT_TOP.items()}
    for n in range(VISION):
        for k, v in VIT_BLOCK.items():
            for p in ("weight", "bias"):
                names[f"blip.visual_encoder.blocks.{n}.{k}.{p}"] = f"vision_model.encoder.layers.{n}.{v}.{p}"
    for k in MED_EMBEDDINGS:
        for p in (("weight",) if k.endswith("embeddings") else ("weight", "bias")):
            names[f"blip.text_encoder.embeddings.{k}.{p}"] = f"text_encoder.embeddings.{k}.{p}"
    for n in range(TEXT):
        for k in MED_LAYER:
            for p in ("weight", "bias"):
                names[f"blip.text_encoder.encoder.layer.{n}.{k}.{p}"] = f"text_encoder.encoder.layer.{n}.{k}.{p}"
    for k in ("vision_proj", "text_proj"):
        for p in ("weight", "bias"):
            names[f"blip.{k}.{p}"] = f"{k}.{p}"
    for n in MLP_LINEARS:
        for p in ("weight", "bias"):
            names[f"mlp.layers.{n}.{p}"] = f"layers.{n}.{p}"
    return names


def expected_shape(key: str) -> tuple:
    """The shape each original tensor has in the original modules, for the tiny sizes."""
    tokens = (SIZE // PATCH) ** 2 + 1
    fixed = {"blip.visual_encoder.cls_token": (1, 1, WIDTH), "blip.visual_encoder.pos_embed": (1, tokens, WIDTH),
             "blip.visual_encoder.patch_embed.proj.weight": (WIDTH, 3, PATCH, PATCH)}
    if key in fixed:
        return fixed[key]
    if ".attn.qkv.weight" in key:
        return (3 * WIDTH, WIDTH)
    if "crossattention.self.key.weight" in key or "crossattention.self.value.weight" in key:
        return (TEXT_WIDTH, WIDTH)  # med.py: Linear(encoder_width, all_head_size)
    return None


@pytest.fixture(scope="module")
def blip_with_head(tmp_path_factory):
    """A tiny transformers BLIP (ViT LayerNorm eps 1e-6, as BLIP's vit.py) with a reward head in its folder."""
    from transformers import (BertTokenizer, BlipConfig, BlipForImageTextRetrieval, BlipImageProcessor,
                              BlipProcessor)
    from aigciqa.model.presets.tiny import tiny_vocab
    from safetensors.torch import save_file
    folder = tmp_path_factory.mktemp("blip-imagereward")
    torch.manual_seed(3)
    vocab = tiny_vocab()
    config = BlipConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=TEXT_WIDTH, intermediate_size=37,
                         num_hidden_layers=TEXT, num_attention_heads=2, encoder_hidden_size=WIDTH,
                         max_position_embeddings=64, pad_token_id=0, bos_token_id=2, sep_token_id=3),
        vision_config=dict(hidden_size=WIDTH, intermediate_size=37, num_hidden_layers=VISION, num_attention_heads=2,
                           image_size=SIZE, patch_size=PATCH, layer_norm_eps=1e-6),
        projection_dim=16, image_text_hidden_size=16)
    model = BlipForImageTextRetrieval(config)
    model.save_pretrained(folder)
    BlipProcessor(image_processor=BlipImageProcessor(size={"height": SIZE, "width": SIZE}),
                  tokenizer=BertTokenizer(vocab=vocab)).save_pretrained(folder)
    head = reward_head(TEXT_WIDTH)
    for parameter in head.parameters():  # larger than the default init, so that a wrong mapping shows
        torch.nn.init.normal_(parameter, std=0.5)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, folder / HEAD_FILE)
    blip_state, head_state = model.state_dict(), head.state_dict()
    original = {}
    for key, name in original_names().items():
        source = head_state if key.startswith("mlp.") else blip_state
        original[key] = source[name].clone()
    original["blip.text_encoder.embeddings.position_ids"] = torch.arange(64).expand((1, -1))  # med.py's buffer
    return folder, original


def scorer(weights):
    return get_baseline("imagereward").scorer(weights, "cpu")


def test_the_original_layout_fixture_has_the_original_shapes(blip_with_head):
    _, original = blip_with_head
    for key, tensor in original.items():
        if expected_shape(key) is not None:
            assert tuple(tensor.shape) == expected_shape(key), key


def test_imagereward_checkpoint_scores_like_the_transformers_model(blip_with_head, tmp_path, image_files):
    folder, original = blip_with_head
    reference = scorer(folder).score(image_files, PROMPTS)  # the transformers folder with its head file
    base = tmp_path / "base"  # config, tokenizer, processor: the checkpoint brings every weight
    shutil.copytree(folder, base, ignore=shutil.ignore_patterns("*.safetensors"))
    checkpoint = tmp_path / "ImageReward.pt"
    torch.save(original, checkpoint)
    converted = scorer({"model": checkpoint, "base": base})
    assert converted.weights_record()["model"]["files_sha256"].keys() == {"ImageReward.pt"}
    assert np.allclose(converted.score(image_files, PROMPTS), reference, atol=1e-5)
    assert len(set(np.round(reference, 4))) == 3
    snapshot = tmp_path / "snapshot"  # THUDM/ImageReward as a repo: the checkpoint and med_config.json
    snapshot.mkdir()
    shutil.copyfile(checkpoint, snapshot / "ImageReward.pt")
    (snapshot / "med_config.json").write_text("{}")
    assert np.allclose(scorer({"model": snapshot, "base": base}).score(image_files, PROMPTS), reference, atol=1e-5)


def test_a_checkpoint_that_does_not_fit_is_refused_naming_its_keys(blip_with_head, tmp_path):
    folder, original = blip_with_head
    base = tmp_path / "base"
    shutil.copytree(folder, base, ignore=shutil.ignore_patterns("*.safetensors"))
    foreign = dict(original, **{"blip.temp": torch.ones(1)})
    del foreign["blip.visual_encoder.blocks.1.mlp.fc2.bias"]
    torch.save(foreign, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match=r"foreign.pt: not an ImageReward checkpoint .*1 unmapped keys: blip.temp;"
                                         r" 1 missing tensors: vision_model.encoder.layers.1.mlp.fc2.bias"):
        scorer({"model": tmp_path / "foreign.pt", "base": base})
    wide = dict(original, **{"mlp.layers.0.weight": torch.zeros(1024, 8)})
    torch.save(wide, tmp_path / "wide.pt")
    with pytest.raises(InputError, match=r"misshapen tensors: mlp.layers.0.weight \(1024, 8\)"):
        scorer({"model": tmp_path / "wide.pt", "base": base})


class Pickled:
    pass


def test_the_checkpoint_is_unpickled_with_weights_only(blip_with_head, tmp_path):
    folder, _ = blip_with_head
    torch.save({"blip.visual_encoder.cls_token": Pickled()}, tmp_path / "unsafe.pt")
    with pytest.raises(InputError, match="unsafe.pt: cannot load the checkpoint with weights_only=True"):
        scorer({"model": tmp_path / "unsafe.pt", "base": folder})
