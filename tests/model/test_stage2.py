"""Stages 2 and 3 (instruction tuning, feedback) and explanations on the tiny preset (seconds on a CPU)."""

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from safetensors.torch import load_file

from aigciqa.cli import main
from aigciqa.errors import InputError
from aigciqa.model.scorer import build_model
from aigciqa.model.instruct import InstructIQA, answer_batch
from aigciqa.model.presets import build_qformer
from aigciqa.model.feedback import Stage3Options, train_stage3
from aigciqa.model.instruction import Stage2Options, train_stage2
from aigciqa.model.scorer import TrainOptions, train

pytestmark = pytest.mark.usefixtures("one_thread")


LOOP = dict(split="split1", lr=1e-3, progress=False, cpu=True)
SCORER = {"preset": "tiny", "perspectives": ["quality", "authenticity"], "bins": 1, "lora_rank": 0, "num_queries": 4,
          "fix_rate": 0.7, "mos_range": [0, 100]}


def _explainer(zero_connection=True):
    torch.manual_seed(0)
    scorer, tokenizer, preset, _ = build_model(SCORER, pretrained=True)
    model = InstructIQA(scorer, build_qformer(preset), llm_hidden=32, zero_connection=zero_connection)
    return model, tokenizer, preset


def _inputs(tokenizer, preset):
    prompt = tokenizer(["a red bike", "two dogs on a beach"], padding=True, return_tensors="pt")
    instruction = tokenizer(["how is the quality of the image?"] * 2, padding=True, return_tensors="pt")
    image_embeds = torch.randn(2, 17, 32)
    return prompt, instruction, image_embeds


def test_zero_connection_starts_undisturbed_and_receives_gradient():
    model, tokenizer, preset = _explainer()
    prompt, instruction, image_embeds = _inputs(tokenizer, preset)
    model.eval()  # no dropout: outputs compare exactly
    quality = model.quality_queries(prompt["input_ids"], prompt["attention_mask"], image_embeds)
    assert quality.abs().sum() > 0
    with_connection = model.instruct_queries(quality, instruction["input_ids"], instruction["attention_mask"],
                                             image_embeds)
    connection, model.connection = model.connection, None
    without = model.instruct_queries(None, instruction["input_ids"], instruction["attention_mask"], image_embeds)
    model.connection = connection
    assert torch.equal(with_connection, without)  # zero-initialised: the Q-Former starts undisturbed
    with_connection.pow(2).sum().backward()
    assert connection.weight.grad.abs().sum() > 0 and connection.bias.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.scorer.parameters())  # the stage-1 scorer stays frozen
    with torch.no_grad():
        connection.weight.add_(-0.1 * connection.weight.grad)
    moved = model.instruct_queries(quality, instruction["input_ids"], instruction["attention_mask"], image_embeds)
    assert not torch.allclose(moved, without)  # once trained, the quality-aware outputs get in


def test_ablation_without_zero_connection_has_no_connection():
    model, _, _ = _explainer(zero_connection=False)
    assert model.connection is None and not any(k.startswith("connection.") for k in model.run_state())


def test_language_model_labels_cover_answer_tokens_only():
    ids, mask, labels = answer_batch([[5, 6, 7], [5]], [[8, 9, 3], [10, 3]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7, 8, 9, 3], [5, 10, 3, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]]
    assert labels.tolist() == [[-100, -100, -100, 8, 9, 3], [-100, 10, 3, -100, -100, -100]]


def _stage1(folder, epochs=2):
    return train(folder.root, TrainOptions(preset="tiny", epochs=epochs, **LOOP)).run_dir


def _same_files(a, b, names):
    for name in names:
        x, y = load_file(str(a / name)), load_file(str(b / name))
        assert x.keys() == y.keys()
        for key in x:
            assert torch.equal(x[key], y[key]), (name, key)


def test_stage2_learns_and_resumes_exactly(make_vqa_folder):
    whole, parted = make_vqa_folder("a"), make_vqa_folder("b")
    for folder in (whole, parted):
        _stage1(folder)
    options = dict(from_run="mint-iqa-tiny", epochs=3, max_answer_tokens=24, **{**LOOP, "lr": 3e-3})
    done = train_stage2(whole.root, Stage2Options(**options))
    assert done.history[-1]["train_loss"] < done.history[0]["train_loss"]
    assert "lm_loss" in done.history[0]["val"]
    first = train_stage2(parted.root, Stage2Options(**options, stop_after=1))
    assert len(first.history) == 1
    resumed = train_stage2(parted.root, Stage2Options(**options, resume=True))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    run = "runs/mint-iqa-tiny-instruct"
    _same_files(whole.root / run, parted.root / run, ["model.safetensors", "last/model.safetensors"])
    config = json.loads((whole.root / run / "config.json").read_text())
    assert config["stage"] == 2 and config["from_run"] == "runs/mint-iqa-tiny" and config["llm"] == "tiny"
    stored = load_file(str(whole.root / run / "model.safetensors"))
    assert not any(k.startswith("scorer.") for k in stored)  # the frozen scorer stays in its own run
    assert any(k.startswith("llm.") for k in stored)  # the random tiny LLM is part of the run
    with pytest.raises(InputError, match="max_answer_tokens"):
        train_stage2(parted.root, Stage2Options(**{**options, "max_answer_tokens": 8}, resume=True))


