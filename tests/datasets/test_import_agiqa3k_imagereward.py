"""``aigciqa import agiqa3k`` and ``imagereward`` on the real published files, and small fixtures."""

import collections
import itertools
import json
from decimal import Decimal

import pandas as pd
import pytest

from aigciqa.cli import main
from aigciqa.database import DatabaseFolder
from aigciqa.datasets.importers import import_database, read_database
from aigciqa.datasets.importers.imagereward import untied_pairs
from aigciqa.errors import InputError


# ---- AGIQA-3K ------------------------------------------------------------------------------------
def test_agiqa3k_real_file(shared_data, tmp_path):
    source = shared_data / "agiqa3k" / "data.csv"
    summary = import_database("agiqa3k", source, tmp_path / "db")
    assert summary.rows == {"prompts": 300, "images": 2982, "mos": 2982}
    folder = DatabaseFolder(tmp_path / "db")
    tables = folder.validate()
    card = folder.read_card()
    assert card["perspectives"] == ["quality", "correspondence"] and card["questions"] == []
    assert card["mos_range"] == [0, 5]
    assert "correspondence" in card["source"]["perspectives"]["correspondence"]
    assert set(card["source"]["generator_names"].values()) == {
        "AttnGAN", "DALLE2", "glide", "midjourney", "sd1.5", "xl2.2"}

    published = pd.read_csv(source, dtype=str, keep_default_na=False)
    images, mos, prompts = tables["images"], tables["mos"], tables["prompts"].set_index("prompt_id")
    assert images["path"].tolist() == [f"images/{name}" for name in published["name"]]
    generators = collections.Counter(images["generator"])
    assert generators == {"attngan": 300, "dalle2": 290, "glide": 300, "midjourney": 592, "sd1_5": 1200,
                          "xl2_2": 300}
    variants = collections.Counter(zip(images["generator"], images["variant"]))
    assert variants[("sd1_5", "lowstep")] == 300 and variants[("midjourney", "lowstep")] == 296
    # every image's prompt (and its parts) is the published one
    assert (prompts.loc[images["prompt_id"], "prompt"].to_numpy() == published["prompt"].to_numpy()).all()
    for column in ("adj1", "adj2", "style"):
        assert (prompts.loc[images["prompt_id"], column].to_numpy() == published[column].to_numpy()).all()
    written = pd.read_csv(folder.table_path("mos"), dtype=str, keep_default_na=False)
    for target, origin in (("quality_mos", "mos_quality"), ("correspondence_mos", "mos_align"),
                           ("quality_std", "std_quality"), ("correspondence_std", "std_align")):
        assert [Decimal(v) for v in written[target]] == [Decimal(v) for v in published[origin]]
    assert 4.4 < mos["quality_mos"].max() <= 5 and mos["correspondence_mos"].max() <= 5


def test_agiqa3k_bad_name_and_inconsistent_prompt_parts(tmp_path):
    header = "name,prompt,adj1,adj2,style,mos_quality,std_quality,mos_align,std_align\n"
    path = tmp_path / "data.csv"
    path.write_text(header + "sd1.5_normal_000.jpg,a cat,,,anime style,1,0.5,2,0.5\n"
                             "xl2.2_normal_000.jpg,a cat,,,baroque style,1,0.5,2,0.5\n")
    with pytest.raises(InputError) as error:
        read_database("agiqa3k", path)
    assert (error.value.row, error.value.field) == (2, "style") and "record 1" in str(error.value)
    path.write_text(header + "sd1.5-normal.jpg,a cat,,,,1,0.5,2,0.5\n")
    with pytest.raises(InputError) as error:
        read_database("agiqa3k", path)
    assert (error.value.row, error.value.field) == (1, "name")
    path.write_text(header + "sd1.5_normal_000.jpg,a cat,,,,5.5,0.5,2,0.5\n")
    with pytest.raises(InputError) as error:
        read_database("agiqa3k", path)
    assert (error.value.row, error.value.field) == (1, "mos_quality") and "outside 0-5" in str(error.value)


