"""The run: manifest, seeds, resume (skip / regenerate / never duplicate), bad input."""

import hashlib

import pandas as pd
import pytest

from aigciqa.database import DatabaseFolder, default_card
from aigciqa.errors import InputError
from aigciqa.generate.base import derive_seed
from aigciqa.generate.run import merge_rows, run_generate

TINY = {"*": "tiny"}


def make(root, config, **kwargs):
    options = dict(generators=["stable_diffusion"], per_prompt=2, limit_prompts=2, weights=TINY, config=config,
                   progress=False)
    options.update(kwargs)
    return run_generate(root, **options)


def test_new_folder_gets_card_prompts_images_and_manifest(tmp_path, tiny_config):
    summary = make(tmp_path / "db", tiny_config, generators=["stable_diffusion", "controlnet"])
    folder = DatabaseFolder(tmp_path / "db")
    tables = folder.validate()
    card = folder.read_card()
    assert card["synthetic"] is True and card["generators"] == ["stable_diffusion", "controlnet"]
    assert list(tables["prompts"]["prompt_id"]) == ["0", "1"]
    images = tables["images"]
    assert summary.generated == 8 and len(images) == 8 and images["image_id"].is_unique
    for row in images.itertuples():
        data = (folder.root / row.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256
        assert row.seed == derive_seed(row.generator, row.prompt_id, row.sample)
        assert (row.width, row.height) == (32, 32) and row.weights == "tiny" and len(row.weights_sha256) == 64
    assert row.path == "images/controlnet/1-2.png"
    conditioning = images.loc[images["generator"] == "controlnet", "conditioning"]
    assert all((folder.root / path).is_file() for path in conditioning)
    assert set(images.loc[images["generator"] == "stable_diffusion", "conditioning"]) == {""}
    assert card["provenance"]["generate"]["tool_version"]
    assert card["generate"]["generators"]["controlnet"]["settings"]["steps"] == 2


def test_rerun_skips_finished_and_remakes_missing_or_corrupt_images(tmp_path, tiny_config, read_pngs):
    root = tmp_path / "db"
    make(root, tiny_config)
    before = read_pngs(root)
    manifest = (root / "images.csv").read_text()
    again = make(root, tiny_config)
    assert again.generated == 0 and again.finished_before == 4
    assert (root / "images.csv").read_text() == manifest
    (root / "images/stable_diffusion/0-1.png").unlink()
    (root / "images/stable_diffusion/1-2.png").write_bytes(b"\x89PNG broken")
    third = make(root, tiny_config)
    assert sorted(third.generated_ids) == ["stable_diffusion-0-1", "stable_diffusion-1-2"]
    assert read_pngs(root) == before            # the same bytes as the first run
    images = DatabaseFolder(root).validate()["images"]
    assert len(images) == 4 and images["image_id"].is_unique


def test_one_image_alone_matches_the_full_run(tmp_path, tiny_config, read_pngs):
    make(tmp_path / "full", tiny_config)
    alone = make(tmp_path / "alone", tiny_config, only=["stable_diffusion-1-2"])
    assert alone.generated_ids == ["stable_diffusion-1-2"]
    name = "images/stable_diffusion/1-2.png"
    assert read_pngs(tmp_path / "alone")[name] == read_pngs(tmp_path / "full")[name]
    with pytest.raises(InputError, match="did you mean stable_diffusion-1-2"):
        make(tmp_path / "alone", tiny_config, only=["stable_diffusion-1-3"])


def test_more_prompts_and_samples_extend_the_folder(tmp_path, tiny_config):
    root = tmp_path / "db"
    make(root, tiny_config, per_prompt=1, limit_prompts=1)
    summary = make(root, tiny_config, per_prompt=2, limit_prompts=2, prompts="aigciqa2023")
    assert summary.finished_before == 1 and summary.generated == 3
    tables = DatabaseFolder(root).validate()
    assert len(tables["images"]) == 4 and len(tables["prompts"]) == 100


def test_changed_settings_are_refused_and_nothing_is_written(tmp_path, tiny_config):
    root = tmp_path / "db"
    make(root, tiny_config)
    manifest = (root / "images.csv").read_bytes()
    tiny_config["generators"]["stable_diffusion"]["steps"] = 3
    with pytest.raises(InputError, match="steps=2, this run asks for steps=3") as error:
        make(root, tiny_config)
    assert error.value.row == 1 and error.value.field == "steps"
    tiny_config["generators"]["stable_diffusion"]["steps"] = 2
    with pytest.raises(InputError, match="base seed"):
        make(root, {**tiny_config, "seed": 5})
    assert (root / "images.csv").read_bytes() == manifest


def test_tiny_images_never_enter_a_real_database(tmp_path, tiny_config):
    folder = DatabaseFolder(tmp_path / "real")
    folder.write({"prompts": pd.DataFrame({"prompt_id": ["a"], "prompt": ["a cat"]})}, card=default_card("real"))
    with pytest.raises(InputError, match="not marked synthetic"):
        make(folder.root, tiny_config)
    assert not (folder.root / "images").exists()


def test_prompt_file_errors_name_the_record(tmp_path, tiny_config):
    bad = tmp_path / "prompts.csv"
    bad.write_text("prompt_id,prompt\na,a cat\na,a dog\n")
    with pytest.raises(InputError) as error:
        make(tmp_path / "db", tiny_config, prompts=str(bad))
    assert error.value.row == 2 and error.value.field == "prompt_id"
    assert not (tmp_path / "db").exists()
    with pytest.raises(InputError, match="did you mean 'aigciqa2023'"):
        make(tmp_path / "db", tiny_config, prompts="aigciqa2032")


def test_changed_prompt_text_is_refused(tmp_path, tiny_config):
    make(tmp_path / "db", tiny_config, per_prompt=1, limit_prompts=1)
    other = tmp_path / "p.csv"
    other.write_text("prompt_id,prompt\n0,something else\n")
    with pytest.raises(InputError, match="differs from the folder's prompts.csv") as error:
        make(tmp_path / "db", tiny_config, prompts=str(other))
    assert error.value.row == 1


def test_unwritable_output_folder(tmp_path, tiny_config):
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="cannot write"):
        make(tmp_path / "file" / "db", tiny_config)


def test_merge_rows_replaces_in_place_and_appends():
    existing = pd.DataFrame({"image_id": ["a", "b", "c"], "sha256": ["1", "2", "3"]})
    merged = merge_rows(existing, [{"image_id": "d", "sha256": "4"}, {"image_id": "b", "sha256": "9"}])
    assert list(merged["image_id"]) == ["a", "b", "c", "d"] and list(merged["sha256"]) == ["1", "9", "3", "4"]


def test_out_of_memory_is_an_input_error_and_keeps_finished_images(tmp_path, tiny_config, monkeypatch):
    import torch

    from aigciqa.generate.stable_diffusion import StableDiffusion
    real = StableDiffusion.generate

    def generate(self, prompt, seed, relpath):
        if relpath.endswith("1-1.png"):
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(self, prompt, seed, relpath)

    monkeypatch.setattr(StableDiffusion, "generate", generate)
    tiny_config["flush_every"] = 100
    with pytest.raises(InputError, match="out of memory making stable_diffusion-1-1 at 32x32"):
        make(tmp_path / "db", tiny_config)
    images = DatabaseFolder(tmp_path / "db").validate()["images"]
    assert list(images["image_id"]) == ["stable_diffusion-0-1", "stable_diffusion-0-2"]
