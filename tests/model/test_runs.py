"""Unfinished training runs (stopped before their planned epochs) are told apart from finished ones: the
interrupt line of ``train`` names the resume, ``info`` lists them with the command that finishes them, and
``evaluate``/``score`` warn on stderr while still using the best checkpoint so far."""

import shlex

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from aigciqa.cli import main
from aigciqa.model import loop
from aigciqa.model.runs import run_progress

TRAIN = ["--preset", "tiny", "--split", "split1", "--epochs", "2", "--lr", "1e-3", "--cpu", "--quiet"]


def run_command(command: str) -> int:
    """Run a printed ``aigciqa ...`` command line in this process."""
    words = shlex.split(command)
    assert words[0] == "aigciqa"
    return main(words[1:])


def stopped_after_one_epoch(make_folder, tmp_path, capsys):
    """A folder whose tiny run trained 1 of its 2 epochs (``--stop-after 1``); returns the folder and run."""
    folder = make_folder(tmp_path / "db")
    assert main(["train", "scorer", str(folder.root), *TRAIN, "--stop-after", "1"]) == 0
    capsys.readouterr()
    return folder, folder.root / "runs" / "mint-iqa-tiny"


def resume_line_of(text: str) -> str:
    """The command after 'resume with: ' in info's listing."""
    return text.split("resume with: ", 1)[1].splitlines()[0]


def test_info_lists_an_unfinished_run_with_its_resume_command_and_suggests_it(make_folder, tmp_path, capsys):
    folder, run = stopped_after_one_epoch(make_folder, tmp_path, capsys)
    assert main(["info", str(folder.root)]) == 0
    printed = capsys.readouterr().out
    assert "unfinished run runs/mint-iqa-tiny: 1 of 2 epochs done; resume with: aigciqa train scorer" in printed
    assert "trained models" not in printed
    next_steps = printed.split("next:", 1)[1]
    assert "aigciqa evaluate" not in next_steps and "--resume" in next_steps and "--stop-after" not in next_steps
    # The command info names finishes the run; info then lists it as trained and suggests evaluating it.
    assert run_command(resume_line_of(printed)) == 0
    assert run_progress(run).finished and run_progress(run).epochs_done == 2
    capsys.readouterr()
    assert main(["info", str(folder.root)]) == 0
    printed = capsys.readouterr().out
    assert "trained models (runs/): mint-iqa-tiny" in printed and "unfinished run" not in printed
    assert "aigciqa evaluate" in printed.split("next:", 1)[1]


def test_evaluate_and_score_warn_about_an_unfinished_run_but_still_run(make_folder, tmp_path, capsys):
    folder, run = stopped_after_one_epoch(make_folder, tmp_path, capsys)
    for command in (["evaluate", str(folder.root), "--model", str(run), "--split", "split1", "--cpu", "--quiet"],
                    ["score", str(folder.root), "--model", str(run), "--cpu", "--quiet"]):
        assert main(command) == 0
        captured = capsys.readouterr()
        assert "srcc" in captured.out.lower() or "quality" in captured.out
        warning = captured.err.strip().splitlines()
        assert len(warning) == 1, captured.err
        assert warning[0].startswith(f"aigciqa {command[0]}: warning: run {run} is unfinished (epoch 1 of 2)")
        assert "finish it with: aigciqa train scorer" in warning[0] and warning[0].endswith("--resume")
    assert main(["train", "scorer", str(folder.root), *TRAIN, "--resume"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(folder.root), "--model", str(run), "--split", "split1", "--cpu", "--quiet"]) == 0
    assert "is unfinished" not in capsys.readouterr().err


