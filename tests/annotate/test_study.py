"""The study config: defaults from the card, errors that name the field, subject ids, item order."""

from __future__ import annotations

import json

import pytest

from aigciqa.annotate.study import load_study_config, make_study, subject_items, validate_subject_id
from aigciqa.database import default_card
from aigciqa.errors import InputError

IMAGES = [f"img{k}" for k in range(20)]


@pytest.fixture
def card():
    return default_card("t")


def test_defaults_follow_the_card(card):
    study = make_study(card, None, IMAGES)
    assert study.perspectives == ["quality", "authenticity", "correspondence"]
    assert study.scores == [0, 1, 2, 3, 4, 5]
    assert [q.name for q in study.questions] == ["clarity", "outline", "details", "distortion", "consistency"]
    assert study.required == frozenset(study.perspectives + [q.name for q in study.questions])
    complete = {"quality": 3, "authenticity": 3, "correspondence": 3, "clarity": 4, "outline": 4, "details": 4,
                "distortion": 3, "consistency": 3}
    assert study.problems(complete) == []
    # below the best level, the explanation is required (the paper's "where is the distortion")
    assert study.problems({**complete, "distortion": 2}) == [
        "explain geometry distortion (where is the distortion)"]
    assert study.problems({**complete, "distortion": 2, "distortion_explanation": "bent arm"}) == []
    assert study.problems({**complete, "quality": None}) == ["rate quality"]


def test_required_and_explanation_rules_are_configurable(card):
    study = make_study(card, {"required": ["quality"], "explanations": {"distortion": "never",
                                                                        "consistency": "always"}}, IMAGES)
    assert study.problems({"quality": 1}) == ["explain text-image consistency (what is inconsistent with the prompt)"]
    assert study.problems({"quality": 1, "distortion": 1, "inconsistency_explanation": "no cat"}) == []


@pytest.mark.parametrize("config, field, words", [
    ({"perspectives": ["beauty"]}, "perspectives/0", "not in the card"),
    ({"scale": {"min": 0, "max": 7}}, "scale", "within the card"),
    ({"questions": ["clarity", "sharpness"]}, "questions/1", "not in the card"),
    ({"required": ["quality", "colour"]}, "required/1", "not a perspective or question"),
    ({"explanations": {"clarity": "always"}}, "explanations/clarity", "explanation"),
    ({"explanations": {"distortion": "sometimes"}}, "explanations/distortion", "is not one of"),
    ({"training": [{"answers": {"quality": 3}}]}, "training/0", "either image_id or path"),
    ({"training": [{"path": "/etc/x.png", "answers": {}}]}, "training/0/path", "absolute"),
    ({"training": [{"image_id": "img1", "answers": {"quality": 9}}]}, "training/0/answers/quality", "outside"),
    ({"gold": {"known": [{"image_id": "nope", "answers": {}}]}}, "gold/known/0/image_id", "not in images.csv"),
    ({"gold": {"known": [{"image_id": "img1", "answers": {"clarity": 5}}]}}, "gold/known/0/answers/clarity",
     "outside 1-4"),
    ({"gold": {"repeat": -1}}, "gold/repeat", "minimum"),
    ({"items": "some"}, "items", "not valid"),
    ({"seeds": 3}, None, "seeds"),
])
def test_config_errors_name_the_field(card, config, field, words):
    with pytest.raises(InputError) as error:
        make_study(card, config, IMAGES, file="study.json")
    assert error.value.field == field and error.value.file == "study.json"
    assert words in str(error.value)


def test_malformed_config_file_is_reported(tmp_path):
    path = tmp_path / "study.json"
    path.write_text('{"seed": 1,}')
    with pytest.raises(InputError, match="malformed JSON"):
        load_study_config(path)
    path.write_text(json.dumps({"seed": 1}))
    assert load_study_config(path) == {"seed": 1}


@pytest.mark.parametrize("subject", ["", "a b", "../x", "anna/1", "s01;drop", "é", "-s", "x" * 65])
def test_odd_subject_ids_are_refused_with_a_clear_message(subject):
    with pytest.raises(InputError, match="letters, digits"):
        validate_subject_id(subject)


@pytest.mark.parametrize("subject", ["s01", "Anna.M", "42", "lab-3_b"])
def test_ordinary_subject_ids_pass(subject):
    assert validate_subject_id(subject) == subject


def test_item_order_is_seeded_per_subject_and_stable(card):
    study = make_study(card, {"seed": 7}, IMAGES)
    a1, a2 = subject_items(study, IMAGES, "anna"), subject_items(study, IMAGES, "anna")
    b = subject_items(study, IMAGES, "bert")
    assert a1 == a2
    assert [i.image_id for i in a1] != [i.image_id for i in b]
    assert sorted(i.image_id for i in a1) == sorted(IMAGES)
    other_seed = subject_items(make_study(card, {"seed": 8}, IMAGES), IMAGES, "anna")
    assert [i.image_id for i in other_seed] != [i.image_id for i in a1]


def test_subset_keeps_known_gold_and_repeats_come_later(card):
    config = {"items": {"per_subject": 8}, "gold": {"repeat": 3, "known": [{"image_id": "img19", "answers": {}}]}}
    study = make_study(card, config, IMAGES)
    for subject in ("s1", "s2", "s3"):
        items = subject_items(study, IMAGES, subject)
        main = [i.image_id for i in items if i.kind == "main"]
        repeats = [i for i in items if i.kind == "repeat"]
        assert len(main) == 8 == len(set(main)) and "img19" in main
        assert len(repeats) == 3 and len(items) == 11
        for repeat in repeats:
            first = next(i.position for i in items if i.image_id == repeat.image_id and i.kind == "main")
            assert repeat.position >= first + 3
        assert [i.position for i in items] == list(range(11))
