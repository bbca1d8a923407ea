"""The command line: every subcommand explains itself and bad input exits with status 2."""

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from aigciqa.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]  # the repository: the subprocess imports this checkout's code


def subcommands():
    return sorted(build_parser()._subparsers._group_actions[0].choices)


def test_top_level_help_lists_every_stage_command():
    result = subprocess.run([sys.executable, "-m", "aigciqa", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0
    for name in subcommands():
        assert name in result.stdout
    assert "example" in result.stdout


@pytest.mark.parametrize("name", subcommands())
def test_each_subcommand_help_has_a_summary_inputs_and_an_example(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "example:" in text and f"aigciqa {name}" in text.split("example:")[1]
    assert "Input" in text or "input" in text


def test_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "demo outputs are in" in out
    for stage in ("generate", "datasets", "annotate", "mos", "qa_builder", "model"):
        assert f"[{stage}] " in out and f"[{stage}] skipped" not in out, stage
    db = tmp_path / "out" / "db"
    assert main(["info", str(db)]) == 0
    report = capsys.readouterr().out
    assert "SYNTHETIC" in report and "image files: 60 of 60 present" in report
    # The next step info suggests is a command that works on the demo's trained model.
    suggestion = report.split("next:")[1].strip().splitlines()[0].split("#")[0]
    assert suggestion.startswith("aigciqa evaluate ")
    assert main(shlex.split(suggestion)[1:] + ["--quiet"]) == 0
    assert "srcc" in capsys.readouterr().out


def command_paths(parser=None, words=()):
    """Every command and subcommand as its words, e.g. ('train', 'scorer'), from the built parser."""
    parser = parser or build_parser()
    found = [words] if words else []
    for action in parser._actions:
        if isinstance(action.choices, dict):
            for word, sub in action.choices.items():
                found += command_paths(sub, (*words, word))
    return found


@pytest.mark.parametrize("words", command_paths(), ids=" ".join)
def test_every_command_answers_a_usage_error_with_one_line_and_status_2(words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*words, "--no-such-option"])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"aigciqa {' '.join(words)}: error: "), lines[0]
    assert f"(see 'aigciqa {' '.join(words)} --help')" in lines[0]


@pytest.mark.parametrize("argv, prog, says", [
    ([], "aigciqa", "required: COMMAND"),
    (["buildmos", "DB"], "aigciqa", "invalid choice: 'buildmos'; did you mean 'build-mos'"),
    (["build-mos"], "aigciqa build-mos", "required: DB"),
    (["build-mos", "DB", "--scale", "5", "1"], "aigciqa build-mos", "LOW must be below HIGH"),
    (["train", "scorer", "DB", "--split", "split1", "--epochs", "0"], "aigciqa train scorer",
     "argument --epochs: 0 is below the least allowed, 1"),
    (["weights", "list", "--bogus", "1"], "aigciqa weights list", "unrecognized arguments: --bogus 1"),
])
def test_a_usage_error_is_one_line_from_a_real_process(argv, prog, says, tmp_path):
    db = tmp_path / "db"
    result = subprocess.run([sys.executable, "-m", "aigciqa", *[str(db) if a == "DB" else a for a in argv]],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "usage:" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"{prog}: error: ") and says in result.stderr, result.stderr
    assert result.stderr.rstrip().endswith(f"(see '{prog} --help')")
    assert not db.exists()  # refused before anything is written
