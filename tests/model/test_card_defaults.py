"""Optional card fields read the same way in every stage: a card without ``mos_range`` means 0-100 to the
model and to build-vqa alike (no KeyError), and a missing required field is one clear error."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aigciqa.database.card import CARD_DEFAULTS, card_value, default_card
from aigciqa.errors import InputError

ROOT = Path(__file__).resolve().parents[2]  # subprocesses import this checkout's code


def drop_card_fields(folder, *names):
    path = folder.root / "dataset.json"
    card = json.loads(path.read_text())
    for name in names:
        card.pop(name, None)
    path.write_text(json.dumps(card))


def test_card_value_gives_the_default_of_an_optional_field_and_names_a_missing_required_one():
    card = default_card("x")
    del card["mos_range"], card["generators"]
    assert card_value(card, "mos_range") == [0, 100] == CARD_DEFAULTS["mos_range"]
    assert card_value(card, "synthetic") is False and card_value(card, "provenance") == {}
    card_value(card, "generators").append("changed")  # a default is a copy: the next reader sees it unchanged
    assert card_value(card, "generators") == []
    del card["perspectives"]
    with pytest.raises(InputError, match="field 'perspectives'"):
        card_value(card, "perspectives")


def test_a_card_without_optional_fields_reads_alike_in_the_model_and_build_vqa(make_folder, tmp_path):
    from aigciqa.model.data import load_model_data
    from aigciqa.qa_builder.inputs import load_inputs
    folder = make_folder(tmp_path / "db")
    drop_card_fields(folder, *[k for k in CARD_DEFAULTS if k != "provenance"])
    model_data = load_model_data(folder.root, split="split1")
    assert tuple(model_data.mos_range) == (0, 100)
    assert tuple(load_inputs(folder).mos_range) == (0, 100)


def test_info_and_train_do_not_trace_back_on_a_card_without_optional_fields(make_folder, tmp_path):
    folder = make_folder(tmp_path / "db", n_prompts=8, per_prompt=2)
    drop_card_fields(folder, *CARD_DEFAULTS)
    for command in (["info", str(folder.root)],
                    ["train", "scorer", str(folder.root), "--split", "split1", "--epochs", "1", "--cpu", "--quiet"]):
        done = subprocess.run([sys.executable, "-m", "aigciqa", *command], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_a_card_without_mos_range_holds_mos_to_0_100_in_every_stage(make_folder, tmp_path):
    """The folder's own check, build-vqa and training agree: absent mos_range means 0-100, so a MOS of 150
    is refused by each with exit 2 and one line naming mos.csv, the record and the field."""
    import pandas as pd
    folder = make_folder(tmp_path / "db", n_prompts=8, per_prompt=2)
    drop_card_fields(folder, "mos_range")
    mos = pd.read_csv(folder.root / "mos.csv")
    mos.loc[2, "quality_mos"] = 150.0
    mos.to_csv(folder.root / "mos.csv", index=False)
    before = sorted(p.name for p in folder.root.iterdir())
    for command in (["info", str(folder.root)],
                    ["build-vqa", str(folder.root), "--no-llm"],
                    ["train", "scorer", str(folder.root), "--split", "split1", "--epochs", "1", "--cpu", "--quiet"]):
        done = subprocess.run([sys.executable, "-m", "aigciqa", *command], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert "mos.csv" in lines[0] and "quality_mos" in lines[0] and "150" in lines[0], lines[0]
        assert "record 3" in lines[0] or "row 3" in lines[0], lines[0]
    assert sorted(p.name for p in folder.root.iterdir()) == before  # nothing written
