"""Template pairs (paper Fig. 5 families) on small folders."""

import json

import pandas as pd
import pytest

from aigciqa.errors import InputError
from aigciqa.qa_builder.build import BuildOptions, build_vqa
from aigciqa.qa_builder.inputs import load_inputs
from aigciqa.qa_builder.templates import template_pairs

from .vqa_fixtures import write_folder


def _pairs(folder):
    return template_pairs(load_inputs(folder))


def test_sixteen_pairs_per_fully_labelled_image_with_fields_and_kinds(small_folder):
    pairs = _pairs(small_folder)
    assert len(pairs) == 48
    first = [p for p in pairs if p["image_id"] == "0"]
    kinds = [(p["kind"], p["perspective"]) for p in first]
    assert kinds.count(("factor", "quality")) == 3
    assert {k for k, _ in kinds} == {"rating", "assess", "why", "factor", "alignment", "three_scores"}
    assert len({p["id"] for p in pairs}) == len(pairs)
    assert all(p["source"] == "template" and p["model"] is None for p in pairs)
    rating = next(p for p in first if p["kind"] == "rating" and p["perspective"] == "quality")
    assert rating["question"] == "How is the quality of the image?"
    assert "60.16" in rating["answer"] and "very clear" in rating["answer"]
    assert rating["fields"] == ["quality_mos", "clarity", "outline", "details"]
    scores = next(p for p in first if p["kind"] == "three_scores")
    assert "quality 60.16, authenticity 47.25, correspondence 59.99" in scores["answer"]


def test_answers_follow_the_labels_and_explanations(small_folder):
    pairs = {(p["image_id"], p["kind"], p["id"].rsplit(":", 1)[1]): p for p in _pairs(small_folder)}
    distortion = pairs[("1", "factor", "distortion")]
    assert distortion["answer"] == "The image is highly distorted. Face is distorted. Legs too."
    assert distortion["fields"] == ["distortion", "distortion_explanation"]
    assert pairs[("1", "factor", "outline")]["answer"] == "The outline and content of the image cannot be distinguished."
    assert pairs[("1", "why", "quality")]["question"] == "Why is the quality of the image low?"
    assert pairs[("2", "why", "quality")]["question"] == "Why is the quality of the image high?"
    alignment = pairs[("2", "alignment", "consistency")]
    assert alignment["question"] == 'Is the image aligned with the text "an oil painting of a tree and a building"?'
    assert alignment["answer"].startswith("Partly, the image and its prompt are partially inconsistent.")
    assert "The building is missing." in alignment["answer"]
    assert pairs[("1", "alignment", "consistency")]["answer"].startswith("No,")
    assert pairs[("0", "alignment", "consistency")]["answer"].startswith("Yes,")


def test_missing_labels_drop_only_the_pairs_that_need_them(tmp_path):
    labels = pd.DataFrame({"image_id": ["0", "1"], "clarity": [4, pd.NA], "outline": [4, 2], "details": [3, 2],
                           "distortion": [pd.NA, 1], "consistency": [3, 1],
                           "distortion_explanation": ["", ""], "inconsistency_explanation": ["", ""]})
    pairs = _pairs(write_folder(tmp_path / "db", labels=labels))
    image0 = {(p["kind"], p["id"].rsplit(":", 1)[1]) for p in pairs if p["image_id"] == "0"}
    assert ("factor", "distortion") not in image0
    assert ("assess", "authenticity") not in image0 and ("why", "authenticity") not in image0
    assert ("rating", "authenticity") in image0  # the MOS alone still makes the rating pair
    image1 = [p for p in pairs if p["image_id"] == "1"]
    assert ("factor", "clarity") not in {(p["kind"], p["id"].rsplit(":", 1)[1]) for p in image1}
    quality = next(p for p in image1 if p["kind"] == "rating" and p["perspective"] == "quality")
    assert "clarity" not in quality["fields"] and "blurry" not in quality["answer"]
    # image 2 has MOS only: rating and three scores, nothing that needs a label
    image2 = {p["kind"] for p in pairs if p["image_id"] == "2"}
    assert image2 == {"rating", "three_scores"}


def test_paper_format_writes_vqa_jsonl_and_card_section(small_folder):
    report = build_vqa(small_folder, BuildOptions(use_llm=False, progress=False))
    lines = (small_folder.root / "vqa.jsonl").read_text("utf-8").splitlines()
    assert len(lines) == report.pairs == 48
    record = json.loads(lines[0])
    assert set(record) >= {"id", "image_id", "perspective", "kind", "question", "answer", "source", "model"}
    card = small_folder.read_card()
    assert card["build_vqa"]["pairs"] == 48 and card["build_vqa"]["llm"] is None
    assert "build-vqa" in card["provenance"]
    before = (small_folder.root / "vqa.jsonl").read_bytes()
    build_vqa(small_folder, BuildOptions(use_llm=False, progress=False))
    assert (small_folder.root / "vqa.jsonl").read_bytes() == before  # a rerun gives the same file


def test_llava_export_has_one_conversation_per_image(small_folder, tmp_path):
    out = tmp_path / "llava.json"
    build_vqa(small_folder, BuildOptions(format="llava", output=out, use_llm=False, progress=False))
    records = json.loads(out.read_text("utf-8"))
    assert [r["id"] for r in records] == ["0", "1", "2"]
    turns = records[0]["conversations"]
    assert len(turns) == 32 and turns[0]["from"] == "human" and turns[0]["value"].startswith("<image>\n")
    assert [t["from"] for t in turns[:4]] == ["human", "gpt", "human", "gpt"]
    assert records[0]["image"] == "images/g/0.png"
    assert not (small_folder.root / "vqa.jsonl").exists()  # -o outside the folder leaves it untouched


@pytest.mark.parametrize("change, message, field", [
    ("mos", "outside the card's mos_range", "authenticity_mos"),
    ("level", "outside 1-3", "distortion"),
    ("prompt", "no prompt_id", "prompt_id"),
])
def test_bad_input_is_one_clear_error_and_nothing_written(tmp_path, change, message, field):
    folder = write_folder(tmp_path / "db")
    table = {"mos": "mos.csv", "level": "labels.csv", "prompt": "images.csv"}[change]
    path = folder.root / table
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if change == "mos":
        frame.loc[1, "authenticity_mos"] = "120"
    elif change == "level":
        frame.loc[1, "distortion"] = "4"
    else:
        frame.loc[1, "prompt_id"] = ""
    frame.to_csv(path, index=False)
    with pytest.raises(InputError) as error:
        build_vqa(folder, BuildOptions(use_llm=False, progress=False))
    assert message in str(error.value) and error.value.field == field and error.value.row == 2
    assert table in error.value.file
    assert not (folder.root / "vqa.jsonl").exists()


def test_folder_without_mos_and_labels_says_what_to_run(tmp_path):
    folder = write_folder(tmp_path / "db", mos=False, labels=False)
    with pytest.raises(InputError, match="build-mos"):
        build_vqa(folder, BuildOptions(use_llm=False, progress=False))
