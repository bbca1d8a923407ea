"""`aigciqa baseline`: every image scored, a run folder evaluate-style metrics read back, clear errors."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aigciqa.baselines.cli import parse_weights
from aigciqa.baselines.methods import get_baseline, method_weights, parse_methods
from aigciqa.baselines.run import BaselineOptions, evaluate_baseline, read_baseline_run, score_folder
from aigciqa.errors import InputError
from aigciqa.model.metrics import correlation_metrics

pytest.importorskip("skimage")
WT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def folder(distorted_template) -> Path:
    return distorted_template


def aigciqa(*args):
    return subprocess.run([sys.executable, "-m", "aigciqa", *map(str, args)], cwd=WT, capture_output=True, text=True)


def test_command_scores_every_image_and_reports_metrics(folder, tmp_path):
    result = aigciqa("baseline", folder, "--method", "niqe,brisque", "--split", "by_content", "--quiet",
                     "--json", tmp_path / "m.json")
    assert result.returncode == 0, result.stderr
    images = pd.read_csv(folder / "images.csv")
    for method in ("niqe", "brisque"):
        config, predictions = read_baseline_run(folder / "runs" / f"baseline-{method}")
        assert config["method"] == method and config["higher_is_better"] is False
        assert list(predictions["image_id"]) == list(images["image_id"])
        assert np.allclose(predictions["quality_prediction"], -predictions["score"].astype(float))
        assert f"with {method}" in result.stdout
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert [m["method"] for m in metrics] == ["niqe", "brisque"] and metrics[1]["part"] == "test"
    assert metrics[1]["metrics"]["quality"]["srcc"] > 0.6  # BRISQUE sees blur and noise on unseen photographs
    card = json.loads((folder / "dataset.json").read_text())
    assert "baseline" in card["provenance"]


def test_json_dash_prints_the_metrics_instead_of_the_table(distorted, tmp_path, monkeypatch, capsys):
    from aigciqa.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["baseline", str(distorted), "--method", "niqe", "--all-images", "--quiet", "--json", "-"]) == 0
    printed = json.loads(capsys.readouterr().out)  # stdout is the JSON alone
    assert [m["method"] for m in printed] == ["niqe"] and printed[0]["images"] == len(pd.read_csv(distorted / "images.csv"))
    assert not (tmp_path / "-").exists()
    assert main(["baseline", str(distorted), "--method", "niqe", "--all-images", "--quiet", "--json", "m.json"]) == 0
    assert "with niqe" in capsys.readouterr().out  # a FILE: written, and the table printed
    assert json.loads((tmp_path / "m.json").read_text()) == printed


def test_evaluation_is_the_models_metrics_on_the_stored_scores(folder):
    run = score_folder(folder, get_baseline("brisque"), BaselineOptions(progress=False))
    result = evaluate_baseline(run, folder, split="by_content", part="test")
    _, predictions = read_baseline_run(run)
    mos = pd.read_csv(folder / "mos.csv").set_index("image_id")["quality_mos"]
    splits = pd.read_csv(folder / "splits.csv").set_index("image_id")["by_content"]
    test = predictions[predictions["image_id"].map(splits) == "test"]
    expected = correlation_metrics(test["quality_prediction"].to_numpy(), test["image_id"].map(mos).to_numpy())
    assert result["images"] == len(test) == 18
    assert result["metrics"]["quality"] == pytest.approx(expected)


def test_ridge_trains_on_the_split_and_is_evaluated_on_test(folder):
    pytest.importorskip("torch")
    options = BaselineOptions(split="by_content", preset="tiny", progress=False)
    run = score_folder(folder, get_baseline("ridge"), options)
    config, predictions = read_baseline_run(run)
    assert config["split"] == "by_content" and set(config["alpha"]) == {"quality"}
    assert np.isfinite(predictions["quality_prediction"].astype(float)).all()
    assert "metrics" in evaluate_baseline(run, folder, split="by_content", part="test")
    with pytest.raises(InputError, match="evaluate it on 'test'"):
        evaluate_baseline(run, folder, split="by_content", part="train")
    with pytest.raises(InputError, match="give --split"):
        score_folder(folder, get_baseline("ridge"), BaselineOptions(progress=False))


def test_bad_input_exits_2_with_one_line_and_writes_nothing(folder, tmp_path):
    result = aigciqa("baseline", folder, "--method", "niqe,brisq")
    assert result.returncode == 2 and "did you mean 'brisque'" in result.stderr
    broken = tmp_path / "db"
    import shutil
    shutil.copytree(folder, broken, ignore=shutil.ignore_patterns("runs"))
    victim = pd.read_csv(broken / "images.csv")["path"].iloc[4]
    (broken / victim).write_bytes(b"not an image")
    result = aigciqa("baseline", broken, "--method", "brisque", "--quiet")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"aigciqa baseline: error: {broken / victim}: cannot decode the image")
    assert not (broken / "runs").exists()


def test_weights_by_hub_id_offline_are_recorded_next_to_the_scores(distorted, put_in_hub_cache, tiny_clip,
                                                                  offline_environment):
    commit = put_in_hub_cache("test-org/tiny-clip", tiny_clip)
    run = subprocess.run([sys.executable, "-m", "aigciqa", "baseline", str(distorted), "--method", "clipscore",
                          "--weights", "clipscore=test-org/tiny-clip", "--quiet"], cwd=WT, capture_output=True,
                         text=True, env=offline_environment())
    assert run.returncode == 0, run.stderr
    config, predictions = read_baseline_run(distorted / "runs" / "baseline-clipscore")
    assert config["weights"] == "test-org/tiny-clip" and len(predictions) == len(pd.read_csv(distorted / "images.csv"))
    source = config["weights_source"]["model"]
    assert (source["repo_id"], source["revision"], source["commit"]) == ("test-org/tiny-clip", "main", commit)
    assert source["files_sha256"]["config.json"] == hashlib.sha256((tiny_clip / "config.json").read_bytes()).hexdigest()


def test_an_absent_repo_exits_2_with_one_line_and_writes_nothing(distorted, hub_cache, offline_environment):
    before = sorted(p.relative_to(distorted) for p in distorted.rglob("*"))
    for weights in (["--weights", "clipscore=test-org/absent"], []):  # given, and the default Hub id
        run = subprocess.run([sys.executable, "-m", "aigciqa", "baseline", str(distorted), "--method", "clipscore",
                              *weights, "--quiet"], cwd=WT, capture_output=True, text=True, env=offline_environment())
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2 and len(lines) == 1, run.stderr
        assert "is not in the Hugging Face cache" in lines[0] and "HF_HUB_OFFLINE=1" in lines[0]
    assert "repo openai/clip-vit-large-patch14" in lines[0] and "aigciqa weights download openai/clip-vit-large-patch14" in lines[0]
    assert sorted(p.relative_to(distorted) for p in distorted.rglob("*")) == before


def test_niqe_names_an_image_too_small_for_it(tmp_path):
    from PIL import Image
    from aigciqa.baselines.methods import NiqeScorer
    path = tmp_path / "small.png"
    Image.new("RGB", (300, 150)).save(path)
    with pytest.raises(InputError, match="small.png: image is 300 x 150 pixels; NIQE needs at least 194"):
        NiqeScorer().score([path])


def test_method_and_weights_arguments():
    methods = [m.name for m in parse_methods("niqe, clipscore,niqe")]
    assert methods == ["niqe", "clipscore"]
    assert parse_weights(["clipscore=/m/clip"], methods) == {"clipscore": "/m/clip"}
    assert parse_weights(["/m/clip"], methods[1:]) == {"clipscore": "/m/clip"}
    assert parse_weights(["aesthetic=org/clip", "aesthetic-head=org/h:h.pth"], ["aesthetic"]) == {
        "aesthetic": "org/clip", "aesthetic-head": "org/h:h.pth"}
    assert method_weights("aesthetic", {"aesthetic": "org/clip", "aesthetic-head": "h.pth", "niqe": "x"}) == {
        "model": "org/clip", "head": "h.pth"}
    with pytest.raises(InputError, match="clipscore-head"):
        parse_weights(["clipscore-head=h.pth"], methods)
    with pytest.raises(InputError, match="METHOD=SPEC"):
        parse_weights(["/m/clip"], methods)
    with pytest.raises(InputError, match="not among --method"):
        parse_weights(["pickscore=/m/p"], methods)
    with pytest.raises(InputError, match="did you mean 'pickscore'"):
        parse_methods("pikscore")
