"""From answer stores to the folder's ``ratings.csv`` and ``answers.csv``, plus a per-subject summary.

Several stores (one per machine) are merged: for each subject, item and field the latest answer
wins. Only finished items are exported (the subject moved on with every required answer given);
gold repetitions feed the agreement summary, not the ratings, so each subject rates an image once.
"""

from __future__ import annotations

import datetime as _dt
import json
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from aigciqa.annotate.store import STORE_KIND, AnswerStore, find_stores
from aigciqa.annotate.study import Study, make_study
from aigciqa.database import DatabaseFolder
from aigciqa.errors import InputError, check_regular_file

SUMMARY_FILE = "annotation_summary.json"


@dataclass
class ItemRecord:
    """One subject's merged answers to one showing of an image."""
    image_id: str
    kind: str
    outcome: str | None = None  # "done", "skipped" or None (unfinished)
    values: dict = field(default_factory=dict)  # field -> (value, t, session label)
    t_start: float | None = None
    t_end: float | None = None
    seconds: float = 0.0


@dataclass
class SubjectSummary:
    subject_id: str
    stores: list[str]
    items_total: int
    items_done: int
    items_skipped: int
    seconds: float
    median_seconds_per_item: float | None
    repeat_checks: int
    repeat_agreement: float | None
    known_checks: int
    known_agreement: float | None
    agreement: float | None
    low_agreement: bool


@dataclass
class Collected:
    items: dict[str, dict[tuple[str, str], ItemRecord]]  # subject -> (image_id, kind) -> record
    configs: dict[str, dict]
    stores: dict[str, list[str]]
    problems: list[dict]
    last_activity: dict[str, float]


def check_store_read_only(path: Path) -> None:
    """Refuse, opening it read-only, a file that is not an annotation store (an empty file, a
    foreign SQLite database): AnswerStore would write its schema or journal mode into it, and an
    export never modifies its input."""
    import sqlite3
    check_regular_file(path, what="annotation store", max_bytes=None)
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = connection.execute("SELECT value FROM meta WHERE key='kind'").fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        row = None
    if not row or row[0] != STORE_KIND:
        raise InputError("not an aigciqa annotation store (left unchanged)", file=str(path))


def collect(paths: list[Path]) -> Collected:
    """Read every store and merge what each subject answered (latest answer per field wins)."""
    items: dict[str, dict] = defaultdict(dict)
    configs, stores, problems, last = {}, defaultdict(list), [], {}
    for path in paths:
        check_store_read_only(path)
        with AnswerStore(path, create=False) as store:
            for subject in store.subjects():
                stores[subject].append(path.name)
                configs.setdefault(subject, store.study_config(subject))
                by_position = {}
                for item in store.items(subject):
                    record = items[subject].setdefault((item.image_id, item.kind), ItemRecord(item.image_id, item.kind))
                    by_position[item.position] = record
                for _, position, name, value, text, session_id, t in store.answer_history(subject):
                    record = by_position[position]
                    old = record.values.get(name)
                    if old is None or t >= old[1]:
                        record.values[name] = (text if text is not None else value, t, f"{path.stem}:{session_id}")
                    last[subject] = max(last.get(subject, t), t)
                for visit in store.visits(subject):
                    record = by_position[visit.position]
                    record.seconds += visit.t_end - visit.t_start
                    record.t_start = visit.t_start if record.t_start is None else min(record.t_start, visit.t_start)
                    record.t_end = visit.t_end if record.t_end is None else max(record.t_end, visit.t_end)
                    if visit.outcome in ("done", "skipped") and record.outcome != "done":
                        record.outcome = visit.outcome
                    last[subject] = max(last.get(subject, visit.t_end), visit.t_end)
            for subject, position, image_id, image_path, message, t in store.problems():
                problems.append({"subject_id": subject, "image_id": image_id, "path": image_path,
                                 "message": message, "store": path.name})
    return Collected(dict(items), configs, dict(stores), problems, last)


def _iso(t: float | None) -> str:
    return "" if t is None else _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")