def test_stage3_starts_at_stage1_trains_resumes_and_reports_the_change(make_vqa_folder):
    whole, parted = make_vqa_folder("a"), make_vqa_folder("b")
    for folder in (whole, parted):
        _stage1(folder, epochs=3)
        train_stage2(folder.root, Stage2Options(from_run="mint-iqa-tiny", epochs=1, max_answer_tokens=16, **LOOP))
    options = dict(from_run="mint-iqa-tiny-instruct", epochs=3, **{**LOOP, "lr": 1e-2})
    # Before any training the feedback regressors give exactly the stage-1 scores.
    from aigciqa.model.stages import load_run
    from aigciqa.model.feedback import build_feedback
    from aigciqa.model.instruction import load_explainer
    stage1, tokenizer, preset, _ = load_run(whole.root / "runs/mint-iqa-tiny")
    explainer, _, _, _, _ = load_explainer(whole.root / "runs/mint-iqa-tiny-instruct", with_llm=False)
    feedback = build_feedback(explainer, tokenizer, ["quality", "authenticity"]).eval()
    prompt, _, image_embeds = _inputs(tokenizer, preset)
    with torch.no_grad():
        torch.testing.assert_close(feedback(prompt["input_ids"], prompt["attention_mask"], image_embeds=image_embeds),
                                   stage1(prompt["input_ids"], prompt["attention_mask"], image_embeds=image_embeds))
    done = train_stage3(whole.root, Stage3Options(**options))
    assert done.history[-1]["train_loss"] < done.history[0]["train_loss"]
    metrics = json.loads((done.run_dir / "metrics.json").read_text())
    for name in ("quality", "authenticity", "average"):
        assert metrics["change_against_stage1"][name]["srcc"] == pytest.approx(
            metrics["test"][name]["srcc"] - metrics["stage1_test"][name]["srcc"])
    train_stage3(parted.root, Stage3Options(**options, stop_after=2))
    train_stage3(parted.root, Stage3Options(**options, resume=True))
    run = "runs/mint-iqa-tiny-instruct-feedback"
    _same_files(whole.root / run, parted.root / run, ["model.safetensors", "last/model.safetensors"])


