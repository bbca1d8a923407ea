"""benchmarks/bench_llm_expansion.py: a killed run resumes where it stopped and counts every request once."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from aigciqa.qa_builder.inputs import load_inputs
from aigciqa.qa_builder.llm import LlmCache, LlmClient, LlmSettings, LlmStats
from aigciqa.qa_builder.templates import template_pairs

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "qa_builder"))
from vqa_fixtures import write_folder  # noqa: E402


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_llm_expansion", ROOT / "benchmarks" / "bench_llm_expansion.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RejectingClient(LlmClient):
    """LlmClient's attempts, checks and stats around a model that never writes valid JSON."""
    name = "rejecting.gguf"

    def __init__(self):
        self.settings, self.cache, self.stats, self.sha256 = LlmSettings(), LlmCache(None), LlmStats(), "0"
        self.calls = 0

    def raw_completion(self, messages, schema, *, temperature, seed):
        self.calls += 1
        return {"choices": [{"finish_reason": "stop", "message": {"content": "{}"}}], "usage": {}}


def test_image_order_is_a_seeded_permutation_whose_prefixes_are_samples(bench):
    ids = [f"{i:02d}" for i in range(50)]
    order = bench.image_order(ids, 0)
    assert sorted(order) == ids and order != ids and order == bench.image_order(ids, 0)
    assert order != bench.image_order(ids, 1)


def test_a_killed_run_resumes_and_counts_each_request_once(bench, tmp_path, capsys):
    inputs = load_inputs(write_folder(tmp_path / "db"))
    records = template_pairs(inputs)
    order = bench.image_order(list(inputs.facts["image_id"]), 0)
    client = RejectingClient()
    log = bench.UnitLog(tmp_path / "run.jsonl")
    bench.run_units(client, inputs, records, order, log, "refine", "first")
    whole = bench.summarize(list(log.units.values()))
    units = (tmp_path / "run.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(u)["kind"] for u in units][-3:] == ["new_question"] * 3 and len(units) == len(log.units)
    assert whole["by_task"]["new_question"] == {"requests": 9, "passed": 0, "failed": 9, "attempts": 27}
    assert whole["rejected"] == {"invalid JSON for the schema": client.calls} and whole["images"] == 3

    # Killed while writing the last unit: that line is cut off; the rerun drops it and redoes that unit only.
    (tmp_path / "run.jsonl").write_text("\n".join(units[:-1]) + "\n" + units[-1][:25], "utf-8")
    again = RejectingClient()
    resumed = bench.UnitLog(tmp_path / "run.jsonl")
    assert len(resumed.units) == len(units) - 1
    bench.run_units(again, inputs, records, order, resumed, "refine", "second")
    assert again.calls == 3 * 3  # one image: three new questions, three attempts each
    after = bench.summarize(list(bench.UnitLog(tmp_path / "run.jsonl").units.values()))
    assert after["by_task"] == whole["by_task"] and list(after["sessions"]) == ["first", "second"]

    (tmp_path / "run.jsonl").write_text("{\n" + "\n".join(units), "utf-8")  # damage before the end: refused
    with pytest.raises(SystemExit) as stopped:
        bench.UnitLog(tmp_path / "run.jsonl")
    assert stopped.value.code == 2 and "run.jsonl: line 1: malformed JSON" in capsys.readouterr().err
