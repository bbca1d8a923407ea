"""``aigciqa benchmark``: the paper's protocol in one resumable command (Tables II-IV, IX).

N seeded prompt-disjoint splits (``prompt_s<seed>`` columns of splits.csv, made when missing, or the columns
given), each learned method trained on every split's train part (ridge; MINT-IQA with a preset), every
method scored on the same test parts (or, with ``cross``, on every image of another folder), and a table of
the mean and standard deviation over splits of SRCC, PLCC (after the logistic fit) and KRCC per perspective
and on average, plus pair accuracy where the folder has pairs.csv.

Methods that answer questions (Table VIII) add VQA accuracy per perspective on the labelled test images,
by ``evaluate --vqa``'s code and matcher: ``mint-iqa-instruct`` (stage 2 trained per split on the
``mint-iqa`` run of that split), the zero-shot vision-language models ``instructblip`` and ``llava`` (their
default Hub weights, or ``--weights NAME=SPEC``) and ``random`` (uniform guessing's expected accuracy).

Output folder (default ``DB/benchmark``): ``results.json`` (the settings and one record per method and split,
rewritten atomically after each, so a killed benchmark resumes where it stopped, with the same settings; MINT-IQA training also resumes from
its last epoch), then ``table.md``, ``table.csv``, ``table.tex`` and ``srcc.png`` (SRCC per method and
perspective with the standard deviation as error bars), written together.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aigciqa.baselines.methods import BASELINES, method_weights
from aigciqa.baselines.run import BaselineOptions, evaluate_baseline, read_baseline_run, run_name, score_folder
from aigciqa.database import DatabaseFolder
from aigciqa.database.atomic import Transaction, write_text_atomic
from aigciqa.database.folder import RUNS_DIR
from aigciqa.errors import InputError, read_json
from aigciqa.registry import lookup
from aigciqa.weights.defaults import DEFAULTS

MINT_IQA = "mint-iqa"
MINT_IQA_INSTRUCT = "mint-iqa-instruct"
RANDOM = "random"
# The zero-shot vision-language models of Table VIII, by their default weights (the paper's 7B models).
VLMS = {"instructblip": DEFAULTS["instructblip"].spec, "llava": "llava-hf/llava-1.5-7b-hf"}
VQA_METHODS = (MINT_IQA_INSTRUCT, RANDOM, *VLMS)
PROTOCOL_METHODS = {name: name for name in (*BASELINES, MINT_IQA, *VQA_METHODS)}
TABLE_METRICS = (("srcc", "SRCC"), ("plcc_logistic", "PLCC"), ("krcc", "KRCC"))
METRIC_LABELS = {**dict(TABLE_METRICS), "preference_accuracy": "pair accuracy", "vqa_accuracy": "VQA accuracy"}
RESULTS_FILE = "results.json"
TABLE_FILES = ("table.md", "table.csv", "table.tex", "srcc.png")


@dataclass
class BenchmarkOptions:
    methods: list[str]
    repeats: int = 3
    splits: list[str] | None = None  # use these split columns instead of making prompt_s<seed> ones
    seed: int = 0
    cross: str | None = None  # test folder (every image); learned methods still train on the splits
    out: str | None = None
    preset: str = "small"  # MINT-IQA's preset and ridge's encoder
    epochs: int = 10
    lr: float = 1e-5  # train's default (the paper's)
    batch_size: int = 8
    weights: dict[str, str] = field(default_factory=dict)
    stop_after: int | None = None  # stop after this many new method-split results (resume later)
    cpu: bool = False
    progress: bool = True


def parse_protocol_methods(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise InputError("no method given (e.g. --methods niqe,brisque,ridge,mint-iqa)")
    return list(dict.fromkeys(lookup(PROTOCOL_METHODS, name, "benchmark method") for name in names))


def split_columns(root, options: BenchmarkOptions) -> list[str]:
    """The split columns of the protocol; seeded prompt-disjoint ones are added to splits.csv when missing."""
    from aigciqa.datasets.splits import make_splits, merge_split_columns, split_column_name
    folder = DatabaseFolder(root)
    card = folder.read_card()
    existing = folder.read_table("splits", card) if folder.has("splits") else None
    if options.splits:
        missing = [c for c in options.splits if existing is None or c not in existing.columns]
        if missing:
            raise InputError(f"no split column '{missing[0]}'", file=str(folder.table_path("splits")))
        return list(options.splits)
    if options.repeats < 1:
        raise InputError(f"--repeats {options.repeats} must be at least 1")
    columns = [split_column_name("prompt", options.seed + k) for k in range(options.repeats)]
    if existing is None or any(c not in existing.columns for c in columns):
        images = folder.read_table("images", card)
        prompts = folder.read_table("prompts", card) if folder.has("prompts") else None
        new = make_splits(images, prompts, by="prompt", repeats=options.repeats, seed=options.seed)
        folder.write({"splits": merge_split_columns(existing, new)}, card=card, stage="split")
    return columns


def run_benchmark(root, options: BenchmarkOptions) -> dict:
    """Run (or resume) the protocol; returns {"results": [...], "complete": bool, "out": Path, "files": [...]}."""
    root = Path(root)
    out = Path(options.out) if options.out else root / "benchmark"
    splits = split_columns(root, options)
    results_path = out / RESULTS_FILE
    settings = {"preset": options.preset, "epochs": options.epochs, "lr": options.lr, "seed": options.seed,
                "batch_size": options.batch_size, "cross": str(options.cross) if options.cross else None,
                "weights": dict(sorted(options.weights.items()))}
    records = _read_results(results_path, settings)
    done = {(r["method"], r["split"]) for r in records}
    new = 0
    for split in splits:
        for method in options.methods:
            if (method, split) in done:
                continue
            if options.stop_after is not None and new >= options.stop_after:
                return {"results": records, "complete": False, "out": out, "files": []}
            if options.progress:
                print(f"benchmark: {method} on split {split}", flush=True)
            records.append({"method": method, "split": split, **_method_result(root, method, split, options)})
            new += 1
            out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(results_path, json.dumps({"settings": settings, "records": records}, indent=2,
                                                       default=float) + "\n")
    wanted = [r for r in records if r["method"] in options.methods and r["split"] in splits]
    summary = summarise(wanted, options.methods)
    files = {"table.md": markdown_table(summary), "table.csv": summary.to_csv(index=False, lineterminator="\n"),
             "table.tex": latex_table(summary), "srcc.png": srcc_plot(summary)}
    out.mkdir(parents=True, exist_ok=True)
    with Transaction() as transaction:
        for name, content in files.items():
            transaction.stage_bytes(out / name, content.encode("utf-8") if isinstance(content, str) else content)
    return {"results": wanted, "complete": True, "out": out, "files": [out / name for name in files],
            "summary": summary}


def _read_results(path: Path, settings: dict) -> list[dict]:
    """The records of an earlier, interrupted run of the same benchmark (same settings), or none."""
    if not path.is_file():
        return []
    content = read_json(path, what="benchmark results")
    records = content.get("records") if isinstance(content, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) and "method" in r and "split" in r
                                                for r in records):
        raise InputError("not a benchmark results file (delete it to start over)", file=str(path))
    changed = [k for k in settings if content.get("settings", {}).get(k) != settings[k]]
    if changed:
        raise InputError("cannot resume: made with other settings, " + ", ".join(
            f"{k} {content.get('settings', {}).get(k)!r} there, {settings[k]!r} now" for k in changed)
            + " (use another -o DIR)", file=str(path))
    return records


def _method_result(root: Path, method: str, split: str, options: BenchmarkOptions) -> dict:
    """Metrics of one method on one split's test part (or on every image of the cross folder)."""
    test_root = Path(options.cross) if options.cross else root
    test_split, part = (None, "all") if options.cross else (split, "test")
    if method in VQA_METHODS:
        return {"part": part, **_vqa_result(root, test_root, method, split, test_split, options)}
    if method == MINT_IQA:
        result = _mint_iqa(root, test_root, split, test_split, options)
    elif BASELINES[method].learned:
        # fitted on this folder's split; with --cross, its predictions are stored in the other folder
        name = f"{run_name(method)}-{split}" + (f"-from-{root.name}" if options.cross else "")
        run = score_folder(test_root, BASELINES[method], _baseline_options(
            method, options, split=split, run=name, fit_root=root if options.cross else None))
        result = evaluate_baseline(run, test_root, split=test_split, part="test")
    else:
        run = test_root / RUNS_DIR / run_name(method)
        # scored once per folder (with the same weights), reused by every split and on resume
        if not _covers_folder(run, test_root, method_weights(method, options.weights)):
            run = score_folder(test_root, BASELINES[method], _baseline_options(method, options))
        result = evaluate_baseline(run, test_root, split=test_split, part="test")
    keep = ("metrics", "preference_accuracy", "pairs", "images")
    return {"part": part, "database": result.get("database"), **{k: result[k] for k in keep if k in result}}


