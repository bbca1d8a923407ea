"""Subject screening (ITU-R BT.500-14 Annex 1 §2.3.1 and a correlation test) and score-outlier removal.

Every function works on one perspective's score array of shape ``(S, R, E)``: S subjects, R
repetitions (1 unless a subject rated an image more than once), E stimuli, NaN where a subject did
not rate a stimulus. Repetitions are treated as further scores of the same subject, as sureal does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# BT.500-14 Annex 1 §2.3.1: the band is 2 standard deviations when the stimulus' scores are close to
# normal (Pearson kurtosis 2..4), sqrt(20) otherwise; a subject is rejected when more than 5 % of
# their scores fall outside the band and they do so on both sides about equally (ratio < 0.3).
NORMAL_KURTOSIS = (2.0, 4.0)
BAND_NORMAL = 2.0
BAND_OTHER = float(np.sqrt(20.0))
OUTSIDE_RATE = 0.05
BALANCE_RATIO = 0.3
# Correlation screening: reject a subject whose correlation with the others' mean is below
# min(CORRELATION_CEILING, mean - std) of all subjects' correlations.
CORRELATION_CEILING = 0.7


@dataclass
class Screening:
    """Who a screening test rejects, with the per-subject statistics it used."""

    method: str
    rejected: np.ndarray                      # bool, one per subject
    statistics: dict[str, np.ndarray]         # per-subject arrays, e.g. P, Q, N, stat1, stat2
    thresholds: dict[str, float]
    all_rejected_kept: bool = False           # every subject failed, so none was rejected
    notes: list[str] = field(default_factory=list)


def _per_stimulus(values: np.ndarray):
    """Mean, population std and Pearson kurtosis (beta2, biased) of each stimulus' scores."""
    present = ~np.isnan(values)
    count = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(values, axis=0) / count
        deviation = values - mean
        m2 = np.nansum(deviation ** 2, axis=0) / count
        m4 = np.nansum(deviation ** 4, axis=0) / count
        kurtosis = m4 / m2 ** 2
    return mean, np.sqrt(m2), kurtosis


def band_width(kurtosis: np.ndarray) -> np.ndarray:
    """Half-width of each stimulus' band in standard deviations (NaN kurtosis: not normal)."""
    normal = (kurtosis >= NORMAL_KURTOSIS[0]) & (kurtosis <= NORMAL_KURTOSIS[1])
    return np.where(normal, BAND_NORMAL, BAND_OTHER)


def _stacked(scores: np.ndarray) -> np.ndarray:
    """(S, R, E) -> (S*R, E): every score of a stimulus in one column."""
    subjects, repetitions, stimuli = scores.shape
    return scores.reshape(subjects * repetitions, stimuli)


def outside_band(scores: np.ndarray, *, count_unanimous: bool = False):
    """Masks of scores at or above the upper band edge (P) and at or below the lower edge (Q).

    A stimulus every subject scored the same has zero spread. BT.500's inequalities (>=, <=) and
    sureal then count every one of its scores in both P and Q; by default such a stimulus counts
    for nobody (nobody deviated), ``count_unanimous=True`` reproduces the literal rule.
    """
    values = _stacked(scores)
    mean, std, kurtosis = _per_stimulus(values)
    half = band_width(kurtosis) * std
    # A score exactly on the band edge counts (BT.500 uses >= and <=). Integer scores hit the edge
    # exactly (e.g. 1,1,1,1,3: mean + 2 sd = 3), where rounding would decide at random: a tolerance
    # of a few ulps makes such ties count whatever the summation order.
    tolerance = 1e-9 * (np.abs(mean) + half + 1.0)
    with np.errstate(invalid="ignore"):
        above = values >= mean + half - tolerance
        below = values <= mean - half + tolerance
    if not count_unanimous:
        spread = std > 0
        above &= spread
        below &= spread
    shape = scores.shape
    return above.reshape(shape), below.reshape(shape), kurtosis


