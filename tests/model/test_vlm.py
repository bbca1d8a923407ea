"""Table VIII: `aigciqa evaluate DB --vqa --vlm MODEL` asks a zero-shot vision-language model the rating
questions, offline, on tiny random InstructBLIP and LLaVA models with their real processors, saved with
save_pretrained and laid out as a Hub cache; the answers go through the matcher that scores MINT-IQA's."""

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from aigciqa.cli import main
from aigciqa.database.atomic import write_text_atomic
from aigciqa.model import vlm as vlm_module
from aigciqa.model.vlm import load_vlm

pytestmark = pytest.mark.usefixtures("one_thread")

ASKED = ["How is the quality of the image?", "How is the authenticity of the image?"]


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("kind", ["instructblip", "llava"])
def test_a_tiny_vlm_by_repo_id_answers_offline_and_is_scored(kind, tiny_vlm, put_in_hub_cache, make_vqa_folder,
                                                              tmp_path, capsys):
    repo = f"tiny-org/{kind}-tiny"
    commit = put_in_hub_cache(repo, tiny_vlm(kind, tmp_path / "saved"))
    folder = make_vqa_folder()
    report = tmp_path / "vqa.json"
    assert main(["evaluate", str(folder.root), "--vqa", "--vlm", repo, "--split", "split1", "--max-new-tokens", "6",
                 "--json", str(report), "--quiet", "--cpu"]) == 0
    printed = capsys.readouterr().out
    result = json.loads(report.read_text())
    assert result["vlm"] == f"{repo}@{commit[:12]}" and result["vlm"] in printed and "zero-shot" in printed
    source = result["vlm_source"]
    assert (source["repo_id"], source["revision"], source["commit"]) == (repo, "main", commit)
    assert source["class"] == {"instructblip": "InstructBlipForConditionalGeneration",
                               "llava": "LlavaForConditionalGeneration"}[kind]
    assert result["images"] == 8 and result["part"] == "test"
    assert set(result["accuracy"]) == {"zero_shot", "random_baseline"}
    assert set(result["accuracy"]["zero_shot"]) == {"quality", "authenticity"}
    assert all(0 <= v <= 1 for v in result["accuracy"]["zero_shot"].values())
    assert result["accuracy"]["random_baseline"] == {"quality": 0.25, "authenticity": pytest.approx(1 / 3)}
    assert set(result["per_question"]) == {"clarity", "outline", "details", "distortion"}
    answers = result["answers"]
    assert len(answers) == 16 and [a["question"] for a in answers[:2]] == ASKED
    assert all(isinstance(a["answer"], str) for a in answers)


def test_the_prompt_is_the_chat_template_or_the_documented_plain_prompt(tiny_vlm, tmp_path):
    question = "How is the quality of the image?"
    templated = load_vlm(str(tiny_vlm("llava", tmp_path / "llava")))
    plain = load_vlm(str(tiny_vlm("llava", tmp_path / "plain", chat_template=False)))
    assert templated.prompt(question) == plain.prompt(question) == f"USER: <image>\n{question} ASSISTANT:"
    assert load_vlm(str(tiny_vlm("instructblip", tmp_path / "iblip"))).prompt(question) == question


def test_a_processor_saved_without_its_query_count_takes_it_from_the_config(tiny_vlm, make_folder, tmp_path):
    """Hub folders saved before processors expanded the image tokens lack num_query_tokens."""
    folder = tiny_vlm("instructblip", tmp_path / "iblip")
    settings = json.loads((folder / "processor_config.json").read_text())
    image = make_folder(tmp_path / "db").root / "images/gen/p0-1.png"
    expected = load_vlm(str(folder)).answer([image], ["How?"], 4)
    del settings["num_query_tokens"]
    (folder / "processor_config.json").write_text(json.dumps(settings))
    model = load_vlm(str(folder))
    assert model.processor.num_query_tokens == 4 and model.answer([image], ["How?"], 4) == expected


def test_batched_answers_are_the_answers_one_by_one(tiny_vlm, make_folder, tmp_path):
    """Left padding: a short question batched with a long one is answered as when asked alone."""
    folder = make_folder(tmp_path / "db")
    model = load_vlm(str(tiny_vlm("llava", tmp_path / "llava")))
    paths = [folder.root / "images/gen/p0-1.png", folder.root / "images/gen/p1-2.png"]
    questions = ["How?", 'This image was generated from the text "a photo of thing 1". How is the quality?']
    together = model.answer(paths, questions, 6)
    assert together == [model.answer([p], [q], 6)[0] for p, q in zip(paths, questions)]


