"""Reading a table's CSV text: every record has the header's number of cells, and a malformed record is
named by file, record (1-based, the header not counted) and the line it starts on."""

import pandas as pd
import pytest

from aigciqa.cli import main
from aigciqa.database import DatabaseFolder, default_card
from aigciqa.database.tables import read_csv_text
from aigciqa.errors import InputError

CARD = default_card("t", perspectives=["quality"])


@pytest.fixture
def folder(tmp_path):
    images = pd.DataFrame({"image_id": [str(400 + i) for i in range(6)],
                           "path": [f"images/{400 + i}.png" for i in range(6)], "sample": range(1, 7)})
    mos = pd.DataFrame({"image_id": images["image_id"], "quality_mos": [50.0 + i for i in range(6)]})
    folder = DatabaseFolder(tmp_path / "db")
    folder.write({"images": images, "mos": mos}, card=CARD, stage="test")
    return folder


def edit_line(path, number, edit, newline="\n"):
    """Rewrite line ``number`` (1-based) of a file with ``edit(line)``, keeping ``newline`` endings."""
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[number - 1] = edit(lines[number - 1])
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))


def error_of(folder, table) -> InputError:
    with pytest.raises(InputError) as error:
        folder.read_table(table)
    return error.value


@pytest.mark.parametrize("table, cells", [("images", 9), ("mos", 2)])
def test_a_record_with_too_many_cells_is_named(folder, table, cells):
    path = folder.table_path(table)
    edit_line(path, 5, lambda line: line + ",extra")
    error = error_of(folder, table)
    assert (error.row, error.line, error.field) == (4, 5, None)
    assert str(error) == f"{path}, record 4 (line 5): has {cells + 1} cells where the header has {cells}"


@pytest.mark.parametrize("table", ["images", "mos"])
def test_a_record_with_too_few_cells_is_refused(folder, table):
    path = folder.table_path(table)
    edit_line(path, 3, lambda line: line.rsplit(",", 1)[0])  # the last cell dropped
    error = error_of(folder, table)
    assert (error.row, error.line) == (2, 3)
    cells = len(path.read_text(encoding="utf-8").splitlines()[0].split(","))
    assert error.message == f"has {cells - 1} cell{'s' if cells > 2 else ''} where the header has {cells}"


def test_a_carriage_return_inside_a_record_is_named_not_split_off(folder):
    """",extra" appended to a line of a CRLF file lands after the "\\r": one bad record, not two."""
    path = folder.table_path("images")
    edit_line(path, 5, lambda line: line + "\r,extra", newline="\r\n")
    error = error_of(folder, "images")
    assert (error.row, error.line) == (4, 5)
    assert "carriage return" in error.message
    assert error.message.endswith("without it the line has 10 cells where the header has 9")


def test_crlf_files_read_as_before(folder):
    expected = folder.read_table("images")
    path = folder.table_path("images")
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    pd.testing.assert_frame_equal(folder.read_table("images"), expected)


def test_an_unclosed_quote_names_the_record_it_starts_in(folder):
    path = folder.table_path("images")
    edit_line(path, 3, lambda line: line.replace("images/", '"images/', 1))
    error = error_of(folder, "images")
    assert (error.row, error.line) == (2, 3)
    assert str(error).startswith(f"{path}, record 2 (line 3): malformed CSV: a quoted cell")
    assert "EOF" not in str(error) and "tokenizing" not in str(error)


@pytest.mark.parametrize("quoted", [False, True])
def test_a_cell_longer_than_the_csv_modules_default_limit_reads(tmp_path, quoted):
    long = "x" * 131_073  # the csv module refuses a cell over 131,072 characters by default
    path = tmp_path / "long.csv"
    path.write_text("image_id,explanation\na," + (f'"{long},"' if quoted else long) + "\n", encoding="utf-8")
    assert read_csv_text(path)["explanation"][0] == long + ("," if quoted else "")


def test_a_stray_quote_is_named(folder):
    path = folder.table_path("images")
    edit_line(path, 4, lambda line: line.replace(",images/", ',"images"/', 1))  # text after a closing quote
    error = error_of(folder, "images")
    assert (error.row, error.line) == (3, 4) and error.message.startswith("malformed CSV")


def test_records_count_data_rows_while_lines_count_the_file(tmp_path):
    """A blank line is skipped and a quoted cell may span lines: the record number stays the data row's."""
    path = tmp_path / "t.csv"
    path.write_text('id,text\n1,"two\nlines"\n\n2,ok\n3,x,y\n', encoding="utf-8")
    with pytest.raises(InputError) as error:
        read_csv_text(path)
    assert (error.value.row, error.value.line) == (3, 6)
    path.write_text('id,text\n1,"two\nlines"\n\n2,ok\n', encoding="utf-8")
    frame = read_csv_text(path)
    assert frame.to_dict("list") == {"id": ["1", "2"], "text": ["two\nlines", "ok"]}


def test_a_header_only_file_is_an_empty_table(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,text\n", encoding="utf-8")
    frame = read_csv_text(path)
    assert list(frame.columns) == ["id", "text"] and frame.empty


def test_a_malformed_header_names_its_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('id,"text\n1,a\n', encoding="utf-8")
    with pytest.raises(InputError) as error:
        read_csv_text(path)
    assert (error.value.row, error.value.line) == (None, 1)
    assert str(error.value).startswith(f"{path}, line 1: malformed CSV")


def test_info_exits_2_with_one_line_for_a_short_record(folder, capsys):
    assert main(["info", str(folder.root)]) == 0
    capsys.readouterr()
    edit_line(folder.table_path("mos"), 3, lambda line: line.split(",")[0])
    assert main(["info", str(folder.root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.endswith("mos.csv, record 2 (line 3): has 1 cell where the header has 2")


@pytest.mark.parametrize("text", [
    "image_id,path,sample\n400,images/400.png,1\n401,images/401.png,2\n",
    "image_id,path,sample\r\n400,images/400.png,1\r\n\r\n401,,2\r\n",                   # CRLF, a blank line, an empty cell
    "a,b\n\u00e9t\u00e9,x y\n,\n",                                                   # non-ASCII, spaces, all-empty record
    "a,a\n1,2\n",                                                                     # a repeated name
    "a,b\n",                                                                          # header only
    "a,b\n1,2,3\n", "a,b\n1\n", "a,b\n1,2\r,3\n", 'a,b\n"1,5",2\n', "a,b\n \n1,2\n",  # left to the strict reader
])
def test_the_fast_path_reads_what_the_strict_reader_reads_or_leaves_it_to_it(tmp_path, text):
    """pandas' C parser reads plain tables (speed: ratings.csv); whenever its result could differ from the
    csv module's strict reading it returns None, so both paths give one table or one error."""
    from aigciqa.database.tables import parse_csv_records, plain_csv_frame
    fast = plain_csv_frame(text)
    try:
        header, records = parse_csv_records(text, tmp_path / "t.csv")
    except InputError:
        assert fast is None
        return
    if fast is not None:
        strict = pd.DataFrame(records, columns=range(len(header)), dtype=str)
        strict.columns = header
        pd.testing.assert_frame_equal(fast, strict, check_index_type=False, check_column_type=False)
