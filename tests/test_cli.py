"""The command line: every subcommand explains itself and bad input exits with status 2."""

import shlex
import subprocess
import sys

import pytest

from aigciqa.cli import build_parser, main


def subcommands():
    return sorted(build_parser()._subparsers._group_actions[0].choices)


def test_top_level_help_lists_every_stage_command():
    result = subprocess.run([sys.executable, "-m", "aigciqa", "--help"], capture_output=True, text=True)
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
