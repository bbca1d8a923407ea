"""Evaluation metrics of the paper's section V (pure numpy/scipy; no torch).

SRCC and KRCC measure monotonic agreement; PLCC is reported twice and labelled: on the raw predictions
and after the usual 4-parameter logistic mapping of predictions to MOS (VQEG practice, which the IQA
literature and the paper follow). RMSE is computed after the same mapping, in MOS units.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from scipy import optimize, stats

METRIC_NAMES = ("srcc", "krcc", "plcc_raw", "plcc_logistic", "rmse_logistic")


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2: rises from b2 to b1 around b3 with width b4."""
    with np.errstate(over="ignore"):  # exp overflows to inf far from b3; the result is then b2, as it should be
        return (b1 - b2) / (1.0 + np.exp(-(x - b3) / np.abs(b4))) + b2


def logistic4_jacobian(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """d logistic4 / d(b1, b2, b3, b4), one row per x: analytic, so a fit needs no finite differences."""
    width = np.abs(b4)
    with np.errstate(over="ignore"):
        s = 1.0 / (1.0 + np.exp(-(x - b3) / width))
    slope = (b1 - b2) * s * (1.0 - s)
    return np.stack([s, 1.0 - s, -slope / width, -slope * (x - b3) * np.sign(b4) / width ** 2], axis=1)


def fit_logistic4(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Fit the 4-parameter logistic from predictions to targets; returns (b1, b2, b3, b4).

    Trust-region least squares with the analytic Jacobian on standardised predictions, from a few starting
    widths, keeping the best fit (the first start, an increasing ramp over the data, if none improves).
    """
    predicted = np.asarray(predicted, dtype=float)
    target = np.asarray(target, dtype=float)
    # Fit on standardised predictions (a scorer's outputs may span 1e-3 or 1e3): well conditioned, so the
    # least squares converge in a few dozen steps; the parameters are mapped back afterwards.
    centre, spread = float(np.mean(predicted)), float(np.std(predicted)) or 1.0
    unit = (predicted - centre) / spread
    starts = [np.array([target.max(), target.min(), 0.0, width]) for width in (1.0, 0.3, 3.0)]
    best, best_error = starts[0], float(np.sum((logistic4(unit, *starts[0]) - target) ** 2))
    for start in starts:
        # When the data are nearly linear (or a step) the optimum drifts to an infinite width (or zero):
        # the curve stops improving long before the parameters converge, so the fit is capped and its
        # best point so far is kept.
        fit = optimize.least_squares(lambda b: logistic4(unit, *b) - target, start,
                                     jac=lambda b: logistic4_jacobian(unit, *b), method="trf", max_nfev=300)
        error = float(np.sum(fit.fun ** 2))
        if np.all(np.isfinite(fit.x)) and error < best_error:
            best, best_error = fit.x, error
    b1, b2, b3, b4 = best
    return np.array([b1, b2, centre + spread * b3, spread * b4])


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
