"""The boundary-activation cache: training on cached frozen-encoder activations gives the weights training
without it gives; the cache is checked, reused by evaluate and score, reported and removable."""

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from safetensors.torch import load_file

from aigciqa.model.boundary_cache import cache_root, randomness_below, training_inputs
from aigciqa.model.evaluate import evaluate_run, score_images
from aigciqa.model.network import frozen_step_count, run_vision_steps, vision_steps
from aigciqa.model.scorer import TrainOptions, train

FAST = dict(preset="tiny", split="split1", lr=1e-3, progress=False, cpu=True)


@pytest.fixture
def embedded(monkeypatch):
    """Counts the images that go through the image encoder's patch embedding (its first, always frozen step)."""
    from transformers.models.dinov2.modeling_dinov2 import Dinov2Embeddings
    counter = {"images": 0}
    original = Dinov2Embeddings.forward

    def counting(self, pixel_values, *args, **kwargs):
        counter["images"] += pixel_values.shape[0]
        return original(self, pixel_values, *args, **kwargs)

    monkeypatch.setattr(Dinov2Embeddings, "forward", counting)
    return counter


def _weights(run_dir, name="last/model.safetensors"):
    return load_file(str(run_dir / name))


def assert_same_weights(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=atol, msg=key)


def _tiny_paper_vision():
    from transformers import InstructBlipVisionConfig, InstructBlipVisionModel
    torch.manual_seed(0)
    return InstructBlipVisionModel(InstructBlipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                                            num_attention_heads=2, image_size=32, patch_size=8))


def _tiny_dinov2():
    from aigciqa.model.presets import get_preset
    torch.manual_seed(0)
    return get_preset("tiny").components()[0]


