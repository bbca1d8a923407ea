"""Embedded prompt sets and the category x challenge grid drawn from PartiPrompts."""

import pandas as pd
import pytest

from aigciqa.cli import main
from aigciqa.database import DatabaseFolder
from aigciqa.datasets.prompt_sets import (AIGCIQA2023_CATEGORIES, AIGCIQA2023_CHALLENGES, load_prompt_set,
                                          read_parti_tsv, select_prompt_grid)
from aigciqa.errors import InputError


@pytest.fixture
def parti_path(shared_data):
    return shared_data / "parti" / "PartiPrompts.tsv"


@pytest.fixture
def parti(parti_path):
    return read_parti_tsv(parti_path)


def test_embedded_set_is_the_published_list(shared_data):
    embedded = load_prompt_set("aigciqa2023")
    published = pd.read_csv(shared_data / "aigciqa2023" / "AIGCIQA2023_prompts.csv", dtype=str,
                            keep_default_na=False)
    assert embedded.to_dict("list") == published[embedded.columns].to_dict("list")
    assert embedded.loc[embedded["prompt_id"].isin(["22", "54"]), "prompt"].str.endswith(" ").all()


def test_default_grid_is_the_aigciqa2023_grid():
    embedded = load_prompt_set("aigciqa2023")
    # Prompt ids run challenge-major: ids 0-9 are the first challenge, one per category in order.
    assert tuple(embedded["challenge"].iloc[::10]) == AIGCIQA2023_CHALLENGES
    categories = embedded["category"].to_numpy().reshape(10, 10)
    for position, category in enumerate(AIGCIQA2023_CATEGORIES):
        labels = set(categories[:, position])
        # Id 57 (Indoor Scenes' Style & Format slot) is labelled Arts in the database.
        assert labels == ({category, "Arts"} if category == "Indoor Scenes" else {category})


def test_read_parti_keeps_prompts_verbatim(parti):
    assert len(parti) == 1632
    assert parti["Prompt"].str.endswith(" ").sum() == 9
    assert parti["Prompt"].str.startswith('"').any()  # quotes are part of the prompt
    assert parti["Category"].nunique() == 12 and parti["Challenge"].nunique() == 11


def test_grid_has_one_prompt_per_cell_and_reports_empty_cells(parti):
    selection = select_prompt_grid(parti, seed=0)
    counts = pd.crosstab(parti["Category"], parti["Challenge"])
    empty = [(category, challenge) for challenge in AIGCIQA2023_CHALLENGES for category in AIGCIQA2023_CATEGORIES
             if counts.loc[category, challenge] == 0]
    assert selection.missing == empty and ("Indoor Scenes", "Style & Format") in empty
    prompts = selection.prompts
    assert len(prompts) == 100 - len(empty)
    assert prompts["prompt_id"].tolist() == [str(i) for i in range(len(prompts))]
    assert not prompts.duplicated(["category", "challenge"]).any()
    # Each drawn prompt is a PartiPrompts prompt of its own cell, verbatim.
    cells = set(zip(parti["Prompt"], parti["Category"], parti["Challenge"]))
    assert all(row in cells for row in zip(prompts["prompt"], prompts["category"], prompts["challenge"]))
    assert selection.candidates[("Animals", "Basic")] == counts.loc["Animals", "Basic"]


def test_grid_is_seeded_and_independent_of_row_order_and_other_cells(parti):
    first = select_prompt_grid(parti, seed=1).prompts
    assert first.equals(select_prompt_grid(parti, seed=1).prompts)
    assert (first["prompt"] != select_prompt_grid(parti, seed=2).prompts["prompt"]).sum() > 50
    shuffled = parti.sample(frac=1, random_state=0)
    assert first.equals(select_prompt_grid(shuffled, seed=1).prompts)
    # A cell's draw does not change when the grid around it changes.
    small = select_prompt_grid(parti, categories=["Animals"], challenges=["Basic", "Complex"], seed=1).prompts
    full = first.set_index(["category", "challenge"])["prompt"]
    assert [full[("Animals", c)] for c in ("Basic", "Complex")] == small["prompt"].tolist()


def test_custom_grid_with_an_empty_cell(parti):
    selection = select_prompt_grid(parti, categories=["Indoor Scenes", "animals"],
                                   challenges=["Style & Format", "Basic"], seed=0)
    assert selection.missing == [("Indoor Scenes", "Style & Format")]
    assert list(zip(selection.prompts["category"], selection.prompts["challenge"])) == [
        ("Animals", "Style & Format"), ("Indoor Scenes", "Basic"), ("Animals", "Basic")]


def test_unknown_category_gets_a_suggestion(parti):
    with pytest.raises(InputError, match="did you mean 'animals'") as error:
        select_prompt_grid(parti, categories=["Animls"], file="parti.tsv")
    assert (error.value.file, error.value.field) == ("parti.tsv", "Category")
    with pytest.raises(InputError, match="twice"):
        select_prompt_grid(parti, challenges=["Basic", "basic"])


