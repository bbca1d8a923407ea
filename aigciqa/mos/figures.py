"""Figures of build-mos as PNG bytes (matplotlib's Agg canvas, no display and no global pyplot state)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from aigciqa.database.card import card_value
from aigciqa.mos.aggregate import MosResult
from aigciqa.mos.labels import level_distribution


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    # Fixed metadata so that the same inputs give the same bytes.
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _title(card: dict, text: str) -> str:
    return f"{text} (SIMULATED DATA)" if card_value(card, "synthetic") else text


def mos_histograms(result: MosResult, card: dict) -> bytes:
    """Histogram of the MOS of each perspective (as the paper's Fig. 6)."""
    names = list(result.perspectives)
    figure = Figure(figsize=(4.2 * len(names), 3.4), layout="constrained")
    lo, hi = result.mos_range
    for k, name in enumerate(names):
        axes = figure.add_subplot(1, len(names), k + 1)
        values = result.table[f"{name}_mos"].to_numpy(dtype=float)
        axes.hist(values, bins=np.linspace(min(lo, values.min()), max(hi, values.max()), 21),
                  color="tab:blue", edgecolor="white")
        axes.set_xlabel(f"{name} MOS")
        axes.set_ylabel("images")
        axes.set_title(f"{name} (n = {len(values)})")
    figure.suptitle(_title(card, "MOS distribution"))
    return _png(figure)


def screening_statistics(result: MosResult, card: dict) -> bytes:
    """Per subject, the screening statistics and the thresholds; rejected subjects in red."""
    names = list(result.perspectives)
    figure = Figure(figsize=(4.2 * len(names), 3.6), layout="constrained")
    for k, name in enumerate(names):
        p = result.perspectives[name]
        axes = figure.add_subplot(1, len(names), k + 1)
        colors = np.where(p.rejected, "tab:red", "tab:blue")
        if p.screening is not None and p.screening.method == "bt500":
            x = p.screening.statistics["outside_rate"]
            y = np.nan_to_num(p.screening.statistics["balance"], nan=1.0)
            axes.scatter(x, y, c=colors, s=18)
            axes.axvline(p.screening.thresholds["outside_rate_above"], color="gray", ls="--")
            axes.axhline(p.screening.thresholds["balance_below"], color="gray", ls="--")
            axes.set_xlabel("(P+Q)/N  (reject right of the line)")
            axes.set_ylabel("|P-Q|/(P+Q)  (reject below the line)")
        elif p.screening is not None:
            r = p.screening.statistics["correlation"]
            axes.bar(np.arange(len(r)), np.nan_to_num(r), color=colors)
            axes.axhline(p.screening.thresholds["correlation_below"], color="gray", ls="--")
            axes.set_xlabel("subject")
            axes.set_ylabel("correlation with the others' mean")
        else:
            axes.text(0.5, 0.5, "no screening", ha="center", va="center", transform=axes.transAxes)
        axes.set_title(f"{name}: {int(p.rejected.sum())} of {len(p.rejected)} rejected")
    figure.suptitle(_title(card, "subject screening"))
    return _png(figure)


def _level_bars(axes, shares: dict[str, list[float]], levels: list[str]) -> None:
    groups = list(shares)
    width = 0.8 / len(groups)
    x = np.arange(len(levels))
    for k, group in enumerate(groups):
        axes.bar(x + (k - (len(groups) - 1) / 2) * width, shares[group], width, label=group)
    axes.set_xticks(x, [f"{i + 1}" for i in range(len(levels))])
    axes.set_ylim(0, 1)
    axes.set_ylabel("share of images")


def level_figures(labels: pd.DataFrame, card: dict, generators: pd.Series | None) -> dict[str, bytes]:
    """Level distribution per question, overall (paper Fig. 7) and per generator (Fig. 8)."""
    out: dict[str, bytes] = {}
    questions = [q for q in card["questions"] if q["name"] in labels.columns]
    if not questions:
        return out
    variants = [("levels_overall.png", None, "level distribution")]
    if generators is not None and (generators != "").any():
        variants.append(("levels_by_generator.png", generators, "level distribution per generator"))
    for filename, by, title in variants:
        shares = level_distribution(labels, card, by)
        figure = Figure(figsize=(3.6 * len(questions), 3.4), layout="constrained")
        for k, question in enumerate(questions):
            axes = figure.add_subplot(1, len(questions), k + 1)
            _level_bars(axes, shares[question["name"]], question["levels"])
            axes.set_title(question.get("title", question["name"]))
            axes.set_xlabel("level (1 = " + question["levels"][0] + ")", fontsize=8)
            if by is not None and k == len(questions) - 1:
                axes.legend(fontsize=7)
        figure.suptitle(_title(card, title))
        out[filename] = _png(figure)
    return out
