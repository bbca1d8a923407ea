"""``build-mos`` end to end: read a source, aggregate, and write every output in one folder write."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aigciqa.database import DatabaseFolder
from aigciqa.database.folder import FIGURES_DIR, SCREENING_FILE
from aigciqa.errors import InputError
from aigciqa.mos.aggregate import MosOptions, MosResult, build_mos, screening_report
from aigciqa.mos.labels import build_labels
from aigciqa.mos.sources import RatingsSource, read_source


@dataclass
class BuildOutcome:
    target: DatabaseFolder
    result: MosResult
    labels: pd.DataFrame | None
    files: list[str]

    def summary(self) -> str:
        parts = []
        for perspective in self.result.perspectives:
            rejected = self.result.rejected_subjects(perspective)
            parts.append(f"{perspective}: {len(rejected)} rejected" + (f" ({', '.join(rejected)})" if rejected else ""))
        outliers = self.result.score_outlier_counts()
        if outliers is not None:
            removed, of = outliers
            parts.append(f"score outliers removed: {removed} of {of} scores ({100 * removed / max(of, 1):.2f} %)")
        labels = f", labels.csv ({len(self.labels)} images)" if self.labels is not None else ""
        return (f"{self.target.root}: mos.csv ({len(self.result.table)} images){labels}, screening.json, "
                f"{len([f for f in self.files if f.startswith(FIGURES_DIR)])} figures; " + "; ".join(parts))


def aggregate_source(source: RatingsSource, options: MosOptions) -> tuple[MosResult, pd.DataFrame | None]:
    """The pure part: MOS and labels of a source, errors pointed at the source's records."""
    perspectives = list(source.card["perspectives"])
    try:
        result = build_mos(source.ratings, perspectives, source.scale, options, images=source.image_order())
    except InputError as error:
        raise source.locate(error) from None
    labels = None
    if source.answers is not None and len(source.answers):
        labels = build_labels(source.answers, source.card, images=_answer_order(source))
    return result, labels


def _answer_order(source: RatingsSource) -> list[str] | None:
    if source.images is None:
        return None
    answered = set(source.answers["image_id"])
    return [i for i in source.images["image_id"] if i in answered]


def output_files(result: MosResult, labels: pd.DataFrame | None, source: RatingsSource,
                 figures: bool = True) -> dict[str, bytes | str]:
    files: dict[str, bytes | str] = {
        SCREENING_FILE: json.dumps(screening_report(result), indent=1, ensure_ascii=False) + "\n"}
    if figures:
        from aigciqa.mos import figures as plots  # matplotlib only when figures are wanted
        files[f"{FIGURES_DIR}/mos_histograms.png"] = plots.mos_histograms(result, source.card)
        files[f"{FIGURES_DIR}/screening.png"] = plots.screening_statistics(result, source.card)
        if labels is not None:
            generators = None
            if source.images is not None and "generator" in source.images.columns:
                generators = labels["image_id"].map(dict(zip(source.images["image_id"],
                                                              source.images["generator"]))).fillna("")
            for name, data in plots.level_figures(labels, source.card, generators).items():
                files[f"{FIGURES_DIR}/{name}"] = data
    return files


def target_folder(source: RatingsSource, out: str | Path | None) -> tuple[DatabaseFolder, bool]:
    """Where to write, and whether it is a new folder. See docs/build-mos.md, "Outputs"."""
    if out is None:
        if source.folder is None:
            raise InputError("-o OUT is required when SRC is a file (only a database folder is written in "
                             "place)", file=str(source.path))
        return source.folder, False
    target = DatabaseFolder(out)
    if target.exists():
        return target, False
    if target.root.exists() and (not target.root.is_dir() or not target.is_empty()):
        raise InputError("-o must name a database folder, a new folder or an empty one", file=str(target.root))
    return target, True


def run_build_mos(src: str | Path, out: str | Path | None = None, *, options: MosOptions = MosOptions(),
                  scale: tuple[float, float] | None = None, perspective: str | None = None,
                  figures: bool = True, command: str | None = None) -> BuildOutcome:
    """Read SRC, aggregate, and write mos.csv, labels.csv, screening.json and figures/ atomically."""
    options.check()
    # The folder written holds the writer lock from before its ratings are read until the commit.
    written = out if out is not None else (src if Path(src).is_dir() else None)
    if written is None:
        return _build_mos(src, out, options, scale, perspective, figures, command)
    with DatabaseFolder(written).transaction(command):
        return _build_mos(src, out, options, scale, perspective, figures, command)


def _build_mos(src, out, options, scale, perspective, figures, command) -> BuildOutcome:
    source = read_source(src, scale=scale, perspective=perspective)
    target, new = target_folder(source, out)
    result, labels = aggregate_source(source, options)
    files = output_files(result, labels, source, figures)
    tables: dict[str, pd.DataFrame] = {"mos": result.table}
    if labels is not None:
        tables["labels"] = labels
    if new:
        # A new folder holds the ratings it was built from, so it can be rebuilt and checked alone.
        card = copy.deepcopy(source.card)
        tables["ratings"] = source.ratings
        if source.answers is not None:
            tables["answers"] = source.answers
    else:
        same = target.root.resolve() == Path(source.path).resolve()
        card = copy.deepcopy(source.card) if same else target.read_card()
    card["mos_range"] = [_number(v) for v in result.mos_range]
    target.write(tables, card=card, stage="build-mos", command=command, files=files)
    return BuildOutcome(target, result, labels, sorted(files))


def _number(value: float):
    return int(value) if float(value).is_integer() else float(value)
