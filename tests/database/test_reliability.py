"""One test per hostile input or fault of issue 18 (outside the model): each ends with one line on
stderr and exit status 2, nothing written; or, for the side effects, with the promised behaviour."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pandas as pd
import pytest

from aigciqa.cli import main
from aigciqa.database import DatabaseFolder, default_card
from aigciqa.errors import InputError

from .folders import WT, rated_folder


def refused(argv: list[str], capsys, *fragments: str) -> str:
    """Run ``aigciqa ARGV``; it must exit 2 with one line naming every fragment."""
    assert main([str(a) for a in argv]) == 2
    message = capsys.readouterr().err.strip()
    assert message.count("\n") == 0 and "Traceback" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def rated(tmp_path) -> DatabaseFolder:
    return rated_folder(tmp_path / "db")


def edit_table(folder: DatabaseFolder, name: str, **columns) -> None:
    """Change cells of a table on disk behind the tools' back (as a user with an editor would)."""
    frame = pd.read_csv(folder.table_path(name), dtype=str, keep_default_na=False)
    for column, values in columns.items():
        frame[column] = values
    folder.table_path(name).write_text(frame.to_csv(index=False))


def edit_card(folder: DatabaseFolder, **fields) -> None:
    card = json.loads((folder.root / "dataset.json").read_text())
    card.update(fields)
    (folder.root / "dataset.json").write_text(json.dumps(card))  # NaN/Infinity as Python writes them


# ---- read-only folders --------------------------------------------------------------------------
@pytest.fixture
def read_only(tmp_path):
    """Make a folder read-only for real: a read-only bind mount as root (root ignores modes), else modes."""
    mounted = []

    def make(root: Path) -> Path:
        if os.geteuid() != 0:
            for path in [root, *root.rglob("*")]:
                path.chmod(path.stat().st_mode & ~0o222)
            return root
        view = root.parent / (root.name + "-ro")
        view.mkdir()
        done = subprocess.run(["mount", "--bind", str(root), str(view)], capture_output=True)
        if done.returncode != 0:
            pytest.skip("cannot make a read-only mount here (needs root with mount rights)")
        mounted.append(view)
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        return view
    yield make
    for view in mounted:
        subprocess.run(["umount", str(view)], check=True)


@pytest.mark.parametrize("command", [["split"], ["build-mos", "--no-figures"], ["build-vqa", "--no-llm", "--quiet"]])
def test_read_only_folder_is_refused_in_one_line(rated, read_only, capsys, command):
    if command[0] == "build-vqa":
        assert main(["build-mos", str(rated.root), "--no-figures"]) == 0
    view = read_only(rated.root)
    before = files_of(view)
    refused([command[0], view, *command[1:]], capsys, "read-only" if os.geteuid() == 0 else "permission denied")
    assert files_of(view) == before


def test_import_into_a_read_only_folder_is_refused(tmp_path, read_only, capsys):
    source = tmp_path / "meta.csv"
    source.write_text("img_name,mos\na.jpg,3\n")
    (tmp_path / "dest").mkdir()
    view = read_only(tmp_path / "dest")
    refused(["import", "meta-csv", source, view, "--name-column", "img_name", "--mos-column", "mos",
             "--mos-range", "0", "5"], capsys, str(view))


# ---- outputs that are folders --------------------------------------------------------------------
def test_sureal_export_to_a_folder_is_refused(rated, tmp_path, capsys):
    (tmp_path / "out.json").mkdir()
    refused(["sureal-export", rated.root, "-o", tmp_path / "out.json", "--perspective", "quality"], capsys,
            "out.json", "is a folder")


def test_screening_json_that_is_a_folder_stops_build_mos_before_writing(rated, capsys):
    (rated.root / "screening.json").mkdir()
    before = files_of(rated.root)
    refused(["build-mos", rated.root, "--no-figures"], capsys, "screening.json", "is a folder")
    assert files_of(rated.root) == before and not rated.has("mos")


def test_vqa_jsonl_that_is_a_folder_stops_build_vqa_before_writing(rated, capsys):
    assert main(["build-mos", str(rated.root), "--no-figures"]) == 0
    (rated.root / "vqa.jsonl").mkdir()
    before = files_of(rated.root)
    refused(["build-vqa", rated.root, "--no-llm", "--quiet"], capsys, "vqa.jsonl", "is a folder")
    assert files_of(rated.root) == before


# ---- numbers in tables ---------------------------------------------------------------------------
def test_seed_beyond_64_bits_is_refused(rated, capsys):
    edit_table(rated, "images", seed=["9223372036854775808"] + [""] * 11)
    refused(["info", rated.root], capsys, "images.csv, record 1, field 'seed'", "too large")


def test_sample_of_1e20_is_refused(rated, capsys):
    edit_table(rated, "images", sample=["1e20"] + ["1"] * 11)
    refused(["info", rated.root], capsys, "images.csv, record 1, field 'sample'", "too large")


def test_integers_stay_exact_through_a_rewrite(rated):
    edit_table(rated, "images", seed=["9007199254740993"] + [""] * 11)
    images = rated.read_table("images")
    assert images["seed"].iloc[0] == 9007199254740993
    rated.write({"images": images})
    assert "9007199254740993" in rated.table_path("images").read_text()


