"""From answer stores to the folder's ``ratings.csv`` and ``answers.csv``, plus a per-subject summary.

Several stores (one per machine) are merged: for each subject, item and field the latest answer
wins. Only finished items are exported (the subject moved on with every required answer given, and
the answers are still complete now: the study's rules are checked again here); gold repetitions
feed the agreement summary, not the ratings, so each subject rates an image once.

Each subject is flagged live (``status``) and at export: low agreement on gold items, speeding,
one constant score in a perspective, fewer than two items. An :class:`ExportFilter` leaves out
subjects (too few items, named, flagged) so that a study in progress feeds ``build-mos``; the
summary says who was left out and why.
"""

from __future__ import annotations

import datetime as _dt
import json
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from aigciqa.annotate.store import FINISHED, FINISHING, STORE_KIND, AnswerStore, find_stores
from aigciqa.annotate.study import Study, make_study
from aigciqa.database import DatabaseFolder
from aigciqa.errors import InputError, check_regular_file

SUMMARY_FILE = "annotation_summary.json"


@dataclass
class ItemRecord:
    """One subject's merged answers to one showing of an image."""
    image_id: str
    kind: str
    outcome: str | None = None  # "done", "skipped" or None (unfinished, or reopened)
    outcome_t: float | None = None  # when the latest done, skipped or reopened visit ended
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
    items_incomplete: int = 0  # finished once, incomplete by the study's rules now: not exported
    speeding: bool = False
    constant: list[str] = field(default_factory=list)  # perspectives given one score throughout
    flags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ExportFilter:
    """Which subjects an export leaves out (each with the reason, in the summary)."""
    min_items: int = 0  # fewer items done than this
    exclude_subjects: frozenset[str] = frozenset()  # named
    exclude_flagged: bool = False  # any flag: low agreement, speeding, a constant score, under 2 items
    exclude_low_agreement: bool = False

    def reason(self, summary: SubjectSummary) -> str | None:
        if summary.subject_id in self.exclude_subjects:
            return "named"
        if summary.items_done < self.min_items:
            return f"{summary.items_done} item(s) done, fewer than {self.min_items}"
        if self.exclude_flagged and summary.flags:
            return "flagged: " + ", ".join(summary.flags)
        if self.exclude_low_agreement and summary.low_agreement:
            return "low agreement"
        return None


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
                    if visit.outcome in FINISHING and (record.outcome_t is None or visit.t_end >= record.outcome_t):
                        # the latest finishing visit of any store decides; a reopening undoes a done
                        record.outcome = visit.outcome if visit.outcome in FINISHED else None
                        record.outcome_t = visit.t_end
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


def values_of(record: ItemRecord) -> dict:
    return {name: v[0] for name, v in record.values.items()}


def is_complete(record: ItemRecord, study: Study) -> bool:
    """Done, and still complete by the study's rules (an item changed afterwards may not be)."""
    return record.outcome == "done" and not study.problems(values_of(record))


def summarize(subject: str, records: dict, study: Study, stores: list[str]) -> SubjectSummary:
    done = {key: r for key, r in records.items() if is_complete(r, study)}
    main_done = {image_id: r for (image_id, kind), r in done.items() if kind == "main"}
    values = values_of
    repeat = [0, 0]
    for (image_id, kind), r in done.items():
        if kind == "repeat" and image_id in main_done:
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
    per_item = [r.seconds for r in done.values()]
    median = statistics.median(per_item) if per_item else None
    constant = [p for p in study.perspectives
                if len(scores := [r.values[p][0] for r in main_done.values() if r.values.get(p, (None,))[0] is not None])
                >= 2 and len(set(scores)) == 1]
    summary = SubjectSummary(
        subject_id=subject, stores=stores, items_total=len(records), items_done=len(done),
        items_skipped=sum(r.outcome == "skipped" for r in records.values()),
        seconds=round(sum(r.seconds for r in records.values()), 3),
        median_seconds_per_item=None if median is None else round(median, 3),
        repeat_checks=repeat[0], repeat_agreement=ratio(repeat), known_checks=known[0], known_agreement=ratio(known),
        agreement=pooled,
        low_agreement=bool(study.min_agreement is not None and pooled is not None and pooled < study.min_agreement),
        items_incomplete=sum(r.outcome == "done" for r in records.values()) - len(done),
        speeding=bool(len(per_item) >= 3 and median < study.speeding_seconds), constant=constant)
    summary.flags = ((["low agreement"] if summary.low_agreement else [])
                     + ([f"speeding ({median:.1f} s per item)"] if summary.speeding else [])
                     + [f"one {p} score for every image" for p in constant]
                     + (["under 2 items done"] if len(main_done) < 2 else []))
    return summary