@pytest.mark.parametrize("build", [_tiny_dinov2, _tiny_paper_vision], ids=["dinov2", "instructblip-vit"])
def test_the_encoder_split_at_any_boundary_computes_its_output(build):
    vision = build().eval()
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        whole = vision(pixel_values=pixels).last_hidden_state
        for boundary in range(len(vision_steps(vision)) + 1):
            lower = run_vision_steps(vision, pixels, 0, boundary) if boundary else pixels
            torch.testing.assert_close(run_vision_steps(vision, lower, boundary), whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fix_rate", [0.5, 0.7, 1.0])
def test_cached_training_gives_the_uncached_weights_and_runs_frozen_steps_once(make_folder, tmp_path, fix_rate,
                                                                                embedded):
    cached_folder, plain_folder = make_folder(tmp_path / "a"), make_folder(tmp_path / "b")
    plain = train(plain_folder.root, TrainOptions(epochs=2, fix_rate=fix_rate, cache_features=False, **FAST))
    uncached_images = embedded["images"]
    embedded["images"] = 0
    cached = train(cached_folder.root, TrainOptions(epochs=2, fix_rate=fix_rate, **FAST))
    for name in ("last/model.safetensors", "model.safetensors"):
        assert_same_weights(_weights(cached.run_dir, name), _weights(plain.run_dir, name))
    np.testing.assert_allclose(cached.losses, plain.losses, rtol=1e-5)
    # 32 images in use; uncached, every epoch embeds the 20 train and 4 val images again (and the 8 test once).
    assert uncached_images == 2 * (20 + 4) + 8
    assert embedded["images"] <= 32 + 2  # once per image, plus the one-image check of an opened cache
    assert not list(plain_folder.root.glob("cache/*/*"))
    assert len(list(cache_root(cached_folder.root).glob("*/manifest.json"))) == 1


@pytest.mark.parametrize("lora", [{}, {"lora_rank": 2, "fix_rate": 0.5}], ids=["plain", "lora"])
def test_resume_on_the_cache_matches_an_uninterrupted_run(make_folder, tmp_path, lora):
    whole, parted, plain = (make_folder(tmp_path / name) for name in "abc")
    options = {**FAST, **lora}
    train(whole.root, TrainOptions(epochs=3, **options))
    train(parted.root, TrainOptions(epochs=3, stop_after=1, **options))
    train(parted.root, TrainOptions(epochs=3, resume=True, **options))
    train(plain.root, TrainOptions(epochs=3, cache_features=False, **options))
    a, b = _weights(whole.root / "runs/mint-iqa-tiny"), _weights(parted.root / "runs/mint-iqa-tiny")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert_same_weights(a, _weights(plain.root / "runs/mint-iqa-tiny"))


def _cached_steps(root) -> int:
    manifest = next(cache_root(root).glob("*/manifest.json"))
    return json.loads(manifest.read_text())["key"]["steps"]


# tiny has 4 blocks: fix rates 0.5 and 0.7 freeze 2 (cached: patch embedding + 2 blocks = 3 steps); with LoRA
# on every block (the runs from before --lora-blocks) the adapters in block 0 leave only the patch embedding.
@pytest.mark.parametrize("fix_rate, blocks, steps", [(0.5, "trainable", 3), (0.7, "trainable", 3),
                                                     (0.7, "all", 1), (1.0, "all", 1)])
def test_lora_trains_the_same_on_the_cache_which_covers_every_block_below_the_adapters(make_folder, tmp_path,
                                                                                     fix_rate, blocks, steps):
    cached_folder, plain_folder = make_folder(tmp_path / "a"), make_folder(tmp_path / "b")
    options = dict(epochs=2, fix_rate=fix_rate, lora_rank=2, lora_blocks=blocks, **FAST)
    cached = train(cached_folder.root, TrainOptions(**options))
    plain = train(plain_folder.root, TrainOptions(cache_features=False, **options))
    for name in ("last/model.safetensors", "model.safetensors"):
        assert_same_weights(_weights(cached.run_dir, name), _weights(plain.run_dir, name))
    assert any("lora_" in key for key in _weights(cached.run_dir))
    assert _cached_steps(cached_folder.root) == steps
    assert json.loads((cached.run_dir / "config.json").read_text())["lora_blocks"] == blocks


def test_a_stale_or_foreign_cache_is_rebuilt_not_used(make_folder, tmp_path, capsys):
    folder, plain_folder = make_folder(tmp_path / "a"), make_folder(tmp_path / "b")
    train(folder.root, TrainOptions(epochs=1, run="first", **FAST))
    cache = next(cache_root(folder.root).glob("*"))
    # Damaged numbers under a manifest that still matches: the one-image check finds them.
    shard = next(cache.glob("shard-*.safetensors"))
    from safetensors.torch import save_file
    save_file({k: v + 1.0 for k, v in load_file(str(shard)).items()}, str(shard))
    capsys.readouterr()
    second = train(folder.root, TrainOptions(epochs=2, run="second", **FAST))
    assert "differ from the encoder's" in capsys.readouterr().err
    plain = train(plain_folder.root, TrainOptions(epochs=2, run="second", cache_features=False, **FAST))
    assert_same_weights(_weights(second.run_dir), _weights(plain.run_dir))
    # A manifest of another key (copied from elsewhere) is not trusted either.
    manifest = json.loads((cache / "manifest.json").read_text())
    manifest["key"]["weights_sha256"] = "0" * 64
    (cache / "manifest.json").write_text(json.dumps(manifest))
    train(folder.root, TrainOptions(epochs=1, run="third", **FAST))
    assert "another key" in capsys.readouterr().err
    assert json.loads((cache / "manifest.json").read_text())["key"]["weights_sha256"] != "0" * 64
    # A shard the manifest lists is missing (deleted by hand): rebuilt.
    next(cache.glob("shard-*.safetensors")).unlink()
    train(folder.root, TrainOptions(epochs=1, run="fourth", **FAST))
    assert "unreadable" in capsys.readouterr().err
    assert len(list(cache.glob("shard-*.safetensors"))) == 1


def test_randomness_below_the_boundary_refuses_the_cache_with_a_reason(capsys):
    from transformers import Dinov2Config, Dinov2Model
    vision = Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                                      intermediate_size=64, image_size=32, patch_size=8, hidden_dropout_prob=0.1))
    for parameter in vision.embeddings.parameters():
        parameter.requires_grad_(False)
    steps = frozen_step_count(vision)
    assert steps == 1
    assert "p=0.1" in randomness_below(vision, steps, training=True)
    assert randomness_below(vision, steps, training=False) is None  # eval mode: no dropout
    assert randomness_below(_tiny_dinov2(), 6, training=True) is None

    from aigciqa.model.network import MintIQA
    from aigciqa.model.presets import get_preset
    model = MintIQA(vision, get_preset("tiny").qformer(), num_queries=4, perspectives=["quality"])
    assert training_inputs(model, None, "cpu", root=".", preset=None, rows=[], batch_size=8) is None
    assert "boundary cache off: not exact" in capsys.readouterr().err


