"""Optional card fields read the same way in every stage: a card without ``mos_range`` means 0-100 to the
model and to build-vqa alike (no KeyError), and a missing required field is one clear error."""

import json
import subprocess
import sys

import pytest

from aigciqa.database.card import CARD_DEFAULTS, card_value, default_card
from aigciqa.errors import InputError


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
        done = subprocess.run([sys.executable, "-m", "aigciqa", *command], capture_output=True, text=True)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
