"""The command line: every subcommand explains itself and bad input exits with status 2."""

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
    assert main(["demo", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "demo outputs are in" in out
    assert main(["info", str(tmp_path / "out" / "db")]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
