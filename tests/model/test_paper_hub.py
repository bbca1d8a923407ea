"""The `paper` preset by Hub repo id, offline, on a tiny InstructBLIP of the published layout (vision tower,
Q-Former, query tokens, language_projection and a tiny LLM, saved with save_pretrained) placed in a Hub
cache laid out by the test: stage 1 and stage 2 start from the whole checkpoint, the run records the
resolved commit and file hashes, and an absent repo stops with one line and nothing written."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from safetensors.torch import load_file

from aigciqa.cli import main
from aigciqa.model.instruction import load_explainer
from aigciqa.model.llm import load_llm
from aigciqa.model.presets.tiny import tiny_vocab
from aigciqa.weights.defaults import DEFAULTS
from aigciqa.common.files import file_sha256

ROOT = Path(__file__).resolve().parents[2]
REPO = "tiny-org/instructblip-tiny"
TRAIN = ["--split", "split1", "--epochs", "1", "--quiet", "--cpu"]


pytestmark = pytest.mark.usefixtures("one_thread")


def aigciqa(env, *args):
    return subprocess.run([sys.executable, "-m", "aigciqa", *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def write_whole_instructblip(folder: Path) -> dict:
    """An InstructBlipForConditionalGeneration with a 2-layer Llama, saved as the Hub's folders are: config.json
    (vision, Q-Former and text configs), model.safetensors (vision_model.*, qformer.*, query_tokens,
    language_projection.*, language_model.*), the LLM's tokenizer files and qformer_tokenizer/. Returns its tensors."""
    from transformers import (BertTokenizer, InstructBlipConfig, InstructBlipForConditionalGeneration,
                              InstructBlipQFormerConfig, InstructBlipVisionConfig, LlamaConfig)
    vocab = tiny_vocab()
    vision = InstructBlipVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                                      image_size=224, patch_size=32)
    qformer = InstructBlipQFormerConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                                        encoder_hidden_size=32, vocab_size=len(vocab), max_position_embeddings=160)
    text = LlamaConfig(vocab_size=len(vocab), hidden_size=24, intermediate_size=48, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                       pad_token_id=vocab["[PAD]"], bos_token_id=vocab["[CLS]"], eos_token_id=vocab["[SEP]"],
                       tie_word_embeddings=False)
    config = InstructBlipConfig(vision_config=vision.to_dict(), qformer_config=qformer.to_dict(),
                                text_config=text.to_dict(), num_query_tokens=32)
    torch.manual_seed(3)
    model = InstructBlipForConditionalGeneration(config)
    with torch.no_grad():
        model.query_tokens.fill_(0.25)
        model.language_projection.weight.normal_()
    model.save_pretrained(str(folder))
    vocab_file = folder / "qformer_tokenizer/vocab.txt"
    vocab_file.parent.mkdir()
    vocab_file.write_text("".join(f"{t}\n" for t in sorted(vocab, key=vocab.get)))
    BertTokenizer(vocab_file=str(vocab_file), eos_token="[SEP]").save_pretrained(str(folder))  # the LLM's tokenizer
    return load_file(str(folder / "model.safetensors"))


