"""labels.csv, the simulated panel, the command line and the demo step."""

import json

import numpy as np
import pandas as pd
import pytest

from aigciqa.cli import build_parser, main
from aigciqa.database import DatabaseFolder
from aigciqa.mos.labels import EXPLANATION_SEPARATOR, build_labels
from aigciqa.mos.simulate import simulate_panel

from .conftest import demo_images


def answers_frame(rows):
    return pd.DataFrame(rows, columns=["subject_id", "image_id", "question", "level", "explanation"])


def test_most_frequent_level_and_worse_level_wins_a_tie(card):
    answers = answers_frame([
        ("s1", "a", "clarity", 3, ""), ("s2", "a", "clarity", 3, ""), ("s3", "a", "clarity", 1, ""),
        ("s1", "b", "clarity", 4, ""), ("s2", "b", "clarity", 2, ""),          # tie 2 vs 4 -> 2
        ("s1", "a", "distortion", 1, "bent arm"), ("s2", "a", "distortion", 1, "bent arm"),
        ("s3", "a", "distortion", 2, "six fingers"),
    ])
    labels = build_labels(answers, card).set_index("image_id")
    assert labels.loc["a", "clarity"] == 3 and labels.loc["b", "clarity"] == 2
    assert labels.loc["a", ["clarity_n1", "clarity_n2", "clarity_n3", "clarity_n4"]].tolist() == [1, 0, 2, 0]
    assert labels.loc["a", "distortion_explanation"] == "bent arm" + EXPLANATION_SEPARATOR + "six fingers"
    assert pd.isna(labels.loc["b", "distortion"]) and labels.loc["b", "distortion_explanation"] == ""


def test_simulated_panel_follows_the_contract_and_is_seeded(card, tmp_path):
    images = demo_images()
    ratings, answers, truth = simulate_panel(images, card, n_subjects=10, n_outliers=2, seed=3)
    again = simulate_panel(images, card, n_subjects=10, n_outliers=2, seed=3)[0]
    pd.testing.assert_frame_equal(ratings, again)
    assert list(ratings.columns) == ["subject_id", "image_id", "perspective", "score"]
    assert list(answers.columns) == ["subject_id", "image_id", "question", "level", "explanation"]
    assert len(ratings) == 10 * len(images) * 3
    assert ratings["score"].between(0, 5).all() and (ratings["score"] % 1 == 0).all()
    assert truth["simulated"] and truth["outliers"] == ["sim09", "sim10"]
    levels = {q["name"]: len(q["levels"]) for q in card["questions"]}
    assert (answers["level"] <= answers["question"].map(levels)).all() and (answers["level"] >= 1).all()
    # The database folder accepts them as they are.
    folder = DatabaseFolder(tmp_path / "db")
    folder.write({"images": images.assign(path="images/x.png"), "ratings": ratings, "answers": answers},
                 card=card, stage="test")
    assert len(folder.validate()["answers"]) == len(answers)


