"""From raw opinion scores to mean opinion scores: score arrays, z-scores, screening, MOS statistics.

The pure core of ``aigciqa build-mos``: functions on a long ratings table (``subject_id, image_id,
perspective, score``) and on per-perspective arrays of shape ``(S, R, E)`` (subjects, repetitions,
stimuli; NaN = not rated). See docs/build-mos.md for the choices made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # Student t quantiles: scipy.stats would cost ~0.7 s of start-up

from aigciqa.errors import InputError
from aigciqa.mos.screening import SCREENINGS, Screening, bt500_screening, score_outliers
from aigciqa.registry import lookup

# z' = 100 (z + 3) / 6 maps z in [-3, 3] (99.7 % of a normal subject's scores) onto [0, 100].
RESCALED_RANGE = (0.0, 100.0)


def rescale_z(z):
    return 100.0 * (z + 3.0) / 6.0


# When the subjects are screened relative to z-scoring (with z-scores on; without them both are "raw").
ORDERS = {
    "zscore-first": "z-score every subject, screen the z-scores (sureal's ZscoringSubjrejMosModel)",
    "screen-first": "screen the raw scores, then z-score the accepted subjects (the paper's text, III-C; "
                    "sureal's BT500Model rejections, then its ZscoringMosModel on the accepted subjects)",
}


@dataclass(frozen=True)
class MosOptions:
    zscore: bool = True                 # z-score each subject (MOS on the rescaled z scale)
    order: str = "zscore-first"         # see ORDERS: what the screening sees when zscore is on
    screening: str = "bt500"            # "bt500", "correlation" or "none"
    scope: str = "perspective"          # "perspective": screen each perspective alone; "any": a
                                        # subject rejected in any perspective is dropped from all
    remove_score_outliers: bool = False
    count_unanimous: bool = False       # BT.500 literal rule for zero-spread stimuli (see screening)
    confidence: float = 0.95

    def check(self) -> "MosOptions":
        if self.screening != "none":
            lookup(SCREENINGS, self.screening, "screening method")
        lookup(ORDERS, self.order, "screening order")
        lookup({"perspective": 0, "any": 0}, self.scope, "rejection scope")
        return self


@dataclass
class ScoreArray:
    """One perspective's scores as an (S, R, E) array plus the ids along each axis."""

    scores: np.ndarray
    subjects: np.ndarray
    images: np.ndarray
    first_row: np.ndarray  # per subject, the 0-based row of their first rating in the long table


def score_array(ratings: pd.DataFrame, images: list[str] | np.ndarray | None = None) -> ScoreArray:
    """Pivot the long ratings of ONE perspective into an (S, R, E) array (vectorised).

    ``images`` fixes the order (and set) of the stimuli axis; by default the order of first appearance.
    Repeated ratings of the same subject and image fill successive repetition slots.
    """
    subject_codes, subjects = pd.factorize(ratings["subject_id"], sort=False)
    if images is None:
        image_codes, images = pd.factorize(ratings["image_id"], sort=False)
    else:
        images = np.asarray(images, dtype=object)
        image_codes = pd.Index(images).get_indexer(ratings["image_id"])
    repetition = pd.DataFrame({"s": subject_codes, "e": image_codes}).groupby(["s", "e"]).cumcount().to_numpy()
    scores = np.full((len(subjects), int(repetition.max(initial=0)) + 1, len(images)), np.nan)
    scores[subject_codes, repetition, image_codes] = ratings["score"].to_numpy(dtype=float)
    first_row = np.full(len(subjects), -1)
    positions = np.arange(len(ratings))[::-1]
    first_row[subject_codes[::-1]] = positions  # the last write wins: the earliest row
    return ScoreArray(scores, np.asarray(subjects, dtype=object), np.asarray(images, dtype=object), first_row)


