"""`aigciqa benchmark`: repeated splits, every method on the same test parts, three tables and a plot,
resumption after an interruption or a kill."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from aigciqa.baselines.protocol import BenchmarkOptions, parse_protocol_methods, run_benchmark
from aigciqa.errors import InputError

pytest.importorskip("torch")
WT = Path(__file__).resolve().parents[2]


def benchmark_command(root, *extra):
    return [sys.executable, "-m", "aigciqa", "benchmark", str(root), "--methods", "brisque,ridge,mint-iqa",
            "--repeats", "2", "--preset", "tiny", "--epochs", "2", "--lr", "1e-4", *map(str, extra)]


def test_two_repeats_give_the_three_tables_and_the_plot(distorted):
    result = subprocess.run(benchmark_command(distorted, "--quiet"), cwd=WT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = distorted / "benchmark"
    splits = pd.read_csv(distorted / "splits.csv")
    assert {"prompt_s0", "prompt_s1"} <= set(splits.columns)
    records = json.loads((out / "results.json").read_text())["records"]
    assert sorted((r["method"], r["split"]) for r in records) == sorted(
        (m, s) for m in ("brisque", "ridge", "mint-iqa") for s in ("prompt_s0", "prompt_s1"))
    for split in ("prompt_s0", "prompt_s1"):  # every method on the same test images
        assert len({r["images"] for r in records if r["split"] == split}) == 1
    table = pd.read_csv(out / "table.csv")
    assert set(table["method"]) == {"brisque", "ridge", "mint-iqa"}
    assert set(table["metric"]) == {"srcc", "plcc_logistic", "krcc"} and (table["n"] == 2).all()
    brisque = [r["metrics"]["quality"]["srcc"] for r in records if r["method"] == "brisque"]
    row = table[(table["method"] == "brisque") & (table["metric"] == "srcc")].iloc[0]
    assert row["mean"] == pytest.approx(sum(brisque) / 2) and row["std"] == pytest.approx(abs(brisque[0] - brisque[1]) / 2 ** 0.5)
    markdown = (out / "table.md").read_text()
    assert "| brisque | " in markdown and "±" in markdown and markdown in result.stdout
    latex = (out / "table.tex").read_text()
    assert latex.startswith("\\begin{tabular}") and "$\\pm$" in latex and "mint-iqa" in latex
    assert (out / "srcc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (distorted / "runs" / "mint-iqa-tiny-prompt_s1" / "model.safetensors").is_file()


def test_stop_after_then_resume_reuses_finished_results(distorted):
    options = BenchmarkOptions(methods=["brisque", "ridge"], repeats=2, preset="tiny", stop_after=3, progress=False)
    partial = run_benchmark(distorted, options)
    assert not partial["complete"] and len(partial["results"]) == 3
    first = json.loads((distorted / "benchmark" / "results.json").read_text())["records"]
    options.stop_after = None
    complete = run_benchmark(distorted, options)
    assert complete["complete"] and len(complete["results"]) == 4
    assert complete["results"][:3] == first  # finished records are kept, not recomputed
    with pytest.raises(InputError, match="cannot resume: made with other settings, epochs 10 there, 3 now"):
        run_benchmark(distorted, BenchmarkOptions(methods=["brisque"], repeats=2, preset="tiny", epochs=3,
                                                  progress=False))


def test_other_weights_are_never_mixed_with_earlier_results(distorted, tiny_clip, tmp_path):
    """Results and stored baseline scores made with other weights are refused or scored again, not reused."""
    import shutil
    other = Path(shutil.copytree(tiny_clip, tmp_path / "other-clip"))
    from safetensors.torch import load_file, save_file
    weights_file = other / "model.safetensors"
    tensors = load_file(weights_file)
    name = next(k for k in tensors if "visual_projection" in k)
    tensors[name] = tensors[name] + 0.5
    save_file(tensors, weights_file, metadata={"format": "pt"})

    def options(clip, out):
        return BenchmarkOptions(methods=["clipscore"], repeats=1, preset="tiny", progress=False, out=out,
                                weights={"clipscore": str(clip)})
    first = run_benchmark(distorted, options(tiny_clip, distorted / "bench-a"))
    with pytest.raises(InputError, match="cannot resume: made with other settings, weights"):
        run_benchmark(distorted, options(other, distorted / "bench-a"))
    second = run_benchmark(distorted, options(other, distorted / "bench-b"))  # the stored run is scored again
    assert first["results"][0]["metrics"] != second["results"][0]["metrics"]
    config = json.loads((distorted / "runs" / "baseline-clipscore" / "config.json").read_text())
    assert config["weights_given"] == {"model": str(other)}


@pytest.mark.slow
def test_a_killed_benchmark_resumes_where_it_stopped(distorted):
    results = distorted / "benchmark" / "results.json"
    process = subprocess.Popen(benchmark_command(distorted), cwd=WT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if results.is_file() and len(json.loads(results.read_text())["records"]) >= 2:  # brisque and ridge done, MINT-IQA next
            break
        time.sleep(0.2)
    assert process.poll() is None, "the benchmark finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = json.loads(results.read_text())["records"]
    finished = subprocess.run(benchmark_command(distorted), cwd=WT, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    after = json.loads(results.read_text())["records"]
    assert after[:len(before)] == before and len(after) == 6
    for record in before:  # not run again
        assert f"benchmark: {record['method']} on split {record['split']}\n" not in finished.stdout


def test_unknown_method_and_missing_split_column(distorted):
    with pytest.raises(InputError, match="did you mean 'mint-iqa'"):
        parse_protocol_methods("niqe,mintiqa")
    with pytest.raises(InputError, match="no split column 'nope'"):
        run_benchmark(distorted, BenchmarkOptions(methods=["brisque"], splits=["nope"], progress=False))


def test_cross_database_trains_on_one_folder_and_tests_on_every_image_of_another(distorted, distorted_template,
                                                                                 tmp_path):
    import shutil
    other = Path(shutil.copytree(distorted_template, tmp_path / "other"))
    n_images = len(pd.read_csv(other / "images.csv"))
    result = run_benchmark(distorted, BenchmarkOptions(methods=["brisque", "ridge", "mint-iqa"], repeats=1,
                                                       preset="tiny", epochs=1, cross=str(other), progress=False))
    assert result["complete"]
    assert {(r["method"], r["part"], r["images"]) for r in result["results"]} == {
        (m, "all", n_images) for m in ("brisque", "ridge", "mint-iqa")}
    config = json.loads((other / "runs" / "baseline-ridge-prompt_s0-from-db" / "config.json").read_text())
    assert config["fitted_on"] == str(distorted) and config["split"] == "prompt_s0"
    assert not (other / "splits.csv").read_text().count("prompt_s0")  # the test folder's splits are untouched


def test_methods_that_answer_questions_add_vqa_accuracy_to_the_tables(distorted, add_labels_and_vqa, tiny_vlm,
                                                                      tmp_path, one_thread):
    """Table VIII next to Table II: MINT-IQA's stage 2 (trained per split), a zero-shot VLM and random
    guessing, on the same labelled test images, by evaluate --vqa's code."""
    from aigciqa.database import DatabaseFolder
    add_labels_and_vqa(DatabaseFolder(distorted))
    llava = tiny_vlm("llava", tmp_path / "llava")
    methods = ["brisque", "mint-iqa-instruct", "llava", "random"]
    result = run_benchmark(distorted, BenchmarkOptions(methods=methods, repeats=2, preset="tiny", epochs=1, lr=1e-4,
                                                       weights={"llava": str(llava)}, progress=False))
    records = {(r["method"], r["split"]): r for r in result["results"]}
    for split in ("prompt_s0", "prompt_s1"):
        answering = [records[(m, split)] for m in methods[1:]]
        assert len({r["images"] for r in answering}) == 1  # the same labelled test images
        assert all(set(r["vqa_accuracy"]) == {"quality"} and 0 <= r["vqa_accuracy"]["quality"] <= 1
                   for r in answering)
        assert records[("random", split)]["vqa_accuracy"] == {"quality": 0.25}
        assert records[("llava", split)]["vlm_source"]["class"] == "LlavaForConditionalGeneration"
        assert "vqa_accuracy" not in records[("brisque", split)]
    assert (distorted / "runs" / "mint-iqa-tiny-prompt_s1-instruct" / "model.safetensors").is_file()
    table = pd.read_csv(distorted / "benchmark" / "table.csv")
    vqa = table[table["metric"] == "vqa_accuracy"]
    assert set(vqa["method"]) == set(methods[1:]) and (vqa["n"] == 2).all()
    assert vqa[vqa["method"] == "random"]["mean"].tolist() == [0.25]
    llava_mean = vqa[vqa["method"] == "llava"]["mean"].iloc[0]
    assert llava_mean == pytest.approx(sum(records[("llava", s)]["vqa_accuracy"]["quality"]
                                           for s in ("prompt_s0", "prompt_s1")) / 2)
    markdown = (distorted / "benchmark" / "table.md").read_text()
    assert "quality VQA accuracy" in markdown and "| random | " in markdown
    assert "quality VQA accuracy" in (distorted / "benchmark" / "table.tex").read_text()
