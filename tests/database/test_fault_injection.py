"""Kill a command (a real SIGKILL) at each of its write points in turn; the folder must then be all
old or all new once the next command has opened it, ``info`` must pass, and a rerun must give the
uninterrupted result bit for bit. See docs/reliability.md."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from aigciqa.cli import main
from aigciqa.database import DatabaseFolder

from .folders import WT, rated_folder

CHILD = Path(__file__).with_name("kill_child.py")
INTERNAL = ".aigciqa"


def run_child(kill_at: int, argv: list[str], count_file: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "FAULT_COUNT_FILE": str(count_file or ""), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(CHILD), str(kill_at), *argv], cwd=WT, env=env,
                          capture_output=True, text=True, timeout=300)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the folder but the lock/journal; the card without provenance times and commands
    (which name the folder and the process's own arguments)."""
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not relative.startswith(INTERNAL + "/"):
            data = path.read_bytes()
            if relative == "dataset.json":
                card = json.loads(data)
                for entry in card.get("provenance", {}).values():
                    entry.pop("time", None), entry.pop("command", None)
                data = json.dumps(card, sort_keys=True).encode()
            files[relative] = data
    return files


def info(root: Path) -> int:
    return main(["info", str(root)])


def setup_build_mos(root: Path) -> list[str]:
    rated_folder(root)
    assert run_child(0, ["build-mos", str(root), "--screening", "none"]).returncode == 0  # the old outputs
    return ["build-mos", str(root)]


def setup_split(root: Path) -> list[str]:
    rated_folder(root)
    assert run_child(0, ["split", str(root)]).returncode == 0
    return ["split", str(root), "--seed", "5", "--repeats", "2"]


def setup_build_vqa(root: Path) -> list[str]:
    rated_folder(root)
    assert run_child(0, ["build-mos", str(root), "--no-figures"]).returncode == 0
    return ["build-vqa", str(root), "--no-llm", "--quiet"]


def setup_import(root: Path) -> list[str]:
    source = root.parent / "meta.csv"
    source.write_text("img_name,mos,split\n" + "".join(f"i{n}.jpg,{n * 7 % 100},{'train' if n % 3 else 'test'}\n"
                                                        for n in range(10)))
    return ["import", "meta-csv", str(source), str(root), "--name-column", "img_name", "--mos-column", "mos",
            "--mos-range", "0", "100", "--split", "split", "--split-values", "train=train,test=test",
            "--overwrite"]  # so that a rerun after a kill past the commit point may run again


SCENARIOS = {"build-mos": setup_build_mos, "split": setup_split, "build-vqa": setup_build_vqa,
             "import": setup_import}


def kill_points(tmp_path: Path, name: str) -> tuple[Path, list[str], dict, dict, int]:
    """Set up a pristine folder, the command, the old and new snapshots and the number of points."""
    pristine = tmp_path / "pristine" / "db"
    pristine.parent.mkdir()
    argv = SCENARIOS[name](pristine)
    old = snapshot(pristine) if pristine.exists() else {}
    done = tmp_path / "done" / "db"
    shutil.copytree(pristine.parent, done.parent, dirs_exist_ok=True) if pristine.exists() else done.parent.mkdir()
    count = tmp_path / "count"
    argv_done = [str(done) if a == str(pristine) else a for a in argv]
    result = run_child(0, argv_done, count)
    assert result.returncode == 0, result.stderr
    new = snapshot(done)
    assert new != old
    return pristine, argv, old, new, int(count.read_text())


def check_kill(tmp_path: Path, pristine: Path, argv: list[str], old: dict, new: dict, point: int) -> str:
    """Kill at ``point``; return 'old' or 'new' (what the next command found)."""
    work = tmp_path / f"kill{point}" / "db"
    if pristine.exists():
        shutil.copytree(pristine, work, symlinks=True)
    else:
        work.parent.mkdir()
    argv = [str(work) if a == str(pristine) else a for a in argv]
    result = run_child(point, argv)
    assert result.returncode == -signal.SIGKILL, f"point {point} was not reached: {result.stderr}"
    checked = info(work)  # the next command to open the folder finishes or undoes the commit
    state = snapshot(work) if work.exists() else {}
    assert state in (old, new), (f"kill at point {point}: a mix of old and new files: "
                                 f"{sorted(k for k in set(state) | set(new) if state.get(k) != new.get(k))}")
    if state == new or old:
        assert checked == 0
    assert not (work / INTERNAL).exists()  # no journal, no lock file left
    assert main(argv) == 0  # the rerun (in this process: only the killed run needs a child)
    assert snapshot(work) == new, f"kill at point {point}: the rerun differs from an uninterrupted run"
    shutil.rmtree(work.parent)
    return "new" if state == new else "old"


def test_split_killed_at_a_few_points_is_old_or_new(tmp_path):
    """The quick version: two kill points, while staging and while renaming."""
    pristine, argv, old, new, points = kill_points(tmp_path, "split")
    seen = {check_kill(tmp_path, pristine, argv, old, new, point) for point in (2, points - 2)}
    assert seen == {"old", "new"}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_kill_point_leaves_the_folder_old_or_new(tmp_path, name):
    pristine, argv, old, new, points = kill_points(tmp_path, name)
    outcomes = [check_kill(tmp_path, pristine, argv, old, new, point) for point in range(1, points + 1)]
    # Killed early the folder is as before, killed after the commit point it is as after.
    assert outcomes[0] == "old" and outcomes[-1] == "new"
    assert outcomes == sorted(outcomes, key=["old", "new"].index)
    print(f"{name}: {points} kill points, {outcomes.count('old')} rolled back, {outcomes.count('new')} forward")


def generate_argv(root: Path, config: Path) -> list[str]:
    return ["generate", str(root), "--generators", "stable_diffusion", "--weights", "tiny", "--config", str(config),
            "--limit-prompts", "1", "--images-per-prompt", "2", "--quiet"]


GENERATE_STRIDE = 3  # every third point: each kill loads a diffusers pipeline (seconds), so 12 of 36


@pytest.mark.slow
def test_generate_killed_at_every_point_resumes_to_the_uninterrupted_result(tmp_path):
    """Images are files of their own (each atomic); the manifest and card are one commit. After a
    kill, info --verify passes (every listed image has its recorded hash) and the rerun equals an
    uninterrupted run byte for byte."""
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"flush_every": 1, "generators": {
        "stable_diffusion": {"width": 32, "height": 32, "steps": 1}}}))
    count = tmp_path / "count"
    done = tmp_path / "done" / "db"
    assert run_child(0, generate_argv(done, config), count).returncode == 0
    new, points = snapshot(done), int(count.read_text())
    for point in range(1, points + 1, GENERATE_STRIDE):
        work = tmp_path / f"kill{point}" / "db"
        result = run_child(point, generate_argv(work, config))
        assert result.returncode == -signal.SIGKILL, f"point {point} was not reached: {result.stderr}"
        if DatabaseFolder(work).exists():
            assert main(["info", str(work), "--verify"]) == 0
        assert main(generate_argv(work, config)) == 0
        assert snapshot(work) == new, f"kill at point {point}: the resumed folder differs"
        shutil.rmtree(work.parent)
    print(f"generate: {len(range(1, points + 1, GENERATE_STRIDE))} of {points} kill points")