def subject_studies(folder: DatabaseFolder, collected: Collected) -> dict[str, Study]:
    """Each subject's study, from the config stored when they first signed in."""
    card = folder.read_card()
    image_ids = folder.read_table("images", card)["image_id"].tolist()
    studies = {}
    for subject, stores in collected.stores.items():
        try:
            studies[subject] = make_study(card, collected.configs[subject], image_ids,
                                          file=f"{stores[0]} (study of {subject})")
        except InputError as error:
            raise InputError(f"the study stored for subject {subject} no longer fits the folder: {error}",
                             file=str(folder.root / stores[0])) from None
    return studies


def build_export(folder: DatabaseFolder, extra_stores=(), *, exclude_low_agreement: bool = False,
                 filters: ExportFilter | None = None):
    """(ratings, answers, summary) from every store of the folder, checked but not written."""
    paths = find_stores(folder.root, extra_stores)
    if not paths:
        raise InputError("no annotation store (annotations*.sqlite) to export; rate with 'aigciqa annotate DIR' "
                         "first", file=str(folder.root))
    filters = filters or ExportFilter()
    if exclude_low_agreement:
        filters = ExportFilter(filters.min_items, filters.exclude_subjects, filters.exclude_flagged, True)
    collected = collect(paths)
    studies = subject_studies(folder, collected)
    unknown = sorted(filters.exclude_subjects - set(collected.items))
    if unknown:
        raise InputError(f"subject '{unknown[0]}' to leave out is in no store ({', '.join(sorted(collected.items))})",
                         file=str(folder.root), field="subject")
    ratings, answers, summaries, left_out = [], [], [], []
    for subject in sorted(collected.items):
        records, study = collected.items[subject], studies[subject]
        summary = summarize(subject, records, study, collected.stores[subject])
        summaries.append(summary)
        reason = filters.reason(summary)
        if reason is not None:
            left_out.append({"subject_id": subject, "reason": reason})
            continue
        for (image_id, kind), record in sorted(records.items()):
            if kind != "main" or not is_complete(record, study):
                continue
            for p in study.perspectives:
                if record.values.get(p, (None,))[0] is not None:
                    value, _, session = record.values[p]
                    ratings.append({"subject_id": subject, "image_id": image_id, "perspective": p, "score": value,
                                    "session": session, "t_start": _iso(record.t_start), "t_end": _iso(record.t_end)})
            for q in study.questions:
                level = record.values.get(q.name, (None,))[0]
                text = record.values.get(q.explanation, ("",))[0] if q.explanation else ""
                if not study.explanation_needed(q.name, None if level is None else int(level)):
                    text = ""  # written for a level the subject no longer gives
                if level is None and not text:
                    continue
                answers.append({"subject_id": subject, "image_id": image_id, "question": q.name,
                                "level": pd.NA if level is None else int(level), "explanation": text or ""})
    if not ratings:
        because = f" ({len(left_out)} subject(s) left out: " + "; ".join(
            f"{o['subject_id']}: {o['reason']}" for o in left_out) + ")" if left_out else ""
        raise InputError(f"nothing to export: no finished item in {', '.join(p.name for p in paths)}{because}",
                         file=str(folder.root))
    unreadable = defaultdict(lambda: {"path": "", "message": "", "subjects": set()})
    for problem in collected.problems:
        entry = unreadable[problem["image_id"]]
        entry.update(path=problem["path"], message=problem["message"])
        entry["subjects"].add(problem["subject_id"])
    summary = {
        "stores": [p.name for p in paths],
        "exported": {"ratings": len(ratings), "answers": len(answers)},
        "excluded_low_agreement": sorted(o["subject_id"] for o in left_out if o["reason"] == "low agreement"),
        "left_out": left_out,
        "subjects": [asdict(s) for s in summaries],
        "unreadable_images": [{"image_id": i, "path": e["path"], "message": e["message"],
                               "subjects": sorted(e["subjects"])} for i, e in sorted(unreadable.items())],
    }
    ratings_frame = pd.DataFrame(ratings)
    answers_frame = pd.DataFrame(answers, columns=["subject_id", "image_id", "question", "level", "explanation"])
    return ratings_frame, answers_frame, summary


