"""Every bad input of the issue: one InputError naming file, record and field; exit 2; nothing written."""

import json

import pandas as pd
import pytest

from aigciqa.cli import main
from aigciqa.database import DatabaseFolder, default_card
from aigciqa.errors import InputError
from aigciqa.mos.build import run_build_mos

HEADER = "subject_id,image_id,perspective,score\n"


def long_csv(tmp_path, lines, name="ratings.csv"):
    path = tmp_path / name
    path.write_text(HEADER + "".join(line + "\n" for line in lines))
    return path


GOOD = ["s1,a,quality,1", "s1,b,quality,3", "s2,a,quality,2", "s2,b,quality,4"]


def expect_error(tmp_path, src, *, row, field, words, out="out", args=()):
    out_path = tmp_path / out
    with pytest.raises(InputError) as caught:
        run_build_mos(src, out_path if out else None)
    error = caught.value
    assert (error.row, error.field) == (row, field), str(error)
    assert str(src) in error.file or error.file.startswith(str(src))
    assert words in error.message, error.message
    # The command line: one line on stderr, exit 2, nothing written.
    assert main(["build-mos", str(src), *(["-o", str(out_path)] if out else []), *args]) == 2
    assert not out_path.exists()
    return error


def test_good_long_csv_builds(tmp_path):
    outcome = run_build_mos(long_csv(tmp_path, GOOD), tmp_path / "out")
    assert outcome.result.table["quality_n"].tolist() == [2, 2]


def test_score_outside_the_scale(tmp_path):
    src = long_csv(tmp_path, GOOD[:3] + ["s2,b,quality,7"])
    expect_error(tmp_path, src, row=4, field="score", words="outside the scale 0-5")


def test_score_outside_a_declared_scale(tmp_path):
    src = long_csv(tmp_path, GOOD[:1] + ["s1,b,quality,0"] + GOOD[2:])
    with pytest.raises(InputError) as caught:
        run_build_mos(src, tmp_path / "out", scale=(1, 5))
    assert (caught.value.row, caught.value.field) == (2, "score")


def test_non_numeric_score(tmp_path):
    src = long_csv(tmp_path, GOOD[:2] + ["s2,a,quality,good"] + GOOD[3:])
    expect_error(tmp_path, src, row=3, field="score", words="'good' is not a number")


def test_missing_score(tmp_path):
    src = long_csv(tmp_path, GOOD[:1] + ["s1,b,quality,"] + GOOD[2:])
    expect_error(tmp_path, src, row=2, field="score", words="missing")


def test_triple_given_twice(tmp_path):
    src = long_csv(tmp_path, GOOD + ["s1,b,quality,2"])
    expect_error(tmp_path, src, row=5, field="perspective", words="duplicate")


def test_subject_with_too_few_ratings_to_zscore(tmp_path):
    src = long_csv(tmp_path, GOOD + ["s3,a,quality,2"])
    error = expect_error(tmp_path, src, row=5, field="subject_id", words="at least 2 are needed to z-score")
    assert "s3" in error.message
    # Without z-scores that subject is fine.
    assert run_build_mos(src, tmp_path / "raw", options=_raw()).result.table["quality_n"].tolist() == [3, 2]


def test_subject_with_one_repeated_score_cannot_be_zscored(tmp_path):
    src = long_csv(tmp_path, GOOD + ["s3,a,quality,2", "s3,b,quality,2"])
    expect_error(tmp_path, src, row=5, field="subject_id", words="same 'quality' score")


def _raw():
    from aigciqa.mos.aggregate import MosOptions
    return MosOptions(zscore=False)


@pytest.fixture
def folder(tmp_path):
    folder = DatabaseFolder(tmp_path / "db")
    images = pd.DataFrame({"image_id": ["a", "b"], "path": ["images/a.png", "images/b.png"]})
    folder.write({"images": images}, card=default_card("t", perspectives=["quality"]), stage="test")
    return folder


def write_ratings(folder, lines):
    folder.table_path("ratings").write_text(HEADER + "".join(line + "\n" for line in lines))


