"""VQA accuracy: keyword matching of free-text answers to the five single-choice questions."""

import json

import pytest

from aigciqa.database import default_card
from aigciqa.errors import InputError
from aigciqa.qa_builder.build import evaluate
from aigciqa.qa_builder.vqa_accuracy import evaluate_answers, match_answer, random_baseline

LEVELS = {"clarity": 4, "outline": 4, "details": 4, "distortion": 3, "consistency": 3}


@pytest.mark.parametrize("answer, expected", [
    # the card's own wording, every level
    ("The image is very blurry.", {"clarity": 1}),
    ("The image is partially blurry.", {"clarity": 2}),
    ("The image is essentially clear.", {"clarity": 3}),
    ("The image is very clear.", {"clarity": 4}),
    ("The outline and content cannot be distinguished.", {"outline": 1}),
    ("The outline and content are vaguely distinguishable.", {"outline": 2}),
    ("The outline and content are essentially distinguishable.", {"outline": 3}),
    ("The outline and content are clearly distinguishable.", {"outline": 4}),
    ("The details are severely lacking.", {"details": 1}),
    ("The details are partially missing.", {"details": 2}),
    ("The details are essentially sufficient.", {"details": 3}),
    ("The details are very rich.", {"details": 4}),
    ("The image is highly distorted.", {"distortion": 1}),
    ("The image is partially distorted.", {"distortion": 2}),
    ("The image is essentially distortion-free.", {"distortion": 3}),
    ("The image and its prompt are highly inconsistent.", {"consistency": 1}),
    ("The image and its prompt are partially inconsistent.", {"consistency": 2}),
    ("The image and its prompt are essentially consistent.", {"consistency": 3}),
    # negations must not be read as the word they negate
    ("The picture is not blurry at all.", {"clarity": 3}),
    ("It is not very clear.", {"clarity": 2}),
    ("There is no distortion in the image.", {"distortion": 3}),
    ("The cat is not distorted.", {"distortion": 3}),
    ("The image does not match the prompt.", {"consistency": 2}),
    ("The image is not consistent with the text.", {"consistency": 2}),
    # synonyms
    ("A sharp photo.", {"clarity": 4}),
    ("The photo is fuzzy and out of focus.", {"clarity": 2}),
    ("The dog looks deformed.", {"distortion": 2}),
    ("The textures are intricate and highly detailed.", {"details": 4}),
    ("The scene matches the prompt.", {"consistency": 3}),
])
def test_matcher_reads_levels_negations_and_synonyms(answer, expected):
    assert match_answer(answer, LEVELS) == expected


def test_ambiguous_words_need_their_topic():
    # "missing" is about details only when the clause talks about details
    assert match_answer("The red hat is missing from the picture.", LEVELS) == {}
    assert match_answer("Some details are missing.", LEVELS) == {"details": 2}
    # "clear" about the outline is not about clarity
    assert match_answer("The outline of the dog is clear.", LEVELS) == {"outline": 3}


def test_released_style_answer_matches_all_five():
    answer = ("The image quality is very clear, the image outline and content are clearly distinguishable, the image "
              "quality details are essentially sufficient. The image is partially distorted. Corgi Partial Distortion. "
              "The image and its prompt are essentially consistent. ")
    assert match_answer(answer, LEVELS) == {"clarity": 4, "outline": 4, "details": 3, "distortion": 2,
                                            "consistency": 3}


def test_random_baseline_is_25_33_33():
    baseline = random_baseline(default_card("x"))
    assert baseline == pytest.approx({"quality": 0.25, "authenticity": 1 / 3, "correspondence": 1 / 3})


def test_accuracy_per_perspective_averages_questions_then_images():
    labels = {"a": {"clarity": 4, "outline": 4, "details": 4, "distortion": 3, "consistency": 3},
              "b": {"clarity": 1, "outline": 1, "details": 1, "distortion": 1, "consistency": 1}}
    answers = [
        {"image_id": "a", "answer": "Very clear and the details are very rich. No distortion. "
                                    "It matches the prompt."},        # clarity, details right; outline unmatched
        {"image_id": "b", "answer": "The image is very blurry and highly distorted. The details are very rich."},
        {"image_id": "b", "perspective": "correspondence", "answer": "The image and its prompt are highly inconsistent."},
    ]
    report = evaluate_answers(answers, labels, default_card("x"))
    # a: clarity, details right, outline unmatched; b: clarity right, details wrong, outline unmatched
    assert report["accuracy"]["quality"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert report["per_question"]["details"]["accuracy"] == pytest.approx(0.5)
    assert report["accuracy"]["authenticity"] == pytest.approx(1.0)   # a: "no distortion" -> 3; b: "highly" -> 1
    assert report["per_question"]["outline"]["no_match"] == 2
    assert report["accuracy"]["correspondence"] == pytest.approx(1.0)


def test_evaluate_reads_jsonl_and_names_bad_records(small_folder, tmp_path):
    good = tmp_path / "answers.jsonl"
    good.write_text(json.dumps({"image_id": "1", "answer": "very blurry, highly distorted"}) + "\n", "utf-8")
    report = evaluate(small_folder, good)
    assert report["images"] == 1 and report["accuracy"]["authenticity"] == 1.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"image_id": "1", "answer": "x"}) + "\n" + json.dumps({"image_id": "9", "answer": "x"})
                   + "\n", "utf-8")
    with pytest.raises(InputError) as error:
        evaluate(small_folder, bad)
    assert error.value.row == 2 and error.value.field == "image_id"
