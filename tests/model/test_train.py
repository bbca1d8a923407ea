"""Training the tiny preset on a tiny synthetic folder (seconds on a CPU)."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from safetensors.torch import load_file

from aigciqa.errors import InputError
from aigciqa.model.stages import load_run
from aigciqa.model.evaluate import evaluate_run, score_images
from aigciqa.model.scorer import TrainOptions, train


FAST = dict(preset="tiny", split="split1", lr=1e-3, progress=False, cpu=True)


def test_loss_goes_down_and_held_out_srcc_beats_chance(make_folder, tmp_path):
    folder = make_folder(tmp_path / "db", n_prompts=8, per_prompt=4)
    result = train(folder.root, TrainOptions(epochs=6, **FAST))
    first, last = result.history[0]["train_loss"], result.history[-1]["train_loss"]
    assert last < 0.7 * first
    # Brightness sets the quality MOS of content-disjoint test prompts: clearly above chance.
    assert result.test["quality"]["srcc"] > 0.6
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert len(metrics["history"]) == 6 and metrics["test"]["quality"]["n"] == 8
    assert "val" in metrics["history"][0] and metrics["best_epoch"] == result.best_epoch


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_resume_is_bit_identical_to_an_uninterrupted_run(make_folder, tmp_path, grad_accum):
    whole = make_folder(tmp_path / "a")
    parted = make_folder(tmp_path / "b")
    train(whole.root, TrainOptions(epochs=3, grad_accum=grad_accum, **FAST))
    first = train(parted.root, TrainOptions(epochs=3, stop_after=1, grad_accum=grad_accum, **FAST))
    assert len(first.history) == 1 and first.test is None
    resumed = train(parted.root, TrainOptions(epochs=3, resume=True, grad_accum=grad_accum, **FAST))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for name in ("last/model.safetensors", "model.safetensors"):
        a = load_file(str(whole.root / "runs/mint-iqa-tiny" / name))
        b = load_file(str(parted.root / "runs/mint-iqa-tiny" / name))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_a_run_saved_with_the_older_adam_kernel_resumes_on_the_fused_one(make_folder, tmp_path):
    """Runs checkpointed before the fused kernel name ``foreach`` in their saved optimizer groups; the kernel is
    how to compute, not state, so the resumed epochs use today's and match an uninterrupted run bit for bit."""
    whole = make_folder(tmp_path / "a")
    parted = make_folder(tmp_path / "b")
    train(whole.root, TrainOptions(epochs=3, **FAST))
    train(parted.root, TrainOptions(epochs=3, stop_after=1, **FAST))
    state_file = parted.root / "runs/mint-iqa-tiny/last/state.json"
    state = json.loads(state_file.read_text())
    for group in state["optimizer"]["param_groups"]:
        assert group["fused"] is True
        group.update(fused=None, foreach=True)
    state_file.write_text(json.dumps(state))
    train(parted.root, TrainOptions(epochs=3, resume=True, **FAST))
    a = load_file(str(whole.root / "runs/mint-iqa-tiny/last/model.safetensors"))
    b = load_file(str(parted.root / "runs/mint-iqa-tiny/last/model.safetensors"))
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_checkpoint_round_trip_scores_like_the_saved_model(make_folder, tmp_path):
    folder = make_folder(tmp_path / "db")
    result = train(folder.root, TrainOptions(epochs=2, **FAST))
    evaluated = evaluate_run(result.run_dir, folder.root, split="split1", part="test")
    for name in ("quality", "authenticity"):
        assert evaluated["metrics"][name]["srcc"] == pytest.approx(result.test[name]["srcc"])
        assert evaluated["metrics"][name]["plcc_raw"] == pytest.approx(result.test[name]["plcc_raw"])
    model, _, _, config = load_run(result.run_dir)
    saved = load_file(str(result.run_dir / "model.safetensors"))
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key])
    paths = [folder.root / f"images/gen/p6-{k}.png" for k in (1, 2)]
    perspectives, scores = score_images(result.run_dir, paths, "a photo of thing 6", progress=False)
    assert perspectives == ["quality", "authenticity"] and scores.shape == (2, 2)
    assert np.isfinite(scores).all()


