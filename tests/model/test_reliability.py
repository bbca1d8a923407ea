"""Issue 18 in the model stages: options refused at parse time, typed run configs, the writer lock over a
training run, reads that stay inside the folder, and resume after a kill at any checkpoint write."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from aigciqa.cli import main
from aigciqa.database import DatabaseFolder
from aigciqa.errors import InputError

WT = Path(__file__).resolve().parents[2]
CHILD = WT / "tests" / "database" / "kill_child.py"  # SIGKILL (or SIGSTOP) at the N-th os.replace/fsync
TRAIN = ["--split", "split1", "--lr", "1e-3", "--quiet", "--cpu"]


def exit_status(argv: list[str]) -> int:
    """main's status, also for argparse's refusals (SystemExit)."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def last_error_line(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


# ---- options validated at parse time ------------------------------------------------------------

BAD_OPTIONS = {
    "lr nan": (["train", "scorer", "DB", *TRAIN, "--lr", "nan"], "--lr"),
    "lr negative": (["train", "scorer", "DB", *TRAIN, "--lr", "-1"], "--lr"),
    "fix rate above 1": (["train", "scorer", "DB", *TRAIN, "--fix-rate", "1.5"], "--fix-rate"),
    "fix rate nan": (["train", "scorer", "DB", *TRAIN, "--fix-rate", "nan"], "--fix-rate"),
    "lora rank negative": (["train", "scorer", "DB", *TRAIN, "--lora-rank", "-3"], "--lora-rank"),
    "lora blocks unknown": (["train", "scorer", "DB", *TRAIN, "--lora-rank", "2", "--lora-blocks", "some"],
                            "--lora-blocks"),
    "lora on the trainable blocks at fix rate 1": (["train", "scorer", "DB", *TRAIN, "--lora-rank", "2",
                                                    "--fix-rate", "1"], "--lora-blocks all"),
    "stop after negative": (["train", "scorer", "DB", *TRAIN, "--stop-after", "-1"], "--stop-after"),
    "bins negative": (["train", "scorer", "DB", *TRAIN, "--loss", "ce", "--bins", "-4"], "--bins"),
    "bins without ce": (["train", "scorer", "DB", *TRAIN, "--bins", "4"], "--loss ce"),
    "evaluate batch size 0": (["evaluate", "DB", "--model", "DB/runs/x", "--batch-size", "0"], "--batch-size"),
    "evaluate batch size -2": (["evaluate", "DB", "--model", "DB/runs/x", "--batch-size", "-2"], "--batch-size"),
    "score batch size 0": (["score", "IMG", "--prompt", "p", "--model", "DB/runs/x", "--batch-size", "0"],
                           "--batch-size"),
    "score batch size -2": (["score", "IMG", "--prompt", "p", "--model", "DB/runs/x", "--batch-size", "-2"],
                            "--batch-size"),
    "evaluate limit without vqa": (["evaluate", "DB", "--model", "DB/runs/x", "--limit", "3"], "--vqa"),
}


