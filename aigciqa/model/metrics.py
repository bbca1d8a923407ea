"""Evaluation metrics of the paper's section V (pure numpy/scipy; no torch).

SRCC and KRCC measure monotonic agreement; PLCC is reported twice and labelled: on the raw predictions
and after the usual 4-parameter logistic mapping of predictions to MOS (VQEG practice, which the IQA
literature and the paper follow). RMSE is computed after the same mapping, in MOS units.
"""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
from scipy import optimize, stats

METRIC_NAMES = ("srcc", "krcc", "plcc_raw", "plcc_logistic", "rmse_logistic")


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2: rises from b2 to b1 around b3 with width b4."""
    with np.errstate(over="ignore"):  # exp overflows to inf far from b3; the result is then b2, as it should be
        return (b1 - b2) / (1.0 + np.exp(-(x - b3) / np.abs(b4))) + b2


def fit_logistic4(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Fit the 4-parameter logistic from predictions to targets; returns (b1, b2, b3, b4).

    Least squares (trust-region: its finite-difference steps stay sensible for parameters near 0) from a
    few starting widths, keeping the best;
    falls back to the first start (an increasing ramp over the data) if none converges.
    """
    predicted = np.asarray(predicted, dtype=float)
    target = np.asarray(target, dtype=float)
    spread = float(np.std(predicted)) or 1.0
    starts = [np.array([target.max(), target.min(), float(np.mean(predicted)), spread * width])
              for width in (1.0, 0.3, 3.0)]
    best, best_error = starts[0], np.inf
    for start in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params, _ = optimize.curve_fit(logistic4, predicted, target, p0=start, method="trf", max_nfev=20000)
        except (RuntimeError, ValueError):
            continue
        error = float(np.sum((logistic4(predicted, *params) - target) ** 2))
        if error < best_error:
            best, best_error = params, error
    return best


def correlation_metrics(predicted: Sequence[float], target: Sequence[float]) -> dict[str, float]:
    """SRCC, KRCC, PLCC (raw and after the logistic fit) and RMSE (after the fit) of one perspective."""
    predicted = np.asarray(predicted, dtype=float)
    target = np.asarray(target, dtype=float)
    if predicted.shape != target.shape or predicted.ndim != 1:
        raise ValueError("predicted and target must be 1-D arrays of the same length")
    if len(predicted) < 3 or np.ptp(predicted) == 0 or np.ptp(target) == 0:
        # Correlations are undefined for constant inputs or fewer than 3 points.
        nan = float("nan")
        return {"srcc": nan, "krcc": nan, "plcc_raw": nan, "plcc_logistic": nan, "rmse_logistic": nan,
                "n": int(len(predicted))}
    mapped = logistic4(predicted, *fit_logistic4(predicted, target))
    plcc_logistic = (float(stats.pearsonr(mapped, target).statistic) if np.ptp(mapped) > 0
                     else float("nan"))
    return {
        "srcc": float(stats.spearmanr(predicted, target).statistic),
        "krcc": float(stats.kendalltau(predicted, target).statistic),
        "plcc_raw": float(stats.pearsonr(predicted, target).statistic),
        "plcc_logistic": plcc_logistic,
        "rmse_logistic": float(np.sqrt(np.mean((mapped - target) ** 2))),
        "n": int(len(predicted)),
    }


def perspective_metrics(predicted: Mapping[str, Sequence[float]],
                        target: Mapping[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    """Metrics per perspective plus their plain average over perspectives (Table II's 'average')."""
    result = {p: correlation_metrics(predicted[p], target[p]) for p in predicted}
    if len(result) > 1:
        result["average"] = {name: float(np.mean([result[p][name] for p in predicted]))
                             for name in METRIC_NAMES}
    return result


def preference_accuracy(better_scores: Sequence[float], worse_scores: Sequence[float]) -> float:
    """Share of pairs whose preferred image scores strictly higher (ImageReward: a tie is wrong)."""
    better = np.asarray(better_scores, dtype=float)
    worse = np.asarray(worse_scores, dtype=float)
    if len(better) == 0:
        return float("nan")
    return float(np.mean(better > worse))


def summarise_repeats(runs: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and sample standard deviation of each metric over repeated splits."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for perspective in runs[0]:
        summary[perspective] = {}
        for name in METRIC_NAMES:
            values = np.array([run[perspective][name] for run in runs], dtype=float)
            summary[perspective][name] = {"mean": float(np.mean(values)),
                                          "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}
    return summary


def format_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """A plain-text table: one row per perspective, one column per metric."""
    header = f"{'perspective':<16}" + "".join(f"{name:>15}" for name in METRIC_NAMES)
    lines = [header]
    for perspective, values in results.items():
        lines.append(f"{perspective:<16}" + "".join(f"{values[name]:>15.4f}" for name in METRIC_NAMES))
    return "\n".join(lines)