def expect_folder_error(folder, *, row, field, words):
    before = sorted(p.name for p in folder.root.iterdir())
    with pytest.raises(InputError) as caught:
        run_build_mos(folder.root)
    error = caught.value
    assert (error.row, error.field) == (row, field), str(error)
    assert error.file.endswith("ratings.csv") and words in error.message
    assert main(["build-mos", str(folder.root)]) == 2
    assert sorted(p.name for p in folder.root.iterdir()) == before  # nothing written


def test_folder_unknown_image_id(folder):
    write_ratings(folder, GOOD[:3] + ["s2,zz,quality,4"])
    expect_folder_error(folder, row=4, field="image_id", words="'zz' is not in images.csv")


def test_folder_perspective_absent_from_the_card(folder):
    write_ratings(folder, GOOD + ["s1,a,beauty,3"])
    expect_folder_error(folder, row=5, field="perspective", words="'beauty' is not in the card")


def test_folder_score_outside_the_card_scale(folder):
    write_ratings(folder, GOOD[:1] + ["s1,b,quality,-1"] + GOOD[2:])
    expect_folder_error(folder, row=2, field="score", words="outside the scale")


def test_folder_repeated_rating_is_an_error_unless_declared(folder):
    write_ratings(folder, GOOD + ["s1,a,quality,2"])
    expect_folder_error(folder, row=5, field="perspective", words="duplicate")
    card = folder.read_card()
    card["repeated_ratings"] = True
    folder.write(card=card)
    outcome = run_build_mos(folder.root)
    assert outcome.result.table.set_index("image_id")["quality_n"].to_dict() == {"a": 3, "b": 2}


def test_folder_subject_with_too_few_ratings(folder):
    write_ratings(folder, GOOD + ["s3,b,quality,4"])
    expect_folder_error(folder, row=5, field="subject_id", words="z-score")


def test_wide_matrix_non_numeric_cell_names_record_and_subject_column(tmp_path):
    src = tmp_path / "matrix.csv"
    src.write_text("image_id,ann,bob\nx,1,2\ny,3,oops\n")
    expect_error(tmp_path, src, row=2, field="bob", words="'oops' is not a number")


def test_wide_matrix_without_header_names_the_column(tmp_path):
    src = tmp_path / "matrix.csv"
    src.write_text("1,2,nan\n3,9,4\n")
    expect_error(tmp_path, src, row=2, field="column 2", words="outside the scale")


def test_sureal_json_bad_score_names_entry_and_subject(tmp_path):
    src = tmp_path / "d.json"
    src.write_text(json.dumps({"dis_videos": [{"asset_id": 7, "os": {"ann": 1, "bob": 2}},
                                              {"asset_id": 8, "os": {"ann": 3, "bob": "x"}}]}))
    expect_error(tmp_path, src, row=2, field="os/bob", words="not a number")


def test_sureal_json_without_dis_videos(tmp_path):
    src = tmp_path / "d.json"
    src.write_text(json.dumps({"videos": []}))
    expect_error(tmp_path, src, row=None, field="dis_videos", words="dis_videos")


def test_out_must_be_a_database_or_empty_folder(tmp_path):
    src = long_csv(tmp_path, GOOD)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="new folder or an empty one"):
        run_build_mos(src, tmp_path / "busy")
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["notes.txt"]


def test_a_file_source_needs_out(tmp_path):
    with pytest.raises(InputError, match="-o OUT is required"):
        run_build_mos(long_csv(tmp_path, GOOD))


def test_scale_flag_must_agree_with_a_folder_card(folder):
    write_ratings(folder, GOOD)
    with pytest.raises(InputError) as caught:
        run_build_mos(folder.root, scale=(1, 5))
    assert caught.value.field == "scale"
    assert main(["build-mos", str(folder.root), "--scale", "1", "5"]) == 2
    with pytest.raises(SystemExit) as usage:  # an empty range is a usage error before anything is read
        main(["build-mos", str(folder.root), "--scale", "5", "1"])
    assert usage.value.code == 2
