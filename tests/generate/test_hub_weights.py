"""generate with Hugging Face Hub repo ids, offline, from a cache laid out by the test (tiny pipelines
saved in the published diffusers layout); then the same from a folder written by 'weights download --to'."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from aigciqa.generate import tiny
from aigciqa.weights.defaults import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
SD_REPO = DEFAULTS["stable_diffusion"].repo_id
CONTROLNET_REPO = DEFAULTS["controlnet"].repo_id
FAST = '[generators.stable_diffusion]\nsteps = 2\nwidth = 32\nheight = 32\n' \
       '[generators.controlnet]\nsteps = 2\nwidth = 32\nheight = 32\n'


def aigciqa(env, *args):
    return subprocess.run([sys.executable, "-m", "aigciqa", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def cached_defaults(put_in_hub_cache, tmp_path):
    """Tiny SD and Canny-ControlNet saved with save_pretrained, cached under the defaults' repo ids."""
    from diffusers import StableDiffusionPipeline
    StableDiffusionPipeline(**tiny.stable_diffusion_components(32)).save_pretrained(tmp_path / "saved" / "sd")
    tiny.controlnet_model().save_pretrained(tmp_path / "saved" / "controlnet")
    return {"sd": put_in_hub_cache(SD_REPO, tmp_path / "saved" / "sd"),
            "controlnet": put_in_hub_cache(CONTROLNET_REPO, tmp_path / "saved" / "controlnet")}


@pytest.mark.slow
def test_generate_by_repo_id_offline_then_from_a_downloaded_folder(cached_defaults, hub_cache, tmp_path,
                                                                   offline_environment, read_pngs):
    env = offline_environment(HF_HOME=str(hub_cache))
    (tmp_path / "gen.toml").write_text(FAST)
    common = ["--generators", "stable_diffusion,controlnet", "--limit-prompts", "1", "--images-per-prompt", "1",
              "--quiet"]
    # No --weights: the defaults' repo ids, found in the cache (ControlNet's base is the SD default).
    result = aigciqa(env, "generate", tmp_path / "db", *common, "--config", tmp_path / "gen.toml")
    assert result.returncode == 0, result.stderr
    images = pd.read_csv(tmp_path / "db" / "images.csv", dtype=str).set_index("generator")
    assert images.loc["stable_diffusion", "weights"] == SD_REPO
    assert images.loc["stable_diffusion", "weights_revision"] == cached_defaults["sd"]
    assert images.loc["controlnet", "weights"] == CONTROLNET_REPO
    assert images.loc["controlnet", "weights_revision"] == cached_defaults["controlnet"]
    card = json.loads((tmp_path / "db" / "dataset.json").read_text())["generate"]["generators"]
    assert card["controlnet"]["base_weights_files"]["commit"] == cached_defaults["sd"]
    assert "unet/diffusion_pytorch_model.safetensors" in card["stable_diffusion"]["weights_files"]["files_sha256"]

    # A repo the cache lacks: exit 2, one line naming repo, revision and the download command; nothing written.
    result = aigciqa(env, "generate", tmp_path / "db2", *common, "--weights", "stable_diffusion=nobody/absent@v1")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "nobody/absent revision v1" in result.stderr
    assert "'aigciqa weights download nobody/absent@v1'" in result.stderr
    assert not (tmp_path / "db2").exists()

    # Prefetch into folders, then generate from them with an empty cache: the same images and revisions.
    result = aigciqa(env, "weights", "download", "controlnet", "--to", tmp_path / "w")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["controlnet", "stable_diffusion"]
    # ControlNet's base: the run's --weights stable_diffusion=... (no config entry needed).
    empty = offline_environment(HF_HOME=str(tmp_path / "empty-hf"))
    result = aigciqa(empty, "generate", tmp_path / "db3", *common, "--config", tmp_path / "gen.toml",
                     "--weights", f"stable_diffusion={tmp_path / 'w' / 'stable_diffusion'}",
                     "--weights", f"controlnet={tmp_path / 'w' / 'controlnet'}")
    assert result.returncode == 0, result.stderr
    again = pd.read_csv(tmp_path / "db3" / "images.csv", dtype=str).set_index("generator")
    for column in ("weights", "weights_revision", "sha256"):
        assert list(again[column]) == list(images[column])
    assert read_pngs(tmp_path / "db3" / "images") == read_pngs(tmp_path / "db" / "images")

    # verify: the folder matches its manifest until one byte changes.
    assert aigciqa(env, "weights", "verify", tmp_path / "w" / "controlnet").returncode == 0
    assert aigciqa(env, "weights", "verify", tmp_path / "db3").returncode == 0
    weights = tmp_path / "w" / "controlnet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = aigciqa(env, "weights", "verify", tmp_path / "w" / "controlnet")
    assert result.returncode == 1 and "diffusion_pytorch_model.safetensors changed" in result.stdout
    # ... and a database made with those weights says which of its generators' files changed.
    result = aigciqa(env, "weights", "verify", tmp_path / "db3")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"{tmp_path / 'db3'}: controlnet {CONTROLNET_REPO}: FAILED") for line in lines)
    assert any(f"stable_diffusion {SD_REPO}: ok" in line for line in lines)


def test_the_defaults_file_patterns_select_every_file_a_saved_pipeline_needs(tmp_path):
    """Online, snapshot_download fetches only the files the table's patterns select: a pipeline saved by
    diffusers (what the Hub repos hold, fp32 safetensors) must pass them whole, half-precision variants not."""
    from diffusers import StableDiffusionPipeline
    from huggingface_hub.utils import filter_repo_objects
    from aigciqa.weights.resolve import patterns
    StableDiffusionPipeline(**tiny.stable_diffusion_components(32)).save_pretrained(tmp_path / "sd")
    tiny.controlnet_model().save_pretrained(tmp_path / "cn")
    for repo, folder in ((SD_REPO, tmp_path / "sd"), (CONTROLNET_REPO, tmp_path / "cn"),
                         (DEFAULTS["dalle"].repo_id, tmp_path / "sd")):
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        allow, ignore = patterns(repo)
        assert sorted(filter_repo_objects(files, allow_patterns=allow, ignore_patterns=ignore)) == files, repo
        extra = ["unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.bin",
                 "v1-5-pruned-emaonly.safetensors"]
        assert not list(filter_repo_objects(extra, allow_patterns=allow, ignore_patterns=ignore)), repo