def zscore(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-subject z-scores over all the subject's scores (sample std, ddof=1), with mu and sigma."""
    flat = scores.reshape(scores.shape[0], -1)
    count = (~np.isnan(flat)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.nansum(flat, axis=1) / count
        sigma = np.sqrt(np.nansum((flat - mu[:, None]) ** 2, axis=1) / (count - 1))
    return (scores - mu[:, None, None]) / sigma[:, None, None], mu, sigma


def check_zscorable(array: ScoreArray, perspective: str) -> None:
    """A subject needs two different scores in a perspective to be z-scored."""
    flat = array.scores.reshape(array.scores.shape[0], -1)
    count = (~np.isnan(flat)).sum(axis=1)
    few = np.flatnonzero(count < 2)
    if len(few):
        s = few[0]
        raise InputError(f"subject '{array.subjects[s]}' has {count[s]} rating(s) of '{perspective}': "
                         "at least 2 are needed to z-score (use --no-zscore, or drop the subject)",
                         row=int(array.first_row[s]) + 1, field="subject_id")
    with np.errstate(invalid="ignore"):
        constant = np.flatnonzero(np.nanmax(flat, axis=1) == np.nanmin(flat, axis=1))
    if len(constant):
        s = constant[0]
        raise InputError(f"subject '{array.subjects[s]}' gave every image the same '{perspective}' score "
                         f"({np.nanmax(flat[s]):g}): a z-score is undefined (use --no-zscore, or drop "
                         "the subject)", row=int(array.first_row[s]) + 1, field="subject_id")


def mos_statistics(scores: np.ndarray, confidence: float = 0.95) -> dict[str, np.ndarray]:
    """Per stimulus: mean, sample std, half-width of the t-based confidence interval, and count."""
    flat = np.moveaxis(scores, 2, 0).reshape(scores.shape[2], -1)  # (E, S*R)
    n = (~np.isnan(flat)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(flat, axis=1) / n
        std = np.sqrt(np.nansum((flat - mean[:, None]) ** 2, axis=1) / (n - 1))
        t = stdtrit(np.maximum(n - 1, 1), 0.5 + confidence / 2.0)  # = scipy.stats.t.ppf
        half = np.where(n > 1, t * std / np.sqrt(n), np.nan)
    std = np.where(n > 1, std, np.nan)
    return {"mean": mean, "std": std, "ci": half, "n": n}


@dataclass
class PerspectiveResult:
    perspective: str
    array: ScoreArray
    screened_values: np.ndarray            # what the screening saw: z-scores or raw scores
    screening: Screening | None
    rejected: np.ndarray                    # final: after the scope rule
    score_outliers: np.ndarray | None       # mask over the (S, R, E) array, after subject rejection
    mos: dict[str, np.ndarray] = field(default_factory=dict)

    def score_outlier_counts(self) -> tuple[int, int] | None:
        """(scores removed as outliers, scores of the accepted subjects); None when removal is off."""
        if self.score_outliers is None:
            return None
        kept = ~np.isnan(self.screened_values) & ~self.rejected[:, None, None]
        return int(self.score_outliers.sum()), int(kept.sum())


@dataclass
class MosResult:
    table: pd.DataFrame                     # mos.csv
    perspectives: dict[str, PerspectiveResult]
    options: MosOptions
    mos_range: tuple[float, float]

    def rejected_subjects(self, perspective: str) -> list[str]:
        result = self.perspectives[perspective]
        return [str(s) for s in result.array.subjects[result.rejected]]

    def score_outlier_counts(self) -> tuple[int, int] | None:
        """(scores removed as outliers, scores of accepted subjects) over all perspectives; None when off."""
        counts = [p.score_outlier_counts() for p in self.perspectives.values()]
        if any(c is None for c in counts):
            return None
        return sum(c[0] for c in counts), sum(c[1] for c in counts)


def build_mos(ratings: pd.DataFrame, perspectives: list[str], scale: tuple[float, float],
              options: MosOptions = MosOptions(), images: list[str] | None = None) -> MosResult:
    """Screen the subjects and compute the MOS of every image for every perspective.

    ``ratings``: the long table (already checked against the card). ``images``: the order of mos.csv
    rows (default: first appearance in ``ratings``). Every image must be rated in every perspective.
    An InputError's ``row`` is the 0-based position in ``ratings`` plus 1.
    """
    options.check()
    ratings = ratings.reset_index(drop=True)
    if images is None:
        images = list(pd.unique(ratings["image_id"]))
    by_perspective = {p: ratings[ratings["perspective"] == p] for p in perspectives}
    results: dict[str, PerspectiveResult] = {}
    for perspective, part in by_perspective.items():
        if part.empty:
            raise InputError(f"perspective '{perspective}' has no ratings (mos.csv needs every perspective "
                             "of the card)", field="perspective")
        array = score_array(part, images)
        rated = ~np.isnan(array.scores).all(axis=(0, 1))
        if not rated.all():
            image = array.images[np.flatnonzero(~rated)[0]]
            raise InputError(f"image '{image}' has no '{perspective}' rating (mos.csv needs a score of "
                             "every image in every perspective)", field="image_id")
        array.first_row = part.index.to_numpy()[array.first_row]  # rows of the whole table
        if options.zscore:
            check_zscorable(array, perspective)
        # Per-subject z-scores use only the subject's own scores, so z-scoring the accepted subjects
        # after screening equals z-scoring everybody and dropping the rejected; the order only
        # decides what the screening (and the score-outlier band) sees.
        values = zscore(array.scores)[0] if options.zscore and options.order == "zscore-first" else array.scores
        screening = None
        if options.screening == "bt500":
            screening = bt500_screening(values, count_unanimous=options.count_unanimous)
        elif options.screening != "none":
            screening = SCREENINGS[options.screening](values)
        rejected = screening.rejected.copy() if screening else np.zeros(len(array.subjects), bool)
        results[perspective] = PerspectiveResult(perspective, array, values, screening, rejected, None)

    if options.scope == "any":
        dropped = set()
        for result in results.values():
            dropped |= set(result.array.subjects[result.rejected])
        for result in results.values():
            result.rejected = np.isin(result.array.subjects, list(dropped))

    columns: dict[str, np.ndarray] = {"image_id": np.asarray(images, dtype=object)}
    for perspective, result in results.items():
        kept = result.screened_values.copy()
        kept[result.rejected] = np.nan
        if options.remove_score_outliers:
            result.score_outliers = score_outliers(kept)
            kept[result.score_outliers] = np.nan
        raw = np.where(np.isnan(kept), np.nan, result.array.scores)
        if not (~np.isnan(kept)).any(axis=(0, 1)).all():
            image = result.array.images[np.flatnonzero(~(~np.isnan(kept)).any(axis=(0, 1)))[0]]
            raise InputError(f"image '{image}' has no '{perspective}' score left after screening",
                             field="image_id")
        if options.zscore and options.order == "screen-first":
            final = rescale_z(np.where(np.isnan(kept), np.nan, zscore(result.array.scores)[0]))
        else:
            final = rescale_z(kept) if options.zscore else kept
        result.mos = mos_statistics(final, options.confidence)
        columns[f"{perspective}_mos"] = result.mos["mean"]
        columns[f"{perspective}_std"] = result.mos["std"]
        columns[f"{perspective}_ci95"] = result.mos["ci"]
        columns[f"{perspective}_n"] = result.mos["n"]
        columns[f"{perspective}_std_raw"] = mos_statistics(raw)["std"]
    table = pd.DataFrame(columns)
    for perspective in results:
        table[f"{perspective}_n"] = table[f"{perspective}_n"].astype("Int64")
    mos_range = RESCALED_RANGE if options.zscore else (float(scale[0]), float(scale[1]))
    return MosResult(table, results, options, mos_range)


def screening_report(result: MosResult) -> dict:
    """The content of screening.json: method, thresholds, per-subject statistics, who was rejected, why."""
    options = result.options
    report: dict = {
        "method": options.screening,
        "screened_values": "z-scores" if options.zscore and options.order == "zscore-first" else "raw scores",
        "order": options.order if options.zscore else None,
        "scope": options.scope,
        "zscore": options.zscore,
        "rescale": "100 * (z + 3) / 6" if options.zscore else None,
        "mos_range": list(result.mos_range),
        "confidence": options.confidence,
        "count_unanimous_stimuli": options.count_unanimous,
        "score_outlier_removal": options.remove_score_outliers,
        "perspectives": {},
    }
    total = result.score_outlier_counts()
    if total is not None:  # the paper reports one score rejection rate (2 %) for the whole study
        report["score_outliers"] = {"removed": total[0], "of": total[1], "rate": total[0] / max(total[1], 1)}
    for perspective, p in result.perspectives.items():
        screening = p.screening
        subjects = []
        for index, subject in enumerate(p.array.subjects):
            entry: dict = {"subject_id": str(subject),
                           "n_scores": int((~np.isnan(p.array.scores[index])).sum())}
            if screening is not None:
                for name, values in screening.statistics.items():
                    value = float(values[index])
                    entry[name] = None if np.isnan(value) else (int(value) if name in ("P", "Q", "N") else value)
            entry["rejected"] = bool(p.rejected[index])
            entry["reason"] = _reason(screening, index, p.rejected[index])
            subjects.append(entry)
        section: dict = {
            "n_subjects": len(p.array.subjects), "n_images": len(p.array.images),
            "n_scores": int((~np.isnan(p.array.scores)).sum()),
            "thresholds": screening.thresholds if screening else {},
            "all_rejected_so_none_rejected": bool(screening.all_rejected_kept) if screening else False,
            "rejected": [str(s) for s in p.array.subjects[p.rejected]],
            "subjects": subjects,
        }
        counts = p.score_outlier_counts()
        if counts is not None:
            section["score_outliers"] = {"removed": counts[0], "of": counts[1], "rate": counts[0] / max(counts[1], 1)}
        report["perspectives"][perspective] = section
    return report


def _reason(screening: Screening | None, index: int, rejected: bool) -> str:
    if screening is None:
        return "no screening"
    own = bool(screening.rejected[index])
    if screening.method == "bt500":
        s = screening.statistics
        text = (f"(P+Q)/N = {s['outside_rate'][index]:.3f} (> {screening.thresholds['outside_rate_above']}) "
                f"and |P-Q|/(P+Q) = {s['balance'][index]:.3f} (< {screening.thresholds['balance_below']})")
    else:
        r = screening.statistics["correlation"][index]
        text = f"correlation {r:.3f} < {screening.thresholds['correlation_below']:.3f}"
    if own:
        return "rejected: " + text
    if rejected:
        return "rejected in another perspective (scope 'any')"
    if screening.all_rejected_kept:
        return "kept: every subject failed the test, so none is rejected"
    return "kept"
