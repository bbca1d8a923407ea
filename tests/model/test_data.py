"""What the model reads: ids of mos.csv that are not in images.csv are refused as `aigciqa info` refuses them."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from aigciqa.cli import main

TRAIN = ["--split", "split1", "--epochs", "1", "--lr", "1e-3", "--quiet", "--cpu"]


def _mistype_mos_id(folder, record):
    """mos.csv with the image id of ``record`` (1-based) replaced by one images.csv does not list."""
    path = folder.table_path("mos")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[record] = "99999" + lines[record][lines[record].index(","):]
    path.write_text("".join(lines), encoding="utf-8")


def test_train_and_evaluate_name_a_mos_id_missing_from_images(make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db")
    expected = "mos.csv, record 3, field 'image_id': image_id '99999' is not in images.csv"
    clean = folder.table_path("mos").read_bytes()
    _mistype_mos_id(folder, 3)
    for command in (["info", str(folder.root)], ["train", "scorer", str(folder.root), *TRAIN]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].endswith(expected), (command, err)
    assert not (folder.root / "runs").exists()

    folder.table_path("mos").write_bytes(clean)
    assert main(["train", "scorer", str(folder.root), *TRAIN]) == 0
    run = folder.root / "runs" / "mint-iqa-tiny"
    _mistype_mos_id(folder, 3)
    capsys.readouterr()
    assert main(["evaluate", str(folder.root), "--model", str(run), "--split", "split1", "--part", "test"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(expected), err


def test_train_names_a_short_record_as_info_does(make_folder, tmp_path, capsys):
    """The cell-count check is the shared table reader's, so every command that reads mos.csv makes it."""
    folder = make_folder(tmp_path / "db")
    path = folder.table_path("mos")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].split(",")[0] + "\n"  # record 2 keeps only its image id
    path.write_text("".join(lines), encoding="utf-8")
    for command in (["info", str(folder.root)], ["train", "scorer", str(folder.root), *TRAIN]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].endswith(f"{path}, record 2 (line 3): has 1 cell where the header has 3"), err
    assert not (folder.root / "runs").exists()
