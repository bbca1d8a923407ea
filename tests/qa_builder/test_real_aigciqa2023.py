"""build-vqa on the real imported AIGCIQA2023 labels (../shared/data/aigciqa2023)."""

import json
import warnings

import pytest

from aigciqa.database import DatabaseFolder
from aigciqa.errors import DataWarning
from aigciqa.qa_builder.build import BuildOptions, build_vqa

# Answers copied by hand from the authors' released AIGIQA2023.json (IntMeGroup/MINT-IQA), one per
# level wording, with explanations that end in a period (".. ") and ones with quotes.
RELEASED = {
    ("0", "Assess"): "The image quality is very clear, the image outline and content are clearly distinguishable, the "
                     "image quality details are essentially sufficient. The image is partially distorted. Corgi Partial "
                     "Distortion. The image and its prompt are essentially consistent. ",
    ("8", "What is the authenticity"): "The image is partially distorted. Partial distortion of the rocky shore.. ",
    ("1065", "What is the quality"): "The image quality is partially blurry, the image outline and content are "
                                     "vaguely distinguishable, the image details are severely lacking. ",
    ("1066", "What is the quality"): "The image quality is partially blurry, the image outline and content are "
                                     "vaguely distinguishable, the image details are partially missing. ",
    ("1067", "Assess"): "The image quality is very blurry, the image outline and content cannot be distinguished, the "
                        "image details are severely lacking. The image is highly distorted. Twisted Aberration. The "
                        "image and its prompt are highly inconsistent. Start is not represented in this article.. ",
    ("1068", "What is the correspondence"): "The image and its prompt are partially inconsistent. Hello World content "
                                            "in this article is not represented in the picture. ",
    ("2224", "What is the correspondence"): "The image and its prompt are partially inconsistent. The blue hat, red "
                                            "gloves, and green shirt are not pictured in this article.. ",
}


@pytest.fixture
def imported(shared_data, tmp_path):
    """The published AIGCIQA2023 files imported into a folder (the real labels, as users get them)."""
    from aigciqa.datasets.importers import import_database
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # records 749 and 2226: out-of-range codes, made missing
        import_database("aigciqa2023", shared_data / "aigciqa2023", tmp_path / "db")
    return DatabaseFolder(tmp_path / "db")


def test_authors_format_for_all_2400_images(imported, tmp_path):
    out = tmp_path / "mint.json"
    report = build_vqa(imported, BuildOptions(format="mint-iqa", output=out, progress=False))
    records = json.loads(out.read_text("utf-8"))
    assert report.pairs == len(records) == 9600
    assert len({r["id"] for r in records}) == 2400
    assert set(records[0]) == {"id", "img", "prompt", "moz1", "moz2", "moz3", "q1", "a1"}
    for (image, question), answer in RELEASED.items():
        match = [r for r in records if r["id"] == image and r["q1"].startswith(question)]
        assert len(match) == 1 and match[0]["a1"] == answer, (image, question)
    first = records[0]
    assert (first["img"], first["prompt"], first["moz1"]) == ("0.png", "a corgi", 0.6016417843)
    # An explanation with line breaks goes in verbatim.
    assert any("\n" in r["a1"] for r in records)
    # Record 749 (geometry code 0, imported as missing): no level sentence, the explanation is kept.
    auth = next(r for r in records if r["id"] == "749" and r["q1"].startswith("What is the authenticity"))
    assert auth["a1"] == "Table and chairs above have perspective problems. "


def test_template_family_for_all_images(imported, tmp_path):
    out = tmp_path / "vqa.jsonl"
    report = build_vqa(imported, BuildOptions(output=out, use_llm=False, progress=False))
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert report.images == 2400 and len({r["image_id"] for r in records}) == 2400
    # 16 per image (Fig. 5), less "why ... authenticity" for image 749 (no distortion level, its explanation
    # still answers the others) and the alignment pair for image 2226 (no consistency level)
    assert len(records) == 2400 * 16 - 2
    assert {r["kind"] for r in records} == {"rating", "assess", "why", "factor", "point_out", "alignment",
                                            "three_scores"}
    assert not any(" | " in r["answer"] for r in records)
