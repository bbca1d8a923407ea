import numpy as np
import pytest
from scipy import stats

from aigciqa.model.metrics import (correlation_metrics, fit_logistic4, logistic4, perspective_metrics,
                                   preference_accuracy, summarise_repeats)


def test_correlations_match_scipy_on_known_vectors():
    predicted = np.array([1.0, 2.5, 2.0, 4.0, 3.0, 6.0, 5.5])
    target = np.array([10.0, 20.0, 35.0, 30.0, 50.0, 60.0, 55.0])
    result = correlation_metrics(predicted, target)
    assert result["srcc"] == pytest.approx(stats.spearmanr(predicted, target).statistic)
    assert result["krcc"] == pytest.approx(stats.kendalltau(predicted, target).statistic)
    assert result["plcc_raw"] == pytest.approx(stats.pearsonr(predicted, target).statistic)
    # By hand: rank differences 0,1,-2,2,-1,0,0 -> sum d^2 = 10 -> 1 - 6*10/(7*48).
    assert result["srcc"] == pytest.approx(1 - 60 / 336)
    # The logistic mapping can only fit better than a straight line does.
    assert result["plcc_logistic"] >= result["plcc_raw"] - 1e-9
    assert result["n"] == 7


def test_logistic_fit_recovers_a_known_curve():
    x = np.linspace(-3, 3, 40)
    truth = (80.0, 20.0, 0.5, 0.8)
    params = fit_logistic4(x, logistic4(x, *truth))
    np.testing.assert_allclose(logistic4(x, *params), logistic4(x, *truth), atol=1e-4)
    result = correlation_metrics(x, logistic4(x, *truth))
    assert result["plcc_logistic"] == pytest.approx(1.0, abs=1e-6)
    assert result["plcc_raw"] < 0.99  # the raw PLCC sees the curvature
    assert result["rmse_logistic"] == pytest.approx(0.0, abs=1e-3)


def test_constant_predictions_give_nan_not_an_error():
    result = correlation_metrics([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])
    assert np.isnan(result["srcc"]) and np.isnan(result["plcc_logistic"])


def test_average_over_perspectives():
    rng = np.random.default_rng(0)
    target = {"a": rng.normal(size=20), "b": rng.normal(size=20)}
    predicted = {"a": target["a"] + rng.normal(scale=0.1, size=20), "b": -target["b"]}
    result = perspective_metrics(predicted, target)
    assert result["average"]["srcc"] == pytest.approx((result["a"]["srcc"] + result["b"]["srcc"]) / 2)
    assert result["b"]["srcc"] == pytest.approx(-1.0)


def test_preference_accuracy_counts_ties_as_wrong():
    assert preference_accuracy([2.0, 1.0, 3.0, 5.0], [1.0, 1.0, 4.0, 0.0]) == pytest.approx(0.5)


def test_repeats_mean_and_spread():
    runs = [{"q": {name: v for name in ("srcc", "krcc", "plcc_raw", "plcc_logistic", "rmse_logistic")}}
            for v in (0.5, 0.7)]
    summary = summarise_repeats(runs)
    assert summary["q"]["srcc"]["mean"] == pytest.approx(0.6)
    assert summary["q"]["srcc"]["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
