"""``aigciqa import aigciqa2023`` on the real published files, record for record, and its bad inputs."""

import csv
import io
import shutil
from decimal import Decimal

import pandas as pd
import pytest

from aigciqa.cli import main
from aigciqa.database import DatabaseFolder
from aigciqa.datasets.importers import import_database
from aigciqa.datasets.importers.aigciqa2023 import (GENERATORS, LABELS_FILE, MOS_FILE, PROMPTS_FILE,
                                                    image_number, image_position)
from aigciqa.errors import DataWarning, InputError

PUBLISHED_GENERATORS = ["Controlnet", "DALLE", "Glide", "Lafite", "stable-diffusion", "Unidiffuser"]
_IMPORTED = {}


@pytest.fixture
def src(shared_data):
    return shared_data / "aigciqa2023"


@pytest.fixture
def imported(src, tmp_path_factory):
    """The real files imported once for this module: (folder, tables, summary, warning messages)."""
    if "db" not in _IMPORTED:
        dest = tmp_path_factory.mktemp("aigciqa2023") / "db"
        with pytest.warns(DataWarning) as caught:
            summary = import_database("aigciqa2023", src, dest)
        folder = DatabaseFolder(dest)
        _IMPORTED["db"] = (folder, folder.validate(), summary,
                           [str(w.message) for w in caught if issubclass(w.category, DataWarning)])
    return _IMPORTED["db"]


def published_labels(src):
    text = (src / LABELS_FILE).read_bytes().decode("gbk")
    return list(csv.reader(io.StringIO(text, newline="")))


def test_formula_round_trips():
    for number in range(2400):
        assert image_number(*image_position(number)) == number
    assert image_position(0) == (0, 0, 1) and image_position(2399) == (5, 99, 4)
    assert image_position(1203) == (3, 0, 4)


def test_counts_and_card(imported):
    folder, tables, summary, _ = imported
    assert {name: len(frame) for name, frame in tables.items()} == {
        "prompts": 100, "images": 2400, "mos": 2400, "labels": 2400}
    assert summary.rows == {"prompts": 100, "images": 2400, "mos": 2400, "labels": 2400}
    card = folder.read_card()
    assert card["mos_range"] == [0, 100]
    assert card["perspectives"] == ["quality", "authenticity", "correspondence"]
    assert card["generators"] == ["controlnet", "dalle", "glide", "lafite", "stable_diffusion", "unidiffuser"]
    assert list(card["source"]["generator_names"].values()) == PUBLISHED_GENERATORS
    assert card["provenance"]["import"]["tool_version"]


def test_prompts_verbatim(imported, src):
    _, tables, _, _ = imported
    published = pd.read_csv(src / PROMPTS_FILE, dtype=str, keep_default_na=False)
    prompts = tables["prompts"]
    assert prompts["prompt_id"].tolist() == [str(i) for i in range(100)]
    merged = prompts.merge(published, on="prompt_id", suffixes=("", "_src"))
    assert len(merged) == 100
    for column in ("prompt", "category", "challenge"):
        assert (merged[column] == merged[f"{column}_src"]).all()
    assert prompts.loc[prompts.prompt_id.isin(["22", "54"]), "prompt"].str.endswith(" ").all()


def test_every_image_follows_the_formula(imported, src):
    _, tables, _, _ = imported
    images = tables["images"]
    assert images["image_id"].tolist() == [str(n) for n in range(2400)]
    labels_src = published_labels(src)
    for row in images.itertuples(index=False):
        n = int(row.image_id)
        block, prompt, sample = n // 400, (n % 400) // 4, n % 4 + 1
        assert row.path == f"images/{n}.png"
        assert (row.generator, row.prompt_id, row.sample) == (GENERATORS[block][0], str(prompt), sample)
        record = labels_src[n]
        assert record[0] == str(n) and record[1] == f"{prompt:03d}-{sample}.png"
        assert record[2] == PUBLISHED_GENERATORS[block]