def _agreement(study: Study, a: dict, b: dict) -> tuple[int, int]:
    """(checks, agreements) between two answer sets, within the study's tolerances."""
    checks = agree = 0
    tolerances = {**{p: study.score_tolerance for p in study.perspectives},
                  **{q.name: study.level_tolerance for q in study.questions}}
    for name, tolerance in tolerances.items():
        if a.get(name) is not None and b.get(name) is not None:
            checks += 1
            agree += abs(float(a[name]) - float(b[name])) <= tolerance
    return checks, agree


def summarize(subject: str, records: dict, study: Study, stores: list[str]) -> SubjectSummary:
    main_done = {image_id: r for (image_id, kind), r in records.items() if kind == "main" and r.outcome == "done"}
    values = lambda r: {name: v[0] for name, v in r.values.items()}  # noqa: E731
    repeat = [0, 0]
    for (image_id, kind), r in records.items():
        if kind == "repeat" and r.outcome == "done" and image_id in main_done:
            c, a = _agreement(study, values(main_done[image_id]), values(r))
            repeat[0] += c
            repeat[1] += a
    known = [0, 0]
    for image_id, reference in study.gold_known.items():
        if image_id in main_done:
            c, a = _agreement(study, values(main_done[image_id]), reference)
            known[0] += c
            known[1] += a
    ratio = lambda pair: pair[1] / pair[0] if pair[0] else None  # noqa: E731
    pooled = ratio([repeat[0] + known[0], repeat[1] + known[1]])
    finished = [r for r in records.values() if r.outcome]
    per_item = [r.seconds for r in finished if r.outcome == "done"]
    return SubjectSummary(
        subject_id=subject, stores=stores, items_total=len(records),
        items_done=sum(r.outcome == "done" for r in finished), items_skipped=sum(r.outcome == "skipped" for r in finished),
        seconds=round(sum(r.seconds for r in records.values()), 3),
        median_seconds_per_item=round(statistics.median(per_item), 3) if per_item else None,
        repeat_checks=repeat[0], repeat_agreement=ratio(repeat), known_checks=known[0], known_agreement=ratio(known),
        agreement=pooled,
        low_agreement=bool(study.min_agreement is not None and pooled is not None and pooled < study.min_agreement))


def build_export(folder: DatabaseFolder, extra_stores=(), *, exclude_low_agreement: bool = False):
    """(ratings, answers, summary) from every store of the folder, checked but not written."""
    paths = find_stores(folder.root, extra_stores)
    if not paths:
        raise InputError("no annotation store (annotations*.sqlite) to export; rate with 'aigciqa annotate DIR' "
                         "first", file=str(folder.root))
    card = folder.read_card()
    image_ids = folder.read_table("images", card)["image_id"].tolist()
    collected = collect(paths)
    ratings, answers, summaries = [], [], []
    for subject in sorted(collected.items):
        records = collected.items[subject]
        stores = collected.stores[subject]
        try:
            study = make_study(card, collected.configs[subject], image_ids, file=f"{stores[0]} (study of {subject})")
        except InputError as error:
            raise InputError(f"the study stored for subject {subject} no longer fits the folder: {error}",
                             file=str(folder.root / stores[0])) from None
        summary = summarize(subject, records, study, stores)
        summaries.append(summary)
        if exclude_low_agreement and summary.low_agreement:
            continue
        for (image_id, kind), record in sorted(records.items()):
            if kind != "main" or record.outcome != "done":
                continue
            for p in study.perspectives:
                if record.values.get(p, (None,))[0] is not None:
                    value, _, session = record.values[p]
                    ratings.append({"subject_id": subject, "image_id": image_id, "perspective": p, "score": value,
                                    "session": session, "t_start": _iso(record.t_start), "t_end": _iso(record.t_end)})
            for q in study.questions:
                level = record.values.get(q.name, (None,))[0]
                text = record.values.get(q.explanation, ("",))[0] if q.explanation else ""
                if level is None and not text:
                    continue
                answers.append({"subject_id": subject, "image_id": image_id, "question": q.name,
                                "level": pd.NA if level is None else int(level), "explanation": text or ""})
    if not ratings:
        raise InputError(f"nothing to export: no finished item in {', '.join(p.name for p in paths)}",
                         file=str(folder.root))
    unreadable = defaultdict(lambda: {"path": "", "message": "", "subjects": set()})
    for problem in collected.problems:
        entry = unreadable[problem["image_id"]]
        entry.update(path=problem["path"], message=problem["message"])
        entry["subjects"].add(problem["subject_id"])
    summary = {
        "stores": [p.name for p in paths],
        "exported": {"ratings": len(ratings), "answers": len(answers)},
        "excluded_low_agreement": sorted(s.subject_id for s in summaries if s.low_agreement and exclude_low_agreement),
        "subjects": [asdict(s) for s in summaries],
        "unreadable_images": [{"image_id": i, "path": e["path"], "message": e["message"],
                               "subjects": sorted(e["subjects"])} for i, e in sorted(unreadable.items())],
    }
    ratings_frame = pd.DataFrame(ratings)
    answers_frame = pd.DataFrame(answers, columns=["subject_id", "image_id", "question", "level", "explanation"])
    return ratings_frame, answers_frame, summary