def test_pairwise_loss_on_rankings_expanded_to_pairs(make_folder, tmp_path):
    folder = make_folder(tmp_path / "db")
    result = train(folder.root, TrainOptions(epochs=4, loss="pairwise", **FAST))
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.history[0]["train_loss"] == pytest.approx(np.log(2), abs=0.1)  # untrained: sigmoid(0)


def test_cross_entropy_ablation_trains(make_folder, tmp_path):
    folder = make_folder(tmp_path / "db")
    result = train(folder.root, TrainOptions(epochs=3, loss="ce", bins=4, **FAST))
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["bins"] == 4 and result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_frozen_encoder_feature_cache_matches_uncached(make_folder, tmp_path):
    cached = make_folder(tmp_path / "a")
    plain = make_folder(tmp_path / "b")
    a = train(cached.root, TrainOptions(epochs=2, fix_rate=1.0, **FAST))
    b = train(plain.root, TrainOptions(epochs=2, fix_rate=1.0, cache_features=False, **FAST))
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-4)


def test_refuses_to_overwrite_and_resume_with_other_options(make_folder, tmp_path):
    folder = make_folder(tmp_path / "db")
    train(folder.root, TrainOptions(epochs=1, **FAST))
    with pytest.raises(InputError, match="exists"):
        train(folder.root, TrainOptions(epochs=1, **FAST))
    with pytest.raises(InputError, match="fix_rate"):
        train(folder.root, TrainOptions(epochs=1, resume=True, **{**FAST, "lr": 1e-3}, fix_rate=0.5))


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(make_folder, tmp_path):
    import os
    import subprocess
    import sys
    folder = make_folder(tmp_path / "db")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29631",
               "-m", "aigciqa", "train", "scorer", str(folder.root), "--split", "split1", "--epochs", "2", "--lr", "1e-3",
               "--quiet", "--cpu"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    # Only the main process reports and writes; the run has both epochs and a test evaluation.
    assert done.stdout.count("mint-iqa-tiny: 2 epochs") == 1
    metrics = json.loads((folder.root / "runs/mint-iqa-tiny/metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2] and metrics["test"]["quality"]["n"] == 8


def test_lora_adapts_the_trainable_blocks_and_runs_recorded_before_the_choice_still_load(make_folder, tmp_path):
    folder = make_folder(tmp_path / "db")
    lora = dict(lora_rank=2, fix_rate=0.5, **FAST)
    new = train(folder.root, TrainOptions(epochs=1, run="new", **lora))
    adapted = {key.split(".")[3] for key in load_file(str(new.run_dir / "model.safetensors")) if "lora_" in key}
    assert adapted == {"2", "3"}  # tiny's 4 blocks, the lowest 2 frozen: adapters above the boundary only
    assert json.loads((new.run_dir / "config.json").read_text())["lora_blocks"] == "trainable"
    # A run of the earlier behaviour (LoRA on every block) whose config.json does not name the blocks.
    old = train(folder.root, TrainOptions(epochs=2, stop_after=1, run="old", lora_blocks="all", **lora))
    config_path = old.run_dir / "config.json"
    config = json.loads(config_path.read_text())
    del config["lora_blocks"]
    config_path.write_text(json.dumps(config))
    assert evaluate_run(old.run_dir, folder.root, split="split1", part="test")["metrics"]["quality"]["n"] == 8
    with pytest.raises(InputError, match=r"lora_blocks \('all' there, 'trainable' now\)"):
        train(folder.root, TrainOptions(epochs=2, run="old", resume=True, **lora))
    resumed = train(folder.root, TrainOptions(epochs=2, run="old", resume=True, lora_blocks="all", **lora))
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    # Without LoRA nothing is recorded, so resuming a run of either version needs no new option.
    assert "lora_blocks" not in json.loads((train(folder.root, TrainOptions(epochs=1, run="plain", **FAST))
                                            .run_dir / "config.json").read_text())


def test_lora_on_the_trainable_blocks_at_fix_rate_1_is_refused_with_a_way_out(make_folder, tmp_path):
    folder = make_folder(tmp_path / "db")
    with pytest.raises(InputError, match="--lora-blocks all") as error:
        train(folder.root, TrainOptions(epochs=1, lora_rank=2, fix_rate=1.0, **FAST))
    assert error.value.field == "lora_blocks" and not (folder.root / "runs").exists()
