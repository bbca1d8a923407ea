"""The database folder: validation of the card and tables, references, and all-or-nothing writes."""

import json

import pandas as pd
import pytest

from aigciqa.cli import main
from aigciqa.database import DatabaseFolder, default_card
from aigciqa.errors import InputError


def prompts_table():
    return pd.DataFrame({"prompt_id": ["0", "1"], "prompt": ["a corgi", "a girl "],
                         "category": ["Animals", "People"], "challenge": ["Basic", "Basic"]})


def images_table():
    return pd.DataFrame({"image_id": ["a", "b", "c"], "path": ["images/g/0-1.png", "images/g/0-2.png", "x.png"],
                         "prompt_id": ["0", "0", "1"], "generator": ["g", "g", "g"], "sample": [1, 2, 1]})


@pytest.fixture
def folder(tmp_path):
    folder = DatabaseFolder(tmp_path / "db")
    folder.write({"prompts": prompts_table(), "images": images_table()}, card=default_card("t"), stage="test")
    return folder


def test_round_trip_keeps_text_verbatim_and_types(folder):
    prompts = folder.read_table("prompts")
    assert prompts["prompt"].tolist() == ["a corgi", "a girl "]  # trailing space kept
    images = folder.read_table("images")
    assert str(images["sample"].dtype) == "Int64"
    assert images["seed"].isna().all() if "seed" in images else True
    card = folder.read_card()
    assert card["provenance"]["test"]["tool_version"]


def test_ratings_must_resolve_to_images(folder):
    ratings = pd.DataFrame({"subject_id": ["s1", "s1"], "image_id": ["a", "zz"],
                            "perspective": ["quality", "quality"], "score": [3, 4]})
    with pytest.raises(InputError) as error:
        folder.write({"ratings": ratings})
    assert error.value.row == 2 and error.value.field == "image_id" and "zz" in str(error.value)
    assert not folder.has("ratings")


@pytest.mark.parametrize("column, value, field, words", [
    ("score", 7, "score", "outside the scale"),
    ("score", "high", "score", "not a number"),
    ("perspective", "beauty", "perspective", "not in the card"),
    ("subject_id", "", "subject_id", "missing"),
])
def test_bad_rating_cells_are_named(folder, column, value, field, words):
    ratings = pd.DataFrame({"subject_id": ["s1", "s1"], "image_id": ["a", "b"],
                            "perspective": ["quality", "quality"], "score": [3, 4]}).astype(object)
    ratings.loc[1, column] = value
    with pytest.raises(InputError) as error:
        folder.write({"ratings": ratings})
    assert (error.value.row, error.value.field) == (2, field)
    assert words in error.value.message


def test_duplicate_key_rejected_unless_repetitions_declared(folder):
    ratings = pd.DataFrame({"subject_id": ["s1", "s1"], "image_id": ["a", "a"],
                            "perspective": ["quality", "quality"], "score": [3, 4]})
    with pytest.raises(InputError, match="duplicate"):
        folder.write({"ratings": ratings})
    card = folder.read_card() | {"repeated_ratings": True}
    folder.write({"ratings": ratings}, card=card)
    assert len(folder.read_table("ratings")) == 2


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.png", "images/../../x.png", "C:/x.png", "a\\b.png"])
def test_paths_must_stay_inside_the_folder(folder, path):
    images = images_table()
    images.loc[2, "path"] = path
    with pytest.raises(InputError) as error:
        folder.write({"images": images})
    assert (error.value.row, error.value.field) == (3, "path")


def test_failed_write_changes_nothing(folder):
    before = {p.name: p.read_bytes() for p in folder.root.iterdir() if p.is_file()}
    bad_images = images_table().assign(prompt_id=["0", "0", "missing"])
    with pytest.raises(InputError):
        folder.write({"prompts": prompts_table(), "images": bad_images}, card=default_card("changed"))
    after = {p.name: p.read_bytes() for p in folder.root.iterdir() if p.is_file()}
    assert after == before  # no table, no card, no temporary file left behind
    assert not (folder.root / ".aigciqa" / "journal").exists()


def test_card_is_checked_against_the_schema(tmp_path):
    folder = DatabaseFolder(tmp_path)
    card = default_card("t")
    card["perspectives"] = ["Quality!"]
    with pytest.raises(InputError) as error:
        folder.write({}, card=card)
    assert error.value.field == "perspectives/0"
    assert not (tmp_path / "dataset.json").exists()


def test_mos_columns_follow_the_card_perspectives(folder):
    mos = pd.DataFrame({"image_id": ["a"], "quality_mos": [50.0], "authenticity_mos": [40.0]})
    with pytest.raises(InputError) as error:
        folder.write({"mos": mos})
    assert error.value.field == "correspondence_mos"


def test_labels_levels_checked_against_question_levels(folder):
    labels = pd.DataFrame({"image_id": ["a", "b"], "clarity": [4, 5]})
    with pytest.raises(InputError) as error:
        folder.write({"labels": labels})
    assert (error.value.row, error.value.field) == (2, "clarity")


def test_undecodable_csv_is_reported_with_its_line(folder):
    (folder.root / "ratings.csv").write_bytes("subject_id,image_id,perspective,score\nsé,a,quality,3\n".encode("latin-1"))
    with pytest.raises(InputError, match="not valid utf-8 text"):
        folder.validate()


def test_info_command_reports_and_fails_cleanly(folder, capsys):
    assert main(["info", str(folder.root)]) == 0
    out = capsys.readouterr().out
    assert "images.csv" in out and "0 of 3 present" in out
    (folder.root / "dataset.json").write_text("{not json")
    assert main(["info", str(folder.root)]) == 2
    assert "dataset.json" in capsys.readouterr().err


def test_info_json(folder, capsys):
    assert main(["info", str(folder.root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == {"prompts": 2, "images": 3}
    assert report["images_listed"] == 3 and report["images_on_disk"] == 0