@pytest.mark.parametrize("text, row, field, message", [
    ("", None, None, "empty"),
    ("Prompt\tCategory\tNote\na cat\tAnimals\t\n", None, "Challenge", "missing"),
    ("Prompt\tCategory\tChallenge\tNote\n", None, None, "header only"),
    ("Prompt\tCategory\tChallenge\tNote\na cat\tAnimals\tBasic\t\na dog\tAnimals\n", 2, None, "fields"),
    ("Prompt\tCategory\tChallenge\tNote\na cat\tAnimals\tBasic\t\na dog\t \tBasic\t\n", 2, "Category", "missing"),
])
def test_bad_tsv_names_file_record_and_field(tmp_path, text, row, field, message):
    path = tmp_path / "parti.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message) as error:
        read_parti_tsv(path)
    assert (error.value.file, error.value.row, error.value.field) == (str(path), row, field)


def test_tsv_that_is_not_utf8(tmp_path):
    path = tmp_path / "parti.tsv"
    path.write_bytes("Prompt\tCategory\tChallenge\tNote\ncaf\u00e9\tFood\tBasic\t\n".encode("latin-1"))
    with pytest.raises(InputError, match="utf-8.*line 2"):
        read_parti_tsv(path)


# ---- command line ------------------------------------------------------------------------------
def test_cli_select_to_a_new_database_folder(parti_path, tmp_path, capsys):
    out = tmp_path / "new-db"
    assert main(["prompts", "select", str(parti_path), "-o", str(out), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "95 prompts drawn for 100 cells" in printed and "Indoor Scenes x Style & Format" in printed
    folder = DatabaseFolder(out)
    tables = folder.validate()
    expected = select_prompt_grid(read_parti_tsv(parti_path), seed=3).prompts
    assert tables["prompts"].to_dict("list") == expected.to_dict("list")
    assert folder.read_card()["provenance"]["prompts"]["command"].startswith("aigciqa")


def test_cli_select_to_csv_with_a_custom_grid(parti_path, tmp_path, capsys):
    out = tmp_path / "grid.csv"
    assert main(["prompts", "select", str(parti_path), "-o", str(out), "--categories", "Indoor Scenes",
                 "People", "--challenges", "Style & Format", "Writing & Symbols", "Basic"]) == 0
    printed = capsys.readouterr().out
    assert "2 cell(s) have no prompt" in printed and "People x Writing & Symbols" in printed
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(written.columns) == ["prompt_id", "prompt", "category", "challenge"]
    assert len(written) == 4


def test_cli_select_bad_input_exits_2_and_writes_nothing(parti_path, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("Prompt\tCategory\tNote\na cat\tAnimals\t\n", encoding="utf-8")
    assert main(["prompts", "select", str(bad), "-o", str(tmp_path / "db")]) == 2
    assert "field 'Challenge'" in capsys.readouterr().err
    assert not (tmp_path / "db").exists()
    assert main(["prompts", "select", str(parti_path), "-o", str(tmp_path / "g.csv"),
                 "--categories", "Nope"]) == 2
    assert not (tmp_path / "g.csv").exists()
    # An existing database folder is never overwritten.
    assert main(["prompts", "select", str(parti_path), "-o", str(tmp_path / "db2")]) == 0
    before = (tmp_path / "db2" / "prompts.csv").read_bytes()
    assert main(["prompts", "select", str(parti_path), "-o", str(tmp_path / "db2"), "--seed", "9"]) == 2
    assert "already a database folder" in capsys.readouterr().err
    assert (tmp_path / "db2" / "prompts.csv").read_bytes() == before


def test_cli_show_prints_the_embedded_set(capsys):
    assert main(["prompts", "show"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "prompt_id,prompt,category,challenge" and len(lines) == 101
    assert main(["prompts", "show", "aigciqa2024"]) == 2
    assert "did you mean 'aigciqa2023'" in capsys.readouterr().err


def test_empty_cells_are_where_aigciqa2023_left_partiprompts(parti):
    """AIGCIQA2023 filled each cell that PartiPrompts leaves empty with its own or a relabelled prompt."""
    embedded = load_prompt_set("aigciqa2023")
    slots = {(AIGCIQA2023_CATEGORIES[i % 10], AIGCIQA2023_CHALLENGES[i // 10]): row
             for i, row in enumerate(embedded.itertuples())}
    parti_rows = set(zip(parti["Prompt"], parti["Category"], parti["Challenge"]))
    missing = select_prompt_grid(parti).missing
    assert len(missing) == 5
    for category, challenge in missing:
        row = slots[(category, challenge)]
        assert (row.prompt, category, challenge) not in parti_rows, row.prompt_id
    assert sorted(int(slots[cell].prompt_id) for cell in missing) == [57, 61, 64, 87, 96]