def test_vlm_answers_are_scored_by_the_same_matcher_as_an_answers_file(tiny_vlm, make_vqa_folder, tmp_path, capsys,
                                                                       monkeypatch):
    """Crafted answers put in the VLM's mouth give the accuracy `evaluate --answers` gives the same text."""
    crafted = {"How is the quality of the image?": "The image is very sharp and the details are rich.",
               "How is the authenticity of the image?": "The objects are slightly distorted."}

    def answer(self, paths, questions, max_new_tokens, repetition_penalty=1.0):
        return [next(text for asked, text in crafted.items() if q.endswith(asked)) for q in questions]

    monkeypatch.setattr(vlm_module.VisionLanguageModel, "answer", answer)
    folder = make_vqa_folder()
    assert main(["evaluate", str(folder.root), "--vqa", "--vlm", str(tiny_vlm("llava", tmp_path / "llava")),
                 "--json", str(tmp_path / "vlm.json"), "--quiet", "--cpu"]) == 0
    through_vlm = json.loads((tmp_path / "vlm.json").read_text())
    assert through_vlm["images"] == 32
    answers_file = tmp_path / "answers.jsonl"
    write_text_atomic(answers_file, "".join(json.dumps({"image_id": a["image_id"], "answer": a["answer"],
                                                        "perspective": a["perspective"]}) + "\n"
                                            for a in through_vlm["answers"]))
    assert main(["evaluate", str(folder.root), "--answers", str(answers_file), "--json", str(tmp_path / "a.json")]) == 0
    through_file = json.loads((tmp_path / "a.json").read_text())
    # the answers file is scored on every labelled question; the VLM was asked the card's perspectives only
    assert through_vlm["accuracy"]["zero_shot"] == {p: v for p, v in through_file["accuracy"].items()
                                                    if p != "correspondence"}
    assert through_vlm["per_question"] == {q: v for q, v in through_file["per_question"].items() if q != "consistency"}
    # and the accuracy is not a constant: the labels are random levels, the answers fixed
    assert 0 < through_vlm["accuracy"]["zero_shot"]["quality"] < 1


def test_input_errors_exit_2_with_one_line(tiny_vlm, put_in_hub_cache, make_folder, make_vqa_folder, tmp_path,
                                           capsys):
    from transformers import LlamaConfig, LlamaForCausalLM
    folder = make_vqa_folder()
    db = str(folder.root)
    assert main(["evaluate", db, "--vqa", "--vlm", "tiny-org/absent", "--quiet"]) == 2
    line = _error(capsys)
    assert "tiny-org/absent" in line and "aigciqa weights download tiny-org/absent" in line
    LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                 num_attention_heads=2)).save_pretrained(str(tmp_path / "llama"))
    llava = str(tiny_vlm("llava", tmp_path / "llava"))
    capsys.readouterr()  # save_pretrained's progress
    assert main(["evaluate", db, "--vqa", "--vlm", str(tmp_path / "llama"), "--quiet"]) == 2
    line = _error(capsys)
    assert "LlamaForCausalLM" in line and "not a vision-language model" in line and "config.json" in line
    assert main(["evaluate", db, "--vlm", "x", "--quiet"]) == 2
    assert "--vlm" in _error(capsys)
    assert main(["evaluate", db, "--vqa", "--vlm", "x", "--model", "y", "--quiet"]) == 2
    assert "--vlm" in _error(capsys)
    unlabelled = make_folder(tmp_path / "bare")
    assert main(["evaluate", str(unlabelled.root), "--vqa", "--vlm", llava, "--quiet"]) == 2
    assert "labels.csv" in _error(capsys)


def test_quiet_silences_the_libraries_bars_too(tiny_vlm, make_vqa_folder, tmp_path, capsys, monkeypatch):
    """transformers draws a bar while it loads weights; --quiet means no bar at all, and bars come back after."""
    from transformers.utils import logging as transformers_logging
    monkeypatch.setattr(vlm_module.VisionLanguageModel, "answer",
                        lambda self, paths, questions, max_new_tokens, repetition_penalty=1.0: ["sharp"] * len(paths))
    folder, model = make_vqa_folder(), str(tiny_vlm("llava", tmp_path / "llava"))
    capsys.readouterr()
    assert main(["evaluate", str(folder.root), "--vqa", "--vlm", model, "--cpu", "--limit", "2"]) == 0
    assert "Loading weights" in capsys.readouterr().err  # the bar the check below must not see
    assert main(["evaluate", str(folder.root), "--vqa", "--vlm", model, "--cpu", "--limit", "2", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert transformers_logging.is_progress_bar_enabled()