def bt500_screening(scores: np.ndarray, *, count_unanimous: bool = False) -> Screening:
    """BT.500-14 Annex 1 §2.3.1 kurtosis screening of the subjects of one perspective.

    N, the denominator of the first statistic, is the number of scores the subject gave (equal to
    sureal's stimuli x repetitions when every subject rated everything).
    """
    above, below, kurtosis = outside_band(scores, count_unanimous=count_unanimous)
    p = above.sum(axis=(1, 2)).astype(float)
    q = below.sum(axis=(1, 2)).astype(float)
    n = (~np.isnan(scores)).sum(axis=(1, 2)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        stat1 = (p + q) / n
        stat2 = np.abs(p - q) / (p + q)
    rejected = (stat1 > OUTSIDE_RATE) & (stat2 < BALANCE_RATIO)
    all_failed = bool(rejected.all())
    if all_failed:
        rejected[:] = False
    normal = (kurtosis >= NORMAL_KURTOSIS[0]) & (kurtosis <= NORMAL_KURTOSIS[1])
    return Screening(
        method="bt500", rejected=rejected,
        statistics={"P": p, "Q": q, "N": n, "outside_rate": stat1, "balance": stat2},
        thresholds={"outside_rate_above": OUTSIDE_RATE, "balance_below": BALANCE_RATIO,
                    "kurtosis_normal_min": NORMAL_KURTOSIS[0], "kurtosis_normal_max": NORMAL_KURTOSIS[1],
                    "band_normal_sd": BAND_NORMAL, "band_other_sd": BAND_OTHER,
                    "stimuli_normal": int(normal.sum()), "stimuli_other": int((~normal).sum())},
        all_rejected_kept=all_failed)


def correlation_screening(scores: np.ndarray) -> Screening:
    """Reject a subject whose Pearson correlation with the mean of the other subjects is low.

    Per subject: their scores (mean over repetitions) against the leave-one-out mean of everybody
    else on the same stimuli. Threshold: min(0.7, mean - std) of the finite correlations (std with
    ddof=0, the spread of this panel). A correlation that cannot be computed (fewer than 3 common
    stimuli, or no variation) rejects nobody.
    """
    with np.errstate(invalid="ignore"):
        own = np.nanmean(scores, axis=1)                      # (S, E): mean over repetitions
    present = ~np.isnan(own)
    own_filled = np.where(present, own, 0.0)
    total = own_filled.sum(axis=0)
    count = present.sum(axis=0)
    others_count = count - present
    with np.errstate(invalid="ignore", divide="ignore"):
        others = (total - own_filled) / others_count          # (S, E) leave-one-out mean
    usable = present & (others_count > 0)
    k = usable.sum(axis=1)
    x = np.where(usable, own, 0.0)
    y = np.where(usable, others, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = x.sum(axis=1) / k
        my = y.sum(axis=1) / k
        dx = np.where(usable, x - mx[:, None], 0.0)
        dy = np.where(usable, y - my[:, None], 0.0)
        r = (dx * dy).sum(axis=1) / np.sqrt((dx ** 2).sum(axis=1) * (dy ** 2).sum(axis=1))
    r[k < 3] = np.nan
    finite = np.isfinite(r)
    if finite.any():
        threshold = float(min(CORRELATION_CEILING, r[finite].mean() - r[finite].std()))
    else:
        threshold = float("nan")
    with np.errstate(invalid="ignore"):
        rejected = finite & (r < threshold)
    all_failed = bool(rejected.all())
    if all_failed:
        rejected[:] = False
    return Screening(method="correlation", rejected=rejected,
                     statistics={"correlation": r, "N": k.astype(float)},
                     thresholds={"correlation_below": threshold, "ceiling": CORRELATION_CEILING},
                     all_rejected_kept=all_failed)


def score_outliers(scores: np.ndarray) -> np.ndarray:
    """Mask of single scores outside their stimulus' BT.500 band (same band as the kurtosis test)."""
    above, below, _ = outside_band(scores)
    return above | below


SCREENINGS = {"bt500": bt500_screening, "correlation": correlation_screening}