def test_a_cell_holding_a_newline_gives_a_one_line_message(rated, capsys):
    edit_table(rated, "images", width=["12\n34"] + [""] * 11)
    refused(["info", rated.root], capsys, "images.csv, record 1, field 'width'", "'12\\n34' is not a number")


# ---- the card -------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_card_scale_must_be_finite(rated, capsys, value):
    edit_card(rated, scale={"min": 0, "max": value})
    refused(["info", rated.root], capsys, "dataset.json", "scale/max", "finite")


@pytest.mark.parametrize("mos_range", [[100, 0], [50, 50]])
def test_mos_range_must_be_increasing(rated, capsys, mos_range):
    edit_card(rated, mos_range=mos_range)
    refused(["info", rated.root], capsys, "dataset.json", "mos_range")


# ---- info checks ------------------------------------------------------------------------------------
def test_info_refuses_a_folder_named_like_a_table(rated, capsys):
    rated.table_path("pairs").mkdir()
    refused(["info", rated.root], capsys, "pairs.csv", "is a folder")


def test_info_checks_mos_against_the_mos_range(rated, capsys):
    assert main(["build-mos", str(rated.root), "--no-figures"]) == 0
    edit_table(rated, "mos", quality_mos=["150"] + list(rated.read_table("mos")["quality_mos"].astype(str)[1:]))
    refused(["info", rated.root], capsys, "mos.csv, record 1, field 'quality_mos'", "outside", "mos_range")


def test_info_verify_checks_image_hashes(tmp_path, capsys):
    folder = DatabaseFolder(tmp_path / "db")
    import hashlib

    from PIL import Image
    image = tmp_path / "db" / "images" / "a.png"
    image.parent.mkdir(parents=True)
    Image.new("RGB", (4, 4), (10, 20, 30)).save(image)
    sha = hashlib.sha256(image.read_bytes()).hexdigest()
    folder.write({"images": pd.DataFrame({"image_id": ["a"], "path": ["images/a.png"], "sha256": [sha]})},
                 card=default_card("verify"))
    assert main(["info", str(folder.root), "--verify"]) == 0
    assert "sha256 checked: 1 image files match" in capsys.readouterr().out
    Image.new("RGB", (4, 4), (10, 20, 31)).save(image)
    refused(["info", folder.root, "--verify"], capsys, "images.csv, record 1, field 'sha256'", "images/a.png")


def test_info_verify_decodes_the_images_of_a_folder_without_hashes(tmp_path, capsys):
    """Imported databases record no sha256: --verify then decodes each image, so a file that only looks
    like an image (a text file named .png) is found, naming its record."""
    from PIL import Image
    folder = DatabaseFolder(tmp_path / "db")
    (tmp_path / "db" / "images").mkdir(parents=True)
    Image.new("RGB", (4, 4), (10, 20, 30)).save(tmp_path / "db" / "images" / "a.png")
    (tmp_path / "db" / "images" / "b.png").write_text("not an image")
    folder.write({"images": pd.DataFrame({"image_id": ["a", "b"], "path": ["images/a.png", "images/b.png"],
                                          "sha256": ["", ""]})}, card=default_card("imported"))
    refused(["info", folder.root, "--verify"], capsys, "images.csv, record 2, field 'path'", "images/b.png",
            "cannot decode")
    Image.new("RGB", (4, 4)).save(tmp_path / "db" / "images" / "b.png")
    assert main(["info", str(folder.root), "--verify"]) == 0
    assert "no sha256 recorded: 2 image files decoded as images" in capsys.readouterr().out


def test_info_reports_and_cleans_leftovers_of_killed_commands(rated, capsys):
    temporary = rated.root / "images" / ".a.png.1f2e3d4c.tmp"
    temporary.parent.mkdir()
    temporary.write_bytes(b"half an image")
    journal = rated.root / ".aigciqa" / "journal"
    journal.mkdir(parents=True)
    (journal / "0").write_text("staged, never committed")
    before = rated.table_path("images").read_bytes()
    assert main(["info", str(rated.root)]) == 0
    out = capsys.readouterr().out
    assert "cleaned: rolled back an unfinished commit" in out
    assert "cleaned: removed images/.a.png.1f2e3d4c.tmp" in out
    assert not temporary.exists() and not (rated.root / ".aigciqa").exists()
    assert rated.table_path("images").read_bytes() == before


# ---- file modes --------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        folder = rated_folder(tmp_path / "db")
    finally:
        os.umask(old)
    for name in ("dataset.json", "images.csv", "ratings.csv"):
        assert stat.S_IMODE((folder.root / name).stat().st_mode) == 0o666 & ~umask


def test_a_rewritten_file_keeps_its_mode(rated):
    rated.table_path("images").chmod(0o640)
    rated.write({"images": rated.read_table("images")})
    assert stat.S_IMODE(rated.table_path("images").stat().st_mode) == 0o640