def test_mos_equal_to_the_source_to_the_last_digit(imported, src):
    folder, _, _, _ = imported
    published = pd.read_csv(src / MOS_FILE, dtype=str, keep_default_na=False)
    written = pd.read_csv(folder.table_path("mos"), dtype=str, keep_default_na=False)
    published = published.assign(image_id=published["name"].str.removesuffix(".png")).set_index("image_id")
    written = written.set_index("image_id").loc[published.index]
    for perspective in ("quality", "authenticity", "correspondence"):
        for source, target in ((f"{perspective}_mos", f"{perspective}_mos"),
                               (f"{perspective}_std", f"{perspective}_std_raw")):
            assert [Decimal(v) for v in published[source]] == [Decimal(v) for v in written[target]]


def test_labels_match_the_source_and_the_two_anomalies_are_missing(imported, src):
    _, tables, _, messages = imported
    labels = tables["labels"].set_index("image_id")
    records = published_labels(src)
    assert len(records) == 2400
    questions = ["clarity", "outline", "details", "distortion", "consistency"]
    for record in records:
        row = labels.loc[record[0]]
        for question, code in zip(questions, record[3:8]):
            if (record[0], question) in {("749", "distortion"), ("2226", "consistency")}:
                assert pd.isna(row[question])
            else:
                assert row[question] == int(code)
        assert (row["distortion_explanation_zh"], row["inconsistency_explanation_zh"],
                row["distortion_explanation"], row["inconsistency_explanation"]) == tuple(record[8:12])
    assert labels["distortion"].isna().sum() == 1 and labels["consistency"].isna().sum() == 1
    assert labels.loc["749", "clarity"] == 4  # the rest of an anomalous record is kept
    assert len(messages) == 2
    assert "record 750" in messages[0] and "'distortion'" in messages[0] and "749" in messages[0]
    assert "record 2227" in messages[1] and "'consistency'" in messages[1] and "2226" in messages[1]
    assert all(LABELS_FILE in m and "imported as missing" in m for m in messages)


def test_explanations_verbatim_with_line_breaks(imported):
    _, tables, _, _ = imported
    labels = tables["labels"]
    explanation_columns = ["distortion_explanation", "inconsistency_explanation",
                           "distortion_explanation_zh", "inconsistency_explanation_zh"]
    assert (labels[explanation_columns] != "").any(axis=1).sum() == 1801
    multi_line = labels[explanation_columns].apply(lambda c: c.str.contains("\n")).sum().sum()
    assert multi_line == 29
    text = labels.set_index("image_id").loc["100", "inconsistency_explanation_zh"]
    assert text.count("\n") == 4 and text.endswith("\n\n")


def test_cli_import_prints_summary_and_warnings(src, tmp_path, capsys):
    assert main(["import", "aigciqa2023", str(src), str(tmp_path / "db")]) == 0
    out, err = capsys.readouterr()
    assert "images.csv" in out and "2400 rows" in out and "labels.csv" in out
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 2 and all("record" in w and "field" in w for w in warnings)
    # a second import into the same folder is refused and changes nothing; --overwrite replaces it
    before = (tmp_path / "db" / "dataset.json").read_text()
    assert main(["import", "aigciqa2023", str(src), str(tmp_path / "db")]) == 2
    assert "already holds a database" in capsys.readouterr().err
    assert (tmp_path / "db" / "dataset.json").read_text() == before
    assert main(["import", "aigciqa2023", str(src), str(tmp_path / "db"), "--overwrite"]) == 0


