import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from aigciqa.model.scorer import build_model
from aigciqa.model.data import compose_text
from aigciqa.model.network import encoder_fully_frozen, frozen_layer_count, vision_layers


def config(**overrides):
    return {"preset": "tiny", "perspectives": ["quality", "authenticity", "correspondence"], "bins": 1,
            "lora_rank": 0, "num_queries": 4, "fix_rate": 0.7, "mos_range": [0, 100], **overrides}


@pytest.mark.parametrize("rate, frozen", [(0.0, 0), (0.25, 1), (0.5, 2), (0.7, 2), (0.75, 3), (1.0, 4)])
def test_fix_rate_freezes_the_lowest_blocks(rate, frozen):
    model, _, _, count = build_model(config(fix_rate=rate), pretrained=True)
    layers = vision_layers(model.vision)
    assert count == frozen == frozen_layer_count(rate, len(layers))
    for index, layer in enumerate(layers):
        assert all(not p.requires_grad for p in layer.parameters()) == (index < frozen)
    assert all(not p.requires_grad for p in model.vision.embeddings.parameters()) == (rate > 0)
    assert encoder_fully_frozen(model) == (rate == 1.0)
    assert all(p.requires_grad for p in model.qformer.parameters())
    assert model.query_tokens.requires_grad


def test_one_regressor_per_perspective_and_scores_shape():
    model, tokenizer, preset, _ = build_model(config(), pretrained=True)
    tokens = tokenizer(["a red bike", "two dogs"], padding=True, return_tensors="pt")
    pixels = torch.randn(2, 3, preset.image_size, preset.image_size)
    out = model(tokens["input_ids"], tokens["attention_mask"], pixel_values=pixels)
    assert out.shape == (2, 3) and len(model.heads) == 3


def test_cross_entropy_head_gives_bins_and_expected_scores():
    model, tokenizer, preset, _ = build_model(config(bins=5, perspectives=["quality"]), pretrained=True)
    tokens = tokenizer(["a red bike"], return_tensors="pt")
    out = model(tokens["input_ids"], tokens["attention_mask"],
                pixel_values=torch.randn(1, 3, preset.image_size, preset.image_size))
    assert out.shape == (1, 1, 5)
    scores = model.scores(out)
    assert scores.shape == (1, 1) and 0.0 < float(scores.detach()) < 1.0


def test_lora_trains_only_adapters_in_frozen_encoder():
    pytest.importorskip("peft")
    model, _, _, _ = build_model(config(fix_rate=1.0, lora_rank=4), pretrained=True)
    trainable = [n for n, p in model.vision.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_text_segments_are_switchable():
    segments = {"style": "oil painting", "content": "a cat", "atmosphere": ""}
    assert compose_text("a cat ", segments, True) == "a cat. style: oil painting. content: a cat"
    assert compose_text("a cat ", segments, False) == "a cat"
