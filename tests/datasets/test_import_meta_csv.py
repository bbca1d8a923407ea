"""``aigciqa import meta-csv``: pyiqa-style metadata CSVs written by the test, presets and options."""

import pandas as pd
import pytest

from aigciqa.cli import main
from aigciqa.database import DatabaseFolder
from aigciqa.datasets.importers import import_database, read_database
from aigciqa.datasets.importers.meta_csv import PRESETS
from aigciqa.errors import InputError

KONIQ = ("img_name,mos,std,split,c1,c2,c3,c4,c5,c_total\n"
         "10004473376.jpg,77.3836206897,0.527277894494,training,0.0,0.0,0.238,0.695,0.066,105\n"
         "10007357496.jpg,68.7285714286,0.580003024795,test,0.0,0.031,0.468,0.489,0.010,96\n"
         "10043785683.jpg,71.2043269231,0.497974333332,validation,0.0,0.0,0.433,0.566,0.0,106\n")
TID = ("ref_name,dist_name,mos,std\n"
       "I01.BMP,I01_01_1.bmp,5.51429,0.13013\n"
       "I01.BMP,i01_01_2.bmp,5.56757,0.16008\n"
       "I02.BMP,I02_01_1.bmp,5.74286,0.12995\n")
AVA = ("img_name,MOS,c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,semantic_tag1,semantic_tag2,official split,ILGnet split\n"
       "953619.jpg,5.64,0,1,5,17,38,36,15,6,5,1,1,22,0,0\n"
       "953958.jpg,4.7,10,7,15,26,26,21,10,8,1,2,1,21,2,0\n"
       "954184.jpg,5.9,0,0,4,8,41,56,10,5,0,0,0,0,0,2\n")