def test_evaluate_and_score_read_the_cache_of_a_cached_folder(make_folder, tmp_path, embedded):
    folder, plain_folder = make_folder(tmp_path / "a"), make_folder(tmp_path / "b")
    options = dict(epochs=1, fix_rate=0.7, **FAST)
    cached = train(folder.root, TrainOptions(**options))
    plain = train(plain_folder.root, TrainOptions(cache_features=False, **options))
    embedded["images"] = 0
    on_cache = evaluate_run(cached.run_dir, folder.root, split="split1", part="test")
    assert embedded["images"] <= 1  # only the one-image check; the 8 test images come from the cache
    embedded["images"] = 0
    computed = evaluate_run(plain.run_dir, plain_folder.root, split="split1", part="test")
    assert embedded["images"] == 8
    for name in ("quality", "authenticity"):
        assert on_cache["metrics"][name]["srcc"] == pytest.approx(computed["metrics"][name]["srcc"])
        assert on_cache["metrics"][name]["plcc_raw"] == pytest.approx(computed["metrics"][name]["plcc_raw"], abs=1e-6)
    paths = [folder.root / f"images/gen/p6-{k}.png" for k in (1, 2)]
    embedded["images"] = 0
    _, scores = score_images(cached.run_dir, paths, "a photo of thing 6", progress=False)
    assert embedded["images"] <= 1
    _, reference = score_images(plain.run_dir, [plain_folder.root / p.relative_to(folder.root) for p in paths],
                                "a photo of thing 6", progress=False)
    np.testing.assert_allclose(scores, reference, rtol=1e-5, atol=1e-5)


def test_info_reports_the_cache_size_and_removes_it(make_folder, tmp_path):
    folder = make_folder(tmp_path / "db")
    train(folder.root, TrainOptions(epochs=1, **FAST))
    done = subprocess.run([sys.executable, "-m", "aigciqa", "info", str(folder.root), "--json", "-"],
                          capture_output=True, text=True, check=True)
    caches = json.loads(done.stdout)["caches"]
    assert len(caches) == 1 and caches[0]["images"] == 32
    # tiny, fix rate 0.7 (2 of 4 blocks): 17 tokens x 32 float32 per image, plus the files' headers.
    assert 17 * 32 * 4 <= caches[0]["bytes_per_image"] < 17 * 32 * 4 + 400
    remove = [sys.executable, "-m", "aigciqa", "info", str(folder.root), "--remove-cache"]
    with folder.lock("train scorer"):  # a command that may be filling the cache: nothing is removed
        refused = subprocess.run(remove, capture_output=True, text=True)
    assert refused.returncode == 2 and "train scorer" in refused.stderr
    assert caches[0]["path"] and (folder.root / caches[0]["path"] / "manifest.json").is_file()
    text = subprocess.run(remove, capture_output=True, text=True, check=True).stdout
    assert "32 images" in text and "per image" in text and "removed" in text
    assert not (folder.root / "cache").exists()


@pytest.mark.slow
@pytest.mark.parametrize("fix_rate, lora", [(0.5, {}), (0.7, {}), (1.0, {}), (0.5, {"lora_rank": 2}),
                                            (0.7, {"lora_rank": 2}), (1.0, {"lora_rank": 2, "lora_blocks": "all"})],
                         ids=["0.5", "0.7", "1.0", "0.5-lora", "0.7-lora", "1.0-lora-all"])
def test_small_preset_cached_training_gives_the_uncached_weights(make_folder, tmp_path, fix_rate, lora):
    pytest.importorskip("onnx")
    from aigciqa.model.presets import get_preset
    from aigciqa.errors import InputError
    try:
        get_preset("small").check_installed()
    except InputError as error:
        pytest.skip(str(error))
    options = dict(epochs=2, fix_rate=fix_rate, batch_size=2, preset="small", split="split1", lr=1e-4,
                   progress=False, cpu=True, **lora)
    cached_folder = make_folder(tmp_path / "a", n_prompts=2, per_prompt=2)
    plain_folder = make_folder(tmp_path / "b", n_prompts=2, per_prompt=2)
    cached = train(cached_folder.root, TrainOptions(**options))
    plain = train(plain_folder.root, TrainOptions(cache_features=False, **options))
    assert_same_weights(_weights(cached.run_dir), _weights(plain.run_dir), atol=1e-5)
    # 12 blocks: patch embedding + floor(rate x 12) blocks (+ the final norm at 1); LoRA on all: the embedding only
    expected = 1 if lora.get("lora_blocks") == "all" else 14 if fix_rate == 1.0 else 1 + int(fix_rate * 12 + 1e-9)
    assert _cached_steps(cached_folder.root) == expected
