"""The writer lock: a second writer exits 2 naming the holder, readers are not blocked, and no
write is lost when two writers race. A writer is held mid-command with SIGSTOP (kill_child.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from aigciqa.cli import main
from aigciqa.database import DatabaseFolder

from .folders import WT, rated_folder
from .test_fault_injection import CHILD


def start_stopped(argv: list[str], at: int = 1) -> subprocess.Popen:
    """``aigciqa ARGV`` in a child that stops at its ``at``-th write point, holding the lock."""
    env = {**os.environ, "FAULT_SIGNAL": "STOP", "FAULT_COUNT_FILE": "", "MPLBACKEND": "Agg"}
    child = subprocess.Popen([sys.executable, str(CHILD), str(at), *argv], cwd=WT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # wait until it has stopped
        state = Path(f"/proc/{child.pid}/stat").read_text().split(") ")[-1][0]
        if state == "T":
            return child
        if child.poll() is not None:
            raise AssertionError(f"the writer ended before stopping: {child.communicate()}")
        time.sleep(0.05)
    raise AssertionError("the writer never reached its write point")


def finish(child: subprocess.Popen) -> int:
    os.kill(child.pid, signal.SIGCONT)
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    return child.returncode


def refused(argv: list[str], holder: subprocess.Popen, holder_command: str, capsys) -> None:
    assert main(argv) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert f"pid {holder.pid}" in message and holder_command in message, message


@pytest.fixture
def rated(tmp_path) -> DatabaseFolder:
    return rated_folder(tmp_path / "db")


def test_second_split_is_refused_naming_the_holder_and_readers_go_on(rated, capsys):
    root = str(rated.root)
    first = start_stopped(["split", root, "--seed", "1"])
    try:
        refused(["split", root, "--seed", "2"], first, f"split {root} --seed 1", capsys)
        assert main(["info", root]) == 0  # a reader is not blocked (and sees the folder as before)
        assert "splits.csv" not in capsys.readouterr().out
    finally:
        finish(first)
    assert main(["split", root, "--seed", "2"]) == 0  # once the first has finished
    assert list(rated.read_table("splits").columns) == ["image_id", "prompt_s1", "prompt_s2"]


def test_two_splits_started_together_lose_no_column(rated):
    root = str(rated.root)
    children = [subprocess.Popen([sys.executable, "-m", "aigciqa", "split", root, "--seed", str(seed)], cwd=WT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (3, 4)]
    outcomes = [(child.wait(timeout=300), child.stderr.read()) for child in children]
    columns = set(rated.read_table("splits").columns) - {"image_id"}
    for (code, err), seed in zip(outcomes, (3, 4)):
        assert code in (0, 2), err
        if code == 0:
            assert f"prompt_s{seed}" in columns  # what a writer reported as done is there
        else:
            assert "another command is writing this folder" in err
    assert len(columns) == sum(code == 0 for code, _ in outcomes)


def test_build_mos_beside_split_keeps_the_split_provenance(rated, capsys):
    root = str(rated.root)
    split = start_stopped(["split", root])
    try:
        refused(["build-mos", root, "--no-figures"], split, f"split {root}", capsys)
    finally:
        finish(split)
    assert main(["build-mos", root, "--no-figures"]) == 0
    card = rated.read_card()
    assert {"split", "build-mos"} <= set(card["provenance"])
    assert rated.has("splits") and rated.has("mos")


def test_annotate_export_takes_the_folder_lock(rated, capsys):
    from aigciqa.annotate.store import AnswerStore
    root = str(rated.root)
    AnswerStore(rated.root / "annotations.sqlite").close()
    before = (rated.root / "ratings.csv").read_bytes()
    holder = start_stopped(["build-mos", root, "--no-figures"])
    try:
        refused(["annotate", "export", root], holder, f"build-mos {root}", capsys)
        assert (rated.root / "ratings.csv").read_bytes() == before
    finally:
        finish(holder)


@pytest.mark.slow
def test_two_generates_with_different_generators_keep_both(tmp_path, capsys):
    root = str(tmp_path / "db")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"generators": {name: {"width": 32, "height": 32, "steps": 2}
                                                 for name in ("stable_diffusion", "dalle")}}))
    common = ["--weights", "tiny", "--config", str(config), "--limit-prompts", "1", "--images-per-prompt", "1",
              "--quiet"]
    first = start_stopped(["generate", root, "--generators", "stable_diffusion", *common])
    try:
        refused(["generate", root, "--generators", "dalle", *common], first, "generate", capsys)
    finally:
        finish(first)
    assert main(["generate", root, "--generators", "dalle", *common]) == 0
    folder = DatabaseFolder(root)
    assert folder.read_card()["generators"] == ["stable_diffusion", "dalle"]
    assert sorted(folder.read_table("images")["generator"]) == ["dalle", "stable_diffusion"]


def test_a_reader_waits_for_a_writer_renaming_its_commit(rated):
    """Stopped just after its commit point (the record renamed, no file moved yet), a writer is
    resumed after a moment; a reader opening the folder meanwhile sees the committed splits."""
    import threading
    root = str(rated.root)
    # Points of a commit of split: fsync of splits.csv and of the card, of the journal folder, of the
    # record, then the record's rename, then the fsync of the journal folder (stop here).
    writer = start_stopped(["split", root, "--seed", "9"], at=6)
    assert (rated.root / ".aigciqa" / "journal" / "commit.json").exists()
    threading.Timer(0.5, os.kill, (writer.pid, signal.SIGCONT)).start()
    assert "prompt_s9" in rated.read_table("splits").columns  # read_card waited for the renames
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