def test_a_run_trained_through_the_api_is_unfinished_with_the_shape_of_its_resume(make_folder, tmp_path):
    from aigciqa.model.scorer import TrainOptions, train
    folder = make_folder(tmp_path / "db")
    result = train(folder.root, TrainOptions(preset="tiny", split="split1", epochs=3, stop_after=2, lr=1e-3,
                                             progress=False, cpu=True))
    progress = run_progress(result.run_dir)
    assert (progress.finished, progress.epochs_done, progress.epochs_planned) == (False, 2, 3)
    assert progress.resume_command("db") == "aigciqa train scorer db --run mint-iqa-tiny --epochs 3 --resume"
    assert "config.json" in progress.resume_caveat()


def interrupted_after_the_first_checkpoint(monkeypatch, capsys, folder, *options) -> str:
    """Train the scorer with Ctrl-C right after its first checkpoint is written; the stderr line (exit 130)."""
    save = loop._save

    def save_then_interrupt(*args, **kwargs):
        save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_save", save_then_interrupt)
    assert main(["train", "scorer", str(folder.root), *TRAIN, *options]) == 130
    monkeypatch.setattr(loop, "_save", save)
    return capsys.readouterr().err.strip()


def test_an_interrupted_train_names_the_resume_and_it_continues_the_run(make_folder, tmp_path, capsys,
                                                                        monkeypatch):
    """Ctrl-C after the first epoch's checkpoint: the line names the command, which finishes the run (a plain
    rerun is refused: 'run exists')."""
    folder = make_folder(tmp_path / "db")
    message = interrupted_after_the_first_checkpoint(monkeypatch, capsys, folder, "--stop-after", "2")
    assert message.startswith("aigciqa train scorer: interrupted;") and "a rerun resumes" not in message
    command = message.split("continue the run with: ", 1)[1].split(" (if it stopped", 1)[0]
    assert command == shlex.join(["aigciqa", "train", "scorer", str(folder.root), *TRAIN, "--resume"])
    assert main(["train", "scorer", str(folder.root), *TRAIN]) == 2  # the plain rerun the old line promised
    assert "exists: pass --resume" in capsys.readouterr().err
    assert run_command(command) == 0
    assert run_progress(folder.root / "runs" / "mint-iqa-tiny").finished


@pytest.mark.parametrize("stage, function", [("instruct", "run_train_instruct"), ("feedback", "run_train_feedback")])
def test_every_train_subcommand_names_its_resume_on_interrupt(tmp_path, capsys, monkeypatch, stage, function):
    from aigciqa.model import cli as model_cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(model_cli, function, interrupted)
    argv = ["train", stage, str(tmp_path), "--from", "run1", "--split", "split1", "--epochs", "3"]
    assert main(argv) == 130
    message = capsys.readouterr().err
    assert f"continue the run with: {shlex.join(['aigciqa', *argv, '--resume'])} " in message


def test_commands_whose_rerun_resumes_keep_the_generic_interrupt_line(tmp_path, capsys, monkeypatch):
    from aigciqa.generate import cli as generate_cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(generate_cli, "run", interrupted)
    assert main(["generate", str(tmp_path)]) == 130
    assert capsys.readouterr().err == "aigciqa generate: interrupted; finished outputs are kept, a rerun resumes\n"


def test_an_interrupted_per_perspective_train_resumes_the_perspectives_not_begun_too(make_folder, tmp_path, capsys,
                                                                                     monkeypatch):
    """Interrupted in the first perspective's run, the named command finishes it and trains the second, which
    has no checkpoint yet (a bare --resume of it would be refused: 'no checkpoint to resume from')."""
    folder = make_folder(tmp_path / "db")
    message = interrupted_after_the_first_checkpoint(monkeypatch, capsys, folder, "--per-perspective")
    command = message.split("continue the run with: ", 1)[1].split(" (if it stopped", 1)[0]
    assert not (folder.root / "runs" / "mint-iqa-tiny-authenticity").exists()
    assert run_command(command) == 0
    for name in ("quality", "authenticity"):
        assert run_progress(folder.root / "runs" / f"mint-iqa-tiny-{name}").finished