def test_cli_stages_explain_and_vqa_accuracy_end_to_end(make_vqa_folder, tmp_path, capsys):
    folder = make_vqa_folder()
    train_args = ["--split", "split1", "--epochs", "1", "--lr", "1e-3", "--quiet", "--cpu"]
    assert main(["train", "scorer", str(folder.root), *train_args]) == 0
    assert main(["train", "instruct", str(folder.root), *train_args, "--from", "mint-iqa-tiny",
                 "--max-answer-tokens", "16"]) == 0
    assert main(["train", "feedback", str(folder.root), *train_args, "--from", "mint-iqa-tiny-instruct"]) == 0
    assert "change against stage 1" in capsys.readouterr().out
    image = str(folder.root / "images/gen/p0-1.png")
    for run in ("mint-iqa-tiny-instruct", "mint-iqa-tiny-instruct-feedback"):
        assert main(["score", image, "--prompt", "a photo", "--style", "photo", "--model", str(folder.root / "runs" / run), "--explain",
                     "--max-new-tokens", "8", "--json", "-"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert set(printed["scores"][0]) == {"image", "quality", "authenticity"}
        answers = printed["explanations"]
        assert [a["question"] for a in answers] == ["How is the quality of the image?",
                                                   "How is the authenticity of the image?"]
        assert all(isinstance(a["answer"], str) and a["answer"] for a in answers)
    assert main(["score", image, "--prompt", "a photo", "--style", "photo", "--model", str(folder.root / "runs/mint-iqa-tiny-instruct"),
                 "--explain", "--question", "what is in the image?", "--max-new-tokens", "4"]) == 0
    assert "what is in the image?" in capsys.readouterr().out
    report = tmp_path / "vqa.json"
    assert main(["evaluate", str(folder.root), "--model", str(folder.root / "runs/mint-iqa-tiny-instruct"),
                 "--split", "split1", "--vqa", "--max-new-tokens", "8", "--json", str(report), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "instruction-tuned" in printed and "random" in printed
    result = json.loads(report.read_text())
    assert result["images"] == 8 and set(result["accuracy"]) == {"instruction_tuned", "llm_without_instruction_tuning",
                                                                 "random_baseline"}
    assert result["accuracy"]["random_baseline"] == {"quality": 0.25, "authenticity": pytest.approx(1 / 3)}
    assert len(result["answers"]) == 16 and all(0 <= v <= 1 for v in result["accuracy"]["instruction_tuned"].values())


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    return err[0]


def test_stage2_input_errors_exit_2(make_folder, make_vqa_folder, tmp_path, capsys):
    bare = make_folder(tmp_path / "bare")
    args = ["--split", "split1", "--epochs", "1", "--quiet", "--cpu"]
    assert main(["train", "scorer", str(bare.root), *args]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # each stage has only its own options: --from is required
        main(["train", "instruct", str(bare.root), *args])
    assert exit_.value.code == 2 and "--from" in capsys.readouterr().err
    assert main(["train", "instruct", str(bare.root), *args, "--from", "mint-iqa-tiny"]) == 2
    line = _error(capsys)
    assert "vqa.jsonl is missing" in line and "build-vqa" in line
    assert main(["train", "feedback", str(bare.root), *args, "--from", "mint-iqa-tiny"]) == 2
    assert "needs a stage-2 run, this one is stage 1" in _error(capsys)
    with pytest.raises(SystemExit) as exit_:  # stage-1 options are not options of stage 2
        main(["train", "instruct", str(bare.root), *args, "--from", "mint-iqa-tiny", "--fix-rate", "0.5"])
    assert exit_.value.code == 2 and "unrecognized arguments: --fix-rate" in capsys.readouterr().err
    (bare.root / "vqa.jsonl").write_text('{"image_id": "p0-0", "question": "q?", "answer": "a"}\n'
                                         '{"image_id": "zz", "question": "q?", "answer": "a"}\n')
    assert main(["train", "instruct", str(bare.root), *args, "--from", "mint-iqa-tiny"]) == 2
    line = _error(capsys)
    assert "vqa.jsonl" in line and "record 2" in line and "field 'image_id'" in line
    (bare.root / "vqa.jsonl").write_text('{"image_id": "p0-0", "question": "q?", "answer": "a"}\n')
    assert main(["train", "instruct", str(bare.root), *args, "--from", "mint-iqa-tiny", "--llm",
                 str(tmp_path / "nope.gguf")]) == 2
    line = _error(capsys)
    assert "nope.gguf: --llm not found" in line and "Hub repo id" in line
    (tmp_path / "fake.gguf").write_bytes(b"PK\x03\x04 not a model")
    assert main(["train", "instruct", str(bare.root), *args, "--from", "mint-iqa-tiny", "--llm",
                 str(tmp_path / "fake.gguf")]) == 2
    assert "not a GGUF model file" in _error(capsys)
    assert not (bare.root / "runs/mint-iqa-tiny-instruct").exists()
    # A stage-2 run refuses to load once the stage-1 run it was built on has changed.
    folder = make_vqa_folder("v")
    assert main(["train", "scorer", str(folder.root), *args]) == 0
    assert main(["train", "instruct", str(folder.root), *args, "--from", "mint-iqa-tiny", "--max-answer-tokens",
                 "8"]) == 0
    capsys.readouterr()
    weights = folder.root / "runs/mint-iqa-tiny/model.safetensors"  # as if stage 1 were retrained
    from safetensors.torch import save_file
    save_file({k: v + 1 for k, v in load_file(str(weights)).items()}, str(weights))
    image = str(folder.root / "images/gen/p0-1.png")
    assert main(["score", image, "--prompt", "a", "--style", "photo", "--model", str(folder.root / "runs/mint-iqa-tiny-instruct"),
                 "--explain"]) == 2
    assert "has changed since" in _error(capsys)


def test_demo_step_trains_tiny_stage2(make_vqa_folder, tmp_path):
    from aigciqa.demo import DemoContext
    from aigciqa.model.demo import scorer_step as stage1_step
    from aigciqa.model.demo import instruction_step as demo_step
    context = DemoContext(out=tmp_path)
    make_vqa_folder("db")
    assert demo_step(context).startswith("skipped")
    stage1_step(context)
    summary = demo_step(context)
    assert "tiny stage 2" in summary and (tmp_path / "db/runs/demo-tiny-instruct/model.safetensors").is_file()