# ---- ImageReward --------------------------------------------------------------------------------
def test_untied_pairs_skip_ties_and_put_the_better_first():
    assert untied_pairs([1, 1, 2]) == [(0, 2), (1, 2)]
    assert untied_pairs([3, 1, 2]) == [(1, 0), (2, 0), (1, 2)]
    assert untied_pairs([2, 2, 2]) == []


def test_imagereward_real_file(shared_data, tmp_path):
    source = shared_data / "imagereward" / "test.json"
    summary = import_database("imagereward", source, tmp_path / "db")
    assert summary.rows == {"prompts": 466, "images": 2720, "pairs": 6399}
    folder = DatabaseFolder(tmp_path / "db")
    tables = folder.validate()
    card = folder.read_card()
    assert card["perspectives"] == ["preference"] and card["questions"] == []
    images = tables["images"].set_index("image_id")
    rank = images["rank"].astype(int)
    pairs = tables["pairs"]
    assert len(pairs) == 6399
    assert not pairs.duplicated(["better_image_id", "worse_image_id"]).any()
    better, worse = rank.loc[pairs["better_image_id"]].to_numpy(), rank.loc[pairs["worse_image_id"]].to_numpy()
    assert (better < worse).all()  # so no tie ever becomes a pair
    assert (images.loc[pairs["better_image_id"], "prompt_id"].to_numpy() == pairs["prompt_id"].to_numpy()).all()
    assert (images.loc[pairs["worse_image_id"], "prompt_id"].to_numpy() == pairs["prompt_id"].to_numpy()).all()
    # every untied comparison of the source is there, once
    records = json.loads(source.read_text("utf-8"))
    expected = {(f"{r['id']}-{i + 1}", f"{r['id']}-{j + 1}") if r["ranking"][i] < r["ranking"][j]
                else (f"{r['id']}-{j + 1}", f"{r['id']}-{i + 1}")
                for r in records for i, j in itertools.combinations(range(len(r["ranking"])), 2)
                if r["ranking"][i] != r["ranking"][j]}
    assert set(zip(pairs["better_image_id"], pairs["worse_image_id"])) == expected
    first = records[0]
    assert images.loc[f"{first['id']}-1", "path"] == "images/" + first["generations"][0]


@pytest.mark.parametrize("record, field, words", [
    ({"id": "a", "prompt": "p", "generations": ["x.webp", "y.webp"], "ranking": [1]}, "ranking", "1 ranks"),
    ({"id": "a", "prompt": "p", "generations": ["x.webp", "y.webp"], "ranking": [1, "2"]}, "ranking", "whole"),
    ({"id": "a", "prompt": "p", "generations": ["../x.webp"], "ranking": [1]}, "generations", "outside"),
    ({"id": "a", "generations": ["x.webp"], "ranking": [1]}, "prompt", "missing"),
])
def test_imagereward_bad_records(tmp_path, record, field, words):
    path = tmp_path / "test.json"
    good = {"id": "z", "prompt": "q", "generations": ["z1.webp", "z2.webp"], "ranking": [1, 2]}
    path.write_text(json.dumps([good, record]))
    with pytest.raises(InputError) as error:
        read_database("imagereward", path)
    assert (error.value.row, error.value.field) == (2, field) and words in str(error.value)


def test_imagereward_duplicate_id_and_malformed_json_exit_2(tmp_path, capsys):
    path = tmp_path / "test.json"
    record = {"id": "a", "prompt": "p", "generations": ["x.webp", "y.webp"], "ranking": [1, 2]}
    path.write_text(json.dumps([record, {**record, "generations": ["u.webp", "v.webp"]}]))
    assert main(["import", "imagereward", str(path), str(tmp_path / "db")]) == 2
    err = capsys.readouterr().err
    assert "test.json, record 2, field 'id': duplicate id 'a'" in err
    path.write_text('[{"id": "a",')
    assert main(["import", "imagereward", str(path), str(tmp_path / "db")]) == 2
    assert "malformed JSON" in capsys.readouterr().err
    assert not (tmp_path / "db").exists()
