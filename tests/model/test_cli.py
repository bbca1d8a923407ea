"""The command line: bad input exits 2 with one clear line and writes nothing."""

import json
import subprocess
import sys

import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from aigciqa.cli import main


TRAIN = ["--split", "split1", "--epochs", "1", "--lr", "1e-3", "--quiet", "--cpu"]


def test_help_does_not_import_torch():
    code = ("import sys; from aigciqa.cli import build_parser; build_parser(); "
            "print(any(m in sys.modules for m in ('torch', 'transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_train_evaluate_score_end_to_end(make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db")
    assert main(["train", "scorer", str(folder.root), *TRAIN]) == 0
    run = folder.root / "runs" / "mint-iqa-tiny"
    assert "best epoch 1" in capsys.readouterr().out
    out_json = tmp_path / "eval.json"
    assert main(["evaluate", str(folder.root), "--model", str(run), "--split", "split1", "--json", str(out_json),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "plcc_logistic" in printed and "average" in printed
    result = json.loads(out_json.read_text())
    assert result["images"] == 8 and set(result["metrics"]) == {"quality", "authenticity", "average"}
    images = [str(folder.root / f"images/gen/p0-{k}.png") for k in (1, 2, 3)]
    assert main(["score", *images, "--prompt", "a photo", "--model", str(run), "--format", "json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert len(scores) == 3 and set(scores[0]) == {"image", "quality", "authenticity"}


def test_cross_database_evaluation_with_preference_pairs(make_folder, tmp_path, capsys):
    source = make_folder(tmp_path / "a")
    other = make_folder(tmp_path / "b", seed=5)
    other.write({"pairs": pd.DataFrame({"better_image_id": ["p0-0", "p1-0"], "worse_image_id": ["p0-1", "p1-1"],
                                        "prompt_id": ["p0", "p1"], "perspective": ["quality", ""]})})
    assert main(["train", "scorer", str(source.root), *TRAIN]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(other.root), "--model", str(source.root / "runs/mint-iqa-tiny"), "--format",
                 "json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 32 and result["pairs"] == 2 and 0 <= result["preference_accuracy"] <= 1


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    return err[0]


def test_missing_split_column_exits_2(make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db")
    assert main(["train", "scorer", str(folder.root), "--split", "nope", "--quiet"]) == 2
    line = _error(capsys)
    assert "splits.csv" in line and "no split column 'nope'" in line and "split1" in line
    assert not (folder.root / "runs").exists()


def test_images_missing_on_disk_exit_2(make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db", write_images=False)
    assert main(["train", "scorer", str(folder.root), *TRAIN]) == 2
    line = _error(capsys)
    assert "images.csv" in line and "record 1" in line and "field 'path'" in line and "not found" in line
    assert not (folder.root / "runs").exists()


def test_unknown_perspective_exits_2(make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db")
    assert main(["train", "scorer", str(folder.root), *TRAIN, "--perspective", "correspondence"]) == 2
    assert "perspective 'correspondence' is not in the card" in _error(capsys)


def test_corrupt_and_foreign_checkpoints_exit_2(make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db")
    assert main(["train", "scorer", str(folder.root), *TRAIN]) == 0
    run = folder.root / "runs" / "mint-iqa-tiny"
    capsys.readouterr()
    # A checkpoint of another architecture: the config says three perspectives, the weights have two.
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "perspectives": ["quality", "authenticity", "x"]}))
    image = str(folder.root / "images/gen/p0-1.png")
    assert main(["score", image, "--prompt", "a", "--model", str(run)]) == 2
    assert "checkpoint does not fit this model" in _error(capsys)
    (run / "config.json").write_text(json.dumps(config))
    (run / "model.safetensors").write_bytes(b"not a safetensors file")
    assert main(["score", image, "--prompt", "a", "--model", str(run)]) == 2
    assert "corrupt checkpoint" in _error(capsys)


def test_demo_step_skips_without_images(tmp_path):
    from aigciqa.demo import DemoContext, example_folder
    from aigciqa.model.demo import scorer_step as demo_step
    context = DemoContext(out=tmp_path)
    example_folder(context)
    assert demo_step(context).startswith("skipped")


def test_demo_step_trains_when_images_exist(make_folder, tmp_path):
    from aigciqa.demo import DemoContext
    from aigciqa.model.demo import scorer_step as demo_step
    context = DemoContext(out=tmp_path)
    make_folder(tmp_path / "db")
    summary = demo_step(context)
    assert "tiny MINT-IQA, 2 epochs" in summary and (tmp_path / "db/runs/demo-tiny/model.safetensors").is_file()


def test_paper_preset_without_weights_says_what_to_provide(make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db")
    assert main(["train", "scorer", str(folder.root), *TRAIN, "--preset", "paper"]) == 2
    line = _error(capsys)
    assert "needs --weights DIR" in line and "InstructBLIP" in line
    assert main(["train", "scorer", str(folder.root), *TRAIN, "--preset", "paper", "--weights", str(tmp_path)]) == 2
    assert "config.json is missing" in _error(capsys)
    assert not (folder.root / "runs").exists()


def test_per_perspective_models_and_pairs_only_training(make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db")
    assert main(["train", "scorer", str(folder.root), *TRAIN, "--per-perspective"]) == 0
    runs = sorted(p.name for p in (folder.root / "runs").iterdir())
    assert runs == ["mint-iqa-tiny-authenticity", "mint-iqa-tiny-quality"]
    config = json.loads((folder.root / "runs/mint-iqa-tiny-quality/config.json").read_text())
    assert config["perspectives"] == ["quality"]
    # A folder with preference pairs and no mos.csv trains with the pairwise loss.
    pairs_only = make_folder(tmp_path / "pairs")
    pairs_only.table_path("mos").unlink()
    pairs = pd.DataFrame({"better_image_id": [f"p{p}-0" for p in range(8)], "worse_image_id": [f"p{p}-1" for p in range(8)],
                          "prompt_id": [f"p{p}" for p in range(8)], "perspective": [""] * 8})
    pairs_only.write({"pairs": pairs})
    assert main(["train", "scorer", str(pairs_only.root), *TRAIN, "--loss", "pairwise"]) == 0
    metrics = json.loads((pairs_only.root / "runs/mint-iqa-tiny/metrics.json").read_text())
    assert 0 <= metrics["history"][0]["val"]["preference_accuracy"] <= 1
