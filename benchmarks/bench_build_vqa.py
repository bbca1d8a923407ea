"""Benchmark of build-vqa on the real AIGCIQA2023 labels (../shared/data/aigciqa2023).

1. Template pairs for all 2400 images: time and pairs per second, as a ratio to reading and checking
   the folder's tables in the same process (the I/O every run pays anyway).
2. LLM expansion with the SmolLM2 GGUF on a few images: tokens per second of the whole stage
   (prompt building, grammar, cache, checks, retries) against llama-cpp-python's own generation speed
   on the same model and the same requests in the same run; the effect of prompt reuse (llama.cpp
   keeps the evaluated prefix: the fixed system prompt and few-shot examples) and of the cache.

Writes the "build-vqa" section of benchmarks/RESULTS.md.

    python3 benchmarks/bench_build_vqa.py [--llm-images 1] [--threads N] [--no-llm]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # this folder's helpers
from results import markdown_table, provenance, write_section  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "aigciqa2023"


def timed(function, repeat: int = 3):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def bench_templates(folder) -> dict:
    from aigciqa.qa_builder.exports import mint_iqa_records
    from aigciqa.qa_builder.inputs import load_inputs
    from aigciqa.qa_builder.templates import template_pairs
    read_s, _ = timed(lambda: folder.read_tables(["images", "prompts", "mos", "labels"]))
    load_s, inputs = timed(lambda: load_inputs(folder))
    pairs_s, pairs = timed(lambda: template_pairs(inputs))
    mint_s, mint = timed(lambda: mint_iqa_records(inputs))
    return {"images": len(inputs.facts), "reference_read_tables_s": read_s, "load_inputs_s": load_s,
            "paper_pairs": len(pairs), "paper_pairs_s": pairs_s, "paper_pairs_per_s": len(pairs) / pairs_s,
            "mint_iqa_pairs": len(mint), "mint_iqa_s": mint_s, "mint_iqa_pairs_per_s": len(mint) / mint_s,
            "paper_time_over_reading": pairs_s / read_s}


def bench_llm(folder, n_images: int, threads: int | None = None) -> dict:
    from aigciqa.qa_builder import expand
    from aigciqa.qa_builder.inputs import load_inputs
    from aigciqa.qa_builder.llm import LlmCache, LlmClient, default_model_path
    from aigciqa.qa_builder.templates import record_topic, template_pairs
    inputs = load_inputs(folder)
    records = template_pairs(inputs)
    image_ids = list(inputs.facts["image_id"])[:n_images]
    kinds = ("rating", "factor")
    chosen = [r for r in records if r["image_id"] in set(image_ids)]
    requests = sorted({(r["question"], record_topic(r)) for r in chosen if r["kind"] in kinds})
    requests = [("paraphrase", expand.paraphrase_messages(q), expand.PARAPHRASE_SCHEMA) for q, _ in requests]
    requests += [("new_question", expand.new_question_messages(r["perspective"], r["answer"]),
                  expand.NEW_QUESTION_SCHEMA) for r in chosen if r["kind"] == "assess"]

    client = LlmClient(default_model_path(), cache=LlmCache(None), n_threads=threads)
    s = client.settings

    def raw(reset: bool) -> tuple[float, int]:
        tokens, started = 0, time.perf_counter()
        for _, messages, schema in requests:
            if reset:  # forget the evaluated prefix: every prompt is evaluated from its first token
                client.model.reset()
            reply = client.raw_completion(messages, schema, temperature=s.temperature, seed=s.seed)
            tokens += reply["usage"]["completion_tokens"]
        return time.perf_counter() - started, tokens

    raw(False)  # warm-up: first evaluation of the shared prefix, page-in of the weights
    raw_s, raw_tokens = raw(False)
    reset_s, reset_tokens = raw(True)

    started = time.perf_counter()
    extra = expand.expand_pairs(client, records, image_ids, kinds=kinds)
    stage_s = time.perf_counter() - started
    stats = client.stats
    stage_tokens = stats.completion_tokens
    started = time.perf_counter()
    expand.expand_pairs(client, records, image_ids, kinds=kinds)  # every request answered from the cache
    cached_s = time.perf_counter() - started
    result = {
        "model": client.name, "images": n_images, "threads": threads, "requests": len(requests),
        "raw_llama_cpp": {"seconds": raw_s, "completion_tokens": raw_tokens, "tokens_per_s": raw_tokens / raw_s},
        "raw_without_prompt_reuse": {"seconds": reset_s, "completion_tokens": reset_tokens,
                                     "tokens_per_s": reset_tokens / reset_s},
        "stage": {"seconds": stage_s, "attempts": stats.attempts, "completion_tokens": stage_tokens,
                  "tokens_per_s": stage_tokens / stage_s, "pairs_added": len(extra), "failed": stats.failed,
                  "rejected": stats.rejected,
                  "seconds_inside_llama_cpp": stats.generation_seconds},
        "stage_overhead_share": 1 - stats.generation_seconds / stage_s,
        "stage_tokens_per_s_over_raw": (stage_tokens / stage_s) / (raw_tokens / raw_s),
        "cached_rerun_seconds": cached_s,
    }
    client.close()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm-images", type=int, default=1)
    parser.add_argument("--no-llm", action="store_true")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: up to 4)")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"real data folder {DATA} is absent", file=sys.stderr)
        return 1
    from aigciqa.database import DatabaseFolder
    from aigciqa.datasets.importers import import_database
    from aigciqa.errors import DataWarning
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        import_database("aigciqa2023", DATA, Path(tmp) / "db")
        folder = DatabaseFolder(Path(tmp) / "db")
        results = {"templates": bench_templates(folder)}
        t = results["templates"]
        print(f"template pairs: {t['paper_pairs']} for {t['images']} images in {t['paper_pairs_s']:.3f} s "
              f"({t['paper_pairs_per_s']:.0f} pairs/s; {t['paper_time_over_reading']:.2f}x the time to read the "
              f"tables, {t['reference_read_tables_s']:.3f} s); authors' format: {t['mint_iqa_pairs']} pairs in "
              f"{t['mint_iqa_s']:.3f} s ({t['mint_iqa_pairs_per_s']:.0f} pairs/s)")
        from aigciqa.qa_builder.llm import default_model_path, llama_cpp_available
        if not args.no_llm and default_model_path() is not None and llama_cpp_available():
            results["llm"] = r = bench_llm(folder, args.llm_images, args.threads)
            print(f"LLM ({r['model']}, {r['requests']} requests): llama-cpp-python alone "
                  f"{r['raw_llama_cpp']['tokens_per_s']:.1f} tokens/s ({r['raw_without_prompt_reuse']['tokens_per_s']:.1f}"
                  f" without prompt reuse); whole stage {r['stage']['tokens_per_s']:.1f} tokens/s "
                  f"({r['stage_tokens_per_s_over_raw']:.2f}x; {100 * r['stage_overhead_share']:.1f}% of the stage "
                  f"outside llama.cpp; {r['stage']['attempts']} attempts, {r['stage']['failed']} fell back); "
                  f"cached rerun {r['cached_rerun_seconds'] * 1000:.1f} ms")
    print(json.dumps(results, indent=2))
    write_section("build-vqa", section(results))
    return 0


def section(results: dict) -> str:
    t = results["templates"]
    lines = [provenance(), "",
             f"Real AIGCIQA2023 labels (`aigciqa import aigciqa2023`, {t['images']} images), best of 3 in one process; "
             "the reference is reading and checking the folder's tables (the I/O every run pays anyway).", "",
             markdown_table(["step", "pairs", "s", "pairs/s", "/ reading the tables"], [
                 ["reading and checking the tables (reference)", "", f"{t['reference_read_tables_s']:.3f}", "", "1.00"],
                 ["the paper's Fig. 5 pairs (`template_pairs`)", t["paper_pairs"], f"{t['paper_pairs_s']:.3f}",
                  f"{t['paper_pairs_per_s']:.0f}", f"{t['paper_time_over_reading']:.2f}"],
                 ["the authors' released format (`mint_iqa_records`)", t["mint_iqa_pairs"], f"{t['mint_iqa_s']:.3f}",
                  f"{t['mint_iqa_pairs_per_s']:.0f}", f"{t['mint_iqa_s'] / t['reference_read_tables_s']:.2f}"]],
                 "lrrrr")]
    r = results.get("llm")
    if r is None:
        lines += ["", "LLM expansion not measured in this run (`--no-llm`, or no GGUF model or llama-cpp-python)."]
        return "\n".join(lines)
    raw, reset, stage = r["raw_llama_cpp"], r["raw_without_prompt_reuse"], r["stage"]
    lines += ["", f"LLM expansion, {r['model']} (llama-cpp-python), {r['images']} image(s), {r['requests']} requests, "
              f"threads {r['threads'] or 'default'}; the reference is llama-cpp-python's own generation on the same "
              "model and requests in the same run.", "",
              markdown_table(["run", "completion tokens", "s", "tokens/s", "/ llama-cpp-python alone"], [
                  ["llama-cpp-python alone, prompt prefix reused (reference)", raw["completion_tokens"],
                   f"{raw['seconds']:.2f}", f"{raw['tokens_per_s']:.1f}", "1.00"],
                  ["llama-cpp-python alone, every prompt evaluated from its first token", reset["completion_tokens"],
                   f"{reset['seconds']:.2f}", f"{reset['tokens_per_s']:.1f}",
                   f"{reset['tokens_per_s'] / raw['tokens_per_s']:.2f}"],
                  ["the whole stage (`expand_pairs`: prompts, grammar, cache, checks, retries)",
                   stage["completion_tokens"], f"{stage['seconds']:.2f}", f"{stage['tokens_per_s']:.1f}",
                   f"{r['stage_tokens_per_s_over_raw']:.2f}"]], "lrrrr"), "",
              f"- Share of the stage's time outside llama.cpp: {100 * r['stage_overhead_share']:.2f} % "
              f"({stage['attempts']} attempts, {stage['failed']} fell back to the template, {sum(stage['rejected'].values())} attempts rejected).",
              f"- Rerun answered from the cache: {r['cached_rerun_seconds'] * 1000:.1f} ms "
              f"({r['cached_rerun_seconds'] / stage['seconds']:.4f} of the first run)."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