def test_paper_preset_by_repo_id_offline_runs_both_stages_from_the_whole_checkpoint(
        put_in_hub_cache, hub_cache, offline_environment, make_vqa_folder, tmp_path, capsys, monkeypatch):
    saved = write_whole_instructblip(tmp_path / "saved")
    assert any(k.startswith("language_model.model.") for k in saved)  # the published key layout
    commit = put_in_hub_cache(REPO, tmp_path / "saved")
    folder = make_vqa_folder()
    runs = folder.root / "runs"

    assert main(["train", "scorer", str(folder.root), *TRAIN, "--preset", "paper", "--weights", REPO]) == 0
    config = json.loads((runs / "mint-iqa-paper/config.json").read_text())
    source = config["weights_source"]
    assert (source["repo_id"], source["revision"], source["commit"]) == (REPO, "main", commit)
    assert Path(config["weights"]).name == commit  # the snapshot the model loaded
    assert source["files_sha256"]["model.safetensors"] == file_sha256(tmp_path / "saved/model.safetensors")

    # Stage 2 with no --llm and no training (learning rate 0): Fig. 11's "InstructBLIP without fine-tuning".
    assert main(["train", "instruct", str(folder.root), *TRAIN, "--from", "mint-iqa-paper", "--lr", "0",
                 "--run", "instructblip", "--max-answer-tokens", "8"]) == 0
    config = json.loads((runs / "instructblip/config.json").read_text())
    assert config["llm_source"]["repo_id"] == REPO and config["llm_source"]["commit"] == commit
    assert config["llm_hidden"] == 24 and config["weights_source"]["commit"] == commit
    state = load_file(str(runs / "instructblip/model.safetensors"))
    assert torch.equal(state["projection.weight"], saved["language_projection.weight"])
    assert torch.equal(state["projection.bias"], saved["language_projection.bias"])
    assert torch.equal(state["query_tokens"], saved["query_tokens"])
    qformer = {k[len("qformer."):]: v for k, v in state.items() if k.startswith("qformer.")}
    assert qformer and all(torch.equal(v, saved[f"qformer.{k}"]) for k, v in qformer.items())
    assert not any(k.startswith("llm.") for k in state)  # the file-backed LLM is referenced, not copied
    llm = load_llm(config["llm"])
    for key, value in llm.model.state_dict().items():  # the checkpoint's own language model
        assert torch.equal(value, saved[f"language_model.{key}"]), key

    capsys.readouterr()
    report = tmp_path / "vqa.json"
    assert main(["evaluate", str(folder.root), "--model", str(runs / "instructblip"), "--split", "split1", "--vqa",
                 "--max-new-tokens", "4", "--limit", "2", "--json", str(report), "--quiet"]) == 0
    result = json.loads(report.read_text())
    assert result["images"] == 2 and result["llm"] == config["llm"]
    assert set(result["accuracy"]["instruction_tuned"]) == {"quality", "authenticity"}

    assert config["llm_dtype"] == "float32"

    # Stage 2 trained, still by repo id only; --mixed-precision bf16 (in a process of its own: accelerate's
    # state is per process) loads the frozen LLM in bfloat16, with HF_HUB_OFFLINE=1 in its environment.
    result = aigciqa(offline_environment(HF_HOME=str(hub_cache)), "train", "instruct", folder.root, *TRAIN, "--from",
                     "mint-iqa-paper", "--lr", "1e-3", "--max-answer-tokens", "8", "--mixed-precision", "bf16")
    assert result.returncode == 0, result.stderr
    run = runs / "mint-iqa-paper-instruct"
    trained = load_file(str(run / "model.safetensors"))
    assert not torch.equal(trained["projection.weight"], saved["language_projection.weight"])
    assert json.loads((run / "config.json").read_text())["llm_dtype"] == "bfloat16"
    assert load_explainer(run, with_llm=True)[4].model.dtype == torch.bfloat16

    # The cache moved (another machine, another HF_HOME): runs find their weights again by repo and commit.
    import shutil
    import huggingface_hub.constants as constants
    moved = tmp_path / "elsewhere"
    shutil.copytree(hub_cache, moved, symlinks=True)
    shutil.rmtree(hub_cache)
    monkeypatch.setattr(constants, "HF_HOME", str(moved))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(moved / "hub"))
    capsys.readouterr()
    image = str(folder.root / "images/gen/p6-1.png")
    assert main(["score", image, "--prompt", "a photo of thing 6", "--model", str(runs / "instructblip"),
                 "--explain", "--max-new-tokens", "2", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["explanations"]


def test_an_absent_repo_id_exits_2_with_one_line_and_writes_nothing(hub_cache, make_folder, tmp_path,
                                                                    offline_environment):
    folder = make_folder(tmp_path / "db")
    env = offline_environment(HF_HOME=str(hub_cache))
    for weights, expected in ((["--weights", "nobody/absent"], "aigciqa weights download nobody/absent"),
                              ([], "aigciqa weights download instructblip")):  # the default, not cached
        result = aigciqa(env, "train", "scorer", folder.root, *TRAIN, "--preset", "paper", *weights)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().count("\n") == 0
        repo = weights[1] if weights else DEFAULTS["instructblip"].repo_id
        assert f"repo {repo} revision main is not in the Hugging Face cache" in result.stderr
        assert "HF_HUB_OFFLINE=1" in result.stderr and expected in result.stderr
        assert not (folder.root / "runs").exists()
