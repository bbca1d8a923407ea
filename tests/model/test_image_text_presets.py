"""Table X's backbones, the `clip` and `blip` presets, on tiny random CLIP and BLIP models of the published
classes (CLIPModel, BlipForImageTextRetrieval) saved with save_pretrained, as a folder and as a Hub cache
entry, offline: train (fix rate, LoRA, boundary cache), evaluate and score end to end; the checkpoint's
weights are what the model computes with; stage 2 and wrong folders are refused with one line. The real
checkpoints (openai/clip-vit-large-patch14, Salesforce/blip-itm-large-coco) cannot be downloaded here."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from safetensors.torch import load_file, save_file

from aigciqa.cli import main
from aigciqa.model.boundary_cache import cache_root
from aigciqa.model.evaluate import predict_folder, score_images
from aigciqa.model.network import run_vision_steps, vision_steps
from aigciqa.model.presets import get_preset
from aigciqa.model.scorer import TrainOptions, build_model, train

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ["--split", "split1", "--epochs", "1", "--lr", "1e-3", "--quiet", "--cpu", "--fix-rate", "0.5"]
# The presets' image sizes (224 px CLIP, 384 px BLIP) with few, large patches; 4 blocks, so 0.5 freezes 2.
SIZES = {"clip": dict(image_size=224, patch_size=32, vision_layers=4),
         "blip": dict(image_size=384, patch_size=64, vision_layers=4, text_positions=160)}
# One vision and one text-side tensor of each checkpoint, as the published files name them.
PROBES = {"clip": ("vision_model.embeddings.patch_embedding.weight", "text_model.embeddings.token_embedding.weight"),
          "blip": ("vision_model.embeddings.patch_embedding.weight", "text_encoder.embeddings.word_embeddings.weight")}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(params=["clip", "blip"])
def backbone(request, tiny_image_text, tmp_path_factory):
    """(preset name, a tiny checkpoint folder of that preset's class and image size)."""
    name = request.param
    folder = getattr(tiny_image_text, name)(tmp_path_factory.mktemp(f"tiny-{name}"), **SIZES[name])
    return name, folder


def config_of(name, folder, **extra):
    return {"preset": name, "weights": str(folder), "num_queries": 1, "perspectives": ["quality", "authenticity"],
            "bins": 1, "fix_rate": 0.5, **extra}


def test_the_encoder_split_at_any_boundary_computes_its_output(backbone):
    name, folder = backbone
    model = build_model(config_of(name, folder), pretrained=True)[0].eval()
    vision = model.vision
    pixels = torch.randn(2, 3, SIZES[name]["image_size"], SIZES[name]["image_size"])
    with torch.no_grad():
        whole = vision(pixel_values=pixels).last_hidden_state
        for boundary in range(len(vision_steps(vision)) + 1):
            lower = run_vision_steps(vision, pixels, 0, boundary) if boundary else pixels
            torch.testing.assert_close(run_vision_steps(vision, lower, boundary), whole, rtol=1e-5, atol=1e-5)
        # The image token the fusion reads is the image-text model's own pooled image output.
        if name == "clip":
            from transformers import CLIPModel
            reference = CLIPModel.from_pretrained(str(folder)).eval().vision_model(pixel_values=pixels).pooler_output
        else:
            from transformers import BlipForImageTextRetrieval
            reference = BlipForImageTextRetrieval.from_pretrained(str(folder)).eval().vision_model(
                pixel_values=pixels).last_hidden_state[:, 0]
        torch.testing.assert_close(whole[:, 0], reference, rtol=1e-5, atol=1e-5)


def test_the_features_are_the_image_text_models_own(backbone):
    """CLIP: [image, prompt, product] of the unit embeddings x sqrt(d), the product summing to d x CLIPScore's
    cosine; BLIP: the matching head's input (the grounded first token)."""
    name, folder = backbone
    model, tokenizer, preset, _ = build_model(config_of(name, folder), pretrained=True)
    model.eval()
    size = SIZES[name]["image_size"]
    pixels = torch.randn(2, 3, size, size)
    tokens = tokenizer(["a red apple", "blurry photo of a dog"], padding=True, return_tensors="pt")
    with torch.no_grad():
        features = model.features(tokens["input_ids"], tokens["attention_mask"], model.encode_image(pixels))
        if name == "clip":
            from transformers import CLIPModel
            clip = CLIPModel.from_pretrained(str(folder)).eval()
            image = clip.get_image_features(pixel_values=pixels)
            text = clip.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
            image, text = (getattr(t, "pooler_output", t) for t in (image, text))
            cosine = torch.nn.functional.cosine_similarity(image, text)
            d = image.shape[1]
            assert features.shape == (2, 3 * d)
            torch.testing.assert_close(features[:, 2 * d:].sum(1), d * cosine, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(features[:, :d], image / image.norm(dim=1, keepdim=True) * d ** 0.5)
        else:
            from transformers import BlipForImageTextRetrieval
            blip = BlipForImageTextRetrieval.from_pretrained(str(folder)).eval()
            out = blip(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"], pixel_values=pixels,
                       use_itm_head=True)
            torch.testing.assert_close(blip.itm_head(features), out.itm_score, rtol=1e-5, atol=1e-5)


def test_a_prediction_changes_when_a_loaded_weight_changes(backbone, tmp_path):
    name, folder = backbone
    saved = load_file(str(folder / "model.safetensors"))
    model = build_model(config_of(name, folder), pretrained=True)[0]
    state = model.state_dict()
    loaded = {"clip": ("vision.embeddings.0.patch_embedding.weight", "fusion.text_model.embeddings.token_embedding.weight"),
              "blip": ("vision.embeddings.patch_embedding.weight", "fusion.text_encoder.embeddings.word_embeddings.weight")}
    for ours, theirs in zip(loaded[name], PROBES[name]):
        assert torch.equal(state[ours], saved[theirs])

    def predict(weights):
        torch.manual_seed(0)
        model, tokenizer, preset, _ = build_model(config_of(name, weights), pretrained=True, seed=0)
        model.eval()
        tokens = tokenizer(["a photo of thing 1"], return_tensors="pt")
        pixels = torch.linspace(-1, 1, 3 * preset.image_size ** 2).reshape(1, 3, preset.image_size, preset.image_size)
        with torch.no_grad():
            return model(tokens["input_ids"], tokens["attention_mask"], pixel_values=pixels)

    reference = predict(folder)
    torch.testing.assert_close(predict(folder), reference)  # seeded heads: the same folder, the same numbers
    for probe in PROBES[name]:
        changed = tmp_path / probe.split(".")[0]
        shutil.copytree(folder, changed)
        tensors = dict(saved)
        tensors[probe] = tensors[probe] + 0.1 * torch.randn(tensors[probe].shape, generator=torch.Generator().manual_seed(1))
        save_file(tensors, str(changed / "model.safetensors"), metadata={"format": "pt"})
        assert (predict(changed) - reference).abs().max() > 1e-4, probe


def test_train_evaluate_score_by_folder_and_by_hub_id_offline(backbone, make_vqa_folder, put_in_hub_cache, tmp_path,
                                                             capsys):
    name, folder = backbone
    db = make_vqa_folder()
    root = db.root
    assert main(["train", "scorer", str(root), *TRAIN, "--preset", name, "--weights", str(folder)]) == 0
    run = root / f"runs/mint-iqa-{name}"
    config = json.loads((run / "config.json").read_text())
    assert config["preset"] == name and Path(config["weights"]) == folder.resolve()
    trained = load_file(str(run / "model.safetensors"))
    saved = load_file(str(folder / "model.safetensors"))
    # The fix rate froze the patch embedding and the lower 2 of 4 blocks; the upper blocks and the text side trained.
    ours = {"clip": "vision.embeddings.0.patch_embedding.weight", "blip": "vision.embeddings.patch_embedding.weight"}
    assert torch.equal(trained[ours[name]], saved[PROBES[name][0]])
    assert torch.equal(trained["vision.encoder.layers.1.mlp.fc1.weight"], saved["vision_model.encoder.layers.1.mlp.fc1.weight"])
    assert not torch.equal(trained["vision.encoder.layers.3.mlp.fc1.weight"], saved["vision_model.encoder.layers.3.mlp.fc1.weight"])
    text_side = [k for k in trained if k.startswith("fusion.")]  # fusion.<the checkpoint's own name>
    assert text_side and all(k[len("fusion."):] in saved for k in text_side)
    assert any(not torch.equal(trained[k], saved[k[len("fusion."):]]) for k in text_side)
    # The frozen steps' activations were cached under this preset's key.
    manifests = list(cache_root(root).glob("*/manifest.json"))
    assert len(manifests) == 1 and json.loads(manifests[0].read_text())["key"]["preset"] == name

    capsys.readouterr()
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(root), "--model", str(run), "--split", "split1", "--json", str(report), "--quiet"]) == 0
    result = json.loads(report.read_text())
    assert result["images"] == 8 and set(result["metrics"]) == {"quality", "authenticity", "average"}
    data, rows, evaluated = predict_folder(run, root, split="split1")
    row = data.image_ids.index("p6-1")
    _, scored = score_images(run, [data.paths[row]], "a photo of thing 6", progress=False, cpu=True)
    np.testing.assert_allclose(scored[0], evaluated[list(rows).index(row)], atol=1e-4)
    capsys.readouterr()
    assert main(["score", str(data.paths[row]), "--prompt", "a photo of thing 6", "--style", "photo", "--model",
                 str(run), "--json", "-"]) == 0
    assert set(json.loads(capsys.readouterr().out)[0]) == {"image", "quality", "authenticity"}

    # Stage 2 needs a Q-Former: one line, exit 2, nothing written.
    assert main(["train", "instruct", str(root), "--from", f"mint-iqa-{name}", "--split", "split1", "--llm", "tiny",
                 "--epochs", "1", "--quiet", "--cpu"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"preset '{name}' has no Q-Former" in error[0]
    assert not (root / f"runs/mint-iqa-{name}-instruct").exists()

    # By Hub repo id from an offline cache: the snapshot's commit is recorded, and the same weights train the same.
    repo = f"tiny-org/{name}-tiny"
    commit = put_in_hub_cache(repo, folder)
    assert main(["train", "scorer", str(root), *TRAIN, "--preset", name, "--weights", repo, "--run", "hub"]) == 0
    config = json.loads((root / "runs/hub/config.json").read_text())
    assert (config["weights_source"]["repo_id"], config["weights_source"]["commit"]) == (repo, commit)
    by_hub = load_file(str(root / "runs/hub/model.safetensors"))
    for key, value in trained.items():
        torch.testing.assert_close(by_hub[key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_cached_training_with_lora_gives_the_uncached_weights(backbone, make_folder, tmp_path):
    name, folder = backbone
    options = dict(preset=name, weights=str(folder), split="split1", lr=1e-3, progress=False, cpu=True, epochs=2,
                   fix_rate=0.5, lora_rank=2)
    cached_root, plain_root = make_folder(tmp_path / "a").root, make_folder(tmp_path / "b").root
    cached = train(cached_root, TrainOptions(**options))
    plain = train(plain_root, TrainOptions(cache_features=False, **options))
    a, b = load_file(str(cached.run_dir / "model.safetensors")), load_file(str(plain.run_dir / "model.safetensors"))
    assert a.keys() == b.keys() and any("lora_A" in k for k in a)
    # Softmax attention ignores a bias added to every key, so a key bias's gradient is rounding noise, which
    # Adam scales up to full-size steps: those tensors differ by noise and say nothing about the cache.
    for key in (k for k in a if not k.endswith("k_proj.bias")):
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    assert list(cache_root(cached_root).glob("*/manifest.json")) and not list(cache_root(plain_root).glob("*"))


def test_wrong_checkpoint_folders_are_one_line_and_exit_2(tiny_image_text, make_folder, tmp_path, capsys):
    db = make_folder(tmp_path / "db")
    small = tiny_image_text.clip(tmp_path / "clip32")  # 32 px: not what the clip preset feeds
    lacking = tiny_image_text.blip(tmp_path / "blip-lacking", **SIZES["blip"])
    tensors = load_file(str(lacking / "model.safetensors"))
    save_file({k: v for k, v in tensors.items() if not k.startswith("text_encoder.encoder.layer.1.")},
              str(lacking / "model.safetensors"), metadata={"format": "pt"})
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [("clip", small, "the checkpoint's image size is 32 px, preset 'clip' feeds 224 px"),
             ("blip", lacking, "the weights lack"),
             ("blip", empty, "config.json is missing"),
             ("clip", tiny_image_text.blip(tmp_path / "blip-as-clip", **SIZES["blip"]), "not a CLIPConfig")]
    for name, weights, expected in cases:
        capsys.readouterr()
        assert main(["train", "scorer", str(db.root), *TRAIN, "--preset", name, "--weights", str(weights)]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and expected in error[0], (name, weights, error)
        assert not (db.root / "runs").exists()


def test_the_presets_are_registered_and_no_code_switches_on_a_preset_name():
    for name in ("clip", "blip"):
        preset = get_preset(name)
        assert preset.default_weights and preset.build_qformer is None
    names = "|".join(re.escape(n) for n in ("tiny", "small", "paper", "clip", "blip"))
    switch = re.compile(rf"""(preset\b[^\n=]*|\[["']preset["']\])\s*(==|!=|\bin\b)\s*[(\[{{]?\s*["']({names})["']""")
    found = [f"{path}:{number}" for path in (ROOT / "aigciqa").rglob("*.py")
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if switch.search(line)]
    assert not found, found
    assert switch.search('if preset.name == "clip":') and switch.search("config['preset'] in ('blip',)")