# ---- paths that leave the folder -----------------------------------------------------------------------
def test_generate_refuses_a_generator_folder_linked_outside(tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"generators": {"stable_diffusion": {"width": 32, "height": 32, "steps": 1}}}))
    root = tmp_path / "db"
    (root / "images").mkdir(parents=True)
    (root / "images" / "stable_diffusion").symlink_to(outside)
    refused(["generate", root, "--generators", "stable_diffusion", "--weights", "tiny", "--config", config,
             "--limit-prompts", "1", "--images-per-prompt", "1", "--quiet"], capsys, "outside the database folder")
    assert list(outside.iterdir()) == []


def test_an_image_linked_outside_the_folder_is_refused(rated, tmp_path, capsys):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    (rated.root / "images" / "g0").mkdir(parents=True)
    (rated.root / "images" / "g0" / "0-1.png").symlink_to(secret)
    refused(["info", rated.root], capsys, "images/g0/0-1.png", "outside the database folder")
    with pytest.raises(InputError, match="outside the database folder"):
        rated.open_image("images/g0/0-1.png")


def test_a_table_linked_outside_the_folder_is_refused(rated, tmp_path, capsys):
    outside = tmp_path / "pairs.csv"
    outside.write_text("better_image_id,worse_image_id\n")
    rated.table_path("pairs").symlink_to(outside)
    refused(["info", rated.root], capsys, "pairs.csv", "outside the database folder")


# ---- special files and sizes ------------------------------------------------------------------------------
def test_dev_zero_as_an_input_is_refused_before_reading(tmp_path, capsys):
    refused(["import", "meta-csv", "/dev/zero", tmp_path / "db", "--name-column", "a", "--mos-column", "b",
             "--mos-range", "0", "5"], capsys, "/dev/zero", "not a regular file")
    refused(["build-mos", "/dev/zero", "-o", tmp_path / "out"], capsys, "/dev/zero", "not a regular file")
    assert not (tmp_path / "db").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", ["src", "--config"])
def test_a_fifo_is_refused_instead_of_blocking(tmp_path, option):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    argv = (["build-mos", str(fifo), "-o", str(tmp_path / "out")] if option == "src" else
            ["generate", str(tmp_path / "db"), "--generators", "stable_diffusion", "--weights", "tiny",
             "--config", str(fifo)])
    done = subprocess.run([sys.executable, "-m", "aigciqa", *argv], cwd=WT, capture_output=True, text=True,
                          timeout=120)  # a read of the FIFO would block until this timeout
    assert done.returncode == 2 and "not a regular file" in done.stderr and done.stderr.count("\n") == 1


def test_generate_width_100000_is_refused_before_anything_is_made(tmp_path, capsys):
    config = tmp_path / "big.json"
    config.write_text(json.dumps({"generators": {"stable_diffusion": {"width": 100000}}}))
    refused(["generate", tmp_path / "db", "--generators", "stable_diffusion", "--weights", "tiny",
             "--config", config], capsys, "big.json", "width")
    assert not (tmp_path / "db").exists()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds no pixels: enough to be refused from its header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_and_the_cap_can_be_raised(rated, monkeypatch):
    from PIL import Image
    bomb = rated.root / "images" / "bomb.png"
    bomb.parent.mkdir()
    bomb.write_bytes(png_header(20000, 20000))
    with pytest.raises(InputError, match="20000x20000.*AIGCIQA_MAX_IMAGE_PIXELS"):
        rated.open_image("images/bomb.png")
    small = rated.root / "images" / "small.png"
    Image.new("RGB", (100, 100)).save(small)
    monkeypatch.setenv("AIGCIQA_MAX_IMAGE_PIXELS", "5000")
    with pytest.raises(InputError, match="over the cap of 5000"):
        rated.open_image("images/small.png")
    monkeypatch.setenv("AIGCIQA_MAX_IMAGE_PIXELS", "10000")
    assert rated.open_image("images/small.png").size == (100, 100)


# ---- annotate export leaves its input alone ----------------------------------------------------------------
def test_export_of_an_empty_store_file_leaves_it_empty(rated, capsys):
    store = rated.root / "annotations.sqlite"
    store.write_bytes(b"")
    refused(["annotate", "export", rated.root], capsys, "annotations.sqlite", "not an aigciqa annotation store")
    assert store.read_bytes() == b""


def test_export_of_a_foreign_sqlite_file_leaves_it_unchanged(rated, capsys):
    store = rated.root / "annotations.sqlite"
    connection = sqlite3.connect(store)
    connection.execute("CREATE TABLE other (x)")
    connection.commit()
    connection.close()
    before = store.read_bytes()
    refused(["annotate", "export", rated.root], capsys, "annotations.sqlite", "not an aigciqa annotation store")
    assert store.read_bytes() == before
    assert not (rated.root / "annotations.sqlite-wal").exists()


def test_a_mount_point_inside_the_folder_is_refused_before_the_commit(rated, tmp_path, capsys):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a file system")
    figures = rated.root / "figures"
    figures.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(figures)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        before = files_of(rated.root)
        refused(["build-mos", rated.root], capsys, "figures", "another file system")
        assert files_of(rated.root) == before
    finally:
        subprocess.run(["umount", str(figures)], check=True)