@pytest.mark.parametrize("case", BAD_OPTIONS)
def test_bad_option_exits_2_with_one_line_and_writes_nothing(case, make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db")
    before = sorted(p.relative_to(folder.root) for p in folder.root.rglob("*"))
    argv, named = BAD_OPTIONS[case]
    image = str(folder.root / "images/gen/p0-1.png")
    argv = [str(folder.root) if a == "DB" else a.replace("DB/", f"{folder.root}/") if a.startswith("DB/")
            else image if a == "IMG" else a for a in argv]
    assert exit_status(argv) == 2
    line = last_error_line(capsys)
    assert "error" in line and named in line, line
    assert sorted(p.relative_to(folder.root) for p in folder.root.rglob("*")) == before


def test_overflowing_mos_range_is_named_as_the_cause_not_the_learning_rate(make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db")
    card = folder.read_card()
    card["mos_range"] = [-1.7e308, 1.7e308]  # valid numbers whose width overflows: targets would be NaN or 0
    folder.write(card=card, stage="test")
    assert exit_status(["train", "scorer", str(folder.root), *TRAIN, "--epochs", "1"]) == 2
    line = last_error_line(capsys)
    assert "dataset.json" in line and "mos_range" in line and "overflows" in line and "--lr" not in line
    assert not (folder.root / "runs").exists()


def test_infinite_loss_before_any_update_blames_the_inputs_not_the_learning_rate(make_folder, tmp_path):
    from aigciqa.model.loop import LoopOptions, Task, fit
    folder = make_folder(tmp_path / "db")

    def make_task(device):
        model = torch.nn.Linear(2, 1)
        # A loss the inputs make infinite (a division by an input of 0), whatever the weights.
        return Task(model=model, examples=[0.0, 0.0],
                    batch_loss=lambda m, batch: m(torch.ones(2)).sum() / torch.tensor(batch).sum())

    class Options(LoopOptions):  # a stage's options name the run
        def run_name(self):
            return self.run

    options = Options(run="inf", epochs=1, batch_size=2, cpu=True, progress=False)
    with pytest.raises(InputError) as caught:
        fit(folder.root, options, {}, make_task, ())
    assert "before any update" in str(caught.value) and "not the learning rate" in str(caught.value)
    assert "lower --lr" not in str(caught.value) and not (folder.root / "runs").exists()


# ---- a mistyped run config.json -----------------------------------------------------------------

RUN_CONFIG = {"stage": 1, "preset": "tiny", "perspectives": ["quality", "authenticity"], "bins": 1, "lora_rank": 0,
              "num_queries": 4, "fix_rate": 0.7, "mos_range": [0, 100], "segments": True, "database": "tiny-test"}


@pytest.mark.parametrize("field, value", [("fix_rate", "x"), ("mos_range", None), ("num_queries", "32")])
def test_mistyped_run_config_names_the_run_config_and_field(field, value, make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db")
    run = folder.root / "runs" / "typo"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({**RUN_CONFIG, field: value}))
    assert exit_status(["evaluate", str(folder.root), "--model", str(run), "--quiet"]) == 2
    line = last_error_line(capsys)
    assert str(run / "config.json") in line and f"field '{field}'" in line and "dataset.json" not in line, line


# ---- the writer lock and reads inside the folder ------------------------------------------------

def test_second_train_of_the_same_run_exits_2_naming_the_holder(make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db")
    argv = ["train", "scorer", str(folder.root), *TRAIN, "--epochs", "1", "--run", "same"]
    env = {**os.environ, "FAULT_SIGNAL": "STOP", "FAULT_COUNT_FILE": ""}
    holder = subprocess.Popen([sys.executable, str(CHILD), "1", *argv], cwd=WT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while Path(f"/proc/{holder.pid}/stat").read_text().split(") ")[-1][0] != "T":  # stopped mid-commit
            assert holder.poll() is None and time.monotonic() < deadline, holder.communicate()
            time.sleep(0.05)
        assert exit_status(argv) == 2
        message = capsys.readouterr().err.strip()
        assert "\n" not in message and f"pid {holder.pid}" in message and "train scorer" in message, message
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        _, err = holder.communicate(timeout=300)
    assert holder.returncode == 0, err
    assert (folder.root / "runs" / "same" / "model.safetensors").is_file()


def test_image_linked_out_of_the_folder_is_refused(make_folder, tmp_path, capsys):
    folder = make_folder(tmp_path / "db")
    image = folder.root / "images/gen/p0-1.png"
    image.unlink()
    image.symlink_to("/etc/passwd")
    assert exit_status(["train", "scorer", str(folder.root), *TRAIN, "--epochs", "1"]) == 2
    line = last_error_line(capsys)
    assert "p0-1.png" in line and "outside" in line, line
    assert not (folder.root / "runs").exists()


def test_image_over_the_pixel_cap_is_refused_before_decoding(make_folder, tmp_path, capsys, monkeypatch):
    folder = make_folder(tmp_path / "db")
    monkeypatch.setenv("AIGCIQA_MAX_IMAGE_PIXELS", "100")  # the fixture's images are 16x16 = 256 pixels
    assert exit_status(["train", "scorer", str(folder.root), *TRAIN, "--epochs", "1"]) == 2
    line = last_error_line(capsys)
    assert "16x16" in line and "AIGCIQA_MAX_IMAGE_PIXELS" in line, line
    assert not (folder.root / "runs" / "mint-iqa-tiny" / "model.safetensors").exists()


def test_vqa_file_outside_the_folder_is_refused(make_folder, tmp_path):
    from aigciqa.model.data import load_model_data
    from aigciqa.model.instruction import vqa_records
    folder = make_folder(tmp_path / "db")
    (tmp_path / "x.jsonl").write_text('{"image_id": "p0-0", "question": "q?", "answer": "a"}\n')
    data = load_model_data(folder.root, split="split1")
    with pytest.raises(InputError, match="outside"):
        vqa_records(data, "../x.jsonl")


# ---- resume after a kill at any checkpoint write ------------------------------------------------

def run_train(root: Path, kill_at: int, *extra: str, count_file: Path | None = None):
    env = {**os.environ, "FAULT_COUNT_FILE": str(count_file or "")}
    argv = ["train", "scorer", str(root), *TRAIN, "--epochs", "2", "--seed", "3", *extra]
    return subprocess.run([sys.executable, str(CHILD), str(kill_at), *argv], cwd=WT, env=env,
                          capture_output=True, text=True, timeout=600)


def weights_of(root: Path) -> dict[str, bytes]:
    run = root / "runs" / "mint-iqa-tiny"
    files = {name: (run / name).read_bytes() for name in ("model.safetensors", "last/model.safetensors",
                                                          "last/state.safetensors")}
    state = json.loads((run / "last/state.json").read_text())
    for record in state["history"]:
        record.pop("seconds")  # wall time, the one thing that differs
    # the command that resumes the run names its folder: each copy's own
    state["resume_command"] = state["resume_command"].replace(str(root), "DB")
    files["last/state.json"] = json.dumps(state, sort_keys=True).encode()
    return files


@pytest.mark.slow
def test_train_killed_at_any_checkpoint_write_resumes_to_the_uninterrupted_weights(make_folder, tmp_path):
    import shutil
    pristine = make_folder(tmp_path / "pristine").root
    whole = tmp_path / "whole"
    shutil.copytree(pristine, whole)
    count = tmp_path / "count"
    assert run_train(whole, 0, count_file=count).returncode == 0
    reference, points = weights_of(whole), int(count.read_text())
    assert points > 10
    # Every sixth write point (53 in all: staging, the commit record, the renames of three commits): each
    # kill starts torch twice, so every point would take ten minutes on two shared cores.
    for kill_at in range(1, points + 1, 6):
        root = tmp_path / f"kill{kill_at}"
        shutil.copytree(pristine, root)
        killed = run_train(root, kill_at)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr[-2000:])
        resumed = run_train(root, 0, "--resume")
        if resumed.returncode == 2:  # nothing committed yet: refused clearly, and a fresh start is not stuck
            assert "no checkpoint to resume from" in resumed.stderr and "without --resume" in resumed.stderr
            resumed = run_train(root, 0)
        assert resumed.returncode == 0, (kill_at, resumed.stderr[-2000:])
        assert weights_of(root) == reference, f"killed at write point {kill_at} of {points}"
        shutil.rmtree(root)