def export(folder: DatabaseFolder, extra_stores=(), *, exclude_low_agreement: bool = False,
           filters: ExportFilter | None = None, command: str | None = None) -> dict:
    """Write ratings.csv, answers.csv and the summary in one all-or-nothing change; return the summary."""
    with folder.transaction(command):  # the folder lock: no other writer between reading and writing
        ratings, answers, summary = build_export(folder, extra_stores, exclude_low_agreement=exclude_low_agreement,
                                                 filters=filters)
        folder.write({"ratings": ratings, "answers": answers}, stage="annotate", command=command,
                     files={SUMMARY_FILE: json.dumps(summary, indent=2, ensure_ascii=False) + "\n"})
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"exported {summary['exported']['ratings']} ratings and {summary['exported']['answers']} answers "
             f"from {', '.join(summary['stores'])}", *subject_lines(summary["subjects"])]
    for image in summary["unreadable_images"]:
        lines.append(f"unreadable image {image['image_id']} ({image['path']}): {image['message']}")
    for out in summary["left_out"]:
        lines.append(f"left out {out['subject_id']}: {out['reason']}")
    return "\n".join(lines)


def subject_lines(subjects: list[dict], last_activity: dict | None = None) -> list[str]:
    """A table: one line per subject with progress, time, agreement and flags (export and status)."""
    lines = [f"{'subject':<16} {'done':>7} {'skipped':>8} {'minutes':>8} {'agreement':>10}  flags"
             + ("  (last activity, UTC)" if last_activity is not None else "")]
    for s in subjects:
        agreement = "-" if s["agreement"] is None else f"{s['agreement']:.2f}"
        flags = list(s["flags"]) + ([f"{s['items_incomplete']} item(s) incomplete"] if s["items_incomplete"] else [])
        line = (f"{s['subject_id']:<16} {s['items_done']:>3}/{s['items_total']:<3} {s['items_skipped']:>8} "
                f"{s['seconds'] / 60:>8.1f} {agreement:>10}  {', '.join(flags).upper() or '-'}")
        if last_activity is not None:
            line += f"  ({_iso(last_activity.get(s['subject_id']))})"
        lines.append(line)
    return lines


def status(folder: DatabaseFolder, extra_stores=()) -> str:
    """Progress of every subject in every store of the folder."""
    paths = find_stores(folder.root, extra_stores)
    if not paths:
        return f"no annotation store in {folder.root} yet (nobody has signed in)"
    collected = collect(paths)
    studies = subject_studies(folder, collected)
    subjects = [asdict(summarize(s, collected.items[s], studies[s], collected.stores[s])) for s in sorted(collected.items)]
    lines = [f"stores: {', '.join(p.name for p in paths)}", *subject_lines(subjects, collected.last_activity)]
    if collected.problems:
        lines.append(f"{len({p['image_id'] for p in collected.problems})} image(s) could not be shown "
                     "(listed by 'aigciqa annotate export')")
    return "\n".join(lines)
