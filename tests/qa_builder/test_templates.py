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


FIG5 = [
    ("How is the quality of the image?",
     "The quality score is 47.26, the image is partially blurry, the image outline and content are vaguely "
     "distinguishable, the image quality details are essentially sufficient."),
    ("Please assess the image from quality perspective.", None),
    ("Why the quality of the image is low?",
     "The image is partially blurry, the image outline and content are vaguely distinguishable, the image "
     "quality details are essentially sufficient."),
    ("How is the clarity of the image?", "The image is partially blurry."),
    ("How is the outline of the image?", "The image outline and content are vaguely distinguishable."),
    ("How is the detail of the image?", "The image quality details are essentially sufficient."),
    ("How is the authenticity of the image?",
     "The authenticity score is 45.81, the image is partially distorted. The handle of green pepper is distorted."),
    ("Please assess the image from authenticity perspective.", None),
    ("Why the authenticity of the image is low?",
     "The image is partially distorted. The handle of green pepper is distorted."),
    ("Could you please point out the geometry distortion in this image?", "The handle of green pepper is distorted."),
    ("How is the distortion of the image?", "The image is partially distorted. The handle of green pepper is distorted."),
    ("How is the correspondence between the image and text?",
     "The correspondence score is 49.65, the image and its prompt are partially inconsistent. The description of "
     "the green peppers is inconsistent. The number of the green peppers in the text is three but there are four "
     "in the image."),
    ("Please assess the image from correspondence perspective.", None),
    ("What is inconsistent between the image and the text?",
     "The description of the green peppers is inconsistent. The number of the green peppers in the text is three "
     "but there are four in the image."),
    ("Is the generated image and the text aligned?", "The image and its prompt are partially inconsistent."),
    ("Give me three scores to assess the image from the following three perspectives: quality, authenticity, "
     "and correspondence.",
     "The quality score is 47.26. The authenticity score is 45.81. The correspondence score is 49.65."),
]


def _peppers_folder(root, distortion_explanation="The handle of green pepper is distorted."):
    return write_folder(
        root,
        prompts=pd.DataFrame({"prompt_id": ["p0"], "prompt": ["Three green peppers"]}),
        images=pd.DataFrame({"image_id": ["0"], "path": ["images/g/0.png"], "prompt_id": ["p0"]}),
        mos=pd.DataFrame({"image_id": ["0"], "quality_mos": [47.26], "authenticity_mos": [45.81],
                          "correspondence_mos": [49.65]}),
        labels=pd.DataFrame({
            "image_id": ["0"], "clarity": [2], "outline": [2], "details": [3], "distortion": [2], "consistency": [2],
            "distortion_explanation": [distortion_explanation],
            "inconsistency_explanation": ["The description of the green peppers is inconsistent. The number of the "
                                          "green peppers in the text is three but there are four in the image."]}))


def test_fig5_three_green_peppers_sixteen_pairs_verbatim(tmp_path):
    pairs = _pairs(_peppers_folder(tmp_path / "db"))
    expected, previous = [], None
    for question, answer in FIG5:
        previous = answer if answer is not None else previous  # "(same as 1)": the rating answer
        expected.append((question, previous))
    assert [(p["question"], p["answer"]) for p in pairs] == expected
    assert [p["kind"] for p in pairs] == ["rating", "assess", "why", "factor", "factor", "factor",
                                          "rating", "assess", "why", "point_out", "factor",
                                          "rating", "assess", "point_out", "alignment", "three_scores"]
    assert len({p["id"] for p in pairs}) == 16
    assert pairs[0]["fields"] == ["quality_mos", "clarity", "outline", "details"]
    assert pairs[9]["fields"] == ["distortion_explanation"]