def _baseline_options(method: str, options: BenchmarkOptions, **extra) -> BaselineOptions:
    return BaselineOptions(weights=method_weights(method, options.weights), preset=options.preset, batch_size=options.batch_size,
                           cpu=options.cpu, progress=options.progress, **extra)


def _covers_folder(run: Path, root: Path, weights: dict[str, str]) -> bool:
    """A stored baseline run made with ``weights`` (as given: {} = the defaults) that has a prediction for
    every image of the folder. A run that does not record what it was given is scored again."""
    if not (run / "predictions.csv").is_file():
        return False
    try:
        config, predictions = read_baseline_run(run)
    except InputError:
        return False
    if config.get("weights_given") != weights:
        return False
    images = DatabaseFolder(root).read_table("images")
    return set(images["image_id"]) <= set(predictions["image_id"])


def _mint_iqa(root: Path, test_root: Path, split: str, test_split: str | None, options: BenchmarkOptions) -> dict:
    """Train MINT-IQA on the split (resuming an interrupted run), then evaluate it like ``aigciqa evaluate``."""
    from aigciqa.model.evaluate import evaluate_run
    return evaluate_run(_trained_mint_iqa(root, split, options), test_root, split=test_split, part="test",
                        batch_size=options.batch_size, cpu=options.cpu, progress=False)


