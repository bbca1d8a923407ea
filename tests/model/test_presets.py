"""The `paper` preset's loading code on a tiny InstructBLIP checkpoint folder of the real layout.

The paper's weights (EVA-CLIP ViT-g/14 + BERT-base Q-Former, about 1 B parameters) are not reachable
offline; a checkpoint folder with the same files and key names, but a tiny architecture, runs the same
code: config, Q-Former tokenizer, prefixed safetensors, training and a reload.
"""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from safetensors.torch import load_file, save_file

from aigciqa.cli import main
from aigciqa.model.scorer import build_model
from aigciqa.model.presets import build_components, get_preset
from aigciqa.model.presets.tiny import tiny_vocab

TRAIN = ["--split", "split1", "--epochs", "1", "--lr", "1e-3", "--quiet", "--cpu"]


def write_tiny_instructblip(folder):
    """config.json, model.safetensors (vision_model.*, qformer.*, query_tokens) and qformer_tokenizer/."""
    from transformers import (InstructBlipConfig, InstructBlipQFormerConfig,
                              InstructBlipQFormerModel, InstructBlipVisionConfig, InstructBlipVisionModel)
    vocab = tiny_vocab()
    vision = InstructBlipVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                      num_attention_heads=4, image_size=224, patch_size=32)
    qformer = InstructBlipQFormerConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                        num_attention_heads=4, encoder_hidden_size=32, vocab_size=len(vocab),
                                        max_position_embeddings=160)
    config = InstructBlipConfig(vision_config=vision.to_dict(), qformer_config=qformer.to_dict(), num_query_tokens=32)
    config.save_pretrained(str(folder))
    torch.manual_seed(1)
    tensors = {f"vision_model.{k}": v for k, v in InstructBlipVisionModel(vision).state_dict().items()}
    tensors |= {f"qformer.{k}": v for k, v in InstructBlipQFormerModel(qformer).state_dict().items()}
    tensors["query_tokens"] = torch.full((1, 32, 32), 0.5)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors"))
    # As in the published folders: the WordPiece vocabulary as vocab.txt, one token per line in id order.
    (folder / "qformer_tokenizer").mkdir()
    (folder / "qformer_tokenizer/vocab.txt").write_text("".join(f"{t}\n" for t in sorted(vocab, key=vocab.get)))
    return tensors


def test_paper_preset_loads_an_instructblip_folder_and_trains(make_folder, tmp_path, capsys):
    weights = tmp_path / "instructblip"
    weights.mkdir()
    saved = write_tiny_instructblip(weights)
    vision, qformer, tokenizer = build_components(get_preset("paper"), weights=weights)
    for prefix, module in (("vision_model", vision), ("qformer", qformer)):
        for key, value in module.state_dict().items():
            assert torch.equal(value, saved[f"{prefix}.{key}"]), key
    assert tokenizer.vocab_size == len(tiny_vocab())
    config = {"preset": "paper", "weights": str(weights), "num_queries": 32, "perspectives": ["quality"],
              "bins": 1, "fix_rate": 0.7}
    model = build_model(config, pretrained=True)[0]
    assert torch.equal(model.query_tokens, saved["query_tokens"])  # InstructBLIP's learned queries

    folder = make_folder(tmp_path / "db")
    assert main(["train", "scorer", str(folder.root), *TRAIN, "--preset", "paper", "--weights", str(weights)]) == 0
    run = folder.root / "runs/mint-iqa-paper"
    trained = load_file(str(run / "model.safetensors"))
    assert any(not torch.equal(trained[f"vision.{k}"], v)  # the unfrozen top of the encoder trained
               for k, v in vision.state_dict().items() if f"vision.{k}" in trained)
    capsys.readouterr()
    image = str(folder.root / "images/gen/p6-1.png")
    assert main(["score", image, "--prompt", "a photo of thing 6", "--style", "photo", "--model", str(run), "--format", "json"]) == 0
    assert '"quality"' in capsys.readouterr().out


def test_paper_preset_folder_without_weights_is_refused(tmp_path, capsys, make_folder):
    weights = tmp_path / "instructblip"
    weights.mkdir()
    write_tiny_instructblip(weights)
    (weights / "model.safetensors").unlink()
    folder = make_folder(tmp_path / "db")
    assert main(["train", "scorer", str(folder.root), *TRAIN, "--preset", "paper", "--weights", str(weights)]) == 2
    assert "no *.safetensors weights" in capsys.readouterr().err
    assert not (folder.root / "runs").exists()


def test_a_preset_is_one_module_and_one_registry_line(monkeypatch, make_folder, tmp_path, capsys):
    """A preset module (here made on the fly from tiny's builders, with other sizes) plus its name in
    PRESET_MODULES is all it takes: the command line lists it, trains, saves and scores with it."""
    import sys
    import types
    from dataclasses import replace

    from aigciqa.model import presets
    from aigciqa.model.presets import tiny
    module = types.ModuleType("aigciqa.model.presets.wide")
    module.PRESET = replace(tiny.PRESET, name="wide", description="tiny with 8 queries", num_queries=8)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(presets, "PRESET_MODULES", (*presets.PRESET_MODULES, "wide"))
    presets.presets.cache_clear()
    try:
        assert "wide: tiny with 8 queries" in presets.presets_help()
        folder = make_folder(tmp_path / "db")
        assert main(["train", "scorer", str(folder.root), *TRAIN, "--preset", "wide"]) == 0
        run = folder.root / "runs/mint-iqa-wide"
        image = str(folder.root / "images/gen/p6-1.png")
        assert main(["score", image, "--prompt", "a photo", "--style", "photo", "--model", str(run), "--json", "-"]) == 0
        assert "quality" in capsys.readouterr().out
        model, _, preset, _ = build_model({"preset": "wide", "perspectives": ["quality"], "bins": 1,
                                           "fix_rate": 0.7, "num_queries": 8}, pretrained=False)
        assert preset.name == "wide" and model.query_tokens.shape[1] == 8
    finally:
        presets.presets.cache_clear()


def test_an_unknown_preset_gets_the_registrys_did_you_mean_from_the_command_line(make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db")
    assert main(["train", "scorer", str(folder.root), *TRAIN, "--preset", "tinny"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "unknown preset 'tinny'; did you mean 'tiny'?" in error[0]