# ---- bad input: exit 2, one message naming file / record / field, nothing written ------------------
@pytest.fixture
def copy(src, tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    for name in (PROMPTS_FILE, MOS_FILE, LABELS_FILE):
        shutil.copyfile(src / name, folder / name)
    return folder


def edit_text(path, change, encoding="utf-8"):
    path.write_bytes(change(path.read_bytes().decode(encoding)).encode(encoding))


def replace_field(line, index, value):
    cells = next(csv.reader([line]))
    cells[index] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue()


def edit_line(path, number, index, value):
    """Set field ``index`` of physical line ``number`` (1 = header) of a simple CSV."""
    def change(text):
        lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
        lines[number - 1] = replace_field(lines[number - 1], index, value)
        return ("\r\n" if "\r\n" in text else "\n").join(lines)
    edit_text(path, change)


def expect_error(capsys, copy, tmp_path, *words):
    dest = tmp_path / "dest"
    assert main(["import", "aigciqa2023", str(copy), str(dest)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aigciqa import: error:") and len(err.strip().splitlines()) == 1
    for word in words:
        assert word in err, (word, err)
    assert not dest.exists() or not any(dest.rglob("*"))
    return err


def test_missing_file(capsys, copy, tmp_path):
    (copy / LABELS_FILE).unlink()
    expect_error(capsys, copy, tmp_path, LABELS_FILE, "not found")


def test_missing_column(capsys, copy, tmp_path):
    edit_text(copy / MOS_FILE, lambda t: t.replace("quality_mos,authenticity_mos", "quality,authenticity_mos", 1))
    expect_error(capsys, copy, tmp_path, MOS_FILE, "field 'quality_mos'", "missing")


def test_wrong_encoding_of_the_label_file(capsys, copy, tmp_path):
    path = copy / LABELS_FILE
    path.write_bytes(path.read_bytes().decode("gbk").encode("utf-8"))
    expect_error(capsys, copy, tmp_path, LABELS_FILE, "UTF-8", "--labels-encoding")
    dest = tmp_path / "converted"
    assert main(["import", "aigciqa2023", str(copy), str(dest), "--labels-encoding", "utf-8"]) == 0


def test_undecodable_bytes(capsys, copy, tmp_path):
    path = copy / MOS_FILE
    path.write_bytes(path.read_bytes().replace(b"a corgi", "a c\u00f6rgi".encode("latin-1"), 1))
    expect_error(capsys, copy, tmp_path, MOS_FILE, "not valid utf-8", "line 2")


def test_duplicate_id(capsys, copy, tmp_path):
    edit_line(copy / PROMPTS_FILE, 3, 0, "0")  # record 2 gets prompt id 0 again
    expect_error(capsys, copy, tmp_path, PROMPTS_FILE, "record 2", "field 'prompt_id'", "duplicate")


def test_bad_number(capsys, copy, tmp_path):
    edit_line(copy / MOS_FILE, 6, 6, "6O.2")  # record 5, authenticity_mos
    expect_error(capsys, copy, tmp_path, MOS_FILE, "record 5", "field 'authenticity_mos'", "'6O.2'")


def test_mos_record_disagreeing_with_the_prompt_list(capsys, copy, tmp_path):
    edit_line(copy / MOS_FILE, 11, 3, "Complex")  # record 10 = image 9, prompt 2 (style Basic)
    expect_error(capsys, copy, tmp_path, MOS_FILE, "record 10", "field 'style'", "prompt 2")


def test_label_record_disagreeing_with_the_formula(capsys, copy, tmp_path):
    edit_text(copy / LABELS_FILE, lambda t: t.replace("\r\n5,001-2.png,Controlnet", "\r\n5,001-2.png,DALLE", 1),
              "gbk")
    expect_error(capsys, copy, tmp_path, LABELS_FILE, "record 6", "field 'generator'", "Controlnet")
    edit_text(copy / LABELS_FILE, lambda t: t.replace("\r\n5,001-2.png,DALLE", "\r\n5,001-3.png,Controlnet", 1),
              "gbk")
    expect_error(capsys, copy, tmp_path, LABELS_FILE, "record 6", "field 'file'", "001-2.png")


def test_unquoted_line_break_changes_the_record_count(capsys, copy, tmp_path):
    def unquote_first_multiline(text):
        start = text.index('"文中是一个菠萝')
        end = text.index('"', start + 1)
        return text[:start] + text[start + 1:end].replace(",", "，") + text[end + 1:]
    edit_text(copy / LABELS_FILE, unquote_first_multiline, "gbk")
    expect_error(capsys, copy, tmp_path, LABELS_FILE, "expected 2400 records")


def test_non_numeric_level_is_an_error_not_a_warning(copy):
    edit_text(copy / LABELS_FILE,
              lambda t: t.replace("\r\n3,000-4.png,Controlnet,4,", "\r\n3,000-4.png,Controlnet,x,", 1), "gbk")
    with pytest.raises(InputError) as error:
        import_database("aigciqa2023", copy, copy.parent / "dest")
    assert (error.value.row, error.value.field) == (4, "clarity")
    assert not (copy.parent / "dest").exists()