def _trained_mint_iqa(root: Path, split: str, options: BenchmarkOptions) -> Path:
    """The stage-1 run of a split, trained (or its interrupted training resumed) when not finished."""
    from aigciqa.model.scorer import TrainOptions, train
    name = f"mint-iqa-{options.preset}-{split}"
    run = root / RUNS_DIR / name
    metrics = run / "metrics.json"
    finished = metrics.is_file() and read_json(metrics).get("test") is not None
    if not finished:
        train(root, TrainOptions(preset=options.preset, split=split, run=name, epochs=options.epochs, lr=options.lr,
                                 batch_size=options.batch_size, seed=options.seed, weights=options.weights.get(MINT_IQA),
                                 resume=(run / "config.json").is_file(), cpu=options.cpu, progress=options.progress))
    return run


def _trained_instruct(root: Path, split: str, options: BenchmarkOptions) -> Path:
    """The stage-2 run of a split on its stage-1 run (both trained or resumed when not finished); its LLM is
    the preset's default or ``--weights mint-iqa-instruct=LLM``."""
    from aigciqa.model.instruction import Stage2Options, train_stage2
    scorer = _trained_mint_iqa(root, split, options)
    run = scorer.parent / f"{scorer.name}-instruct"
    metrics = run / "metrics.json"
    if not (metrics.is_file() and len(read_json(metrics).get("history") or []) >= options.epochs):
        train_stage2(root, Stage2Options(from_run=scorer.name, split=split, run=run.name, epochs=options.epochs,
                                         lr=options.lr, batch_size=options.batch_size, seed=options.seed,
                                         llm=options.weights.get(MINT_IQA_INSTRUCT),
                                         resume=(run / "config.json").is_file(), cpu=options.cpu,
                                         progress=options.progress))
    return run


def _vqa_result(root: Path, test_root: Path, method: str, split: str, test_split: str | None,
                options: BenchmarkOptions) -> dict:
    """VQA accuracy per perspective on the labelled test images (Table VIII), as ``evaluate --vqa`` reports it."""
    from aigciqa.model.explain import evaluate_vlm, evaluate_vqa
    common = dict(split=test_split, part="test", batch_size=options.batch_size, cpu=options.cpu, progress=False)
    if method == RANDOM:
        report = _random_vqa(test_root, test_split)
        accuracy = report["accuracy"]
    elif method == MINT_IQA_INSTRUCT:
        report = evaluate_vqa(_trained_instruct(root, split, options), test_root, **common)
        accuracy = report["accuracy"]["instruction_tuned"]
    else:
        report = evaluate_vlm(options.weights.get(method, VLMS[method]), test_root, **common)
        accuracy = report["accuracy"]["zero_shot"]
        report["vlm_source"] = {k: report["vlm_source"][k] for k in ("class", "repo_id", "commit", "path")}
    return {"database": report["database"], "images": report["images"], "vqa_accuracy": accuracy,
            **{k: report[k] for k in ("vlm", "vlm_source", "llm") if k in report}}


def _random_vqa(root: Path, split: str | None) -> dict:
    """Uniform guessing's expected VQA accuracy on the images and perspectives the others are asked about."""
    from aigciqa.model.data import load_model_data
    from aigciqa.model.explain import vqa_inputs
    from aigciqa.qa_builder.build import answer_labels
    from aigciqa.qa_builder.vqa_accuracy import random_baseline
    labels, card = answer_labels(DatabaseFolder(root))
    data = load_model_data(root, split=split, use_segments=False, need_mos=False, need_parts=("test",) if split else ())
    rows, asked = vqa_inputs(data, labels, data.perspectives, split, "test", None)
    return {"database": card.get("name", ""), "images": len(rows),
            "accuracy": random_baseline(card, {p for p, _ in asked})}