def export(folder: DatabaseFolder, extra_stores=(), *, exclude_low_agreement: bool = False,
           command: str | None = None) -> dict:
    """Write ratings.csv, answers.csv and the summary in one all-or-nothing change; return the summary."""
    with folder.transaction(command):  # the folder lock: no other writer between reading and writing
        ratings, answers, summary = build_export(folder, extra_stores, exclude_low_agreement=exclude_low_agreement)
        folder.write({"ratings": ratings, "answers": answers}, stage="annotate", command=command,
                     files={SUMMARY_FILE: json.dumps(summary, indent=2, ensure_ascii=False) + "\n"})
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"exported {summary['exported']['ratings']} ratings and {summary['exported']['answers']} answers "
             f"from {', '.join(summary['stores'])}",
             f"{'subject':<16} {'done':>6} {'skipped':>8} {'minutes':>8} {'agreement':>10}"]
    for s in summary["subjects"]:
        agreement = "-" if s["agreement"] is None else f"{s['agreement']:.2f}" + (" LOW" if s["low_agreement"] else "")
        lines.append(f"{s['subject_id']:<16} {s['items_done']:>3}/{s['items_total']:<3} {s['items_skipped']:>7} "
                     f"{s['seconds'] / 60:>8.1f} {agreement:>10}")
    for image in summary["unreadable_images"]:
        lines.append(f"unreadable image {image['image_id']} ({image['path']}): {image['message']}")
    if summary["excluded_low_agreement"]:
        lines.append("excluded for low agreement: " + ", ".join(summary["excluded_low_agreement"]))
    return "\n".join(lines)


def status(folder: DatabaseFolder, extra_stores=()) -> str:
    """Progress of every subject in every store of the folder."""
    paths = find_stores(folder.root, extra_stores)
    if not paths:
        return f"no annotation store in {folder.root} yet (nobody has signed in)"
    collected = collect(paths)
    lines = [f"stores: {', '.join(p.name for p in paths)}",
             f"{'subject':<16} {'finished':>10} {'skipped':>8} {'minutes':>8}  last activity (UTC)"]
    for subject in sorted(collected.items):
        records = collected.items[subject]
        finished = sum(r.outcome is not None for r in records.values())
        skipped = sum(r.outcome == "skipped" for r in records.values())
        minutes = sum(r.seconds for r in records.values()) / 60
        lines.append(f"{subject:<16} {finished:>4}/{len(records):<5} {skipped:>8} {minutes:>8.1f}  "
                     f"{_iso(collected.last_activity.get(subject))}")
    if collected.problems:
        lines.append(f"{len({p['image_id'] for p in collected.problems})} image(s) could not be shown "
                     "(listed by 'aigciqa annotate export')")
    return "\n".join(lines)
