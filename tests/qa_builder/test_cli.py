"""The build-vqa command line: help, outputs, exit status 2 on bad input, --evaluate."""

import json

import pandas as pd

from aigciqa.cli import main

from .vqa_fixtures import write_folder


def test_help_has_summary_and_example(capsys):
    try:
        main(["build-vqa", "--help"])
    except SystemExit as exit_:
        assert exit_.code == 0
    out = capsys.readouterr().out
    assert "mint-iqa" in out and "--evaluate" in out and "example:" in out


def test_cli_writes_formats_and_reports(small_folder, tmp_path, capsys):
    assert main(["build-vqa", str(small_folder.root), "--no-llm", "--quiet"]) == 0
    assert "48 pairs for 3 images" in capsys.readouterr().out
    out = tmp_path / "mint.json"
    assert main(["build-vqa", str(small_folder.root), "--format", "mint-iqa", "-o", str(out), "--quiet"]) == 0
    assert len(json.loads(out.read_text("utf-8"))) == 12


def test_bad_input_exits_2_with_file_record_field(tmp_path, capsys):
    folder = write_folder(tmp_path / "db")
    frame = pd.read_csv(folder.root / "mos.csv", dtype=str)
    frame.loc[2, "quality_mos"] = "-3"
    frame.to_csv(folder.root / "mos.csv", index=False)
    assert main(["build-vqa", str(folder.root), "--no-llm", "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert "mos.csv, record 3, field 'quality_mos'" in error and len(error.splitlines()) == 1
    assert not (folder.root / "vqa.jsonl").exists()
    assert main(["build-vqa", str(folder.root), "--format", "paperr", "--no-llm"]) == 2
    assert "did you mean 'paper'" in capsys.readouterr().err


def test_cli_evaluate_prints_accuracy_and_baseline(small_folder, tmp_path, capsys):
    answers = tmp_path / "answers.jsonl"
    answers.write_text("\n".join(json.dumps(r) for r in [
        {"image_id": "0", "answer": "Very clear, clearly distinguishable outline, essentially sufficient details, "
                                    "partially distorted, essentially consistent with the prompt."},
        {"image_id": "1", "answer": "Sharp and realistic."},
    ]) + "\n", "utf-8")
    report = tmp_path / "report.json"
    assert main(["build-vqa", str(small_folder.root), "--evaluate", str(answers), "-o", str(report)]) == 0
    out = capsys.readouterr().out
    assert "quality" in out and "(25.00%)" in out and "(33.33%)" in out
    data = json.loads(report.read_text("utf-8"))
    assert data["accuracy"]["quality"] == 0.5 and data["accuracy"]["authenticity"] == 0.5