def test_build_mos_on_a_simulated_folder_in_place(simulated_folder, capsys):
    assert main(["build-mos", str(simulated_folder.root)]) == 0
    printed = capsys.readouterr().out
    tables = simulated_folder.validate()
    mos, labels = tables["mos"], tables["labels"]
    assert len(mos) == len(labels) == 36
    assert {"quality_mos", "quality_std", "quality_ci95", "quality_n"} <= set(mos.columns)
    report = simulated_folder.read_json("screening.json")
    planted = set(simulated_folder.truth["outliers"])
    caught = set().union(*(set(p["rejected"]) for p in report["perspectives"].values()))
    assert planted & caught, report
    for name in ("mos_histograms", "screening", "levels_overall", "levels_by_generator"):
        assert (simulated_folder.root / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    card = simulated_folder.read_card()
    assert card["mos_range"] == [0, 100] and "build-mos" in card["provenance"]
    assert "mos.csv (36 images)" in printed
    true = simulated_folder.truth["true_scores"].set_index("image_id").loc[mos["image_id"]]
    assert np.corrcoef(mos["quality_mos"], true["quality"])[0, 1] > 0.9


def test_screen_first_order_and_score_outlier_rate_in_summary_and_screening_json(simulated_folder, capsys):
    assert main(["build-mos", str(simulated_folder.root), "--no-figures", "--order", "screen-first",
                 "--remove-score-outliers"]) == 0
    printed = capsys.readouterr().out
    report = simulated_folder.read_json("screening.json")
    assert report["order"] == "screen-first" and report["screened_values"] == "raw scores"
    per = [p["score_outliers"] for p in report["perspectives"].values()]
    removed, of = sum(p["removed"] for p in per), sum(p["of"] for p in per)
    assert report["score_outliers"] == {"removed": removed, "of": of, "rate": removed / of} and removed > 0
    assert f"score outliers removed: {removed} of {of} scores ({100 * removed / of:.2f} %)" in printed
    mos = simulated_folder.read_table("mos")
    assert (mos["quality_mos"].between(-20, 120)).all()  # z-scores rescaled, not raw 0-5 scores
    from aigciqa.errors import InputError
    from aigciqa.mos.aggregate import MosOptions
    with pytest.raises(InputError, match="screen-first"):  # "did you mean"
        MosOptions(order="screen-frist").check()


def test_rerun_gives_the_same_files(simulated_folder):
    assert main(["build-mos", str(simulated_folder.root)]) == 0
    first = {p: (simulated_folder.root / p).read_bytes() for p in ("mos.csv", "labels.csv", "screening.json")}
    assert main(["build-mos", str(simulated_folder.root)]) == 0
    assert first == {p: (simulated_folder.root / p).read_bytes() for p in first}


def test_out_folder_gets_ratings_and_outputs_and_can_be_rebuilt(tmp_path, shared_data):
    out = tmp_path / "out"
    src = shared_data / "sureal" / "NFLX_dataset_public_raw_last4outliers.json"
    assert main(["build-mos", str(src), "-o", str(out), "--scale", "1", "5", "--no-zscore"]) == 0
    folder = DatabaseFolder(out)
    tables = folder.validate()
    assert len(tables["ratings"]) == 79 * 30 and folder.read_card()["mos_range"] == [1, 5]
    assert folder.read_json("screening.json")["perspectives"]["quality"]["rejected"] == ["26", "28", "29"]
    assert main(["build-mos", str(out), "--no-figures"]) == 0   # the folder alone is enough to rebuild
    assert folder.read_card()["mos_range"] == [0, 100]


def test_sureal_export_command(tmp_path, simulated_folder):
    out = tmp_path / "q.json"
    assert main(["sureal-export", str(simulated_folder.root), str(out)]) == 2  # 3 perspectives: which?
    assert not out.exists()
    assert main(["sureal-export", str(simulated_folder.root), str(out), "--perspective", "quality"]) == 0
    data = json.loads(out.read_text())
    assert len(data["dis_videos"]) == 36 and len(data["dis_videos"][0]["os"]) == 16


def test_help_has_summary_and_example(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["build-mos", "--help"])
    text = capsys.readouterr().out
    assert "BT.500" in text and "example:" in text and "--scope" in text


def test_demo_step_reports_the_planted_outliers(tmp_path):
    from aigciqa.demo import DemoContext, example_folder
    from aigciqa.mos.demo import demo_step
    context = DemoContext(out=tmp_path)
    example_folder(context)
    summary = demo_step(context)
    assert "SIMULATED" in summary and "planted random raters" in summary and "caught" in summary
    assert context.folder.has("mos") and context.folder.has("labels")
    assert context.folder.read_card()["synthetic"] is True


@pytest.mark.slow
def test_build_mos_on_a_folder_made_by_the_importer(tmp_path, shared_data):
    """The foundation importer's folder plus a (simulated) annotation export: build-mos replaces the
    published mos.csv and labels.csv with its own, for the images that were rated."""
    db = tmp_path / "db"
    assert main(["import", "aigciqa2023", str(shared_data / "aigciqa2023"), str(db)]) == 0
    folder = DatabaseFolder(db)
    card = folder.read_card()
    images = folder.read_table("images", card).head(120)
    ratings, answers, truth = simulate_panel(images, card, n_subjects=12, n_outliers=2, seed=0)
    folder.write({"ratings": ratings, "answers": answers}, card=card, stage="test")
    assert main(["build-mos", str(db), "--no-figures"]) == 0
    tables = folder.validate()
    assert tables["mos"]["image_id"].tolist() == images["image_id"].tolist()
    assert len(tables["labels"]) == 120
    report = folder.read_json("screening.json")
    assert all(set(truth["outliers"]) & set(p["rejected"]) for p in report["perspectives"].values())
