"""``aigciqa generate`` on the command line: exit status, one-line errors, nothing written on bad input."""

import subprocess
import sys

import pytest

from aigciqa.cli import main
from aigciqa.database import DatabaseFolder
from aigciqa.generate.cli import parse_weights
from aigciqa.errors import InputError


def test_help_does_not_import_torch():
    code = "import sys; from aigciqa.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_parse_weights():
    assert parse_weights(["tiny", "sd=/m/sd", "Dalle=/m/karlo"]) == {"*": "tiny", "sd": "/m/sd", "dalle": "/m/karlo"}
    with pytest.raises(InputError):
        parse_weights(["=x"])


def test_unknown_generator_exits_2_with_a_suggestion(tmp_path, capsys):
    code = main(["generate", str(tmp_path / "db"), "--generators", "stable_diffusion,unidifuser", "--weights", "tiny"])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert "did you mean 'unidiffuser'" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "db").exists()


def test_bad_config_exits_2(tmp_path, capsys):
    config = tmp_path / "gen.toml"
    config.write_text("[generators.stable_diffusion]\nwidth = 30\n")
    assert main(["generate", str(tmp_path / "db"), "--generators", "stable_diffusion", "--weights", "tiny",
                 "--config", str(config)]) == 2
    assert "field 'generators.stable_diffusion.width'" in capsys.readouterr().err


def test_cli_run_then_rerun(tmp_path, capsys):
    config = tmp_path / "gen.json"
    config.write_text('{"generators": {"stable_diffusion": {"width": 32, "height": 32}}}')
    args = ["generate", str(tmp_path / "db"), "--generators", "stable_diffusion", "--weights", "tiny",
            "--limit-prompts", "1", "--images-per-prompt", "2", "--config", str(config), "--quiet"]
    assert main(args) == 0
    assert "2 generated" in capsys.readouterr().out
    assert main(args) == 0
    assert "2 already finished, 0 generated" in capsys.readouterr().out
    assert len(DatabaseFolder(tmp_path / "db").validate()["images"]) == 2