def test_one_pair_per_distinct_explanation_never_a_joined_string(tmp_path):
    # build-mos joins several annotators' texts with " | "; each becomes its own pair.
    pairs = _pairs(_peppers_folder(tmp_path / "db", "The handle is distorted | The stem is bent. | The handle is distorted"))
    assert not any("|" in p["answer"] for p in pairs)
    point_out = [p for p in pairs if p["kind"] == "point_out" and p["perspective"] == "authenticity"]
    assert [p["answer"] for p in point_out] == ["The handle is distorted.", "The stem is bent."]
    rating = [p["answer"] for p in pairs if p["kind"] == "rating" and p["perspective"] == "authenticity"]
    assert rating == ["The authenticity score is 45.81, the image is partially distorted. The handle is distorted.",
                      "The authenticity score is 45.81, the image is partially distorted. The stem is bent."]
    assert len({p["id"] for p in pairs}) == len(pairs) == 16 + 5  # rating, assess, why, point_out, factor twice


def test_level_without_explanation_gives_the_level_sentence_alone(tmp_path):
    pairs = {(p["kind"], p["id"].split(":")[2]): p for p in _pairs(_peppers_folder(tmp_path / "db", ""))}
    assert pairs[("point_out", "distortion")]["answer"] == "The image is partially distorted."
    assert pairs[("factor", "distortion")]["answer"] == "The image is partially distorted."
    assert pairs[("rating", "authenticity")]["answer"] == "The authenticity score is 45.81, the image is partially distorted."


def test_answers_follow_the_labels_and_explanations(small_folder):
    pairs = {(p["image_id"], p["kind"], p["id"].split(":")[2]): p for p in _pairs(small_folder)}
    assert len([k for k in pairs if k[0] == "0"]) == 16
    distortion = pairs[("1", "factor", "distortion")]
    assert distortion["answer"] == "The image is highly distorted. Face is distorted. Legs too."
    assert distortion["fields"] == ["distortion", "distortion_explanation"]
    assert pairs[("1", "factor", "outline")]["answer"] == "The image outline and content cannot be distinguished."
    assert pairs[("1", "why", "quality")]["question"] == "Why the quality of the image is low?"
    assert pairs[("2", "why", "quality")]["question"] == "Why the quality of the image is high?"
    assert pairs[("2", "point_out", "consistency")]["answer"] == "The building is missing."
    assert pairs[("0", "alignment", "consistency")]["answer"] == "The image and its prompt are essentially consistent."
    assert pairs[("0", "three_scores", "scores")]["answer"] == (
        "The quality score is 60.16. The authenticity score is 47.25. The correspondence score is 59.99.")


def test_missing_labels_drop_only_the_pairs_that_need_them(tmp_path):
    labels = pd.DataFrame({"image_id": ["0", "1"], "clarity": [4, pd.NA], "outline": [4, 2], "details": [3, 2],
                           "distortion": [pd.NA, 1], "consistency": [3, 1],
                           "distortion_explanation": ["", ""], "inconsistency_explanation": ["", ""]})
    pairs = _pairs(write_folder(tmp_path / "db", labels=labels))
    image0 = {(p["kind"], p["id"].split(":")[2]) for p in pairs if p["image_id"] == "0"}
    assert ("factor", "distortion") not in image0 and ("point_out", "distortion") not in image0
    assert ("why", "authenticity") not in image0
    assert ("rating", "authenticity") in image0  # the MOS alone still makes the rating pair
    image1 = [p for p in pairs if p["image_id"] == "1"]
    assert ("factor", "clarity") not in {(p["kind"], p["id"].split(":")[2]) for p in image1}
    quality = next(p for p in image1 if p["kind"] == "rating" and p["perspective"] == "quality")
    assert "clarity" not in quality["fields"] and "blurry" not in quality["answer"]
    # image 2 has MOS only: rating, assess and three scores, nothing that needs a label
    image2 = {p["kind"] for p in pairs if p["image_id"] == "2"}
    assert image2 == {"rating", "assess", "three_scores"}


def test_paper_format_writes_vqa_jsonl_and_card_section(small_folder):
    report = build_vqa(small_folder, BuildOptions(use_llm=False, progress=False))
    lines = (small_folder.root / "vqa.jsonl").read_text("utf-8").splitlines()
    assert len(lines) == report.pairs == 48  # 16 per image
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
