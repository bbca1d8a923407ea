"""benchmarks/results.py: each benchmark replaces its own section of RESULTS.md and keeps the others."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from results import HEADER, command_line, provenance, write_section  # noqa: E402


def test_a_section_is_replaced_whole_and_the_others_are_kept(tmp_path):
    path = tmp_path / "RESULTS.md"
    write_section("first", "old figures\n\n| a | b |", path)
    write_section("second", "kept as it is", path)
    write_section("first", "new figures", path)
    text = path.read_text()
    assert text.startswith(HEADER)
    assert "old figures" not in text and "| a | b |" not in text
    assert text.index("## first\n\nnew figures\n") < text.index("## second\n\nkept as it is\n")
    assert text.count("## first") == 1 and text.endswith("kept as it is\n")


def test_the_section_starts_with_the_command_that_reproduces_it():
    script = str(ROOT / "benchmarks" / "bench_generate.py")
    assert command_line([script, "--images", "8", "--name", "a b"]) == \
        "`python benchmarks/bench_generate.py --images 8 --name 'a b'`"
    line = provenance([script])
    assert line.startswith("`python benchmarks/bench_generate.py` (") and "load average" in line


def test_a_table_aligns_figures_right():
    from results import markdown_table
    assert markdown_table(["run", "s"], [["reference", "1.00"], ["ours", 2.5]], "lr") == \
        "| run | s |\n|---|---:|\n| reference | 1.00 |\n| ours | 2.5 |"