def summarise(records: list[dict], methods: list[str]) -> pd.DataFrame:
    """Long table: method, perspective (or "average", or "pairs"), metric, mean, std (over splits), n."""
    rows = []
    for method in methods:
        own = [r for r in records if r["method"] == method]
        perspectives = list(dict.fromkeys(p for r in own for p in r.get("metrics", {})))
        for perspective in perspectives:
            for metric, _ in TABLE_METRICS:
                rows.append(_row(method, perspective, metric, [r["metrics"][perspective][metric] for r in own
                                                               if perspective in r.get("metrics", {})]))
        accuracies = [r["preference_accuracy"] for r in own if "preference_accuracy" in r]
        if accuracies:
            rows.append(_row(method, "pairs", "preference_accuracy", accuracies))
        for perspective in dict.fromkeys(p for r in own for p in r.get("vqa_accuracy", {})):
            rows.append(_row(method, perspective, "vqa_accuracy", [r["vqa_accuracy"][perspective] for r in own
                                                                   if perspective in r.get("vqa_accuracy", {})]))
    return pd.DataFrame(rows, columns=["method", "perspective", "metric", "mean", "std", "n"])


def _row(method, perspective, metric, values) -> dict:
    values = np.asarray(values, dtype=float)
    return {"method": method, "perspective": perspective, "metric": metric, "mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"), "n": int(len(values))}


def _cells(summary: pd.DataFrame, plus_minus: str) -> tuple[list[str], list[tuple[str, str]], dict]:
    """Methods, (perspective, metric) columns, and the formatted "mean ± std" cell of each."""
    methods = list(dict.fromkeys(summary["method"]))
    columns = list(dict.fromkeys(zip(summary["perspective"], summary["metric"])))
    cells = {}
    for row in summary.itertuples():
        spread = "" if np.isnan(row.std) else f" {plus_minus} {row.std:.3f}"
        cells[(row.method, row.perspective, row.metric)] = f"{row.mean:.3f}{spread}"
    return methods, columns, cells


def _header(perspective: str, metric: str) -> str:
    label = METRIC_LABELS[metric]
    return label if perspective == "pairs" else f"{perspective} {label}"


def markdown_table(summary: pd.DataFrame) -> str:
    methods, columns, cells = _cells(summary, "±")
    n = int(summary["n"].max()) if len(summary) else 0
    lines = [f"Mean ± standard deviation over {n} splits (test parts).", "",
             "| method | " + " | ".join(_header(*c) for c in columns) + " |", "|---|" + "---|" * len(columns)]
    lines += ["| " + m + " | " + " | ".join(cells.get((m, *c), "") for c in columns) + " |" for m in methods]
    return "\n".join(lines) + "\n"


def latex_table(summary: pd.DataFrame) -> str:
    methods, columns, cells = _cells(summary, "$\\pm$")

    def escape(text: str) -> str:
        return text.replace("_", "\\_").replace("&", "\\&").replace("%", "\\%")

    lines = ["\\begin{tabular}{l" + "c" * len(columns) + "}", "\\hline",
             "Method & " + " & ".join(escape(_header(*c)) for c in columns) + " \\\\", "\\hline"]
    lines += [escape(m) + " & " + " & ".join(cells.get((m, *c), "") for c in columns) + " \\\\" for m in methods]
    return "\n".join(lines + ["\\hline", "\\end{tabular}"]) + "\n"


def srcc_plot(summary: pd.DataFrame) -> bytes:
    """Grouped bars: SRCC per perspective (and average) for each method, error bars = std over splits."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    srcc = summary[summary["metric"] == "srcc"]
    methods = list(dict.fromkeys(srcc["method"]))
    perspectives = list(dict.fromkeys(srcc["perspective"]))
    figure = Figure(figsize=(max(4.0, 1.2 * len(perspectives) * max(1, len(methods)) / 2), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(methods))
    for k, method in enumerate(methods):
        own = srcc[srcc["method"] == method].set_index("perspective").reindex(perspectives)
        axes.bar(np.arange(len(perspectives)) + (k - (len(methods) - 1) / 2) * width, own["mean"], width,
                 yerr=own["std"].fillna(0.0), capsize=3, label=method)
    axes.set_xticks(np.arange(len(perspectives)), perspectives)
    axes.set_ylabel("SRCC (test)")
    axes.axhline(0, color="black", linewidth=0.6)
    axes.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})  # fixed bytes for fixed input
    return buffer.getvalue()