def write(tmp_path, text, name="meta.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_presets_cover_the_classic_databases():
    assert set(PRESETS) == {"koniq10k", "spaq", "ava", "live", "csiq", "tid2013", "kadid10k", "clive"}


def test_koniq_preset_official_split_and_raw_std(tmp_path):
    summary = import_database("meta-csv", write(tmp_path, KONIQ), tmp_path / "db", preset="koniq10k")
    assert summary.rows == {"images": 3, "mos": 3, "splits": 3}
    folder = DatabaseFolder(tmp_path / "db")
    tables = folder.validate()
    card = folder.read_card()
    assert card["perspectives"] == ["quality"] and card["questions"] == [] and card["mos_range"] == [0, 100]
    assert card["scale"] == {"min": 1, "max": 5}
    assert tables["images"]["path"].tolist() == ["images/10004473376.jpg", "images/10007357496.jpg",
                                                 "images/10043785683.jpg"]
    assert tables["mos"]["quality_mos"].tolist() == [77.3836206897, 68.7285714286, 71.2043269231]
    assert tables["mos"]["quality_std_raw"].tolist() == [0.527277894494, 0.580003024795, 0.497974333332]
    assert tables["splits"]["official"].tolist() == ["train", "test", "val"]


def test_full_reference_keeps_the_reference_name(tmp_path):
    import_database("meta-csv", write(tmp_path, TID), tmp_path / "db", preset="tid2013")
    tables = DatabaseFolder(tmp_path / "db").validate()
    assert tables["images"]["ref_name"].tolist() == ["I01.BMP", "I01.BMP", "I02.BMP"]
    assert tables["images"]["image_id"].tolist() == ["I01_01_1.bmp", "i01_01_2.bmp", "I02_01_1.bmp"]
    assert tables["mos"]["quality_std"].tolist() == [0.13013, 0.16008, 0.12995]
    assert "splits" not in tables


def test_numeric_split_codes_are_mapped_explicitly(tmp_path):
    import_database("meta-csv", write(tmp_path, AVA), tmp_path / "db", preset="ava")
    splits = DatabaseFolder(tmp_path / "db").read_table("splits")
    assert splits["official"].tolist() == ["train", "test", "train"]
    assert splits["ilgnet"].tolist() == ["train", "train", "test"]


def test_dmos_presets_say_lower_is_better(tmp_path):
    csiq = write(tmp_path, "ref_name,dist_name,dmos\n1600.png,1600.AWGN.1.png,0.061989\n"
                           "1600.png,1600.AWGN.2.png,0.206245\n")
    result = read_database("meta-csv", csiq, preset="csiq")
    assert result.card["source"]["higher_is_better"] is False and result.card["mos_range"] == [0, 1]


def test_generic_options_through_the_cli(tmp_path, capsys):
    path = write(tmp_path, "file,score,sd,fold\na.png,3.5,0.4,0\nb.png,1.25,0.3,1\nc.png,4.0,,0\n")
    dest = tmp_path / "db"
    assert main(["import", "meta-csv", str(path), str(dest), "--name-column", "file", "--mos-column", "score",
                 "--std-column", "sd", "--mos-range", "1", "5", "--split", "fold=official",
                 "--split-values", "0=train,1=test", "--name", "mine"]) == 0
    out = capsys.readouterr().out
    assert "mos.csv" in out and "splits.csv" in out
    folder = DatabaseFolder(dest)
    tables = folder.validate()
    assert folder.read_card()["name"] == "mine"
    assert tables["mos"]["quality_mos"].tolist() == [3.5, 1.25, 4.0]
    assert tables["mos"]["quality_std"].isna().tolist() == [False, False, True]
    assert tables["splits"]["official"].tolist() == ["train", "test", "train"]


@pytest.mark.parametrize("text, options, record, field, words", [
    (KONIQ.replace("test,", "holdout,", 1), {"preset": "koniq10k"}, 2, "split", "'holdout' is not mapped"),
    (KONIQ.replace("68.7285714286", "680.7"), {"preset": "koniq10k"}, 2, "mos", "outside 0-100"),
    (KONIQ.replace("71.2043269231", "seventy"), {"preset": "koniq10k"}, 3, "mos", "not a finite number"),
    (KONIQ.replace("10043785683.jpg", "10004473376.jpg"), {"preset": "koniq10k"}, 3, "img_name", "duplicate"),
    (KONIQ.replace("10043785683.jpg", "../x.jpg"), {"preset": "koniq10k"}, 3, "img_name", "outside"),
    (TID.replace("ref_name", "reference"), {"preset": "tid2013"}, None, "ref_name", "missing"),
    (KONIQ, {"preset": "koniq10k", "std_column": "sd"}, None, "sd", "missing"),
])
def test_bad_metadata_is_named(tmp_path, text, options, record, field, words):
    with pytest.raises(InputError) as error:
        import_database("meta-csv", write(tmp_path, text), tmp_path / "db", **options)
    assert (error.value.row, error.value.field) == (record, field)
    assert words in str(error.value) and "meta.csv" in str(error.value)
    assert not (tmp_path / "db").exists()


def test_unknown_preset_and_option_errors(tmp_path, capsys):
    path = write(tmp_path, KONIQ)
    assert main(["import", "meta-csv", str(path), str(tmp_path / "db"), "--preset", "koniq"]) == 2
    assert "did you mean 'koniq10k'" in capsys.readouterr().err
    assert main(["import", "agiqa3k", str(path), str(tmp_path / "db"), "--preset", "koniq10k"]) == 2
    assert "does not apply to importer 'agiqa3k'" in capsys.readouterr().err
    assert main(["import", "meta-csv", str(path), str(tmp_path / "db"), "--split-values", "0train"]) == 2
    assert "--split-values" in capsys.readouterr().err
    assert not (tmp_path / "db").exists()


def test_wrong_encoding_and_missing_file_exit_2(tmp_path, capsys):
    path = tmp_path / "meta.csv"
    path.write_bytes(KONIQ.replace("training", "tr\u00e4ining", 1).encode("latin-1"))
    assert main(["import", "meta-csv", str(path), str(tmp_path / "db"), "--preset", "koniq10k"]) == 2
    assert "meta.csv" in (err := capsys.readouterr().err) and "not valid utf-8" in err
    assert main(["import", "meta-csv", str(tmp_path / "nope.csv"), str(tmp_path / "db")]) == 2
    assert "nope.csv" in (err := capsys.readouterr().err) and "not found" in err
    assert not (tmp_path / "db").exists()


def test_overwrite_keeps_other_tables_only_when_they_agree(tmp_path):
    path = write(tmp_path, KONIQ)
    dest = tmp_path / "db"
    import_database("meta-csv", path, dest, preset="koniq10k")
    with pytest.raises(InputError):
        import_database("meta-csv", path, dest, preset="koniq10k")
    summary = import_database("meta-csv", path, dest, preset="koniq10k", overwrite=True)
    assert summary.kept == []
    # a different image list would orphan the splits kept from before: refused, nothing changes
    before = pd.read_csv(dest / "images.csv")
    other = write(tmp_path, "img_name,mos\nz.jpg,50\n", "other.csv")
    with pytest.raises(InputError) as error:
        import_database("meta-csv", other, dest, overwrite=True)
    assert "splits.csv" in str(error.value) or "mos.csv" in str(error.value)
    assert pd.read_csv(dest / "images.csv").equals(before)


def test_a_table_kept_by_overwrite_that_no_longer_fits_is_named_as_kept(tmp_path, capsys):
    """--overwrite of another database's folder: a table this import does not write stays, and when it
    refers to images that are gone the error says that the table is a leftover and what to do."""
    dest = tmp_path / "db"
    import_database("meta-csv", write(tmp_path, KONIQ), dest, preset="koniq10k")  # images, mos, splits
    other = write(tmp_path, "img_name,mos\nz.jpg,50\n", "other.csv")  # writes images and mos, no splits
    assert main(["import", "meta-csv", str(other), str(dest), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "splits.csv" in err and "is kept from the database that was here" in err and "remove that file" in err


def test_images_already_in_dest_are_counted(tmp_path):
    dest = tmp_path / "db"
    (dest / "images").mkdir(parents=True)
    (dest / "images" / "10007357496.jpg").write_bytes(b"not checked at import")
    summary = import_database("meta-csv", write(tmp_path, KONIQ), dest, preset="koniq10k")
    assert (summary.images_listed, summary.images_on_disk) == (3, 1)
